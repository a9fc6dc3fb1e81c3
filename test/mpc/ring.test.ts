import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConvGeom, PoolGeom, Ring } from '../../src/mpc/ring.js';
import * as R from '../../src/mpc/ring.js';

const M64 = (1n << 64n) - 1n;
const wrap = (v: bigint): bigint => BigInt.asIntN(64, v);

/** Seeded splitmix64 (test inputs only). */
function rng(seed: number): () => bigint {
  let s = BigInt(seed) & M64;
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & M64;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  };
}

/** n random ring elements mixing full-range values, small values and values near ±2^63. */
function randRing(next: () => bigint, n: number): Ring {
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const r = next();
    const kind = Number(r & 3n);
    if (kind === 0) out[i] = wrap(r);
    else if (kind === 1) out[i] = wrap(((r >> 8n) % 2001n) - 1000n);
    else if (kind === 2)
      out[i] = wrap((1n << 63n) - 1n - ((r >> 8n) % 50n)); // near +2^63
    else out[i] = wrap(-(1n << 63n) + ((r >> 8n) % 50n)); // near −2^63
  }
  return out;
}

function randInt(next: () => bigint, lo: number, hi: number): number {
  return lo + Number(next() % BigInt(hi - lo + 1));
}

const SIZES = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 1001];

test('elementwise add/sub/mul/neg/scalar ops match BigInt', () => {
  const next = rng(1);
  for (const n of SIZES) {
    const a = randRing(next, n),
      b = randRing(next, n);
    const a0 = a.slice(),
      b0 = b.slice();
    const s = next(); // unsigned 64-bit scalar, exercises reduction mod 2^64
    const ref = (f: (x: bigint, y: bigint) => bigint): Ring => BigInt64Array.from(a, (x, i) => wrap(f(x, b[i]!)));
    assert.deepEqual(
      R.ringAdd(a, b),
      ref((x, y) => x + y),
    );
    assert.deepEqual(
      R.ringSub(a, b),
      ref((x, y) => x - y),
    );
    assert.deepEqual(
      R.ringMul(a, b),
      ref((x, y) => x * y),
    );
    assert.deepEqual(
      R.ringNeg(a),
      BigInt64Array.from(a, (x) => wrap(-x)),
    );
    assert.deepEqual(
      R.ringMulScalar(a, s),
      BigInt64Array.from(a, (x) => wrap(x * s)),
    );
    assert.deepEqual(
      R.ringAddScalar(a, -s),
      BigInt64Array.from(a, (x) => wrap(x - s)),
    );
    assert.deepEqual(a, a0, 'input a unchanged');
    assert.deepEqual(b, b0, 'input b unchanged');
    assert.equal(R.ringSum(a), wrap(a.reduce((p, x) => p + x, 0n)));
  }
});

test('out parameter is filled (and may alias an input)', () => {
  const next = rng(2);
  const a = randRing(next, 33),
    b = randRing(next, 33);
  const want = BigInt64Array.from(a, (x, i) => wrap(x + b[i]!));
  const out = new BigInt64Array(33);
  assert.equal(R.ringAdd(a, b, out), out);
  assert.deepEqual(out, want);
  const a2 = a.slice();
  R.ringSub(a2, b, a2);
  assert.deepEqual(
    a2,
    BigInt64Array.from(a, (x, i) => wrap(x - b[i]!)),
  );
  assert.throws(() => R.ringAdd(a, b.subarray(1)), /ringAdd: b has 32 elements, expected 33/);
});

test('broadcast mul/add over [outer, C, inner]', () => {
  const next = rng(3);
  for (const [outer, c, inner] of [
    [1, 1, 1],
    [2, 3, 5],
    [3, 4, 1],
    [1, 5, 7],
    [4, 2, 9],
  ] as const) {
    const a = randRing(next, outer * c * inner),
      b = randRing(next, c);
    const mul = new BigInt64Array(a.length),
      add = new BigInt64Array(a.length);
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < c; j++)
        for (let i = 0; i < inner; i++) {
          const idx = (o * c + j) * inner + i;
          mul[idx] = wrap(a[idx]! * b[j]!);
          add[idx] = wrap(a[idx]! + b[j]!);
        }
    assert.deepEqual(R.ringMulBroadcast(a, b, outer, inner), mul);
    assert.deepEqual(R.ringAddBroadcast(a, b, outer, inner), add);
  }
});

