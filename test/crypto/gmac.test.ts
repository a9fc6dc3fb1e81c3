/** GMAC over AES-256-GCM: the NIST vector, and a tag that fails on any changed byte, nonce or key. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { gmac, gmacKey, gmacStream, gmacVerify } from '../../src/crypto/index.js';

test('GCM test case 13 (AES-256, zero key and IV, no data): tag 530f8afb…', () => {
  assert.equal(gmac(new Uint8Array(32), new Uint8Array(12), new Uint8Array(0)).toString('hex'), '530f8afbc74536b9a963b4f1c4cb738b');
});

test('a tag verifies its data only: one flipped bit, another nonce or another key fails', () => {
  const key = gmacKey();
  assert.equal(key.length, 32);
  assert.notDeepEqual(key, gmacKey(), 'fresh keys');
  const nonce = new Uint8Array(12);
  nonce[3] = 1;
  const data = randomBytes(1 << 20);
  const tag = gmac(key, nonce, data);
  assert.ok(gmacVerify(key, nonce, data, tag));
  for (const at of [0, 12345, data.length - 1]) {
    const d = Buffer.from(data);
    d[at]! ^= 0x80;
    assert.ok(!gmacVerify(key, nonce, d, tag), `bit flipped at ${at}`);
  }
  assert.ok(!gmacVerify(key, new Uint8Array(12), data, tag), 'other nonce');
  assert.ok(!gmacVerify(gmacKey(), nonce, data, tag), 'other key');
  assert.ok(!gmacVerify(key, nonce, data.subarray(1), tag), 'shorter data');
  assert.ok(!gmacVerify(key, nonce, data, tag.subarray(0, 15)), 'truncated tag');
  assert.throws(() => gmac(key.subarray(1), nonce, data), /32 bytes/);
});

test('a tag over pieces equals the tag of the whole, whatever the piece sizes (partial blocks carried over)', () => {
  const key = gmacKey();
  const nonce = randomBytes(12);
  const data = randomBytes(300_001);
  const whole = gmac(key, nonce, data);
  for (const sizes of [[1], [15, 17], [16], [4096, 1], [262_144], [300_001]]) {
    const mac = gmacStream(key, nonce);
    for (let at = 0, i = 0; at < data.length; i++) {
      const n = sizes[i % sizes.length]!;
      mac.update(data.subarray(at, at + n));
      at += n;
    }
    assert.deepEqual(mac.tag(), whole, `pieces of ${sizes.join(',')} bytes`);
  }
  const empty = gmacStream(key, nonce);
  assert.deepEqual(empty.tag(), gmac(key, nonce, new Uint8Array(0)), 'no piece at all');
  assert.throws(() => gmacStream(key, nonce.subarray(1)), /nonce 12/);
});
