/** The page's crypto (src/web/aes.ts, sha256.ts, shims/node-crypto.ts) produces exactly node:crypto's bytes. */

import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { AesCtr } from '../../src/web/aes.js';
import { sha256 } from '../../src/web/sha256.js';
import * as shim from '../../src/web/shims/node-crypto.js';

test('AES-128-CTR keystream equals OpenSSL for random keys, IVs (incl. counter carry) and chunkings', () => {
  const ivs = [new Uint8Array(16), Uint8Array.from({ length: 16 }, (_, i) => (i < 12 ? i : 0xff)), new Uint8Array(16).fill(0xff)];
  for (let t = 0; t < 8; t++) {
    const key = new Uint8Array(randomBytes(16));
    const iv = t < ivs.length ? ivs[t]! : new Uint8Array(randomBytes(16));
    const ref = createCipheriv('aes-128-ctr', key, iv);
    const mine = new AesCtr(key, iv);
    for (const n of [0, 1, 15, 16, 17, 33, 4096, 5000, 3]) {
      const data = new Uint8Array(randomBytes(n));
      assert.deepEqual(mine.update(data), new Uint8Array(ref.update(data)), `key ${t}, chunk ${n}`);
    }
  }
  // FIPS-197 appendix C.1 via CTR: the first block of the keystream at counter = plaintext.
  const k = Uint8Array.from({ length: 16 }, (_, i) => i);
  const pt = Uint8Array.from({ length: 16 }, (_, i) => i * 0x11);
  const ks = new AesCtr(k, pt).update(new Uint8Array(16));
  assert.equal(Buffer.from(ks).toString('hex'), '69c4e0d86a7b0430d8cdb78070b4c55a');
});

test('SHA-256 and HMAC-SHA-256 equal node:crypto at block-boundary lengths', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_000]) {
    const d = new Uint8Array(randomBytes(n));
    assert.equal(Buffer.from(sha256(d)).toString('hex'), createHash('sha256').update(d).digest('hex'), `length ${n}`);
    assert.equal(shim.createHash('sha256').update(d).digest('hex'), createHash('sha256').update(d).digest('hex'));
    const key = new Uint8Array(randomBytes(n % 100));
    assert.deepEqual(new Uint8Array(shim.createHmac('sha256', key).update(d).digest()), new Uint8Array(createHmac('sha256', key).update(d).digest()));
  }
  assert.equal(shim.createHash('sha256').update('abc').digest('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('the shim refuses what it does not implement, by name, and ciphers as OpenSSL', () => {
  assert.throws(() => shim.createCipheriv('aes-256-gcm', new Uint8Array(32), new Uint8Array(12)), /aes-256-gcm is not available/);
  assert.throws(() => shim.createHash('md5'), /md5 is not available/);
  assert.equal(shim.randomBytes(100_000).length, 100_000);
  // What it does implement: the Prg's cipher, output as a Buffer (a view of the stream's fresh bytes).
  const key = new Uint8Array(randomBytes(16));
  const c = shim.createCipheriv('aes-128-ctr', key, new Uint8Array(16));
  const ref = createCipheriv('aes-128-ctr', key, new Uint8Array(16));
  for (const n of [16, 5000, 3]) assert.deepEqual(new Uint8Array(c.update(new Uint8Array(n))), new Uint8Array(ref.update(new Uint8Array(n))));
});

test('CtrStream (WebCrypto ahead of the reader, JS in between) gives OpenSSL’s stream whatever the timing', async () => {
  const { CtrStream } = await import('../../src/web/ctr-stream.js');
  for (const subtle of [globalThis.crypto.subtle, undefined]) {
    for (let t = 0; t < 3; t++) {
      const key = new Uint8Array(randomBytes(16));
      const iv = t === 0 ? new Uint8Array(16).fill(0xff) : new Uint8Array(randomBytes(16));
      const ref = createCipheriv('aes-128-ctr', key, iv);
      const mine = new CtrStream(key, iv, subtle);
      // Draws of odd sizes, some right away (JS path), some after the background chunks landed.
      for (const [n, wait] of [
        [5, 0],
        [100_000, 0],
        [33, 5],
        [70_000, 0],
        [1 << 20, 20],
        [17, 0],
        [3_000_000, 30],
        [1, 0],
      ] as const) {
        if (wait) await new Promise((r) => setTimeout(r, wait));
        // Zeros (as the Prg passes), random bytes, and random bytes at an unaligned offset.
        const data = n === 70_000 ? new Uint8Array(n + 1).subarray(1) : new Uint8Array(n);
        if (n < 1000 || n === 70_000 || n === 100_000) data.set(randomBytes(n));
        assert.deepEqual(mine.update(data), new Uint8Array(ref.update(data)), `subtle ${!!subtle}, key ${t}, draw ${n}`);
      }
    }
  }
});

test('CtrStream with reserve (fetch only what is announced) and keystream() draws give OpenSSL’s stream', async () => {
  const { CtrStream } = await import('../../src/web/ctr-stream.js');
  const key = new Uint8Array(randomBytes(16));
  const iv = new Uint8Array(randomBytes(16));
  const ref = createCipheriv('aes-128-ctr', key, iv);
  const mine = new CtrStream(key, iv);
  // A first draw before any reserve (blind fetch-ahead and JS), then batches announced ahead —
  // exactly, short (the rest comes from JS), or not at all — drawn as the Prg does (keystream()).
  for (const [reserve, draws] of [
    [undefined, [5000, 300_000]],
    [300_000 + 4096, [100, 299_900]],
    [300_000, [4096, 400_000]],
    [undefined, [70_001, 3]],
  ] as const) {
    if (reserve !== undefined) await mine.reserve(reserve);
    for (const n of draws) {
      const out = new Uint8Array(n + 3);
      mine.keystream(out, 3, n);
      assert.deepEqual(out.subarray(3), new Uint8Array(ref.update(new Uint8Array(n))), `reserve ${reserve}, draw ${n}`);
    }
  }
});

test('the page Prg path: the shim cipher’s keystream() and update() continue one stream', () => {
  const key = new Uint8Array(randomBytes(16));
  const c = shim.createCipheriv('aes-128-ctr', key, new Uint8Array(16));
  const ref = createCipheriv('aes-128-ctr', key, new Uint8Array(16));
  const out = new Uint8Array(10_000);
  c.keystream(out, 0, 10_000);
  assert.deepEqual(out, new Uint8Array(ref.update(new Uint8Array(10_000))));
  assert.deepEqual(new Uint8Array(c.update(new Uint8Array(77))), new Uint8Array(ref.update(new Uint8Array(77))));
});
