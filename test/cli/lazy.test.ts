import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildProgram, COMMANDS, VERSION } from '../../src/cli/main.js';

const root = join(import.meta.dirname, '..', '..');

test('the lazy command table matches what each subcommand module registers', async () => {
  const program = await buildProgram('all');
  const real = program.commands.map((c) => ({ name: c.name(), description: c.description() }));
  assert.deepEqual(
    real,
    COMMANDS.map((c) => ({ name: c.name, description: c.description })),
  );
});

test('--version equals package.json', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
});

test('only the named subcommand is loaded; the others are listed by name', async () => {
  const program = await buildProgram(['node', 'privml', '--debug', 'zoo', 'list']);
  const zoo = program.commands.find((c) => c.name() === 'zoo')!;
  assert.deepEqual(
    zoo.commands.map((c) => c.name()),
    ['list', 'export'],
  );
  const demo = program.commands.find((c) => c.name() === 'demo')!;
  assert.equal(demo.options.length, 0);
  const help = await buildProgram(['node', 'privml', 'help', 'demo']);
  assert.ok(help.commands.find((c) => c.name() === 'demo')!.options.some((o) => o.long === '--limit'));
});