test('shifts and low bits, including negative values', () => {
  const next = rng(4);
  const a = randRing(next, 101);
  a[0] = -1n;
  a[1] = -(1n << 63n);
  a[2] = (1n << 63n) - 1n;
  a[3] = -5n;
  for (const bits of [0, 1, 2, 13, 16, 31, 32, 33, 62, 63, 64, 70]) {
    assert.deepEqual(
      R.ringShr(a, bits),
      BigInt64Array.from(a, (x) => x >> BigInt(Math.min(bits, 63))),
      `shr ${bits}`,
    );
    assert.deepEqual(
      R.ringShrLogical(a, bits),
      BigInt64Array.from(a, (x) => wrap((x & M64) >> BigInt(bits))),
      `shrl ${bits}`,
    );
  }
  assert.deepEqual(R.ringShr(BigInt64Array.of(-5n, -1n, 5n), 1), BigInt64Array.of(-3n, -1n, 2n));
  for (const [lsb, nbits] of [
    [0, 1],
    [0, 64],
    [0, 63],
    [5, 12],
    [16, 48],
    [63, 1],
    [40, 64],
    [1, 63],
  ] as const) {
    const want = BigInt64Array.from(a, (x) => wrap(((x & M64) >> BigInt(lsb)) & ((1n << BigInt(nbits)) - 1n)));
    assert.deepEqual(R.ringLowBits(a, lsb, nbits), want, `lowBits ${lsb} ${nbits}`);
  }
  assert.throws(() => R.ringShr(a, -1), /ringShr/);
  assert.throws(() => R.ringLowBits(a, 0, 0), /ringLowBits/);
});

function refMatmul(a: Ring, b: Ring, m: number, k: number, n: number, transB: boolean): Ring {
  const c = new BigInt64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0n;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * (transB ? b[j * k + p]! : b[p * n + j]!);
      c[i * n + j] = wrap(s);
    }
  return c;
}

test('matmul and matmulTransB match BigInt on odd shapes', () => {
  const next = rng(5);
  const shapes = [
    [1, 1, 1],
    [1, 5, 1],
    [3, 1, 4],
    [2, 3, 5],
    [7, 9, 3],
    [5, 17, 13],
    [9, 8, 7],
    [13, 16, 33],
    [4, 0, 3],
    [0, 3, 2],
  ];
  for (const [m, k, n] of shapes as [number, number, number][]) {
    const a = randRing(next, m * k),
      b = randRing(next, k * n);
    assert.deepEqual(R.ringMatmul(a, b, m, k, n), refMatmul(a, b, m, k, n, false), `matmul ${m}x${k}x${n}`);
    assert.deepEqual(R.ringMatmulTransB(a, b, m, k, n), refMatmul(a, b, m, k, n, true), `matmulT ${m}x${k}x${n}`);
  }
  // several row blocks (the kernel blocks rows by ~96 KiB of a) and long k
  for (const [m, k, n] of [
    [300, 50, 9],
    [20, 1568, 10],
    [9, 3000, 17],
  ] as [number, number, number][]) {
    const a = randRing(next, m * k),
      b = randRing(next, k * n);
    assert.deepEqual(R.ringMatmul(a, b, m, k, n), refMatmul(a, b, m, k, n, false), `matmul ${m}x${k}x${n}`);
    assert.deepEqual(R.ringMatmulTransB(a, b, m, k, n), refMatmul(a, b, m, k, n, true), `matmulT ${m}x${k}x${n}`);
  }
  for (let t = 0; t < 10; t++) {
    const m = randInt(next, 1, 40),
      k = randInt(next, 1, 40),
      n = randInt(next, 1, 40);
    const a = randRing(next, m * k),
      b = randRing(next, k * n);
    assert.deepEqual(R.ringMatmul(a, b, m, k, n), refMatmul(a, b, m, k, n, false), `matmul ${m}x${k}x${n}`);
    assert.deepEqual(R.ringMatmulTransB(a, b, m, k, n), refMatmul(a, b, m, k, n, true), `matmulT ${m}x${k}x${n}`);
  }
});

