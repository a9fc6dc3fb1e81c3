import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CommStats, PartyContext, PeerChannel } from '../../src/mpc/context.js';
import type { CorrelationRequest } from '../../src/mpc/dealer.js';
import { localSession, runTwoParty } from '../../src/mpc/local.js';
import {
  add,
  addPublic,
  affinePublic,
  avgPool,
  beaverMul,
  conv2dPublic,
  conv2dSecret,
  convPublic,
  convSecret,
  divPublic,
  gemmPublic,
  gemmSecret,
  globalAvgPool,
  matmulPublic,
  matmulSecret,
  mulFixed,
  mulPublic,
  mulPublicFixed,
  neg,
  reveal,
  shareInput,
  sub,
  sumPool,
  truncate,
} from '../../src/mpc/protocols/arith.js';
import type { ConvGeom, PoolGeom } from '../../src/mpc/ring.js';
import { SeededRng } from '../../src/seeded-rng.js';
import { convRef } from '../helpers/conv-ref.js';

const F = 16;

/** Seeded test-input generator; never used for protocol randomness. */
function rng(seed: number) {
  const g = new SeededRng(seed);
  const u32 = (): number => g.u32();
  return {
    u32,
    int: (lo: number, hi: number) => lo + (u32() % (hi - lo + 1)),
    /** Uniform 64-bit ring element. */
    ring: (): bigint => BigInt.asIntN(64, (BigInt(u32()) << 32n) | BigInt(u32())),
    /** A fixed-point value in [−r, r) with F fractional bits. */
    fixed: (r: number): bigint => BigInt(Math.round(((u32() / 2 ** 32) * 2 - 1) * r * 2 ** F)),
  };
}

const arr = (xs: bigint[]): BigInt64Array => BigInt64Array.from(xs);
const gen = (n: number, f: () => bigint): BigInt64Array => BigInt64Array.from({ length: n }, f);
const i64 = (v: bigint): bigint => BigInt.asIntN(64, v);
/** ⌊a / d⌋ for BigInt (BigInt division truncates toward zero). */
const floorDiv = (a: bigint, d: bigint): bigint => {
  const q = a / d;
  return a % d !== 0n && a < 0n ? q - 1n : q;
};

/** Assert every got[i] ∈ {⌊want[i]/2^bits⌋, ⌊…⌋ + 1} (the local truncation's error law) plus `extra`. */
function assertTrunc(got: BigInt64Array, want: bigint[], div: bigint, extra: bigint[] = [], what = '') {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const q = floorDiv(want[i]!, div) + (extra[i] ?? 0n);
    const g = got[i]!;
    assert.ok(g === q || g === q + 1n, `${what}[${i}]: got ${g}, want ${q} or ${q + 1n}`);
  }
}

/** Both parties share their input (`owner` gives plaintext) and run `f`; returns the revealed output. */
async function run2(f: (ctx: PartyContext) => Promise<BigInt64Array>): Promise<BigInt64Array> {
  const [r0, r1] = await runTwoParty(async (ctx) => reveal(ctx, await f(ctx), 'both'));
  assert.deepEqual(r0, r1);
  return r0;
}

const share = (ctx: PartyContext, owner: 0 | 1, x: BigInt64Array) => shareInput(ctx, owner, ctx.party === owner ? x : undefined, x.length);

function matRef(a: BigInt64Array, b: BigInt64Array, m: number, k: number, n: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0n;
      for (let l = 0; l < k; l++) s += a[i * k + l]! * b[l * n + j]!;
      out.push(i64(s));
    }
  return out;
}

