/** Float64 graphs run in double precision (nn/f64.ts), equal to onnxruntime; other float64 graphs stay refused. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FloatModel } from '../../src/nn/runtime.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, int64Tensor, type Tensor } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';

const f64 = (dims: number[], v: number[]): Tensor => ({ dtype: 'float64', dims, data: Float64Array.from(v) });

test('float64 element-wise, reductions, CumSum, Mod and Cast equal onnxruntime (1e-12 relative), values past float32 range kept', async () => {
  const b = new GraphBuilder('f64', 18);
  const x = b.input('x', 'float64', [2, 3]);
  const s = b.input('s', 'float32', [3]);
  const big = b.op('Mul', [x, b.init('k', f64([1], [1e300]))]); // 1e300·x: Infinity in float32
  const sum = b.op('Add', [big, b.op('Cast', [s], { to: 11 })]);
  const cs = b.op('CumSum', [sum, b.init('ax', int64Tensor([], [1]))], { exclusive: 1 });
  const lse = b.op('ReduceLogSumExp', [x, b.init('axes', int64Tensor([1], [0]))], { keepdims: 0 });
  const mod = b.op('Mod', [x, b.init('d', f64([1], [-0.75]))], { fmod: 1 });
  const mx = b.op('Max', [x, mod]);
  const back = b.op('Cast', [b.op('Div', [mx, b.init('three', f64([], [3]))])], { to: 1 });
  b.output(cs, 'float64');
  b.output(lse, 'float64');
  b.output(back, 'float32');
  const m = b.build();
  const feeds = { x: f64([2, 3], [1.5, -2.25, 3.1, -0.4, 7, 1e-3]), s: floatTensor([3], [0.1, -0.2, 0.3]) };
  const fm = await FloatModel.create(m, { backend: 'wasm' });
  const got = fm.run(feeds);
  fm.dispose();
  const ref = await runOrt(m, feeds);
  for (const o of [cs, lse, back]) {
    assert.equal(got[o]!.dtype, ref[o]!.dtype, o);
    assert.deepEqual(got[o]!.dims, ref[o]!.dims, o);
    const g = Array.from(got[o]!.data as Float64Array);
    const r = Array.from(ref[o]!.data as Float64Array);
    g.forEach((v, i) => assert.ok(Math.abs(v - r[i]!) <= 1e-12 * Math.max(1, Math.abs(r[i]!)), `${o}[${i}]: ${v} vs ${r[i]}`));
  }
  assert.ok(Math.abs((got[cs]!.data as Float64Array)[2]! - 1.5e300 + 2.25e300) < 1e286, 'a float64 value past 3.4e38 stays finite');
});

test('a float64 graph with an op that has no double kernel is still refused, naming the value', async () => {
  const b = new GraphBuilder('f64conv', 13);
  const x = b.input('x', 'float64', [1, 1, 3, 3]);
  b.output(b.op('Conv', [x, b.init('w', f64([1, 1, 1, 1], [2]))]), 'float64');
  await assert.rejects(FloatModel.create(b.build(), { backend: 'wasm' }), /'x': float64 is not supported/);
});
