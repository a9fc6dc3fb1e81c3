import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BitRange, maskFromShares, misreadCarryProbability, simulateMask } from '../../src/hummingbird/simulate.js';
import type { PartyContext } from '../../src/mpc/context.js';
import { runTwoParty } from '../../src/mpc/local.js';
import { ltz, reluWithMask } from '../../src/mpc/protocols/compare.js';
import { ringAdd, ringSub } from '../../src/mpc/ring.js';
import { SeededRng } from '../../src/seeded-rng.js';
import { rng } from '../helpers/splitmix.js';

/** Uniform additive shares of x: x0 random, x1 = x − x0. */
function share(x: BigInt64Array, seed: number): [BigInt64Array, BigInt64Array] {
  const r = rng(seed);
  const x0 = BigInt64Array.from({ length: x.length }, () => r());
  return [x0, ringSub(x, x0)];
}

/** Values that exercise a range: misread window [0, 2^lsb), both wrap boundaries at msb, random magnitudes. */
function valuesFor(range: BitRange, n: number, seed: number): BigInt64Array {
  const r = rng(seed);
  const out: bigint[] = [0n, 1n, -1n];
  const { msb, lsb } = range;
  for (let k = 0n; k < 8n; k++) out.push(k, (1n << BigInt(lsb)) - 1n - k, (1n << BigInt(lsb)) + k, -(1n << BigInt(lsb)) + k);
  if (msb >= 1 && msb <= 64) {
    const h = 1n << BigInt(Math.max(0, msb - 1));
    for (const d of [-2n, -1n, 0n, 1n, 2n]) out.push(h + d, -h + d, 2n * h + d, -2n * h + d);
  }
  while (out.length < n) {
    const v = r();
    const kind = out.length % 3;
    out.push(kind === 0 ? v : kind === 1 ? v >> BigInt(64 - Math.max(1, msb)) : v >> BigInt(40 + (out.length % 20)));
  }
  return BigInt64Array.from(out.slice(0, n), (v) => BigInt.asIntN(64, v));
}

const RANGES: BitRange[] = [
  { msb: 64, lsb: 0 },
  { msb: 24, lsb: 6 },
  { msb: 30, lsb: 12 },
  { msb: 20, lsb: 0 },
  { msb: 8, lsb: 4 },
  { msb: 40, lsb: 33 },
  { msb: 33, lsb: 31 },
  { msb: 37, lsb: 36 },
  { msb: 1, lsb: 0 },
  { msb: 64, lsb: 63 },
  { msb: 64, lsb: 40 },
  { msb: 12, lsb: 12 },
];

test('maskFromShares equals the MPC reluWithMask mask bit for bit (fixed seeds, edge and wrap cases)', async () => {
  for (const [i, range] of RANGES.entries()) {
    const x = valuesFor(range, 601, 100 + i);
    const sh = share(x, 200 + i);
    const [r0, r1] = await runTwoParty((ctx: PartyContext) => reluWithMask(ctx, sh[ctx.party], range));
    const mpcMask = ringAdd(r0.mask, r1.mask);
    const sim = maskFromShares(sh[0], sh[1], range);
    let misreads = 0,
      wraps = 0;
    for (let j = 0; j < x.length; j++) {
      assert.equal(BigInt(sim[j]!), mpcMask[j], `range [${range.lsb}, ${range.msb}) x = ${x[j]}`);
      // the ReLU output also follows the mask
      assert.equal(ringAdd(r0.y, r1.y)[j], sim[j] ? x[j] : 0n);
      const exact = x[j]! >= 0n ? 1 : 0;
      if (sim[j] !== exact) {
        if (x[j]! >= 0n && x[j]! < 1n << BigInt(range.lsb)) misreads++;
        else wraps++;
      }
    }
    const b = range.msb - range.lsb;
    if (b > 0 && range.lsb > 1) assert.ok(misreads > 0, `range [${range.lsb}, ${range.msb}): the misread window should be hit`);
    if (b > 0 && range.msb < 64) assert.ok(wraps > 0, `range [${range.lsb}, ${range.msb}): the wrap cases should be hit`);
    if (b === 64) assert.equal(misreads + wraps, 0);
  }
});

test('maskFromShares equals 1 − ltz of the MPC on the same shares', async () => {
  const range = { msb: 26, lsb: 9 };
  const x = valuesFor(range, 777, 9);
  const sh = share(x, 10);
  const [a, b] = await runTwoParty((ctx: PartyContext) => ltz(ctx, sh[ctx.party], range));
  const neg = ringAdd(a, b);
  const sim = maskFromShares(sh[0], sh[1], range);
  for (let j = 0; j < x.length; j++) assert.equal(BigInt(1 - sim[j]!), neg[j], `x = ${x[j]}`);
});

