import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerFastKernels } from '../../src/nn/kernels/index.js';
import { maxPoolGrad } from '../../src/nn/kernels/loops.js';
import { sumArrays, WorkerPool } from '../../src/nn/kernels/parallel.js';
import type { CnnGradInput, CnnGradOutput } from '../../src/nn/kernels/reference_cnn.js';
import { handle, REFERENCE_CNN_SHAPES, referenceCnnInit } from '../../src/nn/kernels/reference_cnn.js';

/** Deterministic pseudo-random floats in [-1, 1) (or small integers, to force ties). */
function rand(n: number, seed: number, ints = 0): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = (s >>> 0) / 2 ** 32;
    out[i] = ints > 0 ? Math.floor(u * ints) : 2 * u - 1;
  }
  return out;
}

type Shape4 = [number, number, number, number];

/** Gradients of sum(op(x, w) * r) w.r.t. x and w on `backend`, plus the kernels that ran. */
async function grads(
  backend: 'cpu' | 'wasm',
  op: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor,
  xs: Shape4,
  ws: Shape4,
  seed: number,
): Promise<{ dx: Float32Array; dw: Float32Array; kernels: string[] }> {
  await tf.setBackend(backend);
  const x = tf.tensor4d(
    rand(
      xs.reduce((a, b) => a * b),
      seed,
    ),
    xs,
  );
  const w = tf.tensor4d(
    rand(
      ws.reduce((a, b) => a * b),
      seed + 1,
    ),
    ws,
  );
  const outShape = tf.tidy(() => op(x, w).shape);
  const r = tf.tensor(
    rand(
      outShape.reduce((a, b) => a * b),
      seed + 2,
    ),
    outShape,
  );
  let res: tf.Tensor[] = [];
  const prof = await tf.profile(() => {
    res = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(op(a as tf.Tensor4D, b as tf.Tensor4D), r)))([x, w]);
    return res;
  });
  const out = { dx: res[0]!.dataSync() as Float32Array, dw: res[1]!.dataSync() as Float32Array, kernels: prof.kernels.map((k) => k.name) };
  tf.dispose([x, w, r, ...res]);
  return out;
}

/** |a - b| <= tol * max|b| elementwise (relative to the reference's scale). */
function assertClose(a: Float32Array, b: Float32Array, what: string, tol = 1e-4): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  assert.ok(scale > 0, `${what}: reference is all zero`);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    assert.ok(d <= tol * scale, `${what}: element ${i}: ${a[i]} vs ${b[i]} (scale ${scale})`);
  }
}

before(async () => {
  tf.env().set('IS_NODE', true);
  registerFastKernels();
  registerFastKernels(); // idempotent
  await tf.setBackend('wasm');
});

type ConvPad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];
const asym: ConvPad = [
  [0, 0],
  [1, 0],
  [2, 1],
  [0, 0],
];
const convCases: Array<{ name: string; xs: Shape4; k: [number, number]; s: number | [number, number]; pad: ConvPad }> = [
  { name: '3x3 same s1', xs: [3, 8, 8, 2], k: [3, 3], s: 1, pad: 'same' },
  { name: '3x3 valid s1', xs: [3, 8, 8, 2], k: [3, 3], s: 1, pad: 'valid' },
  { name: '3x3 explicit asymmetric s1', xs: [3, 8, 8, 2], k: [3, 3], s: 1, pad: asym },
  { name: '3x3 same s2', xs: [3, 8, 8, 2], k: [3, 3], s: 2, pad: 'same' },
  { name: '3x3 valid s2', xs: [3, 8, 8, 2], k: [3, 3], s: 2, pad: 'valid' },
  { name: '3x3 explicit asymmetric s2', xs: [3, 8, 8, 2], k: [3, 3], s: 2, pad: asym },
  { name: '3x3 same s2 odd 9x7', xs: [3, 9, 7, 2], k: [3, 3], s: 2, pad: 'same' },
  { name: '3x2 valid s[2,1] 9x7', xs: [3, 9, 7, 2], k: [3, 2], s: [2, 1], pad: 'valid' },
  { name: '1x1 s1', xs: [3, 8, 8, 2], k: [1, 1], s: 1, pad: 'valid' },
  { name: '1x1 s2', xs: [3, 8, 8, 2], k: [1, 1], s: 2, pad: 'valid' },
  { name: '7x7 s2 pad 3', xs: [3, 8, 8, 2], k: [7, 7], s: 2, pad: 3 },
];

