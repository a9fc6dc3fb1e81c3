import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prg } from '../../src/crypto/prg.js';
import { maskFromShares } from '../../src/hummingbird/simulate.js';
import type { CommStats, PartyContext } from '../../src/mpc/context.js';
import { localSession, runTwoParty } from '../../src/mpc/local.js';
import { ltz, maxPool2d, relu, reluCost, reluWithMask } from '../../src/mpc/protocols/compare.js';
import { dcfCwBytes, dcfEval, dcfGen } from '../../src/mpc/protocols/fss/dcf.js';
import { dcfBitEval, dcfBitGen } from '../../src/mpc/protocols/fss/dcfbit.js';
import { assembleFssRelu, drawFssRelu, fssReluKeyBytes } from '../../src/mpc/protocols/fss/keys.js';
import { fssReluCost } from '../../src/mpc/protocols/fss/relu.js';
import { type PoolGeom, ringAdd, ringSub } from '../../src/mpc/ring.js';
import { rng } from '../helpers/splitmix.js';

/** Deterministic test bytes (a Prg with a fixed seed: reproducible, not secret). */
const testPrg = (tag: number): Prg => new Prg(new Uint8Array(16).fill(tag));

/** Both parties' DCF outputs summed, per component. */
function dcfSum(bits: number, alpha: BigInt64Array, beta: BigInt64Array, x: BigInt64Array, prg: Prg): BigInt64Array {
  const n = alpha.length;
  const s0 = prg.bytes(16 * n),
    s1 = prg.bytes(16 * n);
  const cw = dcfGen(bits, alpha, beta, s0, s1);
  assert.equal(cw.length, dcfCwBytes(n, bits));
  return ringAdd(dcfEval(0, bits, s0, cw, x), dcfEval(1, bits, s1, cw, x));
}

test('DCF: every input of every domain up to 10 bits, thresholds at the edges and inside', () => {
  const prg = testPrg(1);
  for (let bits = 0; bits <= 10; bits++) {
    const D = 1 << bits;
    const alphas = [...new Set([0, 1, D - 1, D >> 1, Number(BigInt.asUintN(bits, prg.ring(1)[0]!))].map((a) => Math.min(a, D - 1)))];
    for (const a of alphas) {
      const alpha = new BigInt64Array(D).fill(BigInt(a));
      const beta = new BigInt64Array(2 * D);
      const b0 = prg.ring(1)[0]!,
        b1 = prg.ring(1)[0]!;
      for (let e = 0; e < D; e++) (beta[2 * e] = b0), (beta[2 * e + 1] = b1);
      const x = BigInt64Array.from({ length: D }, (_, i) => BigInt(i));
      const y = dcfSum(bits, alpha, beta, x, prg);
      for (let i = 0; i < D; i++) {
        const lt = i < a;
        assert.equal(y[2 * i], lt ? b0 : 0n, `bits ${bits} alpha ${a} x ${i}`);
        assert.equal(y[2 * i + 1], lt ? b1 : 0n, `bits ${bits} alpha ${a} x ${i}`);
      }
    }
  }
});

test('bit-output DCF: every input of every domain up to 10 bits, and random 63-bit thresholds', () => {
  const prg = testPrg(21),
    r = rng(22);
  const cases: { bits: number; alpha: BigInt64Array; x: BigInt64Array }[] = [];
  for (let bits = 0; bits <= 10; bits++) {
    const D = 1 << bits;
    for (const a of [...new Set([0, 1, D - 1, D >> 1, Number(BigInt.asUintN(bits, r()))].map((v) => Math.min(v, D - 1)))]) {
      cases.push({ bits, alpha: new BigInt64Array(D).fill(BigInt(a)), x: BigInt64Array.from({ length: D }, (_, i) => BigInt(i)) });
    }
  }
  const n = 3000,
    m63 = (1n << 63n) - 1n;
  const alpha = BigInt64Array.from({ length: n }, () => r() & m63);
  cases.push({
    bits: 63,
    alpha,
    x: BigInt64Array.from(alpha, (a, e) => (e % 4 === 0 ? a : e % 4 === 1 ? (a - 1n) & m63 : e % 4 === 2 ? (a + 1n) & m63 : r() & m63)),
  });
  for (const { bits, alpha: al, x } of cases) {
    const s0 = prg.bytes(16 * al.length),
      s1 = prg.bytes(16 * al.length);
    const cw = dcfBitGen(bits, al, s0, s1);
    const y0 = dcfBitEval(0, bits, s0, cw, x),
      y1 = dcfBitEval(1, bits, s1, cw, x);
    for (let e = 0; e < x.length; e++) {
      assert.equal(((y0[e >> 3]! ^ y1[e >> 3]!) >> (e & 7)) & 1, x[e]! < al[e]! ? 1 : 0, `bits ${bits} alpha ${al[e]} x ${x[e]}`);
    }
  }
});