test('transpose and spatial sum', () => {
  const next = rng(6);
  for (const [r, c] of [
    [1, 1],
    [3, 5],
    [33, 40],
    [64, 1],
  ] as const) {
    const a = randRing(next, r * c);
    const t = R.ringTranspose(a, r, c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) assert.equal(t[j * r + i], a[i * c + j]);
  }
  const x = randRing(next, 2 * 3 * 7);
  const s = R.ringSumSpatial(x, 2, 3, 7);
  for (let i = 0; i < 6; i++) assert.equal(s[i], wrap(x.subarray(i * 7, i * 7 + 7).reduce((p, v) => p + v, 0n)));
});

function outSize(g: ConvGeom | PoolGeom): [number, number] {
  return [Math.floor((g.h + g.padT + g.padB - g.kh) / g.strideH) + 1, Math.floor((g.w + g.padL + g.padR - g.kw) / g.strideW) + 1];
}

function refConv(x: Ring, w: Ring, g: ConvGeom): Ring {
  const [oh, ow] = outSize(g);
  const cg = g.c / g.group,
    cog = g.co / g.group;
  const out = new BigInt64Array(g.n * g.co * oh * ow);
  for (let b = 0; b < g.n; b++)
    for (let o = 0; o < g.co; o++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = 0n;
          const grp = Math.floor(o / cog);
          for (let ic = 0; ic < cg; ic++)
            for (let ky = 0; ky < g.kh; ky++)
              for (let kx = 0; kx < g.kw; kx++) {
                const iy = y * g.strideH - g.padT + ky,
                  ix = xx * g.strideW - g.padL + kx;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                const c = grp * cg + ic;
                s += x[((b * g.c + c) * g.h + iy) * g.w + ix]! * w[((o * cg + ic) * g.kh + ky) * g.kw + kx]!;
              }
          out[((b * g.co + o) * oh + y) * ow + xx] = wrap(s);
        }
  return out;
}

test('conv2d (stride, asymmetric pad, group, depthwise) matches naive BigInt conv', () => {
  const next = rng(7);
  const base = { strideH: 1, strideW: 1, padT: 0, padL: 0, padB: 0, padR: 0, group: 1 };
  const geoms: ConvGeom[] = [
    { ...base, n: 1, c: 1, h: 5, w: 5, co: 1, kh: 3, kw: 3 },
    { ...base, n: 2, c: 3, h: 7, w: 6, co: 4, kh: 3, kw: 3, padT: 1, padL: 1, padB: 1, padR: 1 },
    { ...base, n: 1, c: 2, h: 9, w: 8, co: 3, kh: 3, kw: 2, strideH: 2, strideW: 3, padT: 2, padL: 0, padB: 1, padR: 1 },
    { ...base, n: 2, c: 4, h: 6, w: 6, co: 6, kh: 3, kw: 3, padT: 1, padL: 1, padB: 1, padR: 1, group: 2 },
    { ...base, n: 2, c: 4, h: 7, w: 5, co: 4, kh: 3, kw: 3, strideH: 2, strideW: 2, padT: 1, padL: 1, padB: 1, padR: 1, group: 4 },
    { ...base, n: 1, c: 3, h: 5, w: 5, co: 6, kh: 3, kw: 3, padT: 1, padL: 1, padB: 1, padR: 1, group: 3 },
    { ...base, n: 1, c: 5, h: 4, w: 4, co: 2, kh: 1, kw: 1 },
    { ...base, n: 1, c: 2, h: 3, w: 3, co: 2, kh: 5, kw: 5, padT: 2, padL: 2, padB: 2, padR: 2 },
  ];
  for (const g of geoms) {
    const x = randRing(next, g.n * g.c * g.h * g.w),
      w = randRing(next, g.co * (g.c / g.group) * g.kh * g.kw);
    assert.deepEqual(R.ringConv2d(x, w, g), refConv(x, w, g), JSON.stringify(g));
  }
  assert.throws(() => R.ringConv2d(new BigInt64Array(18), new BigInt64Array(9), { ...geoms[0]!, c: 2, group: 3 }), /group 3/);
});

