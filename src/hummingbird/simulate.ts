/**
 * HummingBird's reduced-ring sign test, simulated outside MPC.
 *
 * The MPC `relu` (src/mpc/protocols/compare.ts) on a bit range [lsb, msb), b = msb − lsb, reads the
 * sign as bit b−1 of (t0 + t1) mod 2^b with t_i = (x_i >>> lsb) mod 2^b, and multiplies x by
 * mask = 1 − sign. Two simulators live here:
 * - `maskFromShares`: given the parties' actual 64-bit shares, the exact mask bit the MPC computes
 *   (bit for bit, including misreads of 0 ≤ x < 2^lsb and wraps at msb);
 *   the FSS protocols ('fss', 'fss2': src/mpc/protocols/fss) read the same window sum t0 + t1 mod 2^b
 *   and so produce the same mask bit for bit (test/mpc/fss.test.ts checks it on the same shares);
 * - `simulateMask`: from plaintext floats and FRESH uniform shares, the same error distribution
 *   without ever forming 64-bit shares. With x_fixed = round(x·2^f), the carry c lost from the low
 *   lsb bits is 1 with probability (2^l − 1 − (x_fixed mod 2^l)) / 2^l (it is 1 exactly when the
 *   low part of the uniform share x0 exceeds x_fixed's low part), and the sign estimate is bit b−1
 *   of (⌊x_fixed / 2^l⌋ − c) mod 2^b.
 */

import type { SeededRng } from '../seeded-rng.js';

/** Bit range of one reduced-ring comparison: bits [lsb, msb) of the 64-bit ring. */
export interface BitRange {
  msb: number;
  lsb: number;
}

/** How the simulator draws the carry lost below lsb. */
export type CarryMode =
  /** Fresh uniform shares per element: the MPC error distribution. */
  | 'random'
  /** Every carry that can be lost is lost: all 0 ≤ x < 2^lsb − 1 read as negative (adversarial shares). */
  | 'worst'
  /** No carry is lost: only wraps at msb remain. */
  | 'none';

/** Throw unless 0 ≤ lsb ≤ msb ≤ 64 (integers). */
export function checkRange(r: BitRange, what = 'bit range'): void {
  const { msb, lsb } = r;
  if (!Number.isInteger(msb) || !Number.isInteger(lsb) || lsb < 0 || msb > 64 || lsb > msb) {
    throw new Error(`${what}: invalid bit range msb=${msb} lsb=${lsb} (need integers 0 <= lsb <= msb <= 64)`);
  }
}

/**
 * The MPC's mask [x ≥ 0] (1 = keep) computed from both parties' shares on [lsb, msb), bit-exact.
 * b = 0 removes the ReLU (mask 1 everywhere). Word-level arithmetic, no BigInt per element.
 */
export function maskFromShares(x0: BigInt64Array, x1: BigInt64Array, range: BitRange): Uint8Array {
  checkRange(range);
  if (x0.length !== x1.length) throw new Error(`maskFromShares: shares have ${x0.length} and ${x1.length} elements`);
  const n = x0.length;
  const b = range.msb - range.lsb,
    l = range.lsb;
  const out = new Uint8Array(n);
  if (b === 0) return out.fill(1);
  const a = new Uint32Array(x0.buffer, x0.byteOffset, 2 * n),
    c = new Uint32Array(x1.buffer, x1.byteOffset, 2 * n);
  const top = b - 1;
  for (let i = 0; i < n; i++) {
    // t_i = x_i >>> l as (hi, lo) words; bits above b − 1 of the sum never reach bit b − 1.
    let lo0 = a[2 * i]!,
      hi0 = a[2 * i + 1]!,
      lo1 = c[2 * i]!,
      hi1 = c[2 * i + 1]!;
    if (l >= 32) {
      lo0 = hi0 >>> (l - 32);
      lo1 = hi1 >>> (l - 32);
      hi0 = hi1 = 0;
    } else if (l > 0) {
      lo0 = ((lo0 >>> l) | (hi0 << (32 - l))) >>> 0;
      lo1 = ((lo1 >>> l) | (hi1 << (32 - l))) >>> 0;
      hi0 >>>= l;
      hi1 >>>= l;
    }
    const sLo = lo0 + lo1;
    const carry = sLo > 0xffffffff ? 1 : 0;
    const sign = top < 32 ? (sLo >>> top) & 1 : (((hi0 + hi1 + carry) >>> 0) >>> (top - 32)) & 1;
    out[i] = 1 - sign;
  }
  return out;
}

/** Largest lsb the float simulator handles (x_fixed and its low part must stay exact in a double). */
export const MAX_SIM_LSB = 48;

/** P(the carry below lsb is lost) for one fixed-point value with uniform shares: (2^l − 1 − (x mod 2^l)) / 2^l. */
export function misreadCarryProbability(xFixed: number, lsb: number): number {
  const p = 2 ** lsb;
  const low = xFixed - Math.floor(xFixed / p) * p;
  return (p - 1 - low) / p;
}

/**
 * The mask (1 = keep, 0 = zeroed) the MPC ReLU on `range` produces for the plaintext values `x`
 * (real units, fixed point with `fracBits`), drawing the carry lost below lsb per `mode`.
 * `rng` supplies the uniform low bits of party 0's share (mode 'random' only).
 */
export function simulateMask(x: ArrayLike<number>, range: BitRange, fracBits: number, mode: CarryMode, rng?: SeededRng, out?: Float32Array): Float32Array {
  checkRange(range);
  const n = x.length;
  const mask = out ?? new Float32Array(n);
  const b = range.msb - range.lsb,
    l = range.lsb;
  if (b === 0) return mask.fill(1);
  if (l > MAX_SIM_LSB) throw new Error(`simulateMask: lsb ${l} is above the float simulator's limit ${MAX_SIM_LSB}`);
  if (mode === 'random' && !rng) throw new Error('simulateMask: mode random needs an rng');
  const scale = 2 ** fracBits,
    p = 2 ** l,
    inv = 1 / p;
  // The sign estimate, bit b−1 of q mod 2^b, is the parity of ⌊q / 2^(b−1)⌋ (ToInt32 keeps the parity
  // of any integer below 2^53, negative ones included: two's complement).
  const invHalf = 2 ** -(b - 1);
  const rand = mode === 'random' && l > 0;
  const worst = mode === 'worst' && l > 0;
  const shift = 32 - l;
  for (let i = 0; i < n; i++) {
    const xf = Math.floor(x[i]! * scale + 0.5); // the ring's rounding: floor(v + 0.5)
    const hi = Math.floor(xf * inv);
    let q = hi;
    if (rand) {
      const low = xf - hi * p;
      // uniform low part of x0 in [0, 2^l): the carry is lost iff it exceeds x's low part
      const a0 = l <= 32 ? rng!.u32() >>> shift : (rng!.u32() >>> (64 - l)) * 4294967296 + rng!.u32();
      if (a0 > low) q -= 1;
    } else if (worst && xf - hi * p < p - 1) q -= 1;
    mask[i] = Math.floor(q * invHalf) & 1 ? 0 : 1;
  }
  return mask;
}