test('DCF: random 63-bit thresholds, inputs at and around them', () => {
  const r = rng(5),
    prg = testPrg(2);
  const n = 3000,
    bits = 63,
    mask = (1n << 63n) - 1n;
  const alpha = new BigInt64Array(n),
    x = new BigInt64Array(n),
    beta = new BigInt64Array(2 * n);
  for (let e = 0; e < n; e++) {
    const a = r() & mask;
    alpha[e] = a;
    const k = e % 5;
    x[e] = k === 0 ? a : k === 1 ? (a - 1n) & mask : k === 2 ? (a + 1n) & mask : r() & mask;
    beta[2 * e] = r();
    beta[2 * e + 1] = r();
  }
  const y = dcfSum(bits, alpha, beta, x, prg);
  for (let e = 0; e < n; e++) {
    const lt = x[e]! < alpha[e]!;
    assert.equal(y[2 * e], lt ? beta[2 * e] : 0n, `alpha ${alpha[e]} x ${x[e]}`);
    assert.equal(y[2 * e + 1], lt ? beta[2 * e + 1] : 0n);
  }
});

/**
 * The largest |z| over (a) each key bit's frequency against 1/2 and (b) each key bit's frequency
 * difference between keys whose α has bit j = 0 and = 1 (every key bit × every α bit): the simplest
 * statistics an attacker holding one party's keys would try.
 */
function keyLeakZ(bits: number, K: number, party: 0 | 1, broken: boolean, bitOutput = false): number {
  const prg = testPrg(3 + party + (broken ? 10 : 0)),
    r = rng(9 + party);
  const alpha = BigInt64Array.from({ length: K }, () => BigInt.asUintN(bits, r()));
  const beta = new BigInt64Array(2 * K).fill(1n);
  for (let e = 0; e < K; e++) beta[2 * e + 1] = 0x1234_5678n; // a fixed payload: only α varies
  const s0 = prg.bytes(16 * K);
  // the broken control: a dealer that gives both parties the same root seed
  const s1 = broken ? s0.slice() : prg.bytes(16 * K);
  const cw = bitOutput ? dcfBitGen(bits, alpha, s0, s1) : dcfGen(bits, alpha, beta, s0, s1);
  const mine = party === 0 ? s0 : s1;
  // One party's key per element: its seed, then per level s_CW, V_CW, t_CW^R, then CW^(n+1)
  // (bit output: s_CW with t_CW^L and V_CW in bits 0 and 1, t_CW^R for bits − 7 levels; then the 128-bit leaf CW).
  const tb = 4 * ((K + 31) >>> 5),
    level = (bitOutput ? 16 : 32) * K + tb;
  // bit output: early termination folds the last 7 levels into a 128-bit leaf correction word
  const levels = bitOutput ? Math.max(0, bits - 7) : bits;
  const keyBits = bitOutput ? 128 + levels * 129 + 128 : 128 + bits * (256 + 1) + 128;
  const ones = new Float64Array(keyBits),
    onesBy = new Float64Array(keyBits * bits * 2),
    count = new Float64Array(bits * 2);
  const bit = (buf: Uint8Array, byte: number, k: number): number => (buf[byte + (k >> 3)]! >> (k & 7)) & 1;
  for (let e = 0; e < K; e++) {
    const kb: number[] = [];
    for (let k = 0; k < 128; k++) kb.push(bit(mine, 16 * e, k));
    for (let i = 0; i < levels; i++) {
      for (let k = 0; k < 128; k++) kb.push(bit(cw, i * level + 16 * e, k)); // s_CW (bit 0: t_CW^L)
      if (!bitOutput) for (let k = 0; k < 128; k++) kb.push(bit(cw, i * level + 16 * K + 16 * e, k)); // V_CW
      kb.push(bit(cw, i * level + (bitOutput ? 16 : 32) * K, e));
    }
    for (let k = 0; k < 128; k++) kb.push(bit(cw, levels * level + 16 * e, k));
    const a = Number(alpha[e]!);
    const ab = Array.from({ length: bits }, (_, j) => (a >>> j) & 1);
    for (let j = 0; j < bits; j++) count[2 * j + ab[j]!]!++;
    for (let k = 0; k < keyBits; k++) {
      if (!kb[k]) continue;
      ones[k]!++;
      const o = k * bits * 2;
      for (let j = 0; j < bits; j++) onesBy[o + 2 * j + ab[j]!]!++;
    }
  }
  let worst = 0;
  for (let k = 0; k < keyBits; k++) {
    worst = Math.max(worst, Math.abs(ones[k]! - K / 2) / Math.sqrt(K / 4));
    for (let j = 0; j < bits; j++) {
      const n0 = count[2 * j]!,
        n1 = count[2 * j + 1]!;
      const p0 = onesBy[(k * bits + j) * 2]! / n0,
        p1 = onesBy[(k * bits + j) * 2 + 1]! / n1;
      worst = Math.max(worst, Math.abs(p0 - p1) / Math.sqrt(0.25 / n0 + 0.25 / n1));
    }
  }
  return worst;
}