function poolRef(x: BigInt64Array, g: PoolGeom): bigint[] {
  const oh = Math.floor((g.h + g.padT + g.padB - g.kh) / g.strideH) + 1;
  const ow = Math.floor((g.w + g.padL + g.padR - g.kw) / g.strideW) + 1;
  const out: bigint[] = [];
  for (let p = 0; p < g.n * g.c; p++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        let s = 0n;
        for (let ky = 0; ky < g.kh; ky++)
          for (let kx = 0; kx < g.kw; kx++) {
            const iy = oy * g.strideH - g.padT + ky,
              ix = ox * g.strideW - g.padL + kx;
            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) s += x[(p * g.h + iy) * g.w + ix]!;
          }
        out.push(s);
      }
  return out;
}

const snap = (s: CommStats): CommStats => ({ ...s });
const diff = (a: CommStats, b: CommStats): CommStats => ({
  bytesSent: a.bytesSent - b.bytesSent,
  bytesReceived: a.bytesReceived - b.bytesReceived,
  rounds: a.rounds - b.rounds,
});

test('shareInput / reveal round-trip for either owner; reveal to one party; exact traffic', async () => {
  const r = rng(1);
  const x = gen(100, r.ring),
    y = gen(100, r.ring);
  const [o0, o1] = await runTwoParty(async (ctx) => {
    const before = snap(ctx.peer.stats);
    const xs = await share(ctx, 0, x);
    const ys = await share(ctx, 1, y);
    const afterShare = diff(ctx.peer.stats, before);
    const to0 = await reveal(ctx, xs, 0);
    const to1 = await reveal(ctx, ys, 1);
    const both = await reveal(ctx, add(ctx, xs, ys), 'both');
    return { afterShare, to0, to1, both, total: diff(ctx.peer.stats, before) };
  });
  assert.deepEqual(o0.to0, x);
  assert.equal(o1.to0, undefined);
  assert.deepEqual(o1.to1, y);
  assert.equal(o0.to1, undefined);
  const sum = arr(Array.from(x, (v, i) => i64(v + y[i]!)));
  assert.deepEqual(o0.both, sum);
  assert.deepEqual(o1.both, sum);
  // each party sends one 800-byte share and receives one; one-way sends count a round for the sender
  assert.deepEqual(o0.afterShare, { bytesSent: 800, bytesReceived: 800, rounds: 1 });
  assert.deepEqual(o1.afterShare, { bytesSent: 800, bytesReceived: 800, rounds: 1 });
  assert.deepEqual(o0.total, { bytesSent: 800 + 800 + 800, bytesReceived: 800 + 800 + 800, rounds: 3 });
});

test('local linear operations: add, sub, neg, addPublic, mulPublic', async () => {
  const r = rng(2);
  for (let trial = 0; trial < 5; trial++) {
    const n = r.int(1, 50);
    const x = gen(n, r.ring),
      y = gen(n, r.ring),
      c = gen(n, r.ring),
      s = r.ring();
    const out = await run2(async (ctx) => {
      const xs = await share(ctx, 0, x),
        ys = await share(ctx, 1, y);
      const parts = [
        add(ctx, xs, ys),
        sub(ctx, xs, ys),
        neg(ctx, xs),
        addPublic(ctx, xs, c),
        addPublic(ctx, xs, s),
        mulPublic(ctx, xs, c),
        mulPublic(ctx, xs, s),
      ];
      const all = new BigInt64Array(7 * n);
      parts.forEach((p, i) => all.set(p, i * n));
      return all;
    });
    const want = [
      ...Array.from(x, (v, i) => v + y[i]!),
      ...Array.from(x, (v, i) => v - y[i]!),
      ...Array.from(x, (v) => -v),
      ...Array.from(x, (v, i) => v + c[i]!),
      ...Array.from(x, (v) => v + s),
      ...Array.from(x, (v, i) => v * c[i]!),
      ...Array.from(x, (v) => v * s),
    ].map(i64);
    assert.deepEqual(Array.from(out), want);
  }
});

