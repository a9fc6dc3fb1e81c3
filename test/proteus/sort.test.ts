import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prng } from '../../src/proteus/index.js';
import { sortFloat32 } from '../../src/proteus/sort.js';

test('the radix float32 sort gives the built-in order (−0 before +0, ±Infinity, NaN last, views, short arrays)', () => {
  const rng = new Prng(5);
  for (const n of [0, 1, 100, 5000, 300_000]) {
    const a = Float32Array.from({ length: n }, () => (rng.next() - 0.5) * Math.exp(rng.next() * 20 - 10));
    for (let i = 0; i < n / 50; i++)
      a[Math.floor(rng.next() * n)] = [0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-45, -1e-45][i % 7]!;
    const want = Float32Array.from(a).sort();
    const got = sortFloat32(Float32Array.from(a));
    for (let i = 0; i < n; i++) assert.ok(Object.is(got[i], want[i]), `n=${n} at ${i}: ${got[i]} vs ${want[i]}`);
  }
  // A view sorts only its own values.
  const big = Float32Array.from({ length: 10_000 }, (_v, i) => 10_000 - i);
  sortFloat32(big.subarray(5000));
  assert.equal(big[0], 10_000);
  assert.equal(big[5000], 1);
  assert.equal(big[9999], 5000);
});
