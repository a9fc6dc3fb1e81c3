/**
 * Randomness for Proteus. Every secret choice (partition cuts, sentinel structure and weights,
 * member order) draws from `secretRng()`: the AES-CTR stream of `src/crypto` under a fresh secret
 * seed. `secretRng(n)` derives the stream from a small integer so tests are reproducible; such a
 * stream is guessable and must never protect a real bundle. `Prng` (xoshiro128**, invertible from
 * its output) is kept only for test inputs and other non-secret draws.
 */
import { createHash } from 'node:crypto';
import { CryptoRng, secretBytes } from '../crypto/index.js';

/** What Proteus draws from: 32-bit words, uniforms, unbiased integers, normals. */
export interface Rng {
  nextU32(): number;
  next(): number;
  int(n: number): number;
  normal(): number;
  /** Fill `out` with 32-bit words in one call (bulk draws; optional). */
  fillU32?(out: Uint32Array): Uint32Array;
}

/** The secret stream (fresh seed from node:crypto), or a reproducible one from `testSeed` (tests only: guessable). */
export function secretRng(testSeed?: number): Rng {
  return testSeed === undefined ? new CryptoRng() : new CryptoRng(testBytes('privml-proteus-test-seed', testSeed));
}

/** xoshiro128** generator over a 128-bit state (not secret: its output reveals its state). */
export class Prng {
  private s: Uint32Array;

  /** `seed` makes the stream reproducible; omitted, 128 bits come from node:crypto. */
  constructor(seed?: number) {
    this.s = new Uint32Array(4);
    if (seed === undefined) {
      this.s.set(new Uint32Array(secretBytes(16).buffer));
    } else {
      if (!Number.isSafeInteger(seed)) throw new Error(`PRNG seed ${seed} is not a safe integer`);
      // splitmix32 expands the seed so nearby seeds give unrelated streams.
      let x = (seed ^ Math.floor(seed / 2 ** 32)) >>> 0;
      for (let i = 0; i < 4; i++) {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        this.s[i] = (z ^ (z >>> 16)) >>> 0;
      }
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1; // the all-zero state is a fixed point
  }

  /** Next 32 random bits. */
  nextU32(): number {
    const s = this.s;
    let a = s[0]!,
      b = s[1]!,
      c = s[2]!,
      d = s[3]!;
    const r = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    s[0] = a;
    s[1] = b;
    s[2] = c;
    s[3] = d;
    return r;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal draw (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** `n` 32-bit words of the stream, in one keystream call when the stream can (per word otherwise). */
export function words(rng: Rng, n: number): Uint32Array {
  const out = new Uint32Array(n);
  if (rng.fillU32) rng.fillU32(out);
  else for (let i = 0; i < n; i++) out[i] = rng.nextU32();
  return out;
}

/** A secret 16-byte key (a `WeightPool`'s hidden pools), or a reproducible one from `testSeed` (tests only: guessable). */
export function poolKey(testSeed?: number): Uint8Array {
  return testSeed === undefined ? secretBytes(16) : testBytes('privml-proteus-pool-key', testSeed);
}

/** 16 bytes derived from a test seed under `tag` (reproducible and guessable: tests only). */
function testBytes(tag: string, testSeed: number): Uint8Array {
  if (!Number.isSafeInteger(testSeed)) throw new Error(`test seed ${testSeed} is not a safe integer`);
  return new Uint8Array(createHash('sha256').update(`${tag}:${testSeed}`).digest().subarray(0, 16));
}