test("DCF keys: one party's key bits are uniform and independent of α; a same-seed dealer is caught", () => {
  // ~12,000 z statistics per run; |z| > 5.5 has probability ~4e-8 each under the null hypothesis.
  const Z = 5.5;
  for (const bitOutput of [false, true]) {
    for (const party of [0, 1] as const) {
      const z = keyLeakZ(bitOutput ? 9 : 6, 3000, party, false, bitOutput);
      assert.ok(z < Z, `party ${party}${bitOutput ? ' (bit output)' : ''}: max |z| = ${z.toFixed(2)}`);
    }
    const zb = keyLeakZ(bitOutput ? 9 : 6, 3000, 1, true, bitOutput);
    assert.ok(zb > 20, `broken control went undetected${bitOutput ? ' (bit output)' : ''}: max |z| = ${zb.toFixed(2)}`);
  }
});

/** Additive shares of x: a random x0 and x1 = x − x0. */
function share(x: BigInt64Array, seed: number): [BigInt64Array, BigInt64Array] {
  const r = rng(seed);
  const x0 = BigInt64Array.from({ length: x.length }, () => r());
  return [x0, ringSub(x, x0)];
}

/** Random 64-bit values, random magnitudes and small fixed-point values. */
function testValues(n: number, seed: number): BigInt64Array {
  const r = rng(seed);
  const edge = [0n, 1n, -1n, 2n, -2n, 1n << 62n, -(1n << 62n), -(1n << 63n), (1n << 63n) - 1n, 65536n, -65536n];
  return BigInt64Array.from({ length: n }, (_, i) => (i < edge.length ? edge[i]! : i % 3 === 0 ? r() : i % 3 === 1 ? r() >> BigInt(i % 64) : r() >> 40n));
}

async function two<T>(f: (ctx: PartyContext) => Promise<T>): Promise<{ out: [T, T]; stats: [CommStats, CommStats] }> {
  const res = await runTwoParty(async (ctx: PartyContext) => {
    const b = { ...ctx.peer.stats };
    const out = await f(ctx);
    const s = ctx.peer.stats;
    return { out, stats: { bytesSent: s.bytesSent - b.bytesSent, bytesReceived: s.bytesReceived - b.bytesReceived, rounds: s.rounds - b.rounds } };
  });
  return { out: [res[0].out, res[1].out], stats: [res[0].stats, res[1].stats] };
}

test('FSS ReLU, full 64-bit window: exact against plaintext, 64 bits and 1 round per element', async () => {
  const x = testValues(2001, 3),
    sh = share(x, 4);
  const r = await two((ctx) => reluWithMask(ctx, sh[ctx.party], { protocol: 'fss' }));
  const y = ringAdd(r.out[0].y, r.out[1].y),
    mask = ringAdd(r.out[0].mask, r.out[1].mask);
  for (let i = 0; i < x.length; i++) {
    assert.equal(y[i], x[i]! < 0n ? 0n : x[i], `x = ${x[i]}`);
    assert.equal(mask[i], x[i]! < 0n ? 0n : 1n);
  }
  for (const s of r.stats) {
    assert.equal(s.rounds, 1);
    assert.equal(s.bytesSent, 8 * x.length); // 64 packed bits per element
  }
  assert.deepEqual(reluCost({ protocol: 'fss' }), { bits: 64, rounds: 1 });
});

test("FSS ReLU on reduced windows: the mask is bit for bit the simulator's maskFromShares", async () => {
  const windows: [number, number][] = [
    [0, 1],
    [0, 2],
    [5, 6],
    [0, 16],
    [4, 16],
    [8, 24],
    [20, 52],
    [1, 64],
    [0, 63],
    [12, 64],
    [30, 62],
  ];
  const x = testValues(1500, 8),
    sh = share(x, 9);
  for (const [lsb, msb] of windows) {
    const r = await two((ctx) => reluWithMask(ctx, sh[ctx.party], { protocol: 'fss', lsb, msb }));
    const want = maskFromShares(sh[0], sh[1], { lsb, msb });
    const y = ringAdd(r.out[0].y, r.out[1].y),
      mask = ringAdd(r.out[0].mask, r.out[1].mask);
    for (let i = 0; i < x.length; i++) {
      assert.equal(mask[i], BigInt(want[i]!), `[${lsb}, ${msb}) x = ${x[i]}`);
      assert.equal(y[i], want[i] ? x[i] : 0n);
    }
    const cost = fssReluCost(lsb, msb);
    assert.equal(r.stats[0].rounds, 1);
    assert.equal(r.stats[0].bytesSent, Math.ceil(x.length / 8) * (msb - lsb) + 8 * x.length);
    assert.equal(cost.bits, msb - lsb + 64);
  }
});

