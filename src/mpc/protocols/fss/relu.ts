/**
 * ReLU through function secret sharing (Boyle et al. 2021) on HummingBird's reduced ring.
 *
 * Party i holds x_i (x = x0 + x1 mod 2^64). On the window [lsb, msb), b = msb − lsb, each takes
 * t_i = (x_i >>> lsb) mod 2^b exactly as the sign-only protocol does, so the sign estimate is bit
 * b − 1 of T = t0 + t1 mod 2^b (the carry from the discarded low bits is ignored: the reduced
 * ring's semantics, bit for bit those of compare.ts and of hummingbird/simulate.ts maskFromShares).
 *
 * One exchange (one round): each party sends m_i = t_i + r_i mod 2^b (b bits) and, unless the window
 * is the full ring, d_i = x_i − A_i (64 bits). Both learn Y = T + r mod 2^b and D = x − A; r and A
 * are uniform dealer values, so Y and D are one-time padded.
 *   sign = bit b−1 of (Y − r) = Y_(b−1) ⊕ r_(b−1) ⊕ [Y' < r']   (' = mod 2^(b−1): the borrow)
 * The DCF on b − 1 bits with α = r' and payload (1 − 2r_(b−1))·(1, A), plus the offset shares of
 * r_(b−1)·(1, A), gives shares of v = r_(b−1) ⊕ [Y' < r'] and of v·A, so sign = Y_(b−1) ⊕ v with
 * Y_(b−1) public, and locally
 *   x·v = D·[v] + [v·A]        (full window: A = r and x = Y − r, so x·v = Y·[v] − [v·r], no D)
 *   ReLU(x) = x·(1 − sign) = Y_(b−1) ? x·v : x − x·v,   mask [x ≥ 0] = Y_(b−1) ? v : 1 − v.
 * Online cost per element and party: b + 64 bits (full window: 64 bits), 1 round.
 */
import type { PartyContext } from '../../context.js';
import {
  bitsToRing, fromBitPlanes, ringAdd, ringFromBytesLE, ringLowBits, ringMul, ringMulScalar, ringSub, ringToBytes, toBitPlanes,
  type Ring,
} from '../../ring.js';
import { dcfEval, dcfEvalBlocks } from './dcf.js';
import { checkFssWindow, fssReluKeyBytes, isFullWindow, type FssCorrelations } from './keys.js';

/** Per element and party: online bits and rounds, dealer key bytes per party, AES blocks per party. */
export interface FssReluCost {
  bits: number;
  rounds: number;
  keyBytes: [number, number];
  aesBlocks: number;
}

/** Exact cost of one FSS ReLU per element on [lsb, msb) (key bytes for a large batch, per element). */
export function fssReluCost(lsb: number, msb: number): FssReluCost {
  checkFssWindow(1, lsb, msb);
  const b = msb - lsb, big = 1 << 20;
  return {
    bits: b + (isFullWindow(lsb, msb) ? 0 : 64),
    rounds: 1,
    keyBytes: [fssReluKeyBytes(0, big, lsb, msb) / big, fssReluKeyBytes(1, big, lsb, msb) / big],
    aesBlocks: dcfEvalBlocks(b - 1),
  };
}

/** Split an interleaved (c0, c1) per element array into its two components, adding `off` (same layout). */
function split(v: BigInt64Array, off: BigInt64Array, n: number): [Ring, Ring] {
  const s = ringAdd(v, off);
  const a = new BigInt64Array(n), b = new BigInt64Array(n);
  const sw = new Uint32Array(s.buffer, s.byteOffset, 4 * n), aw = new Uint32Array(a.buffer), bw = new Uint32Array(b.buffer);
  for (let e = 0; e < n; e++) {
    aw[2 * e] = sw[4 * e]!;
    aw[2 * e + 1] = sw[4 * e + 1]!;
    bw[2 * e] = sw[4 * e + 2]!;
    bw[2 * e + 1] = sw[4 * e + 3]!;
  }
  return [a, b];
}

/** The dealer of `ctx`, which must provide FSS keys. */
function fssDealer(ctx: PartyContext): FssCorrelations {
  const d = ctx.dealer as unknown as Partial<FssCorrelations>;
  if (typeof d.fssRelu !== 'function') throw new Error('fss: this session\'s dealer does not provide FSS ReLU keys');
  return d as FssCorrelations;
}

/**
 * This party's shares of ReLU(x) = x·[x ≥ 0] and of the mask [x ≥ 0] (0/1), the sign read on the
 * window [lsb, msb) with reduced-ring semantics (1 ≤ msb − lsb ≤ 64). One round.
 */
export async function fssReluWithMask(ctx: PartyContext, x: Ring, lsb: number, msb: number): Promise<{ y: Ring; mask: Ring }> {
  const n = x.length;
  checkFssWindow(n, lsb, msb);
  if (n === 0) return { y: new BigInt64Array(0), mask: new BigInt64Array(0) };
  const b = msb - lsb, full = isFullWindow(lsb, msb);
  const key = await fssDealer(ctx).fssRelu(n, lsb, msb);
  if (key.n !== n || key.lsb !== lsb || key.msb !== msb || key.party !== ctx.party) {
    throw new Error(`fss: key material is for ${key.n} gates on [${key.lsb}, ${key.msb}) of party ${key.party}, not ${n} on [${lsb}, ${msb}) of party ${ctx.party}`);
  }
  const m = ringLowBits(ringAdd(ringLowBits(x, lsb, b), key.r), 0, b);
  // the b-bit values packed exactly (bit planes); a full 64-bit word needs no packing
  const planes = b === 64 ? ringToBytes(m) : toBitPlanes(m, 0, b);
  const d = full ? undefined : ringSub(x, key.a);
  const msg = new Uint8Array(planes.length + (d ? 8 * n : 0));
  msg.set(planes, 0);
  if (d) msg.set(ringToBytes(d), planes.length);
  const peer = await ctx.peer.exchange(msg);
  if (peer.length !== msg.length) throw new Error(`fss: ReLU opening has ${peer.length} bytes, expected ${msg.length}`);
  const peerM = b === 64 ? ringFromBytesLE(peer.subarray(0, planes.length)) : fromBitPlanes(peer.subarray(0, planes.length), n, b);
  const Y = ringLowBits(ringAdd(m, peerM), 0, b);
  const [v, va] = split(dcfEval(ctx.party, b - 1, key.seeds, key.cw, Y), key.offset, n);
  const xv = d ? ringAdd(ringMul(ringAdd(d, ringFromBytesLE(peer.subarray(planes.length))), v), va) : ringSub(ringMul(Y, v), va);
  const top = bitsToRing(toBitPlanes(Y, b - 1, 1), n);
  // ReLU = (x − xv) + top·(2xv − x); mask = (1 − v) + top·(2v − 1) (the constant 1 on party 0 only)
  const y = ringAdd(ringSub(x, xv), ringMul(top, ringSub(ringMulScalar(xv, 2n), x)));
  const one = new BigInt64Array(n);
  if (ctx.party === 0) one.fill(1n);
  const mask = ringAdd(ringSub(one, v), ringMul(top, ringSub(ringMulScalar(v, 2n), one)));
  return { y, mask };
}
