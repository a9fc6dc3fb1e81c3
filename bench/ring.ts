/**
 * Throughput of the Z_2^64 wasm ring kernels (src/mpc/ring.ts), copies in/out of wasm included.
 * Matrix products use the fmnist-cnn conv2 shape (Conv 16->32 3x3 pad 1 on 14x14): im2col rows
 * N*196, K = 144, 32 output channels. Elementwise ops run on 64*16*28*28 elements.
 *
 * Usage: node --import tsx bench/ring.ts [--reps 5]
 * Prints one JSON object: {matmul: [...], elementwise: [...]}, GMAC/s or Melem/s, best of reps.
 */

import type { ConvGeom } from '../src/mpc/ring.js';
import * as R from '../src/mpc/ring.js';

const repsArg = process.argv.indexOf('--reps');
const REPS = repsArg >= 0 ? Number(process.argv[repsArg + 1]) : 5;

/** Deterministic filler (benchmark data only). */
function fill(n: number, seed: number): BigInt64Array {
  const a = new BigInt64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = BigInt(s) * 0x9e3779b97f4an - BigInt(i);
  }
  return a;
}

/** Best wall time in ms of `REPS` runs of `f` after one warm-up. */
function best(f: () => unknown): number {
  f();
  let t = Infinity;
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    f();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
}

const round = (v: number, d = 3): number => Number(v.toFixed(d));
const matmul: object[] = [];
for (const batch of [1, 64]) {
  const m = batch * 196,
    k = 144,
    n = 32;
  const a = fill(m * k, 1),
    b = fill(k * n, 2),
    bt = fill(n * k, 3);
  const macs = m * k * n;
  const ms = best(() => R.ringMatmul(a, b, m, k, n));
  const msT = best(() => R.ringMatmulTransB(a, bt, m, k, n));
  const g: ConvGeom = { n: batch, c: 16, h: 14, w: 14, co: 32, kh: 3, kw: 3, strideH: 1, strideW: 1, padT: 1, padL: 1, padB: 1, padR: 1, group: 1 };
  const x = fill(batch * 16 * 14 * 14, 4),
    w = fill(32 * 144, 5);
  const msConv = best(() => R.ringConv2d(x, w, g));
  matmul.push({
    shape: `${m}x${k} * ${k}x${n}`,
    batch,
    matmul: { ms: round(ms), gmacPerS: round(macs / ms / 1e6) },
    matmulTransB: { ms: round(msT), gmacPerS: round(macs / msT / 1e6) },
    conv2d: { ms: round(msConv), gmacPerS: round(macs / msConv / 1e6) },
  });
}

const N = 64 * 16 * 28 * 28;
const ea = fill(N, 6),
  eb = fill(N, 7),
  out = new BigInt64Array(N);
const f64 = Float64Array.from({ length: N }, (_, i) => Math.sin(i));
const ops: [string, () => unknown][] = [
  ['ringAdd', () => R.ringAdd(ea, eb)],
  ['ringAdd(out)', () => R.ringAdd(ea, eb, out)],
  ['ringMul', () => R.ringMul(ea, eb)],
  ['ringMulScalar', () => R.ringMulScalar(ea, 12345n)],
  ['ringShr', () => R.ringShr(ea, 16)],
  ['ringLowBits', () => R.ringLowBits(ea, 16, 32)],
  ['encodeFixed(f64)', () => R.encodeFixed(f64, 16)],
  ['decodeFixed', () => R.decodeFixed(ea, 16)],
  ['toBitPlanes(64)', () => R.toBitPlanes(ea, 0, 64)],
  ['toBitPlanes(lsb 16, 32)', () => R.toBitPlanes(ea, 16, 32)],
  ['fromBitPlanes(64)', () => R.fromBitPlanes(R.ringToBytes(ea), N, 64)],
  ['ringSumPool2d 2x2', () => R.ringSumPool2d(ea, { n: 64, c: 16, h: 28, w: 28, kh: 2, kw: 2, strideH: 2, strideW: 2, padT: 0, padL: 0, padB: 0, padR: 0 })],
];
const elementwise = ops.map(([name, f]) => {
  const ms = best(f);
  return { op: name, n: N, ms: round(ms), melemPerS: round(N / ms / 1e3, 1) };
});
console.log(JSON.stringify({ matmul, elementwise }, null, 1));
