import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CryptoRng, hmacSha256, hmacVerify, Prg, SEED_BYTES, secretInt } from '../../src/crypto/index.js';

test('HMAC-SHA-256 matches RFC 4231 test case 1 and verifies in constant time', () => {
  const key = new Uint8Array(20).fill(0x0b);
  const tag = hmacSha256(key, new TextEncoder().encode('Hi There'));
  assert.equal(Buffer.from(tag).toString('hex'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
  assert.ok(hmacVerify(key, tag, new TextEncoder().encode('Hi There')));
  tag[0]! ^= 1;
  assert.ok(!hmacVerify(key, tag, new TextEncoder().encode('Hi There')));
});

test('CryptoRng: a seed gives one stream; fresh seeds differ', () => {
  const seed = new Uint8Array(SEED_BYTES).fill(7);
  const a = new CryptoRng(seed),
    b = new CryptoRng(seed);
  for (let i = 0; i < 5000; i++) assert.equal(a.nextU32(), b.nextU32());
  // Two fresh generators (seeds from node:crypto) differ: 64 equal bits would be a 2^-64 accident.
  const [c, d] = [new CryptoRng(), new CryptoRng()];
  assert.ok(c.nextU32() !== d.nextU32() || c.nextU32() !== d.nextU32(), 'two fresh CryptoRng streams start equal');
});

test('CryptoRng.fillU32 reads the AES-CTR keystream of its seed in one call, at any array offset', () => {
  const seed = new Uint8Array(SEED_BYTES).fill(3);
  const want = new Uint32Array(new Prg(seed).bytes(4 * 1001).buffer.slice(0));
  const buf = new Uint32Array(1002);
  const got = new CryptoRng(seed).fillU32(buf.subarray(1));
  assert.deepEqual(got, want.subarray(0, 1001));
  assert.equal(buf[0], 0);
  // Bits are balanced (a broken fill of zeros or a repeated word would fail).
  let ones = 0;
  for (const w of got) for (let b = 0; b < 32; b++) ones += (w >>> b) & 1;
  assert.ok(Math.abs(ones / (32 * 1001) - 0.5) < 0.01, String(ones));
});

test('CryptoRng.int is unbiased (chi-square on a non-power-of-two range) and checks its range', () => {
  const rng = new CryptoRng();
  const n = 7,
    draws = 70000,
    counts = new Array<number>(n).fill(0);
  for (let i = 0; i < draws; i++) counts[rng.int(n)]!++;
  const e = draws / n;
  const chi = counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
  assert.ok(chi < 22.5, `chi-square ${chi} (6 dof, p = 0.001 at 22.5)`); // deliberately loose: fails on a real bias only
  for (let i = 0; i < 1000; i++) {
    const x = rng.int(2 ** 40 + 3);
    assert.ok(Number.isInteger(x) && x >= 0 && x < 2 ** 40 + 3);
  }
  assert.throws(() => rng.int(0), /bad range/);
  assert.throws(() => rng.int(1.5), /bad range/);
  const s = secretInt(3);
  assert.ok(s >= 0 && s < 3);
});

test('CryptoRng.normal: continuous (no repeated values), standard moments, real tails', () => {
  const rng = new CryptoRng();
  const n = 200000,
    xs = new Float64Array(n);
  for (let i = 0; i < n; i++) xs[i] = rng.normal();
  assert.equal(new Set(xs).size, n, 'a continuous distribution repeats no value');
  const mean = xs.reduce((s, x) => s + x, 0) / n;
  const v = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / n;
  const k = xs.reduce((s, x) => s + (x - mean) ** 4, 0) / n / v ** 2;
  assert.ok(Math.abs(mean) < 0.015 && Math.abs(v - 1) < 0.02 && Math.abs(k - 3) < 0.1, `mean ${mean} var ${v} kurtosis ${k}`);
  const tail = xs.filter((x) => Math.abs(x) > 4).length; // expected 2·3.17e-5·n ≈ 12.7
  assert.ok(tail >= 2 && tail <= 35, `|x| > 4 count ${tail}`);
});

test('CryptoRng.shuffle is a permutation', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i);
  const ys = new CryptoRng().shuffle([...xs]);
  assert.deepEqual(
    [...ys].sort((a, b) => a - b),
    xs,
  );
});
