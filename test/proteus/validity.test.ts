import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import type { Model } from '../../src/onnx/ir.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { corpusStats, obfuscate, ortLoadError, Prng, writeKey } from '../../src/proteus/index.js';

const stats = corpusStats();
const tmp = mkdtempSync(join(tmpdir(), 'privml-proteus-valid-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** A small residual CNN written in the op forms of `opset` (Clip bounds as attributes before 11). */
function cnn(opset: number): Model {
  const rng = new Prng(opset);
  const b = new GraphBuilder(`cnn${opset}`, opset);
  const w = (dims: number[], std: number): string =>
    b.init('w', { dtype: 'float32', dims, data: Float32Array.from({ length: dims.reduce((p, q) => p * q, 1) }, () => std * rng.normal()) });
  const bn = (x: string, c: number): string =>
    b.op(
      'BatchNormalization',
      [x, w([c], 0.1), w([c], 0.1), w([c], 0.1), b.init('v', { dtype: 'float32', dims: [c], data: Float32Array.from({ length: c }, () => 0.5 + rng.next()) })],
      { epsilon: float(1e-5) },
    );
  const clip = (x: string): string =>
    opset < 11
      ? b.op('Clip', [x], { min: float(0), max: float(6) })
      : b.op('Clip', [
          x,
          b.init('lo', { dtype: 'float32', dims: [], data: new Float32Array([0]) }),
          b.init('hi', { dtype: 'float32', dims: [], data: new Float32Array([6]) }),
        ]);
  const conv = (x: string, cin: number, cout: number, k: number, s = 1): string =>
    b.op('Conv', [x, w([cout, cin, k, k], Math.sqrt(2 / (cin * k * k)))], { kernel_shape: [k, k], pads: [k >> 1, k >> 1, k >> 1, k >> 1], strides: [s, s] });
  let x = b.input('x', 'float32', ['N', 3, 16, 16]);
  x = clip(bn(conv(x, 3, 8, 3), 8));
  for (let i = 0; i < 2; i++) {
    const y = bn(conv(clip(bn(conv(x, 8, 8, 3), 8)), 8, 8, 3), 8);
    x = clip(b.op('Add', [x, y]));
  }
  x = b.op('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] });
  x = clip(bn(conv(x, 8, 16, 3, 2), 16));
  x = b.op('Flatten', [b.op('GlobalAveragePool', [x])], { axis: 1 });
  const y = b.op('Gemm', [x, w([10, 16], 0.25), w([10], 0.01)], { transB: 1 });
  b.output(y, 'float32', ['N', 10]);
  return b.build();
}

test('every member of every group loads in onnxruntime at the bundle opset (9, 11, 13, 17)', async () => {
  for (const opset of [9, 11, 13, 17]) {
    const model = cnn(opset);
    const dir = join(tmp, `op${opset}`);
    const { key, manifest, regenerated } = await obfuscate(model, { k: 3, size: 6, stats, outDir: dir, reference: false });
    assert.ok(key.groups.length >= 2, `opset ${opset}: ${key.groups.length} groups`);
    let invalid = 0;
    for (const f of manifest.members) {
      const bytes = readFileSync(join(dir, f));
      const err = await ortLoadError(bytes);
      if (err) invalid++;
      // Members declare the model's opset.
      assert.deepEqual(decodeModel(bytes, f).opsetImports, [{ domain: '', version: opset }], f);
    }
    assert.equal(invalid, 0, `opset ${opset}: ${invalid} members do not load (${regenerated} decoys were regenerated)`);
  }
});

test('bad input: K bounds, non-empty output folder, existing key; a refused run writes nothing', async () => {
  const model = cnn(13);
  const out = join(tmp, 'bad');
  await assert.rejects(obfuscate(model, { k: 0, stats, outDir: out }), /positive integer/);
  await assert.rejects(obfuscate(model, { k: 1001, stats, outDir: out }), /exceeds 1000/);
  assert.ok(!existsSync(out), 'a refused run created the output folder');
  mkdirSync(out);
  writeFileSync(join(out, 'notes.txt'), 'mine');
  await assert.rejects(obfuscate(model, { k: 2, size: 8, stats, outDir: out }), /not empty/);
  await assert.rejects(obfuscate(model, { k: 2, size: 8, stats, outDir: out, force: true }), /not a Proteus bundle/);
  assert.deepEqual(readdirSync(out), ['notes.txt']);
  const out2 = join(tmp, 'twice');
  const first = await obfuscate(model, { k: 2, size: 8, stats, outDir: out2, reference: false });
  await assert.rejects(obfuscate(model, { k: 2, size: 8, stats, outDir: out2 }), /not empty/);
  const second = await obfuscate(model, { k: 2, size: 8, stats, outDir: out2, force: true, reference: false });
  // --force replaces the old bundle: no member of the first one is left beside the new manifest.
  assert.deepEqual(readdirSync(out2).sort(), ['manifest.json', ...second.manifest.members].sort());
  assert.notEqual(first.manifest.bundleId, second.manifest.bundleId);
  const keyPath = join(tmp, 'owner.key');
  writeKey(first.key, keyPath);
  assert.throws(() => writeKey(second.key, keyPath), /key file exists/);
  writeKey(second.key, keyPath, true);
  assert.equal(JSON.parse(readFileSync(keyPath, 'utf8')).bundleId, second.manifest.bundleId);
  // No partial folders are left next to the bundles.
  assert.deepEqual(
    readdirSync(tmp).filter((f) => f.startsWith('.proteus-partial')),
    [],
  );
});