test('truncate: result is ⌊x/2^f⌋ or ⌊x/2^f⌋ + 1, unbiased, on random fixed-point inputs', async () => {
  const r = rng(3);
  const x = gen(2000, () => r.fixed(1000) << BigInt(F)); // products carry 2f fractional bits
  const out = await run2(async (ctx) => truncate(ctx, await share(ctx, 0, x), F));
  assertTrunc(out, Array.from(x), 1n << BigInt(F), [], 'truncate');
  // stochastic rounding: for x/2^f = k + 1/4 about a quarter of the results round up
  const q = 123n * (1n << BigInt(F)) + (1n << BigInt(F - 2)); // (123 + 1/4) · 2^f
  const many = gen(4000, () => q);
  const tq = await run2(async (ctx) => truncate(ctx, await share(ctx, 1, many), F));
  const ups = Array.from(tq).filter((v) => v === 124n).length;
  assert.equal(Array.from(tq).filter((v) => v !== 123n && v !== 124n).length, 0);
  assert.ok(ups > 850 && ups < 1150, `round-up fraction ${ups / 4000} should be about 1/4`);
});

test('truncate: the documented wrap-around failure (probability |x|/2^64) gives an error of 2^(64−f)', () => {
  // Pick party 0's share so that y = x0 − x wraps below −2^63: the result is off by exactly −2^(64−f).
  const x = 1000n << BigInt(F);
  const x0 = -(1n << 63n) + 5n;
  const x1 = i64(x - x0);
  const c0 = { party: 0, fracBits: F } as PartyContext;
  const c1 = { party: 1, fracBits: F } as PartyContext;
  const t = i64(truncate(c0, arr([x0]), F)[0]! + truncate(c1, arr([x1]), F)[0]!);
  assert.equal(t, i64(1000n - (1n << BigInt(64 - F))));
  // one step further from the boundary there is no wrap and the result is exact
  const y0 = -(1n << 63n) + x;
  const u = i64(truncate(c0, arr([y0]), F)[0]! + truncate(c1, arr([i64(x - y0)]), F)[0]!);
  assert.equal(u, 1000n);
});

test('divPublic: exact signed floor division per party and the truncation law on shares', async () => {
  const c0 = { party: 0, fracBits: F } as PartyContext;
  const edge = [0n, 1n, -1n, 48n, 49n, -48n, -49n, -50n, (1n << 63n) - 1n, -(1n << 63n), -(1n << 63n) + 1n, 1n << 40n, -(1n << 40n) - 7n];
  for (const d of [3, 7, 49, 1000, 12345, 1 << 21, 1]) {
    const got = divPublic(c0, arr(edge), d);
    assert.deepEqual(
      Array.from(got),
      edge.map((v) => floorDiv(v, BigInt(d))),
      `d=${d}`,
    );
  }
  const r = rng(4);
  const rand = gen(500, r.ring);
  for (const d of [3, 49, 1 << 21])
    assert.deepEqual(
      Array.from(divPublic(c0, rand, d)),
      Array.from(rand, (v) => floorDiv(v, BigInt(d))),
    );
  const x = gen(1000, () => r.fixed(500));
  for (const d of [9, 49, 16]) {
    const out = await run2(async (ctx) => divPublic(ctx, await share(ctx, 0, x), d));
    assertTrunc(out, Array.from(x), BigInt(d), [], `div ${d}`);
  }
  assert.throws(() => divPublic(c0, x, 0), /divisor must be an integer/);
});

