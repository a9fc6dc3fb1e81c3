import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CommStats, PartyContext } from '../../src/mpc/context.js';
import { runTwoParty } from '../../src/mpc/local.js';
import { andGates, concatBits, getBit, packBits, splitBits, xorBits } from '../../src/mpc/protocols/bits.js';
import { type CompareOptions, ltz, maxPool2d, relu, reluCost, reluWithMask, signBit, signOnlyAndGates } from '../../src/mpc/protocols/compare.js';
import { type PoolGeom, ringAdd, ringSub } from '../../src/mpc/ring.js';
import { rng } from '../helpers/splitmix.js';

/** Random value in [lo, hi). */
const inRange = (r: () => bigint, lo: bigint, hi: bigint): bigint => lo + (BigInt.asUintN(64, r()) % (hi - lo));

/** Additive shares of x: a random x0 and x1 = x − x0. */
function share(x: BigInt64Array, seed: number): [BigInt64Array, BigInt64Array] {
  const r = rng(seed);
  const x0 = BigInt64Array.from({ length: x.length }, () => r());
  return [x0, ringSub(x, x0)];
}

interface Run<T> {
  out: [T, T];
  stats: [CommStats, CommStats];
}

/** Run f on both parties of an in-process session; shares[i] go to party i. */
async function two<T>(f: (ctx: PartyContext) => Promise<T>): Promise<Run<T>> {
  const res = await runTwoParty(async (ctx: PartyContext) => {
    const before = { ...ctx.peer.stats };
    const out = await f(ctx);
    const s = ctx.peer.stats;
    return {
      out,
      stats: { bytesSent: s.bytesSent - before.bytesSent, bytesReceived: s.bytesReceived - before.bytesReceived, rounds: s.rounds - before.rounds },
    };
  });
  return { out: [res[0].out, res[1].out], stats: [res[0].stats, res[1].stats] };
}

async function reluOf(x: BigInt64Array, opts: CompareOptions, seed = 1): Promise<{ y: BigInt64Array; stats: [CommStats, CommStats] }> {
  const sh = share(x, seed);
  const r = await two((ctx) => relu(ctx, sh[ctx.party], opts));
  return { y: ringAdd(r.out[0], r.out[1]), stats: r.stats };
}

const EDGE = [0n, 1n, -1n, 2n, -2n, 1n << 62n, -(1n << 62n), -(1n << 63n), (1n << 63n) - 1n, 65536n, -65536n, 655n, -655n, 1n << 16n, -(1n << 15n)];

/** Random 64-bit values, random magnitudes, edge cases and small fixed-point values (16 fractional bits). */
function testValues(n: number, seed: number): BigInt64Array {
  const r = rng(seed);
  const x = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % 4;
    if (i < EDGE.length) x[i] = EDGE[i]!;
    else if (k === 0) x[i] = r();
    else if (k === 1) x[i] = r() >> BigInt(i % 64);
    else x[i] = BigInt(Math.round((Number(inRange(r, -2000000n, 2000000n)) / 1000) * 65536) | 0);
  }
  return x;
}

const plainRelu = (v: bigint): bigint => (v < 0n ? 0n : v);

for (const opts of [{}, { fold: true }, { protocol: 'crypten' as const }] as CompareOptions[]) {
  test(`relu ${JSON.stringify(opts)}: matches plaintext on random and edge-case 64-bit values`, async () => {
    const x = testValues(1003, 7);
    const { y } = await reluOf(x, opts);
    for (let i = 0; i < x.length; i++) assert.equal(y[i], plainRelu(x[i]!), `x = ${x[i]}`);
  });

  test(`ltz, signBit and reluWithMask ${JSON.stringify(opts)} agree with plaintext`, async () => {
    const x = testValues(517, 11);
    const sh = share(x, 5);
    const s = await two((ctx) => signBit(ctx, sh[ctx.party], opts));
    const l = await two((ctx) => ltz(ctx, sh[ctx.party], opts));
    const m = await two((ctx) => reluWithMask(ctx, sh[ctx.party], opts));
    const sign = xorBits(s.out[0], s.out[1]),
      lt = ringAdd(l.out[0], l.out[1]);
    const y = ringAdd(m.out[0].y, m.out[1].y),
      mask = ringAdd(m.out[0].mask, m.out[1].mask);
    for (let i = 0; i < x.length; i++) {
      const neg = x[i]! < 0n ? 1 : 0;
      assert.equal(getBit(sign, i), neg);
      assert.equal(lt[i], BigInt(neg));
      assert.equal(mask[i], BigInt(1 - neg));
      assert.equal(y[i], plainRelu(x[i]!));
    }
  });
}

