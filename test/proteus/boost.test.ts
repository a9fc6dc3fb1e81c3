import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auc, Boosted, binOf, Logistic, Prng, quantileCuts } from '../../src/proteus/index.js';

/** Held-out AUC of a classifier fitted on the first half of (xs, ys). */
function heldOut(fit: (xs: number[][], ys: boolean[]) => { score(x: number[]): number }, xs: number[][], ys: boolean[]): number {
  const h = xs.length / 2;
  const clf = fit(xs.slice(0, h), ys.slice(0, h));
  return auc(
    xs.slice(h).map((x) => clf.score(x)),
    ys.slice(h),
  );
}

test('quantile cuts: midpoints between distinct values, ties never split; NaN is bin 0', () => {
  assert.deepEqual([...quantileCuts(Float64Array.from([3, 1, 1, 2, Number.NaN]), 10)], [1.5, 2.5]);
  const cuts = quantileCuts(
    Float64Array.from({ length: 100 }, (_, i) => (i < 60 ? 0 : i)),
    4,
  );
  // 60 zeros: no cut falls inside them, and each cut lies between two present values.
  assert.ok(cuts.every((c) => c > 0) && cuts.length <= 4 && cuts.length >= 2, `${[...cuts]}`);
  assert.deepEqual(
    [Number.NaN, 0.5, 1.5, 2, 2.5, 3, 99].map((v) => binOf(Float64Array.from([1.5, 2.5]), v)),
    [0, 1, 1, 2, 2, 3, 3],
  );
});

test('boosted trees find an interaction and a middle band that logistic regression cannot; not noise', () => {
  const rng = new Prng(7);
  const n = 4000;
  const u = (): number => 2 * rng.next() - 1;
  // XOR of two signs (no single feature, no linear score tells).
  const xor = Array.from({ length: n }, () => [u(), u(), u()]);
  const yx = xor.map((x) => x[0]! * x[1]! > 0);
  // A rare positive class in the middle of one feature's range (1 in ~20, like one real member per K = 20).
  const band = Array.from({ length: n }, () => [u(), u()]);
  const yb = band.map((x) => Math.abs(x[0]!) < 0.05);
  const boosted = (xs: number[][], ys: boolean[]) => new Boosted().fit(xs, ys);
  const logistic = (xs: number[][], ys: boolean[]) => new Logistic().fit(xs, ys);
  const r = {
    xorBoosted: heldOut(boosted, xor, yx),
    xorLogistic: heldOut(logistic, xor, yx),
    bandBoosted: heldOut(boosted, band, yb),
    bandLogistic: heldOut(logistic, band, yb),
  };
  assert.ok(r.xorBoosted > 0.95 && r.bandBoosted > 0.95, JSON.stringify(r));
  assert.ok(r.xorLogistic < 0.6 && r.bandLogistic < 0.65, JSON.stringify(r));
  // What the trees rely on: the two XOR features, not the third.
  const imp = new Boosted().fit(xor, yx).importance();
  assert.ok(imp[0]! + imp[1]! > 0.9 && Math.abs(imp.reduce((a, b) => a + b, 0) - 1) < 1e-9, `${imp}`);
  // Labels independent of the features: held-out AUC near 0.5.
  const yn = band.map(() => rng.next() < 0.05);
  const noise = heldOut(boosted, band, yn);
  assert.ok(Math.abs(noise - 0.5) < 0.12, `noise AUC ${noise}`);
});

test('boosted trees: NaN features are a value of their own; the same data gives the same scores', () => {
  const rng = new Prng(3);
  const xs = Array.from({ length: 600 }, (_, i) => [i % 3 === 0 ? Number.NaN : rng.normal(), rng.normal()]);
  const ys = xs.map((x) => Number.isNaN(x[0]!));
  const a = new Boosted().fit(xs, ys);
  const b = new Boosted().fit(xs, ys);
  assert.ok(a.score([Number.NaN, 0]) > 0.9 && a.score([0, 0]) < 0.1);
  assert.deepEqual(
    xs.map((x) => a.score(x)),
    xs.map((x) => b.score(x)),
  );
  // One class only: a constant score, no error.
  assert.equal(
    new Boosted()
      .fit(
        xs,
        xs.map(() => false),
      )
      .score([1, 1]),
    new Boosted()
      .fit(
        xs,
        xs.map(() => false),
      )
      .score([-5, 0]),
  );
  assert.throws(() => new Boosted({ bins: 2 }).fit(xs, ys), /bins must be an integer in 3\.\.256/);
});