test('im2col layout [N*OH*OW, C*KH*KW] gives conv via matmulTransB', () => {
  const next = rng(8);
  const g: ConvGeom = { n: 2, c: 3, h: 5, w: 4, co: 2, kh: 3, kw: 2, strideH: 2, strideW: 1, padT: 1, padL: 1, padB: 0, padR: 1, group: 1 };
  const [oh, ow] = outSize(g);
  const x = randRing(next, g.n * g.c * g.h * g.w),
    w = randRing(next, g.co * g.c * g.kh * g.kw);
  const col = R.ringIm2col(x, g);
  const K = g.c * g.kh * g.kw;
  assert.equal(col.length, g.n * oh * ow * K);
  const prod = R.ringMatmulTransB(col, w, g.n * oh * ow, K, g.co); // [N*P, co]
  const conv = refConv(x, w, g);
  for (let b = 0; b < g.n; b++)
    for (let o = 0; o < g.co; o++)
      for (let p = 0; p < oh * ow; p++) {
        assert.equal(prod[(b * oh * ow + p) * g.co + o], conv[(b * g.co + o) * oh * ow + p]);
      }
});

test('sum pool matches BigInt reference', () => {
  const next = rng(9);
  const base = { strideH: 1, strideW: 1, padT: 0, padL: 0, padB: 0, padR: 0 };
  const geoms: PoolGeom[] = [
    { ...base, n: 2, c: 3, h: 6, w: 6, kh: 2, kw: 2, strideH: 2, strideW: 2 },
    { ...base, n: 1, c: 2, h: 7, w: 5, kh: 3, kw: 3, strideH: 2, strideW: 2, padT: 1, padL: 1, padB: 1, padR: 1 },
    { ...base, n: 1, c: 1, h: 5, w: 5, kh: 3, kw: 2, padB: 2, padR: 1 },
  ];
  for (const g of geoms) {
    const [oh, ow] = outSize(g);
    const x = randRing(next, g.n * g.c * g.h * g.w);
    const want = new BigInt64Array(g.n * g.c * oh * ow);
    for (let p = 0; p < g.n * g.c; p++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = 0n;
          for (let ky = 0; ky < g.kh; ky++)
            for (let kx = 0; kx < g.kw; kx++) {
              const iy = y * g.strideH - g.padT + ky,
                ix = xx * g.strideW - g.padL + kx;
              if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) s += x[(p * g.h + iy) * g.w + ix]!;
            }
          want[(p * oh + y) * ow + xx] = wrap(s);
        }
    assert.deepEqual(R.ringSumPool2d(x, g), want, JSON.stringify(g));
  }
});

test('fixed-point encode/decode round trip, rounding and negatives', () => {
  const x = Float64Array.of(0, 1, -1, 1.5, -2.25, 0.1, -0.1, 1234.5678, -31999.99, 2 ** -17, -(2 ** -17), 3 * 2 ** -17);
  const enc = R.encodeFixed(x, 16);
  x.forEach((v, i) => assert.equal(enc[i], BigInt(Math.round(v * 65536)), `encode ${v}`));
  const dec = R.decodeFixed(enc, 16);
  x.forEach((v, i) => assert.ok(Math.abs(dec[i]! - v) <= 2 ** -17 + Math.abs(v) * 2 ** -23, `decode ${v} -> ${dec[i]}`));
  const f32 = Float32Array.of(0.5, -3.75, 100.125);
  assert.deepEqual(R.decodeFixed(R.encodeFixed(f32, 16), 16), f32);
  assert.deepEqual(R.encodeFixed(f32, 0), BigInt64Array.of(1n, -4n, 100n));
  // two's complement: −1.0 is 2^64 − 2^16
  assert.equal(BigInt.asUintN(64, enc[2]!), (1n << 64n) - (1n << 16n));
  // saturation and NaN
  const sat = R.encodeFixed(Float64Array.of(1e30, -1e30, NaN), 16);
  assert.deepEqual(sat, BigInt64Array.of((1n << 63n) - 1n, -(1n << 63n), 0n));
  // random round trip
  const next = rng(10);
  const r = Float64Array.from({ length: 500 }, () => Number(BigInt.asIntN(32, next())) / 1000);
  const back = R.decodeFixed(R.encodeFixed(r, 16), 16);
  r.forEach((v, i) => assert.ok(Math.abs(back[i]! - v) <= 2 ** -17 + Math.abs(v) * 2 ** -23));
});