test('reduced bit ranges: exact inside the range, x or 0 for 0 <= x < 2^lsb', async () => {
  const ranges: [number, number][] = [
    [64, 0],
    [64, 20],
    [32, 0],
    [32, 8],
    [24, 12],
    [16, 0],
    [16, 4],
    [8, 0],
    [8, 3],
    [2, 0],
    [2, 1],
    [1, 0],
    [40, 39],
  ];
  for (const [msb, lsb] of ranges) {
    const r = rng(msb * 100 + lsb);
    const half = 1n << BigInt(msb - 1),
      low = 1n << BigInt(lsb);
    const lo = lsb === 0 ? -half : -half + low;
    const vals = [lo, half - 1n, 0n, -1n, low, low - 1n, half - low];
    for (let i = 0; i < 400; i++) vals.push(i % 3 === 0 ? inRange(r, 0n, low) : inRange(r, lo, half));
    const x = BigInt64Array.from(vals.filter((v) => v >= lo && v < half));
    for (const fold of [false, true]) {
      const { y } = await reluOf(x, { msb, lsb, fold }, msb + lsb);
      for (let i = 0; i < x.length; i++) {
        const v = x[i]!;
        if (v >= 0n && v < low && lsb > 0) assert.ok(y[i] === v || y[i] === 0n, `[${lsb},${msb}) x = ${v}: got ${y[i]}`);
        else assert.equal(y[i], plainRelu(v), `[${lsb},${msb}) fold=${fold} x = ${v}`);
      }
    }
  }
});

test('empty bit range (lsb = msb): ReLU is the identity with no communication', async () => {
  const x = testValues(64, 3);
  const { y, stats } = await reluOf(x, { lsb: 10, msb: 10 });
  assert.deepEqual(y, x);
  assert.equal(stats[0].bytesSent + stats[1].bytesSent + stats[0].rounds, 0);
});

test('exact bits and rounds per element per party from the accounting', async () => {
  const n = 1024;
  const x = testValues(n, 9);
  const expected: [CompareOptions, number, number][] = [
    [{ msb: 64 }, 427, 8],
    [{ msb: 32 }, 237, 7],
    [{ msb: 16 }, 143, 6],
    [{ msb: 8 }, 97, 5],
    [{ msb: 2 }, 67, 2],
    [{ msb: 1 }, 65, 1],
    [{ msb: 40, lsb: 8 }, 237, 7],
    [{ fold: true }, 487, 7],
    [{ msb: 32, fold: true }, 265, 6],
    [{ protocol: 'crypten' }, 1856, 9],
  ];
  for (const [opts, bits, rounds] of expected) {
    const { stats } = await reluOf(x, opts);
    for (const s of stats) {
      assert.equal((s.bytesSent * 8) / n, bits, JSON.stringify(opts));
      assert.equal(s.bytesReceived, s.bytesSent);
      assert.equal(s.rounds, rounds, JSON.stringify(opts));
    }
    assert.deepEqual(reluCost(opts), { bits, rounds });
  }
  assert.ok(reluCost().bits <= 600 && reluCost().rounds <= 9);
  assert.equal(signOnlyAndGates(64), 181);
});

test('openings are packed across element boundaries when n is not a multiple of 8', async () => {
  const n = 13;
  const { y, stats } = await reluOf(testValues(n, 4), { msb: 16, lsb: 0 });
  assert.equal(y.length, n);
  // per AND level: ceil(2·gates·13 / 8) bytes; final: ceil(13/8) + 8·13
  const levels = [15, 13, 7, 3, 1];
  const expect = levels.reduce((a, g) => a + Math.ceil((2 * g * n) / 8), 0) + 2 + 8 * n;
  assert.equal(stats[0].bytesSent, expect);
});

