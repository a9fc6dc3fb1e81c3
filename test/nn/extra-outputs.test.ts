/** Extra outputs computed by the float runtime: MaxPool Indices, training-mode BatchNormalization, ratio-0 Dropout. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FloatModel } from '../../src/nn/runtime.js';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, sizeOf, type Tensor } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';

const data = (dims: number[]): Tensor =>
  floatTensor(
    dims,
    Array.from({ length: sizeOf(dims) }, (_, i) => Math.round(Math.sin(i * 1.7) * 1000) / 100),
  );

for (const [label, dims, attrs] of [
  ['2-D, pads + ceil_mode + dilations', [2, 3, 7, 6], { kernel_shape: [3, 2], strides: [2, 2], pads: [1, 0, 1, 1], ceil_mode: 1, dilations: [1, 2] }],
  ['2-D, storage_order=1', [1, 2, 5, 4], { kernel_shape: [2, 2], strides: [1, 2], storage_order: 1 }],
  ['1-D', [2, 2, 9], { kernel_shape: [3], strides: [2], pads: [1, 1] }],
] as const) {
  test(`MaxPool Indices equals onnxruntime (${label})`, async () => {
    const b = new GraphBuilder('mp', 12);
    const x = b.input('x', 'float32', [...dims]);
    const [y, i] = b.opMulti('MaxPool', [x], 2, attrs as never);
    b.output(y!, 'float32');
    b.output(i!, 'int64');
    const m = b.build();
    const feed = { x: data([...dims]) };
    const fm = await FloatModel.create(m, { backend: 'wasm' });
    const got = fm.run(feed);
    const ref = await runOrt(m, feed);
    fm.dispose();
    assert.deepEqual(Array.from(got[y!]!.data as Float32Array), Array.from(ref[y!]!.data as Float32Array));
    assert.equal(got[i!]!.dtype, 'int64');
    assert.deepEqual(got[i!]!.dims, ref[i!]!.dims);
    assert.deepEqual(Array.from(got[i!]!.data as BigInt64Array), Array.from(ref[i!]!.data as BigInt64Array));
  });
}

test('training-mode BatchNormalization: batch statistics and running mean/var as onnxruntime', async () => {
  const b = new GraphBuilder('bn', 15);
  const x = b.input('x', 'float32', [3, 2, 4, 2]);
  const p = (n: string, v: number[]) => b.init(n, floatTensor([2], v));
  const outs = b.opMulti('BatchNormalization', [x, p('s', [0.5, -1.2]), p('b', [0.1, 0.3]), p('m', [0.2, -0.4]), p('v', [1.5, 0.7])], 3, {
    training_mode: 1,
    momentum: float(0.8),
  });
  for (const o of outs) b.output(o, 'float32');
  const m = b.build();
  const feed = { x: data([3, 2, 4, 2]) };
  const fm = await FloatModel.create(m, { backend: 'wasm' });
  const got = fm.run(feed);
  fm.dispose();
  const ref = await runOrt(m, feed);
  for (const o of outs) {
    const g = got[o]!.data as Float32Array;
    const r = ref[o]!.data as Float32Array;
    assert.equal(g.length, r.length);
    for (let k = 0; k < r.length; k++) assert.ok(Math.abs(g[k]! - r[k]!) <= 1e-5 + 1e-4 * Math.abs(r[k]!), `${o}[${k}]: ${g[k]} vs ${r[k]}`);
  }
});

test('Dropout with training_mode fed at run time: ratio 0 is the identity, a non-zero ratio is refused (never run as inference)', async () => {
  const b = new GraphBuilder('do', 13);
  const x = b.input('x', 'float32', [2, 3]);
  const r = b.input('r', 'float32', []);
  const t = b.input('t', 'bool', []);
  const [y, mask] = b.opMulti('Dropout', [x, r, t], 2);
  b.output(y!, 'float32');
  b.output(mask!, 'bool');
  const fm = await FloatModel.create(b.build(), { backend: 'wasm' });
  const xs = data([2, 3]);
  const scalar = (v: number): Tensor => floatTensor([], [v]);
  const on: Tensor = { dtype: 'bool', dims: [], data: new Uint8Array([1]) };
  const out = fm.run({ x: xs, r: scalar(0), t: on });
  assert.deepEqual(Array.from(out[y!]!.data as Float32Array), Array.from(xs.data as Float32Array));
  assert.deepEqual(Array.from(out[mask!]!.data as Uint8Array), [1, 1, 1, 1, 1, 1]);
  assert.throws(
    () => fm.run({ x: xs, r: scalar(0.5), t: on }),
    (e: Error) => e.name === 'ModelError' && /training-mode Dropout is random/.test(e.message),
  );
  fm.dispose();
});