test('beaverMul is exact mod 2^64; 16 bytes per element per party, 1 round; mulFixed within the truncation error', async () => {
  const r = rng(5);
  for (const n of [1, 17, 1000]) {
    const x = gen(n, r.ring),
      y = gen(n, r.ring);
    const [res0, res1] = await runTwoParty(async (ctx) => {
      const xs = await share(ctx, 0, x),
        ys = await share(ctx, 1, y);
      const before = snap(ctx.peer.stats);
      const z = await beaverMul(ctx, xs, ys);
      const cost = diff(ctx.peer.stats, before);
      return { z: await reveal(ctx, z, 'both'), cost };
    });
    assert.deepEqual(
      Array.from(res0.z),
      Array.from(x, (v, i) => i64(v * y[i]!)),
    );
    for (const res of [res0, res1]) assert.deepEqual(res.cost, { bytesSent: 16 * n, bytesReceived: 16 * n, rounds: 1 });
  }
  const x = gen(500, () => r.fixed(100)),
    y = gen(500, () => r.fixed(100));
  const out = await run2(async (ctx) => mulFixed(ctx, await share(ctx, 0, x), await share(ctx, 1, y)));
  assertTrunc(
    out,
    Array.from(x, (v, i) => v * y[i]!),
    1n << BigInt(F),
    [],
    'mulFixed',
  );
  // squaring (x·x) works too
  const sq = await run2(async (ctx) => {
    const xs = await share(ctx, 0, x);
    return beaverMul(ctx, xs, xs);
  });
  assert.deepEqual(
    Array.from(sq),
    Array.from(x, (v) => i64(v * v)),
  );
});

test('matmulPublic and matmulSecret are exact; matmulSecret sends 8·(mk+kn) bytes in 1 round', async () => {
  const r = rng(6);
  for (let trial = 0; trial < 4; trial++) {
    const [m, k, n] = [r.int(1, 6), r.int(1, 9), r.int(1, 7)];
    const x = gen(m * k, r.ring),
      w = gen(k * n, r.ring);
    const [res0, res1] = await runTwoParty(async (ctx) => {
      const xs = await share(ctx, 0, x),
        ws = await share(ctx, 1, w);
      const pub = matmulPublic(ctx, xs, w, m, k, n);
      const before = snap(ctx.peer.stats);
      const sec = await matmulSecret(ctx, xs, ws, m, k, n);
      const cost = diff(ctx.peer.stats, before);
      return { pub: await reveal(ctx, pub, 'both'), sec: await reveal(ctx, sec, 'both'), cost };
    });
    const want = matRef(x, w, m, k, n);
    assert.deepEqual(Array.from(res0.pub), want);
    assert.deepEqual(Array.from(res0.sec), want);
    for (const res of [res0, res1]) assert.deepEqual(res.cost, { bytesSent: 8 * (m * k + k * n), bytesReceived: 8 * (m * k + k * n), rounds: 1 });
  }
});

test('conv2dPublic and conv2dSecret are exact (padding, stride, groups); conv2dSecret opens x and w once', async () => {
  const r = rng(7);
  const geoms: ConvGeom[] = [
    { n: 1, c: 1, h: 6, w: 6, co: 2, kh: 3, kw: 3, strideH: 1, strideW: 1, padT: 1, padL: 1, padB: 1, padR: 1, group: 1 },
    { n: 2, c: 4, h: 5, w: 7, co: 6, kh: 2, kw: 3, strideH: 2, strideW: 1, padT: 0, padL: 1, padB: 1, padR: 0, group: 2 },
    { n: 1, c: 3, h: 4, w: 4, co: 3, kh: 3, kw: 3, strideH: 1, strideW: 2, padT: 1, padL: 1, padB: 1, padR: 1, group: 3 },
  ];
  for (const g of geoms) {
    const x = gen(g.n * g.c * g.h * g.w, r.ring),
      w = gen(g.co * (g.c / g.group) * g.kh * g.kw, r.ring);
    const [res0, res1] = await runTwoParty(async (ctx) => {
      const xs = await share(ctx, 0, x),
        ws = await share(ctx, 1, w);
      const pub = conv2dPublic(ctx, xs, w, g);
      const before = snap(ctx.peer.stats);
      const sec = await conv2dSecret(ctx, xs, ws, g);
      const cost = diff(ctx.peer.stats, before);
      return { pub: await reveal(ctx, pub, 'both'), sec: await reveal(ctx, sec, 'both'), cost };
    });
    const want = convRef(x, w, g);
    assert.deepEqual(Array.from(res0.pub), want);
    assert.deepEqual(Array.from(res0.sec), want);
    const bytes = 8 * (x.length + w.length);
    for (const res of [res0, res1]) assert.deepEqual(res.cost, { bytesSent: bytes, bytesReceived: bytes, rounds: 1 });
  }
});

