/** Another converter (onnx.helper, opset 7 legacy forms), and the `run` / `info` commands on real files. */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FloatModel } from '../../src/nn/runtime.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { canonicalize } from '../../src/onnx/canonical.js';
import { floatTensor } from '../../src/onnx/ir.js';
import { loadNpy } from '../../src/onnx/npy.js';
import { runOrt } from '../../src/onnx/ort.js';
import { loadModel, saveModel } from '../../src/onnx/proto.js';

const fx = join(import.meta.dirname, '..', 'fixtures');

test('onnx.helper opset-7 model (Upsample-7, Pad-2, Slice-1, Clip-6, Softmax-1, variadic Sum/Max): float = onnxruntime, canonical form = original in onnxruntime', async () => {
  const model = loadModel(join(fx, 'onnx-helper', 'oldopset7.onnx'));
  const x = loadNpy(join(fx, 'onnx-helper', 'oldopset7.input.npy'));
  const ref = (await runOrt(model, { x }))['y']!.data as Float32Array;
  const canon = canonicalize(model).model;
  const ops = canon.graph.nodes.map((n) => n.opType);
  assert.ok(ops.includes('Resize') && !ops.includes('Upsample') && !ops.includes('Sum'), ops.join());
  const viaCanon = (await runOrt(canon, { x }))['y']!.data as Float32Array;
  const fm = await FloatModel.create(model);
  const got = fm.run({ x })['y']!.data as Float32Array;
  fm.dispose();
  for (let i = 0; i < ref.length; i++) {
    assert.ok(Math.abs(viaCanon[i]! - ref[i]!) <= 1e-6, `canonical ${i}`);
    assert.ok(Math.abs(got[i]! - ref[i]!) <= 1e-5, `float ${i}`);
  }
});

/** The real command in its own process (the test runner owns this process's stdout). */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'privml.js'), ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('privml run: .npy in, .npy out, --compare ort; JSON input', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-run-'));
  const f = join(fx, 'pytorch', 'tinyresnet_op13');
  const r = await cli(['run', `${f}.onnx`, '--input', `${f}.input.npy`, '--compare', 'ort', '-o', join(dir, 'y.npy'), '--json']);
  assert.equal(r.code, 0, r.err);
  const rep = JSON.parse(r.out);
  assert.ok(rep.compare.output.maxRel < 1e-5);
  const y = loadNpy(join(dir, 'y.npy'));
  const want = loadNpy(`${f}.output.npy`);
  assert.deepEqual(y.dims, want.dims);
  (y.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - (want.data as Float32Array)[i]!) < 1e-5));
  const mlp = join(fx, 'pytorch', 'tinymlp_op17');
  const xs = loadNpy(`${mlp}.input.npy`);
  const rows = Array.from({ length: xs.dims[0]! }, (_, i) => Array.from((xs.data as Float32Array).slice(i * 10, i * 10 + 10)));
  writeFileSync(join(dir, 'x.json'), JSON.stringify(rows));
  const j = await cli(['run', `${mlp}.onnx`, '--input', join(dir, 'x.json'), '--json']);
  assert.equal(j.code, 0, j.err);
  assert.deepEqual(JSON.parse(j.out).outputs.output.shape, [3, 4]);
});

test('privml info: Constant weights counted, symbolic dims named; a bad model exits 1 listing every problem', async () => {
  const ok = await cli(['info', join(fx, 'pytorch', 'padclip_op11.onnx'), '--json']);
  assert.equal(ok.code, 0, ok.err);
  // Weights in Constant nodes count: 771 of PyTorch's parameters + the 4 Clip bounds (Constant nodes too).
  assert.equal(JSON.parse(ok.out).parameters, 775);
  // Exactly PyTorch's sum(p.numel() for p in model.parameters()) for a model without folded BN.
  const sq = await cli(['info', join(fx, 'pytorch', 'tinysqueeze_op11.onnx'), '--json']);
  assert.equal(JSON.parse(sq.out).parameters, 577);
  assert.deepEqual(JSON.parse(sq.out).symbolicDims, ['batch']);
  const sym = await cli(['info', join(fx, 'pytorch', 'tinyresnet_op13.onnx')]);
  assert.match(sym.out, /symbolic dims taken as 1: batch/);
  const b = new GraphBuilder('bad');
  const x = b.input('x', 'float32', [1, 3, 4, 4]);
  const h = b.op('Conv', [x, b.init('w', floatTensor([2, 3, 3, 3], new Array(54).fill(NaN)))], { kernel_shape: [2, 2] }, { name: 'c' });
  b.output(b.op('Frobnicate', [h], {}, { name: 'f' }), 'float32');
  const dir = mkdtempSync(join(tmpdir(), 'privml-info-'));
  saveModel(b.build(), join(dir, 'bad.onnx'));
  const bad = await cli(['info', join(dir, 'bad.onnx')]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /node 'c' \(Conv\): kernel_shape \[2,2\] contradicts the weight shape \[2,3,3,3\]/);
  assert.match(bad.err, /node 'c' \(Conv\): initializer 'w' holds 54 non-finite values/);
  assert.match(bad.err, /node 'f' \(Frobnicate\): unsupported op/);
  assert.doesNotMatch(bad.err, /at .*\.ts:\d+/, 'no stack trace');
});
