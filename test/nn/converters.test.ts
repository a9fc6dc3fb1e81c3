/**
 * A model from a converter other than PyTorch (test/fixtures/cntk: the ONNX Model Zoo's mnist-8,
 * exported by CNTK 2.5.1): the float runtime and the two-party MPC runtime (public weights, and
 * secret weights with party 0 holding zeros) reproduce onnxruntime's committed outputs.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { stripWeights } from '../../src/mpc/arch.js';
import { FloatModel } from '../../src/nn/runtime.js';
import { canonicalize } from '../../src/onnx/canonical.js';
import type { Tensor } from '../../src/onnx/ir.js';
import { loadNpy } from '../../src/onnx/npy.js';
import { loadModel } from '../../src/onnx/proto.js';
import { twoParty } from '../mpc/plan-helpers.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'cntk');
const model = loadModel(join(dir, 'mnist8.onnx'));
const cases = ['mnist8', 'mnist8.ring'].map((n) => ({ x: loadNpy(join(dir, `${n}.input.npy`)), want: loadNpy(join(dir, `${n}.output.npy`)) }));

function maxRel(got: ArrayLike<number>, want: Tensor): number {
  const w = want.data as Float32Array;
  let scale = 0;
  let d = 0;
  for (let i = 0; i < w.length; i++) {
    scale = Math.max(scale, Math.abs(w[i]!));
    d = Math.max(d, Math.abs(got[i]! - w[i]!));
  }
  return d / Math.max(scale, 1e-12);
}
const argmax = (v: ArrayLike<number>) => Array.prototype.indexOf.call(v, Math.max(...Array.from(v)));

test('the CNTK export is what the fixture says (producer, legacy patterns)', () => {
  assert.equal(model.producerName, 'CNTK');
  assert.ok(model.graph.nodes.some((n) => n.opType === 'Conv' && n.attrs.auto_pad?.kind === 'string' && n.attrs.auto_pad.value === 'SAME_UPPER'));
  assert.ok(model.graph.nodes.some((n) => n.opType === 'MatMul'));
  assert.deepEqual(
    cases.map((c) => argmax(c.want.data as Float32Array)),
    [1, 0],
  );
});

test('CNTK export: float runtime = onnxruntime on both inputs, twice (no weight freed)', async () => {
  const fm = await FloatModel.create(model, { source: 'mnist8' });
  try {
    for (const { x, want } of cases) {
      const first = fm.run({ Input3: x }).Plus214_Output_0!;
      const second = fm.run({ Input3: x }).Plus214_Output_0!;
      assert.deepEqual(first.dims, want.dims);
      assert.ok(maxRel(first.data as Float32Array, want) < 1e-5, `float vs onnxruntime ${maxRel(first.data as Float32Array, want)}`);
      assert.deepEqual(second.data, first.data);
    }
  } finally {
    fm.dispose();
  }
  assert.ok(!canonicalize(model, { source: 'mnist8' }).model.graph.nodes.some((n) => n.opType === 'Constant'));
});

test('CNTK export: two-party MPC = onnxruntime (public weights; secret weights with party 0 zeroed)', async () => {
  for (const { x, want } of cases) {
    for (const [m0, mode] of [
      [model, 'public'],
      [stripWeights(model), 'secret'],
    ] as const) {
      const got = await twoParty(m0, model, x.data as Float32Array, 1, mode);
      // Logits reach ±6,000 on this 0–255-scale input: 16 fractional bits leave ~1e-4 relative.
      assert.ok(maxRel(got, want) < 1e-3, `${mode}: max rel diff ${maxRel(got, want)}`);
      assert.equal(argmax(got), argmax(want.data as Float32Array), mode);
    }
  }
});