test('gemm, conv and affine layers with bias agree with the fixed-point reference within 1 unit', async () => {
  const r = rng(8);
  const [m, k, n] = [3, 20, 5];
  const x = gen(m * k, () => r.fixed(4)),
    w = gen(k * n, () => r.fixed(1)),
    b = gen(n, () => r.fixed(2));
  const g: ConvGeom = { n: 2, c: 2, h: 5, w: 5, co: 3, kh: 3, kw: 3, strideH: 1, strideW: 1, padT: 1, padL: 1, padB: 1, padR: 1, group: 1 };
  const cx = gen(2 * 2 * 25, () => r.fixed(4)),
    cw = gen(3 * 2 * 9, () => r.fixed(1)),
    cb = gen(3, () => r.fixed(2));
  const scale = gen(2, () => r.fixed(3)),
    shift = gen(2, () => r.fixed(3));
  const out = await runTwoParty(async (ctx) => {
    const xs = await share(ctx, 0, x),
      ws = await share(ctx, 1, w),
      bs = await share(ctx, 1, b);
    const cxs = await share(ctx, 0, cx),
      cws = await share(ctx, 1, cw),
      cbs = await share(ctx, 1, cb);
    return Promise.all([
      reveal(ctx, gemmPublic(ctx, xs, w, b, m, k, n), 'both'),
      reveal(ctx, await gemmSecret(ctx, xs, ws, bs, m, k, n), 'both'),
      reveal(ctx, gemmPublic(ctx, xs, w, undefined, m, k, n), 'both'),
      reveal(ctx, convPublic(ctx, cxs, cw, cb, g), 'both'),
      reveal(ctx, await convSecret(ctx, cxs, cws, cbs, g), 'both'),
      reveal(ctx, affinePublic(ctx, cxs, scale, shift, 2, 25), 'both'),
      reveal(ctx, mulPublicFixed(ctx, cxs, scale[0]!), 'both'),
    ]);
  });
  const [gp, gs, gnb, cp, cs, af, ms] = out[0];
  const div = 1n << BigInt(F);
  const mm = matRef(x, w, m, k, n);
  const gb = mm.map((_, i) => b[i % n]!);
  assertTrunc(gp, mm, div, gb, 'gemmPublic');
  assertTrunc(gs, mm, div, gb, 'gemmSecret');
  assertTrunc(gnb, mm, div, [], 'gemm no bias');
  const cc = convRef(cx, cw, g);
  const cbias = cc.map((_, i) => cb[Math.floor(i / 25) % 3]!);
  assertTrunc(cp, cc, div, cbias, 'convPublic');
  assertTrunc(cs, cc, div, cbias, 'convSecret');
  const ch = (i: number) => Math.floor(i / 25) % 2;
  assertTrunc(
    af,
    Array.from(cx, (v, i) => v * scale[ch(i)]!),
    div,
    Array.from(cx, (_, i) => shift[ch(i)]!),
    'affine',
  );
  assertTrunc(
    ms,
    Array.from(cx, (v) => v * scale[0]!),
    div,
    [],
    'mulPublicFixed',
  );
  // the float view: gemm within 2^-15 of the float product
  const fx = (v: bigint) => Number(v) / 2 ** F;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = fx(b[j]!);
      for (let l = 0; l < k; l++) s += fx(x[i * k + l]!) * fx(w[l * n + j]!);
      assert.ok(Math.abs(fx(gs[i * n + j]!) - s) <= 2 ** -15, `gemm float ${i},${j}`);
    }
});

