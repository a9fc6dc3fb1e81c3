import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'privml.js');
const tmp = mkdtempSync(join(tmpdir(), 'privml-hygiene-'));
// A folder that cannot be created even by root: its parent is a regular file.
const UNWRITABLE = join(tmp, 'a-file', 'out');
writeFileSync(join(tmp, 'a-file'), 'not a folder');

function privml(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, PRIVML_DATA: '' }, timeout: 300_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function oneLineError(r: { code: number; stderr: string }, code: number, re: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => !l.includes('(run with --help'));
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, re);
}

test('demo --limit 0 and negative counts are refused as usage errors', () => {
  oneLineError(privml('demo', '--limit', '0'), 2, /--limit must be a positive integer, got '0'/);
  oneLineError(privml('demo', '--private', '-1'), 2, /--private must be a non-negative integer/);
});

test('outputs are checked before the work: train, zoo export, smartpaf, hummingbird, fhe keygen/encrypt', () => {
  // The data set is missing too: the error must be about the output, proving the check comes first.
  oneLineError(privml('train', '--model', 'fmnist-cnn', '--dataset', 'fashion-mnist', '-o', `${UNWRITABLE}/m.onnx`), 1, /a-file.*cannot create the folder/);
  oneLineError(privml('zoo', 'export', 'fmnist-cnn', '-o', `${UNWRITABLE}/m.onnx`), 1, /cannot create the folder/);
  oneLineError(privml('smartpaf', 'models/fmnist-cnn-max.onnx', '--paf', 'f1g2', '-o', `${UNWRITABLE}/m.onnx`), 1, /cannot create the folder/);
  oneLineError(privml('hummingbird', 'search', 'models/fmnist-cnn.onnx', '--budget', '16', '-o', `${UNWRITABLE}/c.json`), 1, /cannot create the folder/);
  // fhe: the key folder is checked before planning, the ciphertext path before the keys are read.
  const paf = 'models/fmnist-cnn-max.f1sq-g1sq.paf.onnx';
  oneLineError(privml('fhe', 'keygen', '--model', paf, '--refresh', '-o', `${UNWRITABLE}/keys`), 1, /cannot create or write the folder/);
  oneLineError(privml('fhe', 'encrypt', '--dataset', 'fashion-mnist-sample', '--keys', tmp, '-o', `${UNWRITABLE}/x.ct`), 1, /cannot create the folder/);
  // Parent folders are created consistently.
  const nested = join(tmp, 'a', 'b', 'm.onnx');
  assert.equal(privml('zoo', 'export', 'fmnist-cnn', '-o', nested).code, 0);
});

test('zoo export and info agree on the parameter count; learned parameters leave BN statistics out', () => {
  const f = join(tmp, 'resnet20.onnx');
  const ex = privml('zoo', 'export', 'resnet20', '-o', f, '--json');
  assert.equal(ex.code, 0, ex.stderr);
  const e = JSON.parse(ex.stdout) as { parameters: number; learnedParameters: number };
  const info = JSON.parse(privml('info', f, '--json').stdout) as { parameters: number };
  assert.equal(e.parameters, info.parameters);
  assert.ok(e.learnedParameters < e.parameters, 'resnet20 has BN running statistics');
  // ResNet-20 (CIFAR) has 0.27 M learned parameters.
  assert.ok(Math.abs(e.learnedParameters - 272_474) < 5_000, String(e.learnedParameters));
});

test('smartpaf report-merge on a bad file gives a one-line error', () => {
  const bad = join(tmp, 'bad.json');
  writeFileSync(bad, '{"columns": 3}');
  oneLineError(privml('smartpaf', 'report-merge', bad, '-o', join(tmp, 'r.html')), 1, /bad\.json: not a smartpaf report JSON/);
  writeFileSync(bad, 'not json');
  oneLineError(privml('smartpaf', 'report-merge', bad, '-o', join(tmp, 'r.html')), 1, /bad\.json: cannot read report JSON/);
});

test('a closed stdout pipe ends the command quietly (no EPIPE stack trace)', async () => {
  const child = spawn(process.execPath, [BIN, 'smartpaf', 'list'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(stderr, '');
  assert.equal(code, 0);
});