test('simulateMask: exact sign without carry loss, wraps at msb like the ring', () => {
  const f = 16;
  const range = { msb: 20, lsb: 0 };
  // |x·2^16| < 2^19 is exact; 2^19 wraps to negative; -2^19 - 1 wraps to positive
  const xs = [0, 1 / 65536, -1 / 65536, 7.99, -7.99, 8, -8, -8 - 1 / 65536];
  const m = simulateMask(xs, range, f, 'none');
  assert.deepEqual(Array.from(m), [1, 1, 0, 1, 0, 0, 0, 1]);
  // worst mode: every 0 ≤ x < 2^l − 1 (fixed) is read as negative
  const w = simulateMask([0, 5 / 65536, 62 / 65536, 63 / 65536, 64 / 65536, -1 / 65536], { msb: 20, lsb: 6 }, f, 'worst');
  assert.deepEqual(Array.from(w), [0, 0, 0, 1, 1, 0]);
  assert.deepEqual(Array.from(simulateMask([-3, 3], { msb: 9, lsb: 9 }, f, 'none')), [1, 1]);
});

test('simulateMask with fresh shares reproduces the MPC misread rate (formula and real MPC on the same x)', async () => {
  const lsb = 4,
    range = { msb: 22, lsb };
  const reps = 500;
  const vals = Array.from({ length: 16 }, (_, v) => v); // fixed-point values 0..15 = the whole misread window
  const xFixed = new BigInt64Array(vals.length * reps);
  vals.forEach((v, k) => xFixed.fill(BigInt(v), k * reps, (k + 1) * reps));
  const sh = share(xFixed, 4242);
  const [r0, r1] = await runTwoParty((ctx: PartyContext) => reluWithMask(ctx, sh[ctx.party], range));
  const mpcMask = ringAdd(r0.mask, r1.mask);
  const xFloat = Float32Array.from(xFixed, (v) => Number(v) / 65536);
  const simMask = simulateMask(xFloat, range, 16, 'random', new SeededRng(99));
  let chiMpc = 0,
    chiSim = 0;
  for (const [k, v] of vals.entries()) {
    const p = misreadCarryProbability(v, lsb);
    assert.ok(Math.abs(p - (1 - (v + 1) / 16)) < 1e-12);
    let mpc = 0,
      sim = 0;
    for (let i = k * reps; i < (k + 1) * reps; i++) {
      if (mpcMask[i] === 0n) mpc++;
      if (simMask[i] === 0) sim++;
    }
    const sd = Math.sqrt(reps * p * (1 - p)) + 0.5;
    assert.ok(Math.abs(mpc - reps * p) < 4.5 * sd, `MPC misreads ${mpc}/${reps} for x=${v}, expected ${(reps * p).toFixed(1)}`);
    assert.ok(Math.abs(sim - reps * p) < 4.5 * sd, `simulated misreads ${sim}/${reps} for x=${v}, expected ${(reps * p).toFixed(1)}`);
    assert.ok(Math.abs(sim - mpc) < 6.5 * sd, `x=${v}: simulator ${sim} vs MPC ${mpc}`);
    if (p > 0 && p < 1) {
      chiMpc += (mpc - reps * p) ** 2 / (reps * p * (1 - p));
      chiSim += (sim - reps * p) ** 2 / (reps * p * (1 - p));
    }
    if (v === 15) assert.equal(mpc + sim, 0, 'x = 2^l − 1 can never be misread');
  }
  // 15 degrees of freedom: the 99.9 % quantile of chi-square is 37.7
  assert.ok(chiMpc < 37.7, `MPC chi-square ${chiMpc.toFixed(1)}`);
  assert.ok(chiSim < 37.7, `simulator chi-square ${chiSim.toFixed(1)}`);
  // the overall rate: mean of 1 − (x+1)/16 over x = 0..15 is 15/32
  const total = simMask.reduce((a, m) => a + (m === 0 ? 1 : 0), 0) / simMask.length;
  assert.ok(Math.abs(total - 15 / 32) < 0.02, `overall simulated misread rate ${total}`);
});

test('simulateMask matches maskFromShares statistically on activations spread over the window and beyond', async () => {
  // random fixed-point activations in [-2^10, 2^10): compare misread counts of MPC-style shares vs simulation
  const r = rng(5);
  const n = 20000,
    range = { msb: 18, lsb: 7 };
  const x = BigInt64Array.from({ length: n }, () => (BigInt.asUintN(64, r()) % 2048n) - 1024n);
  const sh = share(x, 6);
  const exact = maskFromShares(sh[0], sh[1], range);
  const sim = simulateMask(
    Float32Array.from(x, (v) => Number(v) / 65536),
    range,
    16,
    'random',
    new SeededRng(3),
  );
  let e = 0,
    s = 0,
    expect = 0;
  for (let i = 0; i < n; i++) {
    const pos = x[i]! >= 0n ? 1 : 0;
    if (exact[i] !== pos) e++;
    if (sim[i] !== pos) s++;
    // a lost carry flips the sign only when ⌊x / 2^l⌋ = 0
    if (x[i]! >= 0n && x[i]! < 1n << BigInt(range.lsb)) expect += misreadCarryProbability(Number(x[i]), range.lsb);
    else assert.equal(sim[i], pos, `x = ${x[i]} outside the misread window must be read exactly`);
  }
  const sd = Math.sqrt(expect);
  assert.ok(Math.abs(e - expect) < 5 * sd, `share-level misreads ${e}, expected ${expect.toFixed(0)}`);
  assert.ok(Math.abs(s - expect) < 5 * sd, `simulated misreads ${s}, expected ${expect.toFixed(0)}`);
});