for (const [i, c] of convCases.entries()) {
  test(`conv2d grads match cpu: ${c.name}`, async () => {
    const ws: Shape4 = [c.k[0], c.k[1], c.xs[3], 5];
    const op = (x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor => tf.conv2d(x, w, c.s, c.pad);
    const ref = await grads('cpu', op, c.xs, ws, 10 * i + 1);
    const got = await grads('wasm', op, c.xs, ws, 10 * i + 1);
    assert.ok(ref.kernels.includes('Conv2DBackpropFilter'), 'cpu uses tfjs gradient');
    assert.ok(got.kernels.includes('PrivmlIm2Col'), `fast dW path used: ${got.kernels}`);
    assert.ok(!got.kernels.includes('Conv2DBackpropInput'), 'fast dx path used');
    const strided = c.s !== 1;
    assert.equal(got.kernels.includes('PrivmlDilatePad'), strided, 'dy dilated iff strided');
    assertClose(got.dx, ref.dx, 'dx');
    assertClose(got.dw, ref.dw, 'dW');
  });
}

const dwCases: Array<{ name: string; mult: number; s: number; pad: 'same' | 'valid' | number }> = [
  { name: '3x3 same s1 mult 1', mult: 1, s: 1, pad: 'same' },
  { name: '3x3 same s2 mult 1', mult: 1, s: 2, pad: 'same' },
  { name: '3x3 valid s1 mult 2', mult: 2, s: 1, pad: 'valid' },
  { name: '3x3 pad 1 s2 mult 2', mult: 2, s: 2, pad: 1 },
];

for (const [i, c] of dwCases.entries()) {
  test(`depthwise grads match cpu: ${c.name}`, async () => {
    const xs: Shape4 = [2, 8, 8, 3];
    const ws: Shape4 = [3, 3, 3, c.mult];
    const op = (x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor => tf.depthwiseConv2d(x, w, c.s, c.pad);
    const ref = await grads('cpu', op, xs, ws, 100 + i);
    const got = await grads('wasm', op, xs, ws, 100 + i);
    assert.ok(got.kernels.includes('PrivmlDepthwiseFilterGrad'), `fast path used: ${got.kernels}`);
    assertClose(got.dx, ref.dx, 'dx');
    assertClose(got.dw, ref.dw, 'dW');
  });
}

/** Gradient of sum(pool(x) * r) w.r.t. x on `backend`, with kernel names. */
async function poolGrad(
  backend: 'cpu' | 'wasm',
  pool: (x: tf.Tensor4D) => tf.Tensor,
  x: Float32Array,
  xs: Shape4,
  seed: number,
): Promise<{ dx: Float32Array; kernels: string[] }> {
  await tf.setBackend(backend);
  const xt = tf.tensor4d(x, xs);
  const shape = tf.tidy(() => pool(xt).shape);
  const r = tf.tensor(
    rand(
      shape.reduce((a, b) => a * b),
      seed,
    ),
    shape,
  );
  let g: tf.Tensor | undefined;
  const prof = await tf.profile(() => (g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(pool(a as tf.Tensor4D), r)))(xt)));
  const dx = g!.dataSync() as Float32Array;
  tf.dispose([xt, r, g!]);
  return { dx, kernels: prof.kernels.map((k) => k.name) };
}

const poolCases: Array<{ name: string; k: number; s: number; pad: 'same' | 'valid' | number; xs: Shape4 }> = [
  { name: '2x2/2 valid', k: 2, s: 2, pad: 'valid', xs: [2, 8, 8, 3] },
  { name: '2x2/2 valid odd 7x9', k: 2, s: 2, pad: 'valid', xs: [2, 7, 9, 3] },
  { name: '2x2/2 same odd 7x9', k: 2, s: 2, pad: 'same', xs: [2, 7, 9, 3] },
  { name: '3x3/2 pad 1 (overlapping)', k: 3, s: 2, pad: 1, xs: [2, 8, 8, 3] },
  { name: '3x3/1 same (overlapping)', k: 3, s: 1, pad: 'same', xs: [2, 6, 6, 3] },
];

