/**
 * The PRG of the DCF's GGM tree: fixed-key AES-128 in Matyas–Meyer–Oseas form,
 * H(x) = AES_K(x) ⊕ x, with a public key K. Child j of a seed s is H(s ⊕ c_j) for a public tweak
 * c_j (byte 15 of the block XORed with j). H is correlation robust in the ideal-permutation model
 * (Guo et al., S&P 2020): for a secret uniform s, the values H(s ⊕ c_j) for distinct public c_j are
 * pseudorandom — exactly the use here, since every seed is secret and uniform (or a PRG output).
 * A fixed key lets one cipher call hash a whole tree level of every element (one contiguous buffer),
 * which is what makes the DCF fast from JavaScript: a per-seed key schedule would need one
 * createCipheriv per element per level.
 */
import { type Cipher, createCipheriv, createHash } from 'node:crypto';

/** Tweak of a node's left child seed / left value block / right child seed / right value block / leaf conversion. */
export const TWEAK = { sL: 0, vL: 1, sR: 2, vR: 3, leaf: 4 } as const;

// Nothing up the sleeve: the key is the first 16 bytes of SHA-256 of a fixed label.
const FIXED_KEY = createHash('sha256').update('privml/fss/dcf/mmo-aes128/v1').digest().subarray(0, 16);

let cipher: Cipher | undefined;
/** Largest block count per cipher call (bounds the temporary output buffers). */
const CHUNK = 1 << 20;

/** Counter of AES blocks hashed in this process (for accounting). */
export const aesCounter = { blocks: 0 };

function ecb(): Cipher {
  if (!cipher) {
    cipher = createCipheriv('aes-128-ecb', FIXED_KEY, null);
    cipher.setAutoPadding(false);
  }
  return cipher;
}

/**
 * AES_K of every 16-byte block of `buf` (no feed-forward: callers that still hold the input fold
 * the XOR into their own pass), as 32-bit words.
 */
export function aesBlocks(buf: Uint8Array): Uint32Array {
  if (buf.length % 16 !== 0) throw new Error(`fss.mmo: ${buf.length} bytes is not a whole number of AES blocks`);
  const c = ecb();
  aesCounter.blocks += buf.length >>> 4;
  if (buf.length <= CHUNK * 16) {
    let enc: Uint8Array = c.update(buf);
    if (enc.length !== buf.length) throw new Error(`fss.mmo: AES-ECB returned ${enc.length} bytes for ${buf.length}`);
    if (enc.byteOffset & 3) enc = enc.slice();
    return new Uint32Array(enc.buffer, enc.byteOffset, buf.length >>> 2);
  }
  const out = new Uint32Array(buf.length >>> 2),
    o8 = new Uint8Array(out.buffer);
  for (let o = 0; o < buf.length; o += CHUNK * 16) {
    const part = buf.subarray(o, Math.min(buf.length, o + CHUNK * 16));
    const enc = c.update(part);
    if (enc.length !== part.length) throw new Error(`fss.mmo: AES-ECB returned ${enc.length} bytes for ${part.length}`);
    o8.set(enc, o);
  }
  return out;
}

/**
 * In place: buf[i] ← AES_K(buf[i]) ⊕ buf[i] for every 16-byte block of `buf` (the tweaks are
 * already XORed in by the caller). Returns `buf`.
 */
export function mmoInPlace(buf: Uint8Array): Uint8Array {
  if (buf.length % 16 !== 0) throw new Error(`fss.mmo: ${buf.length} bytes is not a whole number of AES blocks`);
  const c = ecb();
  aesCounter.blocks += buf.length >>> 4;
  for (let o = 0; o < buf.length; o += CHUNK * 16) {
    const part = buf.subarray(o, Math.min(buf.length, o + CHUNK * 16));
    let enc: Uint8Array = c.update(part);
    if (enc.length !== part.length) throw new Error(`fss.mmo: AES-ECB returned ${enc.length} bytes for ${part.length}`);
    const n = part.length >>> 2;
    // feed-forward on 32-bit words (buf is 4-byte aligned by construction: callers allocate it)
    if (enc.byteOffset & 3) enc = enc.slice();
    const pw = new Uint32Array(part.buffer, part.byteOffset, n);
    const ew = new Uint32Array(enc.buffer, enc.byteOffset, n);
    for (let i = 0; i < n; i++) pw[i] = pw[i]! ^ ew[i]!;
  }
  return buf;
}

/** Run a step generator (key generation level by level) to its result, without pausing. */
export function runSteps<T>(it: Generator<void, T>): T {
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}
