/**
 * The float GEMM kernels (assembly/sgemm.ts via src/nn/kernels/sgemm.ts) against a naive
 * convolution on odd shapes (rows, channels and depth not multiples of the 4x8 tile or the 256 K
 * block), and Conv nodes the float runtime now runs on them against onnxruntime.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ConvAttrs, convInto, packFilter, sgemm, sgemmEnabled } from '../../src/nn/kernels/sgemm.js';
import { FloatModel } from '../../src/nn/runtime.js';
import { tf } from '../../src/nn/tf.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';

// Force the kernels on (by default only where relaxed SIMD validates); read once, on first use.

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
}
const rand = (n: number, r: () => number): Float32Array => Float32Array.from({ length: n }, r);

/** Naive NHWC convolution, ONNX weight [CO, CI, KH, KW], in float64. */
function naive(
  x: Float32Array,
  [n, h, w, ci]: [number, number, number, number],
  wt: Float32Array,
  co: number,
  kh: number,
  kw: number,
  bias: Float32Array | undefined,
  a: ConvAttrs,
) {
  const oh = Math.floor((h + a.pt + a.pb - a.dh * (kh - 1) - 1) / a.sh) + 1;
  const ow = Math.floor((w + a.pl + a.pr - a.dw * (kw - 1) - 1) / a.sw) + 1;
  const out = new Float32Array(n * oh * ow * co);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let o = 0; o < co; o++) {
          let s = bias ? bias[o]! : 0;
          for (let y = 0; y < kh; y++)
            for (let xk = 0; xk < kw; xk++) {
              const iy = oy * a.sh - a.pt + y * a.dh;
              const ix = ox * a.sw - a.pl + xk * a.dw;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              for (let c = 0; c < ci; c++) s += x[((b * h + iy) * w + ix) * ci + c]! * wt[((o * ci + c) * kh + y) * kw + xk]!;
            }
          out[((b * oh + oy) * ow + ox) * co + o] = Math.min(Math.max(s, a.lo), a.hi);
        }
  return { out, oh, ow };
}

const geo = (s: number, p: number, d = 1): Pick<ConvAttrs, 'sh' | 'sw' | 'dh' | 'dw' | 'pt' | 'pb' | 'pl' | 'pr'> => ({
  sh: s,
  sw: s,
  dh: d,
  dw: d,
  pt: p,
  pb: p,
  pl: p,
  pr: p,
});
const none = { lo: -Infinity, hi: Infinity };
const relu = { lo: 0, hi: Infinity };

const cases: { name: string; x: number[]; co: number; k: [number, number]; a: ConvAttrs; bias: boolean }[] = [
  { name: '1x1 direct, 15 rows, 13 channels out', x: [1, 3, 5, 7], co: 13, k: [1, 1], a: { ...geo(1, 0), ...none }, bias: true },
  { name: '1x1 stride 2 (im2col), relu', x: [1, 7, 6, 9], co: 8, k: [1, 1], a: { ...geo(2, 0), ...relu }, bias: true },
  { name: '3x3 pad 1, K=27', x: [1, 9, 11, 3], co: 5, k: [3, 3], a: { ...geo(1, 1), ...relu }, bias: false },
  {
    name: '3x3 stride 2, asymmetric pads, K=360 across the K block',
    x: [2, 8, 9, 40],
    co: 19,
    k: [3, 3],
    a: { ...geo(2, 0), pt: 0, pb: 1, pl: 1, pr: 0, ...none },
    bias: true,
  },
  { name: '3x3 dilation 2 stride 2 pad 2', x: [1, 10, 9, 6], co: 9, k: [3, 3], a: { ...geo(2, 2, 2), ...none }, bias: true },
  { name: '7x7 stride 2 pad 3, 3 channels in (conv1 of ResNet)', x: [1, 17, 15, 3], co: 16, k: [7, 7], a: { ...geo(2, 3), ...relu }, bias: true },
  { name: '5x3 kernel, depth 5x3x70=1050 (five K blocks), clip [0, 6]', x: [1, 6, 7, 70], co: 11, k: [5, 3], a: { ...geo(1, 1), lo: 0, hi: 6 }, bias: true },
  { name: 'kernel wider than the padded input rows (all-zero window rows)', x: [1, 2, 2, 4], co: 3, k: [3, 3], a: { ...geo(1, 2), ...none }, bias: true },
];