for (const [i, c] of poolCases.entries()) {
  test(`maxPool grad matches cpu, ties included: ${c.name}`, async () => {
    const n = c.xs.reduce((a, b) => a * b);
    for (const ints of [0, 3]) {
      // ints = 3: values in {0,1,2} so most windows have tied maxima (first one wins, as on cpu).
      const x = rand(n, 200 + i, ints);
      const op = (t: tf.Tensor4D): tf.Tensor => tf.maxPool(t, c.k, c.s, c.pad);
      const ref = await poolGrad('cpu', op, x, c.xs, 300 + i);
      const got = await poolGrad('wasm', op, x, c.xs, 300 + i);
      assert.ok(got.kernels.includes('MaxPoolGrad'));
      // Same elements receive gradient; values equal up to float32 summation order (overlaps).
      assert.deepEqual(
        Array.from(got.dx, (v) => v !== 0),
        Array.from(ref.dx, (v) => v !== 0),
        `support, ints=${ints}`,
      );
      assertClose(got.dx, ref.dx, `dx, ints=${ints}`, 1e-6);
    }
  });

  test(`avgPool grad is the gradient of tfjs's forward avgPool: ${c.name}`, async () => {
    const x = rand(
      c.xs.reduce((a, b) => a * b),
      400 + i,
    );
    const op = (t: tf.Tensor4D): tf.Tensor => tf.avgPool(t, c.k, c.s, c.pad);
    const got = await poolGrad('wasm', op, x, c.xs, 500 + i);
    // Reference on cpu: the same average written as sum-pool / in-bounds count (depthwise convs
    // with a ones filter), whose gradient tfjs gets right even where windows are clipped.
    const ones = tf.ones([c.k, c.k, c.xs[3], 1]) as tf.Tensor4D;
    const viaConv = (t: tf.Tensor4D): tf.Tensor => tf.div(tf.depthwiseConv2d(t, ones, c.s, c.pad), tf.depthwiseConv2d(tf.onesLike(t), ones, c.s, c.pad));
    await tf.setBackend('cpu');
    const same = tf.tidy(() => tf.max(tf.abs(tf.sub(op(tf.tensor4d(x, c.xs)), viaConv(tf.tensor4d(x, c.xs))))).dataSync()[0]!);
    assert.ok(same < 1e-6, 'reference formula equals the forward avgPool');
    const ref = await poolGrad('cpu', viaConv, x, c.xs, 500 + i);
    assertClose(got.dx, ref.dx, 'dx', 1e-5);
    // Where no window is clipped by padding, tfjs's own AvgPoolGrad agrees too.
    const tfjsRef = await poolGrad('cpu', op, x, c.xs, 500 + i);
    const info = tf.backend_util.computePool2DInfo(c.xs, c.k, c.s, 1, c.pad);
    const clipped = info.padInfo.top + info.padInfo.bottom + info.padInfo.left + info.padInfo.right > 0;
    if (!clipped) assertClose(got.dx, tfjsRef.dx, 'dx vs cpu AvgPoolGrad', 1e-5);
    ones.dispose();
  });
}

test('fmnist-cnn step on wasm trains (loss decreases) with fast kernels', async () => {
  await tf.setBackend('wasm');
  const b = 16;
  const w1 = tf.variable(tf.tensor4d(rand(9 * 16, 7), [3, 3, 1, 16]).mul(0.3));
  const w2 = tf.variable(tf.tensor4d(rand(9 * 16 * 32, 8), [3, 3, 16, 32]).mul(0.1));
  const w3 = tf.variable(tf.tensor2d(rand(1568 * 10, 9), [1568, 10]).mul(0.05));
  const x = tf.tensor4d(rand(b * 784, 10), [b, 28, 28, 1]);
  const y = tf.oneHot(tf.tensor1d(Array.from(rand(b, 11, 10)), 'int32'), 10).toFloat();
  const loss = (): tf.Scalar => {
    let h = tf.maxPool(tf.relu(tf.conv2d(x, w1 as tf.Variable<tf.Rank.R4>, 1, 'same')), 2, 2, 'valid');
    h = tf.avgPool(tf.relu(tf.conv2d(h, w2 as tf.Variable<tf.Rank.R4>, 1, 'same')), 2, 2, 'valid');
    return tf.losses.softmaxCrossEntropy(y, tf.matMul(tf.reshape(h, [b, 1568]), w3)) as tf.Scalar;
  };
  const opt = tf.train.sgd(0.1);
  const first = tf.tidy(() => loss().dataSync()[0]!);
  for (let i = 0; i < 20; i++) opt.minimize(loss);
  const last = tf.tidy(() => loss().dataSync()[0]!);
  assert.ok(last < first * 0.7, `loss ${first} -> ${last}`);
  tf.dispose([w1, w2, w3, x, y]);
  opt.dispose();
});

