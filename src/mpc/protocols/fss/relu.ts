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
 *
 * Two-round variant ('fss2', smaller keys): the same opening of Y (b bits), then a bit-output DCF
 * (dcfbit.ts) gives XOR shares of [Y' < r'], so sign = Y_(b−1) ⊕ r_(b−1) ⊕ [Y' < r'] is XOR-shared
 * after round 1 (`fssSignBit`); compare.ts finishes as for the sign-only protocol (one round
 * opening c = sign ⊕ ρ and x − A, 65 bits). Cost: b + 65 bits, 2 rounds; key ≈ (b − 1)·16.1 bytes.
 */
import type { PartyContext } from '../../context.js';
import {
  bitsToRing,
  fromBitPlanes,
  type Ring,
  ringAdd,
  ringFromBytesLE,
  ringLowBits,
  ringMul,
  ringMulScalar,
  ringSub,
  ringToBytes,
  toBitPlanes,
} from '../../ring.js';
import { dcfEval, dcfEvalBlocks } from './dcf.js';
import { dcfBitEval, dcfBitEvalBlocks } from './dcfbit.js';
import { checkFssWindow, type FssCorrelations, type FssReluKey, fssReluKeyBytes, isFullWindow } from './keys.js';

/** Per element and party: online bits and rounds, dealer key bytes per party, AES blocks per party. */
export interface FssReluCost {
  bits: number;
  rounds: number;
  keyBytes: [number, number];
  aesBlocks: number;
}

/**
 * Exact cost of one FSS ReLU per element on [lsb, msb) (key bytes for a large batch, per element;
 * the 2-round variant's bit-multiply triple from the dealer is not included in keyBytes).
 */
export function fssReluCost(lsb: number, msb: number, rounds: 1 | 2 = 1): FssReluCost {
  checkFssWindow(1, lsb, msb);
  const b = msb - lsb,
    big = 1 << 20;
  const keyBytes: [number, number] = [fssReluKeyBytes(0, big, lsb, msb, rounds) / big, fssReluKeyBytes(1, big, lsb, msb, rounds) / big];
  if (rounds === 2) return { bits: b + 65, rounds: 2, keyBytes, aesBlocks: dcfBitEvalBlocks(b - 1) };
  return { bits: b + (isFullWindow(lsb, msb) ? 0 : 64), rounds: 1, keyBytes, aesBlocks: dcfEvalBlocks(b - 1) };
}

/** Split an interleaved (c0, c1) per element array into its two components, adding `off` (same layout). */
function split(v: BigInt64Array, off: BigInt64Array, n: number): [Ring, Ring] {
  const s = ringAdd(v, off);
  const a = new BigInt64Array(n),
    b = new BigInt64Array(n);
  const sw = new Uint32Array(s.buffer, s.byteOffset, 4 * n),
    aw = new Uint32Array(a.buffer),
    bw = new Uint32Array(b.buffer);
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
  if (typeof d.fssRelu !== 'function') throw new Error("fss: this session's dealer does not provide FSS ReLU keys");
  return d as FssCorrelations;
}

/** This party's key for `n` gates, checked against what it asked for. */
async function fssKey(ctx: PartyContext, n: number, lsb: number, msb: number, rounds: 1 | 2): Promise<FssReluKey> {
  const key = await fssDealer(ctx).fssRelu(n, lsb, msb, rounds);
  if (key.n !== n || key.lsb !== lsb || key.msb !== msb || key.party !== ctx.party || key.rounds !== rounds) {
    throw new Error(
      `fss: key material is for ${key.n} gates on [${key.lsb}, ${key.msb}) of party ${key.party}, not ${n} on [${lsb}, ${msb}) of party ${ctx.party}`,
    );
  }
  return key;
}

/**
 * Round 1 of the 2-round variant: this party's XOR share (packed bits) of the sign estimate on
 * [lsb, msb) (reduced-ring semantics as above). b bits per element, one exchange.
 */
export async function fssSignBit(ctx: PartyContext, x: Ring, lsb: number, msb: number): Promise<Uint8Array> {
  const n = x.length;
  checkFssWindow(n, lsb, msb);
  if (n === 0) return new Uint8Array(0);
  const b = msb - lsb;
  const key = await fssKey(ctx, n, lsb, msb, 2);
  const m = ringLowBits(ringAdd(ringLowBits(x, lsb, b), key.r), 0, b);
  const mine = b === 64 ? ringToBytes(m) : toBitPlanes(m, 0, b);
  const peer = await ctx.peer.exchange(mine);
  if (peer.length !== mine.length) throw new Error(`fss: sign opening has ${peer.length} bytes, expected ${mine.length}`);
  const Y = ringLowBits(ringAdd(m, b === 64 ? ringFromBytesLE(peer) : fromBitPlanes(peer, n, b)), 0, b);
  const s = dcfBitEval(ctx.party, b - 1, key.seeds, key.cw, Y);
  const rTop = key.rTop!;
  for (let i = 0; i < s.length; i++) s[i] = s[i]! ^ rTop[i]!;
  if (ctx.party === 0) {
    const top = toBitPlanes(Y, b - 1, 1);
    for (let i = 0; i < s.length; i++) s[i] = s[i]! ^ top[i]!;
  }
  return s;
}

/**
 * This party's shares of ReLU(x) = x·[x ≥ 0] and of the mask [x ≥ 0] (0/1), the sign read on the
 * window [lsb, msb) with reduced-ring semantics (1 ≤ msb − lsb ≤ 64). One round.
 */
export async function fssReluWithMask(ctx: PartyContext, x: Ring, lsb: number, msb: number): Promise<{ y: Ring; mask: Ring }> {
  const n = x.length;
  checkFssWindow(n, lsb, msb);
  if (n === 0) return { y: new BigInt64Array(0), mask: new BigInt64Array(0) };
  const b = msb - lsb,
    full = isFullWindow(lsb, msb);
  const key = await fssKey(ctx, n, lsb, msb, 1);
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
