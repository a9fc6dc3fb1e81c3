/**
 * Real low mantissa bytes for sentinel values. A jittered float's low bits are uniform; real
 * weights' are not (a network's share of odd mantissas or of zero low bytes is one draw of its
 * training), so each nonzero sentinel value takes a low byte drawn from the real values' histogram
 * of low bytes: bit-pattern statistics are then a resample of the real ones.
 */
import { type Rng, words } from './rng.js';

/** Add the low mantissa bytes of a tensor's nonzero values (±0 says nothing about them) to a 256-bin histogram. */
export function lowByteCounts(d: Float32Array, into = new Float64Array(256)): Float64Array {
  const bits = new Uint32Array(d.buffer, d.byteOffset, d.length);
  for (let i = 0; i < bits.length; i++) if (bits[i]! << 1 !== 0) into[bits[i]! & 0xff]!++;
  return into;
}

/** Walker's alias table over 256 byte values: one 32-bit word draws a byte (low 8 bits pick a column, the other 24 its cut). */
export interface ByteDraw {
  /** Below this 24-bit threshold a column gives its own byte, else its alias. */
  cut: Uint32Array;
  alias: Uint8Array;
  /** No nonzero value in the population: nothing to draw. */
  empty: boolean;
}

/** Alias table (Vose's construction) drawing bytes in proportion to `counts`, exact to 2^-24 per byte. */
export function byteDraw(counts: Float64Array): ByteDraw {
  const cut = new Uint32Array(256);
  const alias = new Uint8Array(256);
  const total = counts.reduce((a, b) => a + b, 0);
  if (!total) return { cut, alias, empty: true };
  const p = Array.from(counts, (c) => (c * 256) / total);
  const small: number[] = [];
  const large: number[] = [];
  p.forEach((q, i) => (q < 1 ? small : large).push(i));
  while (small.length && large.length) {
    const s = small.pop()!;
    const l = large[large.length - 1]!;
    cut[s] = Math.round(p[s]! * 2 ** 24);
    alias[s] = l;
    p[l] = p[l]! + p[s]! - 1;
    if (p[l]! < 1) small.push(large.pop()!);
  }
  // Left over (1 up to rounding): always their own byte.
  for (const i of [...small, ...large]) {
    cut[i] = 2 ** 24;
    alias[i] = i;
  }
  return { cut, alias, empty: false };
}

/**
 * Give each nonzero value of `out` a low mantissa byte drawn from real values' low bytes, in place:
 * bit-pattern statistics (low byte zero, lsb set) are then a resample of the real ones, not the
 * uniform bits of a jittered float. One real network is one draw of those: LeNet-5's share of odd
 * mantissas sat above 92 % of its sentinels' in every group. Moves a value by < 2^-15 of itself;
 * zeros stay zeros, a quantised source's grid stays (its low bits are zero). The bytes come from an
 * alias table of their histogram, not a random index into them: the same distribution, without a
 * cache miss a value into a pool of tens of megabytes (~90 ns a value, a fifth of `obfuscate`).
 */
export function inheritLowBits(out: Float32Array, low: ByteDraw, rng: Rng): Float32Array {
  if (low.empty) return out;
  const { cut, alias } = low;
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  const r = words(rng, out.length);
  for (let i = 0; i < out.length; i++) {
    if (bits[i]! << 1 === 0) continue;
    const w = r[i]!;
    const b = w & 0xff;
    bits[i] = ((bits[i]! & ~0xff) | (w >>> 8 < cut[b]! ? b : alias[b]!)) >>> 0;
  }
  return out;
}