test('FSS 2-round variant: 64-bit window exact with 129 bits and 2 rounds; windows match maskFromShares', async () => {
  const x = testValues(1201, 31),
    sh = share(x, 32);
  const r = await two((ctx) => reluWithMask(ctx, sh[ctx.party], { protocol: 'fss2' }));
  const y = ringAdd(r.out[0].y, r.out[1].y),
    mask = ringAdd(r.out[0].mask, r.out[1].mask);
  for (let i = 0; i < x.length; i++) {
    assert.equal(y[i], x[i]! < 0n ? 0n : x[i], `x = ${x[i]}`);
    assert.equal(mask[i], x[i]! < 0n ? 0n : 1n);
  }
  assert.equal(r.stats[0].rounds, 2);
  assert.equal(r.stats[0].bytesSent, 8 * x.length + Math.ceil(x.length / 8) + 8 * x.length); // 64 + 1 + 64 bits
  assert.deepEqual(reluCost({ protocol: 'fss2' }), { bits: 129, rounds: 2 });
  for (const [lsb, msb] of [
    [0, 1],
    [4, 16],
    [20, 52],
    [1, 64],
  ] as [number, number][]) {
    const w = await two((ctx) => reluWithMask(ctx, sh[ctx.party], { protocol: 'fss2', lsb, msb }));
    const want = maskFromShares(sh[0], sh[1], { lsb, msb });
    const wm = ringAdd(w.out[0].mask, w.out[1].mask);
    for (let i = 0; i < x.length; i++) assert.equal(wm[i], BigInt(want[i]!), `[${lsb}, ${msb}) x = ${x[i]}`);
  }
});

test('FSS ltz and MaxPool through the same gate', async () => {
  const x = testValues(300, 12),
    sh = share(x, 13);
  const l = await two((ctx) => ltz(ctx, sh[ctx.party], { protocol: 'fss' }));
  const lt = ringAdd(l.out[0], l.out[1]);
  for (let i = 0; i < x.length; i++) assert.equal(lt[i], x[i]! < 0n ? 1n : 0n);
  // small fixed-point values so that differences never wrap
  const g: PoolGeom = { n: 2, c: 3, h: 5, w: 5, kh: 3, kw: 3, strideH: 2, strideW: 2, padT: 1, padL: 1, padB: 1, padR: 1 };
  const r = rng(14);
  const v = BigInt64Array.from({ length: 2 * 3 * 25 }, () => r() >> 20n);
  const vs = share(v, 15);
  const m = await two((ctx) => maxPool2d(ctx, vs[ctx.party], g, { protocol: 'fss' }));
  const got = ringAdd(m.out[0], m.out[1]);
  let k = 0;
  for (let pl = 0; pl < 6; pl++) {
    for (let oy = 0; oy < 3; oy++) {
      for (let ox = 0; ox < 3; ox++) {
        let best: bigint | undefined;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const iy = oy * 2 - 1 + ky,
              ix = ox * 2 - 1 + kx;
            if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
            const val = v[pl * 25 + iy * 5 + ix]!;
            if (best === undefined || val > best) best = val;
          }
        }
        assert.equal(got[k++], best);
      }
    }
  }
});

test('FSS bad input: windows off the ring, a plan for another layer, truncated keys', async () => {
  const x = new BigInt64Array(4);
  for (const [lsb, msb] of [
    [0, 65],
    [12, 10],
    [-1, 8],
  ] as const) {
    await assert.rejects(
      two((ctx) => relu(ctx, x, { protocol: 'fss', lsb, msb })),
      /invalid bit range|does not fit/,
    );
  }
  // A prefetched plan for window [0, 16) refuses a request for [4, 16) (keys of another layer).
  const s = await localSession();
  try {
    await Promise.all([
      s.clients[0].prefetch([{ kind: 'fssrelu', n: 4, lsb: 0, msb: 16, rounds: 1 }]),
      s.clients[1].prefetch([{ kind: 'fssrelu', n: 4, lsb: 0, msb: 16, rounds: 1 }]),
    ]);
    await assert.rejects(s.clients[1].fssRelu(4, 4, 16), /does not match the prefetched plan/);
  } finally {
    s.close();
  }
  await s.dealer;
  const d = drawFssRelu(testPrg(7), 1, 8, 0, 16);
  const full = new Uint8Array(fssReluKeyBytes(1, 8, 0, 16));
  assert.throws(() => assembleFssRelu(1, d, full.subarray(0, full.length - 1), 8, 0, 16), /truncated/);
});
