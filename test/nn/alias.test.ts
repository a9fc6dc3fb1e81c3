import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FloatModel } from '../../src/nn/runtime.js';
import { tf } from '../../src/nn/tf.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, int64Tensor, sizeOf } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';

const w = (dims: number[]) =>
  floatTensor(
    dims,
    Array.from({ length: sizeOf(dims) }, (_, i) => Math.sin(i * 0.37) * 0.2),
  );

test('aliasing ops never free a weight or a feed: a torchvision-style graph runs twice with the same result', async () => {
  const b = new GraphBuilder('alias', 13);
  const x = b.input('x', 'float32', ['N', 3, 8, 8]);
  const wc = b.init('conv.w', w([4, 3, 3, 3]));
  // PyTorch dedups equal weights through Identity nodes; the graph input also flows through views.
  const w1 = b.op('Identity', [wc]);
  const w2 = b.op('Identity', [wc]);
  const xv = b.op('Identity', [x]);
  let h = b.op('Conv', [xv, w1], { pads: [1, 1, 1, 1] });
  h = b.op('Add', [b.op('Conv', [x, w2], { pads: [1, 1, 1, 1] }), h]);
  h = b.op('Flatten', [h]);
  const fc = b.init('fc', w([256, 5]));
  const fcv = b.op('Reshape', [fc, b.init('s', int64Tensor([2], [256, 5]))]);
  h = b.op('MatMul', [h, fcv]);
  b.output(h, 'float32', ['N', 5]);
  const m = b.build();
  const fm = await FloatModel.create(m, { backend: 'wasm' });
  const input = floatTensor(
    [2, 3, 8, 8],
    Array.from({ length: 384 }, (_, i) => Math.cos(i)),
  );
  const first = fm.run({ x: input });
  const second = fm.run({ x: input });
  const k = fm.outputNames[0]!;
  assert.deepEqual(Array.from(second[k]!.data as Float32Array), Array.from(first[k]!.data as Float32Array));
  const ref = (await runOrt(m, { x: input }))[k]!.data as Float32Array;
  const got = first[k]!.data as Float32Array;
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(got[i]! - ref[i]!) <= 1e-5 + 1e-4 * Math.abs(ref[i]!), `element ${i}`);
  fm.dispose();
});

test('gradients through an inference-mode forward reach conv weights (no cached or fused kernel on the tape)', async () => {
  const b = new GraphBuilder('g', 13);
  const x = b.input('x', 'float32', [1, 2, 5, 5]);
  b.output(b.op('Conv', [x, b.init('w', w([3, 2, 3, 3])), b.init('bias', w([3]))], { pads: [1, 1, 1, 1] }), 'float32');
  const fm = await FloatModel.create(b.build(), { backend: 'wasm' });
  const xin = tf.tensor4d(
    Array.from({ length: 50 }, (_, i) => Math.sin(i)),
    [1, 2, 5, 5],
  );
  fm.run({
    x: floatTensor(
      [1, 2, 5, 5],
      Array.from({ length: 50 }, (_, i) => Math.sin(i)),
    ),
  }); // fills the filter cache
  const { grads } = tf.variableGrads(() => tf.sum(fm.forward({ x: xin })[fm.outputNames[0]!]!) as tf.Scalar);
  const gw = Object.entries(grads).find(([k]) => k.startsWith('w_'))![1];
  assert.ok(Math.abs(tf.sum(tf.abs(gw)).dataSync()[0]!) > 0, 'weight gradient is zero');
  fm.dispose();
});
