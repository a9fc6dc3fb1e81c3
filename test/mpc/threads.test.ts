import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Prg } from '../../src/crypto/prg.js';
import { ringConv2d, ringMatmul } from '../../src/mpc/ring.js';
import { availableThreads, RingPool, threadsProblem } from '../../src/mpc/threads/pool.js';

const same = (a: BigInt64Array, b: BigInt64Array): boolean =>
  a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

test('--threads values outside 1..cores are refused with one line', () => {
  assert.match(threadsProblem(0)!, /at least 1, got 0/);
  assert.match(threadsProblem(1.5)!, /whole number/);
  assert.match(threadsProblem(availableThreads() + 1)!, /more than the \d+ cores/);
  assert.equal(threadsProblem(1), undefined);
  assert.throws(() => new RingPool(0), /at least 1/);
});

test('the pool splits conv and matmul over threads bit for bit; a crashed worker fails every later call', async () => {
  const threads = Math.min(2, availableThreads());
  const prg = new Prg(new Uint8Array(16).fill(7));
  // odd batch and row counts: uneven splits; stride 2 and padding exercise the geometry
  const g = { n: 5, c: 3, h: 9, w: 7, co: 4, kh: 3, kw: 3, strideH: 2, strideW: 1, padT: 1, padL: 0, padB: 1, padR: 2, group: 1 };
  const x = prg.ring(g.n * g.c * g.h * g.w),
    w = prg.ring(g.co * g.c * 9);
  const a = prg.ring(7 * 5),
    b = prg.ring(5 * 3);
  const pool = new RingPool(threads);
  try {
    assert.ok(same(await pool.conv2d(x, w, g), ringConv2d(x, w, g)));
    assert.ok(same(await pool.matmul(a, b, 7, 5, 3), ringMatmul(a, b, 7, 5, 3)));
    await assert.rejects(pool.crashWorker(threads - 1), (e: Error) => /^thread pool: worker \d+ (crashed|exited)/.test(e.message) && !e.message.includes('\n'));
    await assert.rejects(pool.conv2d(x, w, g), /thread pool: worker/);
  } finally {
    await pool.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Real processes: bad --threads values and a worker thread that dies inside a party
// ---------------------------------------------------------------------------------------------

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'privml.js');
const MODEL = join(ROOT, 'models', 'fmnist-cnn.onnx');

/** Pids of live processes whose environment carries `mark` (every role inherits the CLI's environment). */
function marked(mark: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').includes(mark)) out.push(Number(d));
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return out;
}

/** Run `privml args` with a marker in its environment; its exit, stderr's error lines, and the marked processes left after it. */
function runMarked(args: string[], env: Record<string, string> = {}): { status: number | null; errors: string[]; stderr: string; left: number[] } {
  const mark = `PRIVML_TEST_MARK=${randomUUID()}`;
  const [k, v] = mark.split('=') as [string, string];
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env, [k]: v }, timeout: 120_000 });
  return {
    status: r.status,
    stderr: r.stderr,
    errors: r.stderr.split('\n').filter((l) => l.startsWith('privml: error:')),
    left: process.platform === 'linux' ? marked(mark) : [],
  };
}

test('mpc bench model: --threads 0 and more threads than cores end with one error line and no role left', { timeout: 120_000 }, () => {
  for (const t of ['0', String(availableThreads() + 1)]) {
    const r = runMarked(['mpc', 'bench', 'model', MODEL, '--batch', '2', '--reps', '1', '--threads', t]);
    assert.notEqual(r.status, 0, r.stderr);
    assert.equal(r.errors.length, 1, r.stderr);
    assert.match(r.errors[0]!, /--threads/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(r.left, []);
  }
});

test('a worker thread dying inside a real party: one error line naming it, every role exits, none left', {
  timeout: 120_000,
  skip: availableThreads() < 2,
}, () => {
  const r = runMarked(['mpc', 'bench', 'model', MODEL, '--batch', '2', '--reps', '1', '--threads', '2', '--fault-worker-crash']);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.errors.length, 1, r.stderr);
  assert.match(r.errors[0]!, /party [01] failed \(exit 1\): thread pool: worker \d+ crashed/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.deepEqual(r.left, [], 'no role or worker process outlives the run');
});
