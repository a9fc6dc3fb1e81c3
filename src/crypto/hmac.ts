/** Keyed integrity tags: HMAC-SHA-256 from `node:crypto`, compared in constant time. */

import { createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC-SHA-256 of `data` under `key`, as 32 bytes. */
export function hmacSha256(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const h = createHmac('sha256', key);
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
}

/** Whether `tag` is the HMAC-SHA-256 of `data` under `key` (constant-time comparison). */
export function hmacVerify(key: Uint8Array, tag: Uint8Array, ...data: Uint8Array[]): boolean {
  const want = hmacSha256(key, ...data);
  return tag.length === want.length && timingSafeEqual(tag, want);
}
