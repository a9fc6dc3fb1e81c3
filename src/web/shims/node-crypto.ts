/**
 * `node:crypto` for the page bundle, limited to what the MPC engine calls: the CSPRNG (WebCrypto's
 * getRandomValues), AES-128-CTR (../ctr-stream.ts: WebCrypto ahead of the reader, ../aes.ts in between; OpenSSL's stream), SHA-256 and HMAC-SHA-256
 * (../sha256.ts). Anything else throws naming the call, so a new dependency fails loudly.
 */
import { CtrStream } from '../ctr-stream.js';
import { sha256 } from '../sha256.js';
import { Buffer } from './buffer.js';

/** `n` bytes from the browser's CSPRNG (getRandomValues fills at most 64 KiB per call). */
export function randomBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0; off < n; off += 65536) globalThis.crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
}

/**
 * Only 'aes-128-ctr' is available in the page. Besides Cipher's `update`, two calls the `Prg` uses
 * when present (node:crypto's Cipher has neither): `keystream` (draw straight into the caller's
 * array) and `reserve` (announce the next draws, see ctr-stream.ts).
 */
export function createCipheriv(
  alg: string,
  key: Uint8Array,
  iv: Uint8Array,
): { update(d: Uint8Array): Buffer; keystream(out: Uint8Array, off: number, n: number): void; reserve(n: number): Promise<void> } {
  if (alg !== 'aes-128-ctr') throw new Error(`crypto in the page: cipher ${alg} is not available (only aes-128-ctr)`);
  const c = new CtrStream(key, iv);
  return {
    update: (d) => {
      const u = c.update(d);
      return new Buffer(u.buffer as ArrayBuffer, u.byteOffset, u.length); // a view: the stream's output is fresh, no copy needed
    },
    keystream: (out, off, n) => c.keystream(out, off, n),
    reserve: (n) => c.reserve(n),
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) out.set(p, off), (off += p.length);
  return out;
}

const utf8 = (d: Uint8Array | string): Uint8Array => (typeof d === 'string' ? new TextEncoder().encode(d) : d);

/** What createHash/createHmac return. */
export interface HashLike {
  update(d: Uint8Array | string): HashLike;
  digest(): Buffer;
  digest(enc: 'hex'): string;
}

/** A hash object with update/digest; only sha256. */
export function createHash(alg: string): HashLike {
  if (alg !== 'sha256') throw new Error(`crypto in the page: hash ${alg} is not available (only sha256)`);
  const parts: Uint8Array[] = [];
  const h = {
    update(d: Uint8Array | string) {
      parts.push(utf8(d));
      return h;
    },
    digest(enc?: 'hex') {
      const b = Buffer.from(sha256(concat(parts)));
      return enc === 'hex' ? b.toString('hex') : b;
    },
  };
  return h as HashLike;
}

/** HMAC-SHA-256 (RFC 2104). */
export function createHmac(alg: string, key: Uint8Array): HashLike {
  if (alg !== 'sha256') throw new Error(`crypto in the page: hmac ${alg} is not available (only sha256)`);
  let k = key.length > 64 ? sha256(key) : key;
  const block = new Uint8Array(64);
  block.set(k);
  k = block;
  const parts: Uint8Array[] = [k.map((b) => b ^ 0x36)];
  const h = {
    update(d: Uint8Array | string) {
      parts.push(utf8(d));
      return h;
    },
    digest(enc?: 'hex') {
      const b = Buffer.from(sha256(concat([k.map((b) => b ^ 0x5c), sha256(concat(parts))])));
      return enc === 'hex' ? b.toString('hex') : b;
    },
  };
  return h as HashLike;
}

/** Constant-time comparison of equal-length byte arrays. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) throw new Error('timingSafeEqual: inputs must have the same length');
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** The default export some modules import. */
export default { randomBytes, createCipheriv, createHash, createHmac, timingSafeEqual };