test('bits: concat/split round trip at odd widths and batched AND gates', async () => {
  const r = rng(2);
  for (const nbits of [1, 5, 8, 13, 64, 100]) {
    const vs = Array.from({ length: 5 }, () => packBits(Array.from({ length: nbits }, () => Number(r() & 1n))));
    const packed = concatBits(vs, nbits);
    assert.equal(packed.length, Math.ceil((5 * nbits) / 8));
    assert.deepEqual(splitBits(packed, 5, nbits), vs);
  }
  const nbits = 77;
  const bits = (): Uint8Array => packBits(Array.from({ length: nbits }, () => Number(r() & 1n)));
  const xs = [bits(), bits(), bits()],
    ys = [bits(), bits(), bits()];
  const m0 = xs.map(() => bits()),
    n0 = ys.map(() => bits());
  const res = await two((ctx) =>
    andGates(
      ctx,
      xs.map((xv, k) => (ctx.party === 0 ? [m0[k]!, n0[k]!] : [xorBits(xv, m0[k]!), xorBits(ys[k]!, n0[k]!)]) as [Uint8Array, Uint8Array]),
      nbits,
    ),
  );
  assert.equal(res.stats[0].rounds, 1);
  assert.equal(res.stats[0].bytesSent, Math.ceil((2 * 3 * nbits) / 8));
  for (let k = 0; k < 3; k++) {
    const z = xorBits(res.out[0][k]!, res.out[1][k]!);
    for (let i = 0; i < nbits; i++) assert.equal(getBit(z, i), getBit(xs[k]!, i) & getBit(ys[k]!, i));
  }
});

function plainMaxPool(x: BigInt64Array, g: PoolGeom): BigInt64Array {
  const oh = Math.floor((g.h + g.padT + g.padB - g.kh) / g.strideH) + 1,
    ow = Math.floor((g.w + g.padL + g.padR - g.kw) / g.strideW) + 1;
  const out = new BigInt64Array(g.n * g.c * oh * ow);
  let o = 0;
  for (let p = 0; p < g.n * g.c; p++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let m: bigint | undefined;
        for (let ky = 0; ky < g.kh; ky++) {
          for (let kx = 0; kx < g.kw; kx++) {
            const iy = oy * g.strideH - g.padT + ky,
              ix = ox * g.strideW - g.padL + kx;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            const v = x[(p * g.h + iy) * g.w + ix]!;
            if (m === undefined || v > m) m = v;
          }
        }
        out[o++] = m!;
      }
    }
  }
  return out;
}

test('maxPool2d matches plaintext (2x2 stride 2; 3x3 stride 2 pad 1, padding excluded)', async () => {
  const geoms: PoolGeom[] = [
    { n: 2, c: 3, h: 6, w: 6, kh: 2, kw: 2, strideH: 2, strideW: 2, padT: 0, padL: 0, padB: 0, padR: 0 },
    { n: 1, c: 2, h: 7, w: 5, kh: 3, kw: 3, strideH: 2, strideW: 2, padT: 1, padL: 1, padB: 1, padR: 1 },
  ];
  for (const g of geoms) {
    for (const opts of [{}, { protocol: 'crypten' as const }, { msb: 40 }] as CompareOptions[]) {
      const r = rng(g.h * 31 + g.kh);
      // all negative in some planes so that zero padding would be visibly wrong
      const x = BigInt64Array.from({ length: g.n * g.c * g.h * g.w }, (_, i) => inRange(r, -(1n << 30n), i % 3 === 0 ? -5n : 1n << 30n));
      x[1] = x[0]!; // a tie
      const sh = share(x, 8);
      const res = await two((ctx) => maxPool2d(ctx, sh[ctx.party], g, opts));
      assert.deepEqual(ringAdd(res.out[0], res.out[1]), plainMaxPool(x, g), JSON.stringify({ g, opts }));
      const levels = Math.ceil(Math.log2(g.kh * g.kw));
      assert.equal(res.stats[0].rounds, levels * reluCost(opts).rounds);
    }
  }
});

test('bad options are refused with a clear message', async () => {
  const x = new BigInt64Array(4);
  await assert.rejects(
    two((ctx) => relu(ctx, x, { protocol: 'crypten', msb: 32 })),
    /crypten protocol works on the full ring/,
  );
  await assert.rejects(
    two((ctx) => relu(ctx, x, { lsb: 9, msb: 8 })),
    /invalid bit range/,
  );
  await assert.rejects(
    two((ctx) => relu(ctx, x, { msb: 65 })),
    /invalid bit range/,
  );
});