test('maxPoolGrad 2x2 fast path is exact for -Infinity windows, ties and a wrong forward output', () => {
  const g = { n: 1, h: 4, w: 6, c: 2, kh: 2, kw: 2, sh: 2, sw: 2, pt: 0, pl: 0, oh: 2, ow: 3 };
  const x = rand(48, 77, 2); // values in {0, 1}: ties everywhere
  for (const i of [0, 2, 12, 14]) x[i] = Number.NEGATIVE_INFINITY; // window (0,0), channel 0: all -Infinity
  const dy = rand(12, 78);
  // Reference: first strict maximum in row-major window order, nothing for an all -Infinity window.
  const want = new Float32Array(48);
  for (let y = 0; y < 2; y++) {
    for (let xo = 0; xo < 3; xo++) {
      for (let ci = 0; ci < 2; ci++) {
        let best = Number.NEGATIVE_INFINITY;
        let at = -1;
        for (const [dy0, dx0] of [
          [0, 0],
          [0, 1],
          [1, 0],
          [1, 1],
        ] as const) {
          const idx = ((2 * y + dy0) * 6 + 2 * xo + dx0) * 2 + ci;
          if (x[idx]! > best) [best, at] = [x[idx]!, idx];
        }
        if (at >= 0) want[at] = dy[(y * 3 + xo) * 2 + ci]!;
      }
    }
  }
  assert.equal(want[0], 0);
  const yTrue = new Float32Array(12);
  for (let y = 0; y < 2; y++) {
    for (let xo = 0; xo < 3; xo++) {
      for (let ci = 0; ci < 2; ci++) {
        const a = (2 * y * 6 + 2 * xo) * 2 + ci;
        yTrue[(y * 3 + xo) * 2 + ci] = Math.max(x[a]!, x[a + 2]!, x[a + 12]!, x[a + 14]!);
      }
    }
  }
  for (const yv of [yTrue, new Float32Array(12).fill(7)]) {
    const got = new Float32Array(48).fill(123);
    maxPoolGrad(x, yv, dy, g, got);
    assert.deepEqual(
      Array.from(got, (v) => v + 0),
      Array.from(want),
    );
  }
});

test('data-parallel gradients from a 2-worker pool equal the full-batch gradient', async () => {
  await tf.setBackend('wasm');
  const b = 8;
  const weights = referenceCnnInit(3);
  const x = rand(b * 784, 21);
  const y = new Float32Array(b * 10);
  for (let i = 0; i < b; i++) y[i * 10 + (i % 10)] = 1;
  const full = handle({ weights, x, y });
  const pool = await WorkerPool.create<CnnGradInput, CnnGradOutput>(new URL('../../src/nn/kernels/reference_cnn.ts', import.meta.url), {
    size: 2,
    init: { pool: 'max' },
  });
  try {
    const half = b / 2;
    const outs = await pool.all(
      [0, 1].map((i) => ({
        weights,
        x: x.slice(i * half * 784, (i + 1) * half * 784),
        y: y.slice(i * half * 10, (i + 1) * half * 10),
      })),
    );
    const sum = sumArrays(outs.map((o) => o.grads));
    assert.equal(sum.length, REFERENCE_CNN_SHAPES.length);
    sum.forEach((g, k) =>
      assertClose(
        g.map((v) => v / 2),
        full.grads[k]!,
        `grad ${k}`,
      ),
    );
    assert.ok(Math.abs((outs[0]!.loss + outs[1]!.loss) / 2 - full.loss) < 1e-5);
    await assert.rejects(pool.run(0, { weights: [], x, y }), /worker 0/);
  } finally {
    await pool.close();
  }
});
