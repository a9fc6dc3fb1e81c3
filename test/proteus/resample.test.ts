import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prng, secretRng } from '../../src/proteus/index.js';
import { freshSample, quantileAt, shrinkToPool } from '../../src/proteus/resample.js';

const sorted = (n: number, f: () => number): Float32Array => Float32Array.from({ length: n }, f).sort();
const mean = (a: number[]): number => a.reduce((p, q) => p + q, 0) / a.length;

test('a fresh sample passes its source extreme about half the time, as a second sample would: bounded by about a spacing, exponential as far as its own scale', () => {
  const rng = secretRng(1);
  const src = new Prng(2);
  // Uniform on [0, 1), 512 values: a second sample as large passes the first's maximum with probability ½, by 1/513 on average.
  const passU: number[] = [];
  const overU: number[] = [];
  // Exponential(1), 1000 values: the excess of a new maximum over the old is Exp(1).
  const passE: number[] = [];
  const overE: number[] = [];
  for (let r = 0; r < 300; r++) {
    const u = sorted(512, () => src.next());
    const fu = freshSample(u, new Float32Array(512), rng);
    const mu = Math.max(...fu);
    passU.push(mu > u[511]! ? 1 : 0);
    if (mu > u[511]!) overU.push(mu - u[511]!);
    const e = sorted(1000, () => -Math.log(1 - src.next()));
    const fe = freshSample(e, new Float32Array(1000), rng);
    const me = Math.max(...fe);
    passE.push(me > e[999]! ? 1 : 0);
    if (me > e[999]!) overE.push(me - e[999]!);
  }
  assert.ok(Math.abs(mean(passU) - 0.5) < 0.09, `uniform: passed its source's maximum in ${mean(passU)}`);
  assert.ok(Math.abs(mean(passE) - 0.5) < 0.09, `exponential: passed its source's maximum in ${mean(passE)}`);
  // (ξ is shrunk towards 0 on 32 values: a bounded tail reaches a little past one spacing.)
  assert.ok(mean(overU) < 3 / 513, `uniform: ${mean(overU)} past the maximum (a spacing is 1/513)`);
  assert.ok(mean(overE) > 0.5 && mean(overE) < 2, `exponential: ${mean(overE)} past the maximum (Exp(1) excess: 1)`);
});

test('fresh samples copy no value and repeat none of a continuous source, and keep a point mass of zeros', () => {
  const rng = secretRng(3);
  const src = new Prng(4);
  const normal = sorted(4096, () => src.normal());
  const f = freshSample(normal, new Float32Array(4096), rng);
  const seen = new Set(normal);
  // (A float32 value lands on a source value about as often as ulp/spacing: ~1e-4 in the bulk.)
  assert.ok(f.filter((v) => seen.has(v)).length <= 4, 'values copied from the source');
  assert.ok(new Set(f).size >= 4094, `${4096 - new Set(f).size} repeated values`);
  // Half exact zeros (a pruned tensor): a fresh sample keeps about half.
  const half = sorted(2000, () => (src.next() < 0.5 ? 0 : src.normal()));
  const zeros = (a: Float32Array): number => a.filter((v) => v === 0).length / a.length;
  const z = freshSample(half, new Float32Array(20_000), rng);
  assert.ok(Math.abs(zeros(z) - zeros(half)) < 0.03, `zero fraction ${zeros(z)} vs the source's ${zeros(half)}`);
});

test("shrinkToPool takes the pool's shape for a sample of the pool's distribution and keeps a sample's own shape where it differs", () => {
  const src = new Prng(5);
  const pool = sorted(20_000, () => src.normal());
  const dist = (a: Float32Array, b: Float32Array): number => mean(Array.from(a, (v, i) => Math.abs(v - b[i]!)));
  const poolAt = (m: number): Float32Array => Float32Array.from({ length: m }, (_, j) => quantileAt(pool, (j + 1 - 0.3175) / (m + 1 - 0.635)));
  // A normal sample: its noise is shrunk away (the parent is the pool itself).
  const own = sorted(256, () => src.normal());
  assert.equal(shrinkToPool(own, pool), pool, 'a normal sample kept its own noise');
  // A heavy-tailed sample (Laplace, scale 1/√2: variance 1) keeps its shape (at 1024 values its
  // departure is ~15 times a normal sample's noise; at 256, ~4 times, and it moves half way).
  const lap = sorted(1024, () => (Math.log(1 - src.next()) * (src.next() < 0.5 ? -1 : 1)) / Math.SQRT2);
  const q = shrinkToPool(lap, pool);
  assert.ok(dist(q, lap) < 0.25 * dist(lap, poolAt(1024)), 'a Laplace sample lost its shape to the normal pool');
  for (let i = 1; i < 1024; i++) assert.ok(q[i]! >= q[i - 1]!, 'the parent is sorted');
});