test('bytes round trip, unaligned input', () => {
  const next = rng(11);
  const a = randRing(next, 37);
  const bytes = R.ringToBytes(a);
  assert.equal(bytes.length, 37 * 8);
  assert.equal(bytes[0], Number(BigInt.asUintN(64, a[0]!) & 0xffn));
  const unaligned = new Uint8Array(bytes.length + 3).subarray(3);
  unaligned.set(bytes);
  assert.deepEqual(R.ringFromBytesLE(unaligned), a);
  assert.deepEqual(R.ringFromBytes(unaligned, 5), a.subarray(0, 5));
  assert.throws(() => R.ringFromBytesLE(new Uint8Array(7)), /multiple of 8/);
  assert.throws(() => R.ringFromBytes(new Uint8Array(15), 2), /need 16/);
});

test('bit planes match BigInt reference and round trip', () => {
  const next = rng(12);
  for (const n of [1, 5, 8, 9, 16, 63, 64, 100, 1001]) {
    const a = randRing(next, n);
    for (const [lsb, nbits] of [
      [0, 64],
      [0, 1],
      [3, 5],
      [10, 20],
      [16, 48],
      [63, 1],
      [1, 63],
      [0, 0],
    ] as const) {
      const planes = R.toBitPlanes(a, lsb, nbits);
      const stride = (n + 7) >> 3;
      assert.equal(planes.length, stride * nbits);
      const want = new Uint8Array(stride * nbits);
      for (let j = 0; j < nbits; j++)
        for (let i = 0; i < n; i++) {
          if (((a[i]! & M64) >> BigInt(lsb + j)) & 1n) want[j * stride + (i >> 3)]! |= 1 << (i & 7);
        }
      assert.deepEqual(planes, want, `planes n=${n} lsb=${lsb} nbits=${nbits}`);
      assert.deepEqual(
        R.fromBitPlanes(planes, n, nbits),
        R.ringLowBits(a, lsb, Math.max(nbits, 1)).map((v) => (nbits ? v : 0n)),
      );
    }
    const bits = R.toBitPlanes(a, 63, 1);
    assert.deepEqual(
      R.bitsToRing(bits, n),
      BigInt64Array.from(a, (v) => (v < 0n ? 1n : 0n)),
    );
  }
  // several 2048-element chunks of the SIMD kernel plus a tail
  const n = 4096 + 2048 + 19,
    stride = (n + 7) >> 3;
  const a = randRing(next, n);
  for (const [lsb, nbits] of [
    [0, 64],
    [7, 21],
  ] as const) {
    const planes = R.toBitPlanes(a, lsb, nbits);
    for (let j = 0; j < nbits; j++)
      for (let i = 0; i < n; i += 1 + (i % 7)) {
        const bit = Number(((a[i]! & M64) >> BigInt(lsb + j)) & 1n);
        assert.equal((planes[j * stride + (i >> 3)]! >> (i & 7)) & 1, bit, `plane ${j} element ${i}`);
      }
    assert.deepEqual(R.fromBitPlanes(planes, n, nbits), R.ringLowBits(a, lsb, nbits));
  }
});

test('large operands work and the arena is reused across calls', () => {
  const n = 64 * 16 * 28 * 28;
  const a = new BigInt64Array(n).fill(3n),
    b = new BigInt64Array(n).fill(-5n);
  const s = R.ringMul(a, b);
  assert.equal(s[0], -15n);
  assert.equal(s[n - 1], -15n);
  const g: ConvGeom = { n: 64, c: 16, h: 14, w: 14, co: 32, kh: 3, kw: 3, strideH: 1, strideW: 1, padT: 1, padL: 1, padB: 1, padR: 1, group: 1 };
  const x = new BigInt64Array(64 * 16 * 14 * 14).fill(1n),
    w = new BigInt64Array(32 * 16 * 9).fill(2n);
  const y = R.ringConv2d(x, w, g);
  assert.equal(y.length, 64 * 32 * 14 * 14);
  assert.equal(y[15], 2n * 16n * 9n); // interior position (row 1, col 1)
  assert.equal(y[0], 2n * 16n * 4n); // corner
  // the small call after the big ones still works
  assert.deepEqual(R.ringAdd(BigInt64Array.of(1n), BigInt64Array.of(2n)), BigInt64Array.of(3n));
});