test('sumPool, avgPool (power-of-two and other windows) and globalAvgPool', async () => {
  const r = rng(9);
  const g2: PoolGeom = { n: 2, c: 3, h: 6, w: 6, kh: 2, kw: 2, strideH: 2, strideW: 2, padT: 0, padL: 0, padB: 0, padR: 0 };
  const g3: PoolGeom = { n: 1, c: 2, h: 7, w: 7, kh: 3, kw: 3, strideH: 2, strideW: 2, padT: 1, padL: 1, padB: 1, padR: 1 };
  const x2 = gen(2 * 3 * 36, () => r.fixed(8)),
    x3 = gen(2 * 49, () => r.fixed(8));
  const out = await runTwoParty(async (ctx) => {
    const a = await share(ctx, 0, x2),
      b = await share(ctx, 0, x3);
    return Promise.all([
      reveal(ctx, sumPool(ctx, a, g2), 'both'),
      reveal(ctx, avgPool(ctx, a, g2), 'both'),
      reveal(ctx, avgPool(ctx, b, g3), 'both'),
      reveal(ctx, globalAvgPool(ctx, b, 1, 2, 49), 'both'),
    ]);
  });
  const [sp, ap2, ap3, gap] = out[0];
  assert.deepEqual(Array.from(sp), poolRef(x2, g2));
  assertTrunc(ap2, poolRef(x2, g2), 4n, [], 'avgPool 2x2');
  assertTrunc(ap3, poolRef(x3, g3), 9n, [], 'avgPool 3x3');
  const sums = [0, 1].map((c) => Array.from(x3.subarray(c * 49, (c + 1) * 49)).reduce((s, v) => s + v, 0n));
  assertTrunc(gap, sums, 49n, [], 'globalAvgPool');
});

/** Chi-square statistic of a 256-bin histogram against uniform, and of two histograms against each other. */
function chi2Uniform(h: number[]): number {
  const total = h.reduce((s, v) => s + v, 0),
    e = total / h.length;
  return h.reduce((s, v) => s + (v - e) ** 2 / e, 0);
}
function chi2Two(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) if (a[i]! + b[i]!) s += (a[i]! - b[i]!) ** 2 / (a[i]! + b[i]!);
  return s;
}
const topByteHist = (xs: BigInt64Array): number[] => {
  const h = new Array<number>(256).fill(0);
  for (const v of xs) h[Number(BigInt.asUintN(64, v) >> 56n)]!++;
  return h;
};
// df = 255: P(χ² > 377) ≈ 1e-6, so a correct implementation essentially never fails these.
const CHI2_LIMIT = 377;

/** Party 1's view: every message it receives from party 0, in order. */
function recording(peer: PeerChannel, log: Uint8Array[]): PeerChannel {
  return {
    stats: peer.stats,
    exchange: async (m) => {
      const got = await peer.exchange(m);
      log.push(got);
      return got;
    },
    send: (m) => peer.send(m),
    recv: async () => {
      const got = await peer.recv();
      log.push(got);
      return got;
    },
  };
}

