import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerSmartpaf } from '../../src/cli/smartpaf.js';

/** Run `privml smartpaf …` in-process, capturing stdout. */
async function run(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerSmartpaf(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  // Capture text only: the test runner itself reports to the parent through stdout as binary frames.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    if (typeof chunk !== 'string') return write(chunk, ...rest);
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'privml', 'smartpaf', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

test('smartpaf list --json: coefficients per stage, degree, depth, mults for every PAF', async () => {
  const rows = JSON.parse(await run('list', '--json')) as {
    name: string;
    degree: number;
    depth: number;
    mults: number;
    stages: { degree: number; coefficients: number[] }[];
    reluMaxError: number;
  }[];
  assert.deepEqual(
    rows.map((r) => [r.name, r.degree, r.depth]),
    [
      ['f1g2', 8, 5],
      ['f2g2', 10, 6],
      ['f2g3', 12, 6],
      ['a7', 14, 6],
      ['f1sq-g1sq', 12, 8],
      ['minimax27', 27, 10],
    ],
  );
  const mm = rows.find((r) => r.name === 'minimax27')!;
  assert.deepEqual(
    mm.stages.map((s) => s.degree),
    [7, 7, 13],
  );
  assert.equal(mm.stages[2]!.coefficients.length, 7);
  assert.ok(mm.reluMaxError < 2 ** -10);
  assert.equal(rows.find((r) => r.name === 'f1g2')!.stages[0]!.coefficients[1], -0.5);
});

test('smartpaf list --svg writes one plot per PAF; text mode prints the table', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'privml-paf-')), 'plots');
  const text = await run('list', '--svg', dir);
  assert.match(text, /^name\s+degree/);
  assert.match(text, /minimax27\s+27 \(637\)\s+10\s+19/);
  assert.deepEqual(readdirSync(dir).sort(), ['a7.svg', 'f1g2.svg', 'f1sq-g1sq.svg', 'f2g2.svg', 'f2g3.svg', 'minimax27.svg']);
  assert.match(readFileSync(join(dir, 'a7.svg'), 'utf8'), /<svg [^>]*>[\s\S]*<\/svg>/);
});