test('AND-gate kernels (wasm) match the bit-by-bit definition, including widths that are not whole bytes', () => {
  const next = rng(19);
  const randBits = (nbits: number): Uint8Array => {
    const v = new Uint8Array((nbits + 7) >> 3);
    for (let i = 0; i < nbits; i++) if (next() & 1n) v[i >> 3]! |= 1 << (i & 7);
    return v;
  };
  const bit = (v: Uint8Array, i: number): number => (v[i >> 3]! >> (i & 7)) & 1;
  for (const nbits of [1, 5, 8, 13, 64, 131]) {
    for (const count of [1, 3]) {
      const total = count * nbits;
      const xs = [0, 0].map(() => Array.from({ length: count }, () => randBits(nbits))); // party 0 / 1 operand x
      const ys = [0, 0].map(() => Array.from({ length: count }, () => randBits(nbits)));
      const a = [randBits(total), randBits(total)],
        b = [randBits(total), randBits(total)],
        c0 = randBits(total);
      // dealer: c1 = (a0^a1)&(b0^b1)^c0
      const c1 = new Uint8Array(c0.length);
      for (let i = 0; i < total; i++) if ((((bit(a[0]!, i) ^ bit(a[1]!, i)) & (bit(b[0]!, i) ^ bit(b[1]!, i))) ^ bit(c0, i)) === 1) c1[i >> 3]! |= 1 << (i & 7);
      const msgs = [0, 1].map((p) => R.andGateOpen(xs[p]!, ys[p]!, nbits, a[p]!, b[p]!));
      assert.equal(msgs[0]!.length, (2 * total + 7) >> 3);
      const zs = [0, 1].map((p) => R.andGateClose(msgs[p]!, msgs[1 - p]!, count, nbits, a[p]!, b[p]!, p === 0 ? c0 : c1, p === 0));
      const vb = (nbits + 7) >> 3;
      for (let g = 0; g < count; g++) {
        for (let i = 0; i < nbits; i++) {
          const x = bit(xs[0]![g]!, i) ^ bit(xs[1]![g]!, i),
            y = bit(ys[0]![g]!, i) ^ bit(ys[1]![g]!, i);
          const z = bit(zs[0]!.subarray(g * vb), i) ^ bit(zs[1]!.subarray(g * vb), i);
          assert.equal(z, x & y, `nbits ${nbits} count ${count} gate ${g} bit ${i}`);
        }
        // unused high bits stay zero
        if (nbits & 7) assert.equal(zs[0]![g * vb + vb - 1]! >> (nbits & 7), 0);
      }
    }
  }
});

test('ringReluTail is the sign-only ReLU closing step, elementwise', () => {
  const next = rng(23);
  const n = 37;
  const mk = (): Ring => BigInt64Array.from({ length: n }, () => wrap(next()));
  const x = mk(),
    d = mk(),
    pd = mk(),
    tc = mk(),
    ar = mk();
  const c = new Uint8Array(5);
  for (let i = 0; i < n; i++) if (next() & 1n) c[i >> 3]! |= 1 << (i & 7);
  for (const party0 of [true, false]) {
    const { y, mask } = R.ringReluTail(x, d, new Uint8Array(pd.buffer), tc, ar, c, party0);
    const one = party0 ? 1n : 0n;
    for (let i = 0; i < n; i++) {
      const ci = BigInt((c[i >> 3]! >> (i & 7)) & 1);
      const xr = wrap(tc[i]! + wrap(d[i]! + pd[i]!) * ar[i]!);
      assert.equal(y[i], wrap(x[i]! - xr + ci * (2n * xr - x[i]!)));
      assert.equal(mask[i], wrap(one - (ar[i]! + ci * (one - 2n * ar[i]!))));
    }
  }
});