test('party 1 receives uniformly distributed messages whatever party 0 input is (shareInput, beaverMul)', async () => {
  const N = 256 * 40;
  const views: number[][][] = [];
  for (const value of [0n, 12345n << BigInt(F)]) {
    const x = gen(N, () => value);
    const log: Uint8Array[] = [];
    await runTwoParty(async (ctx) => {
      const c = ctx.party === 1 ? { ...ctx, peer: recording(ctx.peer, log) } : ctx;
      const xs = await share(c, 0, x);
      await beaverMul(c, xs, xs);
      return 0;
    });
    assert.equal(log.length, 2);
    const shareView = new BigInt64Array(log[0]!.slice().buffer);
    const openView = new BigInt64Array(log[1]!.slice().buffer);
    views.push([topByteHist(shareView), topByteHist(openView)]);
  }
  for (const [h0, h1] of views) {
    assert.ok(chi2Uniform(h0!) < CHI2_LIMIT, `received share not uniform: χ² = ${chi2Uniform(h0!)}`);
    assert.ok(chi2Uniform(h1!) < CHI2_LIMIT, `received opening not uniform: χ² = ${chi2Uniform(h1!)}`);
  }
  for (const k of [0, 1]) {
    const s = chi2Two(views[0]![k]!, views[1]![k]!);
    assert.ok(s < CHI2_LIMIT, `views for inputs 0 and 12345 differ: χ² = ${s}`);
  }
  // the test can fail: sending the plaintext itself would give a single-bin histogram
  assert.ok(chi2Uniform(topByteHist(gen(N, () => 12345n << BigInt(F)))) > 1e5);
});

test('a prefetched plan gives the same results with no dealer traffic online', async () => {
  const r = rng(10);
  const n = 64,
    [m, k, nn] = [4, 8, 3];
  const x = gen(n, r.ring),
    y = gen(n, r.ring),
    a = gen(m * k, r.ring),
    w = gen(k * nn, r.ring);
  const plan: CorrelationRequest[] = [
    { kind: 'beaver', n },
    { kind: 'matmul', m, k, n: nn },
  ];
  const program = async (ctx: PartyContext) => {
    const xs = await share(ctx, 0, x),
      ys = await share(ctx, 1, y),
      as = await share(ctx, 0, a),
      ws = await share(ctx, 1, w);
    const z = await beaverMul(ctx, xs, ys);
    const mmz = await matmulSecret(ctx, as, ws, m, k, nn);
    return [await reveal(ctx, z, 'both'), await reveal(ctx, mmz, 'both')];
  };
  const online = await runTwoParty(program);
  const s = await localSession();
  await Promise.all([s.clients[0].prefetch(plan), s.clients[1].prefetch(plan)]);
  const trips = s.clients[1].stats.roundTrips,
    dealerBytes = s.server.stats.bytesSent[1];
  const pre = await Promise.all([program(s.ctx0), program(s.ctx1)]);
  assert.equal(s.clients[1].stats.roundTrips, trips);
  assert.equal(s.server.stats.bytesSent[1], dealerBytes);
  assert.equal(s.clients[1].pending, 0);
  assert.deepEqual(pre, online);
  assert.deepEqual(
    Array.from(pre[0][0]!),
    Array.from(x, (v, i) => i64(v * y[i]!)),
  );
  // a program that deviates from the plan fails with a clear message instead of wrong numbers
  await Promise.all([s.clients[0].prefetch(plan), s.clients[1].prefetch(plan)]);
  const bad = (ctx: PartyContext) => matmulSecret(ctx, new BigInt64Array(m * k), new BigInt64Array(k * nn), m, k, nn);
  await assert.rejects(bad(s.ctx1), /does not match the prefetched plan, which expected beaver\(64\)/);
  s.close();
  await s.dealer;
});

test('bad lengths are rejected with clear messages', async () => {
  const s = await localSession();
  await assert.rejects(beaverMul(s.ctx0, new BigInt64Array(3), new BigInt64Array(4)), /arith.beaverMul: y has 4 elements, expected 3/);
  await assert.rejects(matmulSecret(s.ctx0, new BigInt64Array(5), new BigInt64Array(6), 2, 3, 2), /arith.matmulSecret: X has 5 elements, expected 6/);
  await assert.rejects(shareInput(s.ctx0, 0, undefined, 3), /owns the input but passed no plaintext/);
  // a peer message of the wrong size is refused
  s.ctx1.peer.send(new Uint8Array(7));
  await assert.rejects(shareInput(s.ctx0, 1, undefined, 1), /arith.shareInput: expected 8 bytes from the peer, got 7/);
  s.close();
  await s.dealer;
});
