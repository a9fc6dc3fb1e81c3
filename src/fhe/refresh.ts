/**
 * Client-aided refresh, in pieces the two flows share:
 * - `fhe run` / `privml serve --fhe` (client online): `maskForRefresh` → client callback → `unmaskRefreshed`;
 * - the split flow (`fhe infer` stops, `fhe refresh` on the client, `fhe infer --resume`): the same
 *   masking, with the masked ciphertexts in a request file for the client, the masks in a server-only
 *   state file (mode 0600) and the client's fresh encryptions in a reply file.
 * The mask hides x from the client (per slot, x + m with m uniform in ±2^maskLog2 is within
 * statistical distance |x|/2^(maskLog2+1) of m alone); adding a fresh encryption of zero
 * re-randomises the ciphertext so its random part does not depend on the server's computation.
 */
import { CryptoRng } from '../crypto/index.js';
import type { Ciphertext, FheContext, PublicKey, SecretKey } from './context.js';

/** Client-aided refresh points of a key set's plan (split flow: `fhe infer` stops there for `fhe refresh`). */
export interface RefreshPlan {
  /** Step indices of the refresh-free lowering before which a refresh is inserted (`insertRefreshes`). */
  before: number[];
  maskBits: number;
}

/** A well-formed refresh plan (read from a key set's params.fhe). */
export function isRefreshPlan(r: unknown): r is RefreshPlan {
  const p = r as RefreshPlan;
  return (
    !!p &&
    Array.isArray(p.before) &&
    p.before.every((i, k) => Number.isInteger(i) && i > 0 && (k === 0 || i > p.before[k - 1]!)) &&
    Number.isInteger(p.maskBits) &&
    p.maskBits >= 1
  );
}

/** Default mask width (log2 of the amplitude) for refresh steps that do not carry one: 40 bits above |x| ≤ 4. */
export const REFRESH_MASK_LOG2 = 42;

/**
 * A refresh mask: uniform in [−2^log2, 2^log2] per slot, 53-bit uniforms from the secret CSPRNG.
 * x + m for |x| ≤ B is within statistical distance |x|/2^(log2+1) of m alone (per slot).
 */
export function randomMask(n: number, log2: number): Float64Array {
  const rng = new CryptoRng();
  const a = 2 ** log2;
  return Float64Array.from({ length: n }, () => (2 * rng.next() - 1) * a);
}

/** Server: mask one ciphertext (uniform ±2^maskLog2 per slot) and re-randomise it with a fresh encryption of zero. */
export function maskForRefresh(ctx: FheContext, pk: PublicKey, cur: Ciphertext, maskLog2: number): { masked: Ciphertext; mask: Float64Array } {
  const mask = randomMask(ctx.slots, maskLog2);
  const mp = ctx.encode(mask, cur.scale, cur);
  const masked = ctx.evaluator.addPlain(cur, mp) as Ciphertext;
  mp.delete();
  // Re-randomise: adding a fresh public-key encryption of zero makes the ciphertext's
  // random part independent of the server's computation (its noise is not flooded).
  const enc = ctx.seal.Encryptor(ctx.context, pk);
  const zero = enc.encryptZero() as Ciphertext;
  enc.delete();
  ctx.evaluator.cipherModSwitchTo(zero, masked.parmsId, zero);
  zero.setScale(masked.scale);
  ctx.evaluator.add(masked, zero, masked);
  zero.delete();
  return { masked, mask };
}

/**
 * Server: remove the mask from the client's fresh encryption (in place) and drop the primes the rest
 * of the chain does not need (`resumeLevel`; dropping is cheap, later operations on fewer primes are cheaper).
 */
export function unmaskRefreshed(ctx: FheContext, fresh: Ciphertext, mask: Float64Array, resumeLevel?: number): Ciphertext {
  while (resumeLevel !== undefined && ctx.level(fresh) > resumeLevel) ctx.evaluator.cipherModSwitchToNext(fresh, fresh);
  const mt = ctx.encode(mask, fresh.scale, fresh);
  ctx.evaluator.subPlain(fresh, mt, fresh);
  mt.delete();
  return fresh;
}

/**
 * Client: encrypt decrypted slot values afresh, symmetric and seeded (half the bytes), at chain level
 * `level` (the server would drop the other primes at once; sending them is wasted bandwidth) or the top.
 */
export function encryptFreshSeeded(ctx: FheContext, pk: PublicKey, sk: SecretKey, v: Float64Array, level?: number): Uint8Array {
  const enc = ctx.seal.Encryptor(ctx.context, pk, sk);
  const pt = ctx.encode(v, ctx.scale);
  try {
    // A plaintext's level, as `FheContext.level` reads a ciphertext's.
    const at = () => {
      const cd = ctx.context.getContextData(pt.parmsId);
      const l = cd.chainIndex;
      cd.delete();
      return l;
    };
    while (level !== undefined && at() > level) ctx.evaluator.plainModSwitchToNext(pt, pt);
    const ser = enc.encryptSymmetricSerializable(pt);
    try {
      return ser.saveArray(ctx.seal.ComprModeType.zstd);
    } finally {
      ser.delete();
    }
  } finally {
    pt.delete();
    enc.delete();
  }
}

/** Several serialized ciphertexts in one payload: u32 count, u32 length of each, the bytes. */
export function packPayloads(parts: readonly Uint8Array[]): Uint8Array {
  const head = Buffer.alloc(4 * (parts.length + 1));
  head.writeUInt32LE(parts.length, 0);
  parts.forEach((p, i) => head.writeUInt32LE(p.length, 4 * (i + 1)));
  return Buffer.concat([head, ...parts]);
}

/** Inverse of `packPayloads`; a one-line error naming `path` on a malformed payload. */
export function unpackPayloads(payload: Uint8Array, path: string, max = 64): Uint8Array[] {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (b.length < 4) throw new Error(`${path}: truncated ciphertext list`);
  const n = b.readUInt32LE(0);
  if (n < 1 || n > max || b.length < 4 * (n + 1)) throw new Error(`${path}: corrupt ciphertext list (${n} entries)`);
  const out: Uint8Array[] = [];
  let o = 4 * (n + 1);
  for (let i = 0; i < n; i++) {
    const len = b.readUInt32LE(4 * (i + 1));
    if (o + len > b.length) throw new Error(`${path}: truncated ciphertext list (entry ${i})`);
    out.push(new Uint8Array(b.subarray(o, o + len)));
    o += len;
  }
  if (o !== b.length) throw new Error(`${path}: corrupt ciphertext list (${b.length - o} trailing bytes)`);
  return out;
}

/** Masks as bytes (little-endian float64) for the server's state file, and back. */
export function packMasks(masks: readonly Float64Array[]): Uint8Array {
  return packPayloads(masks.map((m) => new Uint8Array(Float64Array.from(m).buffer)));
}

export function unpackMasks(payload: Uint8Array, path: string, slots: number): Float64Array[] {
  return unpackPayloads(payload, path).map((p, i) => {
    if (p.length !== slots * 8) throw new Error(`${path}: mask ${i} has ${p.length} bytes, expected ${slots * 8}`);
    return new Float64Array(p.buffer.slice(p.byteOffset, p.byteOffset + p.length));
  });
}
