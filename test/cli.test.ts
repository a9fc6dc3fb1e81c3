import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeIdx } from '../src/nn/data/idx.js';
import { floatTensor } from '../src/onnx/ir.js';
import { runOrt } from '../src/onnx/ort.js';
import { loadModel } from '../src/onnx/proto.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'privml.js');
const tmp = mkdtempSync(join(tmpdir(), 'privml-cli-'));

function privml(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, PRIVML_DATA: '' }, timeout: 300_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Assert a failed run printed exactly one error line and no stack trace. */
function assertOneLineError(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => !l.includes('(run with --help'));
  assert.equal(lines.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

test('privml --help lists the commands', () => {
  const r = privml('--help');
  assert.equal(r.code, 0);
  for (const c of ['demo', 'info', 'zoo', 'train', 'eval', 'data', 'mpc']) assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
});

test('zoo list --json lists every zoo model', () => {
  const r = privml('zoo', 'list', '--json');
  assert.equal(r.code, 0, r.stderr);
  const names = (JSON.parse(r.stdout) as { name: string }[]).map((e) => e.name);
  assert.deepEqual(names, ['fmnist-cnn', 'lenet5', 'resnet20', 'resnet18', 'resnet50', 'vgg16', 'mobilenetv2', 'bert-base', 'gpt2-small']);
});

test('zoo export + info --json report parameters and MACs', () => {
  const f = join(tmp, 'cnn.onnx');
  assert.equal(privml('zoo', 'export', 'fmnist-cnn', '-o', f, '--opt', 'pool=max').code, 0);
  const r = privml('info', f, '--json');
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.parameters, 20490);
  // conv1 28*28*16*9 + conv2 14*14*32*144 + gemm 1568*10
  assert.equal(info.macs, 112896 + 903168 + 15680);
  assert.equal(info.opsHistogram.MaxPool, 2);
});

test('bad input: corrupt model, missing file, unknown zoo name, bad flag, wrong data dir', () => {
  const bad = join(tmp, 'corrupt.onnx');
  writeFileSync(bad, Buffer.from('this is not a protobuf at all, just text'));
  assertOneLineError(privml('info', bad), /corrupt\.onnx/);
  assertOneLineError(privml('info', join(tmp, 'nope.onnx')), /nope\.onnx: no such model file/);
  assertOneLineError(privml('zoo', 'export', 'resnet7', '-o', join(tmp, 'x.onnx')), /unknown zoo model 'resnet7'/);
  assertOneLineError(privml('zoo', 'export', 'fmnist-cnn', '-o', join(tmp, 'x.onnx'), '--opt', 'pool=min'), /option 'pool'/);
  const flag = privml('eval', 'x.onnx', '--bogus');
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /unknown option '--bogus'/);
  const r = privml('eval', join(import.meta.dirname, '..', 'models', 'fmnist-cnn.onnx'), '--data-dir', join(tmp, 'nowhere'));
  assertOneLineError(r, /nowhere/);
});

test('train on generated Fashion-MNIST-format files writes an ONNX model onnxruntime runs', () => {
  const dir = join(tmp, 'fm');
  // Two separable classes of synthetic 28x28 images: bright top half vs bright bottom half.
  const make = (n: number) => {
    const px = new Uint8Array(n * 784);
    const lb = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      lb[i] = i % 10;
      for (let p = 0; p < 784; p++) px[i * 784 + p] = (p * 7 + i * 13 + lb[i]! * 29) % 256 < 40 + lb[i]! * 20 ? 255 : 0;
    }
    return { px, lb };
  };
  const tr = make(320);
  const te = make(100);
  writeIdx(join(dir, 'train-images-idx3-ubyte.gz'), [320, 28, 28], tr.px, { gzip: true });
  writeIdx(join(dir, 'train-labels-idx1-ubyte.gz'), [320], tr.lb, { gzip: true });
  writeIdx(join(dir, 't10k-images-idx3-ubyte.gz'), [100, 28, 28], te.px, { gzip: true });
  writeIdx(join(dir, 't10k-labels-idx1-ubyte.gz'), [100], te.lb, { gzip: true });
  const out = join(tmp, 'trained.onnx');
  const r = privml('train', '--model', 'fmnist-cnn', '--data-dir', dir, '--epochs', '2', '--batch-size', '32', '-o', out, '--json');
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.history.length, 2);
  assert.ok(summary.history[1].loss < summary.history[0].loss, 'loss decreases');
  assert.ok(existsSync(out));
  const m = loadModel(out);
  assert.match(m.metadata['privml.trained']!, /"epochs":2/);
  const ev = privml('eval', out, '--data-dir', dir, '--json');
  assert.equal(ev.code, 0, ev.stderr);
  const res = JSON.parse(ev.stdout);
  assert.equal(res.n, 100);
  assert.equal(res.confusion.length, 10);
  assert.equal(
    res.confusion.flat().reduce((a: number, b: number) => a + b, 0),
    100,
  );
  return runOrt(m, { input: floatTensor([1, 1, 28, 28]) }).then((o) => assert.equal(o['logits']!.dims.join(), '1,10'));
});

test('demo runs offline on the committed model and sample; float runtime agrees with onnxruntime', () => {
  const r = privml('demo', '--json');
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  assert.equal(d.images, 1000);
  assert.equal(d.onnxruntime.agreement, 1);
  assert.equal(d.privateInference.images, 20);
  assert.equal(d.privateInference.agreement, 1);
  assert.ok(d.floatRuntime.accuracy > 0.85, `accuracy ${d.floatRuntime.accuracy}`);
  assert.ok(readFileSync(join(import.meta.dirname, '..', 'models', 'fmnist-cnn.onnx')).length > 80_000);
});
