/**
 * Secret randomness for every pillar: fresh seeds, unbiased integers and a seeded AES-CTR stream of
 * integers, uniforms and normals. Everything here draws from `node:crypto` (directly or through the
 * AES-128-CTR keystream of a fresh seed); nothing secret in privml may use another source.
 */

import { randomBytes } from 'node:crypto';
import { Prg, randomSeed } from './prg.js';

/** `n` fresh bytes from the operating system's CSPRNG. */
export function secretBytes(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/** A fresh random hex identifier of `bytes` bytes (not secret by itself, but unpredictable). */
export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString('hex');
}

/** An unbiased integer in [0, n) from the operating system's CSPRNG (n ≤ 2^48). */
export function secretInt(n: number): number {
  return new CryptoRng().int(n);
}

// How many keystream bytes one refill reads ahead: one AES call serves thousands of draws.
const POOL_BYTES = 1 << 14;

/**
 * A stream of random numbers from the AES-128-CTR keystream of a seed (a fresh CSPRNG seed by
 * default). Same interface as the non-secret generators (`nextU32`, `next`, `int`, `normal`), so
 * code that must hide its choices switches by passing this instead.
 */
export class CryptoRng {
  private readonly prg: Prg;
  private pool: Uint32Array = new Uint32Array(0);
  private pos = 0;
  private spare: number | undefined;

  /** Expand `seed` (16 bytes; a fresh secret seed when omitted). */
  constructor(seed: Uint8Array = randomSeed()) {
    this.prg = new Prg(seed);
  }

  /** The next 32 random bits as an unsigned integer. */
  nextU32(): number {
    if (this.pos >= this.pool.length) {
      const b = this.prg.bytes(POOL_BYTES);
      this.pool = new Uint32Array(b.buffer, b.byteOffset, POOL_BYTES >> 2);
      this.pos = 0;
    }
    return this.pool[this.pos++]!;
  }

  /** Fill `out` with fresh 32-bit words straight from the keystream (one AES call for the whole array). */
  fillU32(out: Uint32Array): Uint32Array {
    this.prg.fill(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    return out;
  }

  /** A uniform float in [0, 1) with 53 random bits (every double of the grid equally likely). */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** An unbiased integer in [0, n), 1 ≤ n ≤ 2^48 (rejection sampling, no modulo bias). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 48) throw new Error(`random int: bad range ${n}`);
    if (n <= 2 ** 32) {
      const limit = Math.floor(2 ** 32 / n) * n;
      for (;;) {
        const x = this.nextU32();
        if (x < limit) return x % n;
      }
    }
    const limit = Math.floor(2 ** 48 / n) * n;
    for (;;) {
      const x = this.nextU32() * 65536 + (this.nextU32() >>> 16);
      if (x < limit) return x % n;
    }
  }

  /** A standard normal draw (Box–Muller on 53-bit uniforms: continuous values, no repeated grid). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.next(); // (0, 1]
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(t);
    return r * Math.cos(t);
  }

  /** Shuffle `xs` in place (Fisher–Yates with unbiased indices) and return it. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }
}