for (const c of cases) {
  test(`sgemm conv equals a naive convolution: ${c.name}`, () => {
    assert.ok(sgemm(), 'build/sgemm.wasm must be built (npm run build:wasm)');
    const r = lcg(c.x.reduce((p, v) => p * 31 + v, c.co));
    const [kh, kw] = c.k;
    const ci = c.x[3]!;
    const x = rand(
      c.x.reduce((p, v) => p * v, 1),
      r,
    );
    const wt = rand(c.co * ci * kh * kw, r);
    const bias = c.bias ? rand(c.co, r) : undefined;
    const ref = naive(x, c.x as [number, number, number, number], wt, c.co, kh, kw, bias, c.a);
    const f = packFilter(wt, c.co, ci, kh, kw, bias);
    try {
      const out = new Float32Array(ref.out.length).fill(Number.NaN);
      convInto(x, c.x, f, c.a, out);
      let worst = 0;
      for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - ref.out[i]!));
      assert.ok(worst < 1e-5, `max abs diff ${worst}`);
      // A second call reuses the scratch and must not see the first call's data.
      convInto(x, c.x, f, c.a, out);
      for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i]! - ref.out[i]!) < 1e-5);
    } finally {
      f.free();
    }
  });
}

test('sgemm conv keeps NaN through the fused ReLU (as ONNX Relu does)', () => {
  const x = Float32Array.from([Number.NaN, 1, -1, 2]);
  const f = packFilter(Float32Array.from([1]), 1, 1, 1, 1, Float32Array.from([0]));
  try {
    const out = new Float32Array(4);
    convInto(x, [1, 2, 2, 1], f, { ...geo(1, 0), ...relu }, out);
    assert.ok(Number.isNaN(out[0]));
    assert.deepEqual([...out.subarray(1)], [1, 0, 2]);
  } finally {
    f.free();
  }
});

test('Conv nodes on the sgemm path (pads, strides, dilations, 1-D, bias, fused Relu/Clip, shared output) equal onnxruntime', async () => {
  const b = new GraphBuilder('sgemm-convs', 13);
  const r = lcg(7);
  const x = b.input('x', 'float32', [2, 6, 13, 11]);
  const w = (dims: number[]) =>
    floatTensor(
      dims,
      Array.from(
        rand(
          dims.reduce((p, v) => p * v, 1),
          r,
        ),
      ),
    );
  let h = b.op('Conv', [x, b.init('w1', w([10, 6, 3, 3])), b.init('b1', w([10]))], { pads: [1, 0, 2, 1], strides: [2, 1] });
  h = b.op('Relu', [h]);
  h = b.op('Conv', [h, b.init('w2', w([9, 10, 3, 2]))], { dilations: [2, 1], strides: [1, 2], pads: [2, 1, 2, 1] });
  h = b.op('Clip', [h, b.init('lo', floatTensor([], [0])), b.init('hi', floatTensor([], [0.5]))]);
  h = b.op('Conv', [h, b.init('w3', w([17, 9, 1, 1])), b.init('b3', w([17]))], {});
  // Two consumers: the Relu must not be fused into this Conv (Add needs the unclamped value).
  h = b.op('Add', [b.op('Relu', [h]), h]);
  b.output(h, 'float32');
  const y = b.input('y', 'float32', [1, 5, 20]);
  const g = b.op('Conv', [y, b.init('w4', w([7, 5, 4])), b.init('b4', w([7]))], { pads: [1, 2], strides: [3] });
  b.output(g, 'float32');
  const m = b.build();
  const feeds = { x: floatTensor([2, 6, 13, 11], Array.from(rand(2 * 6 * 13 * 11, r))), y: floatTensor([1, 5, 20], Array.from(rand(100, r))) };
  const ref = await runOrt(m, feeds);
  const fm = await FloatModel.create(m, { source: 'sgemm-convs', options: { convKernel: 'sgemm' } });
  try {
    assert.equal(tf.getBackend(), 'wasm');
    assert.ok(sgemmEnabled('sgemm'), "convKernel 'sgemm' must route Conv through the sgemm kernels");
    assert.ok(!sgemmEnabled('tfjs'));
    for (let rep = 0; rep < 2; rep++) {
      const out = fm.run(feeds);
      for (const o of m.graph.outputs) {
        const a = out[o.name]!.data as Float32Array;
        const e = ref[o.name]!.data as Float32Array;
        assert.deepEqual(out[o.name]!.dims, ref[o.name]!.dims);
        let worst = 0;
        let scale = 0;
        for (let i = 0; i < e.length; i++) {
          worst = Math.max(worst, Math.abs(a[i]! - e[i]!));
          scale = Math.max(scale, Math.abs(e[i]!));
        }
        assert.ok(worst / scale < 1e-5, `${o.name}: relative diff ${worst / scale}`);
      }
    }
  } finally {
    fm.dispose();
  }
});
