/**
 * Secure comparison on additive Z_2^64 shares: sign bit, [x < 0], ReLU and MaxPool.
 *
 * Sign-only protocol ('signonly', the default). Party i holds x_i with x = x0 + x1 mod 2^64. For a bit
 * range [lsb, msb), b = msb − lsb, each party takes t_i = (x_i >>> lsb) mod 2^b locally; the sign
 * estimate is bit b−1 of t0 + t1 mod 2^b = t0[b−1] ⊕ t1[b−1] ⊕ carry into bit b−1. Only that carry
 * is computed, with m = b − 1 generate/propagate leaves on bit-sliced planes:
 *   1. generate g_j = t0[j] & t1[j] (m AND gates, one exchange); p_j = t0[j] ⊕ t1[j] is local;
 *   2. a parallel-prefix reduction that pairs adjacent segments bottom-up, (G_hi, P_hi) ∘ (G_lo, P_lo)
 *      = (G_hi ⊕ P_hi & G_lo, P_hi & P_lo), never computing the P of the lowest segment — every
 *      level is one exchange of m_level AND gates;
 *   3. one final exchange: open c = s ⊕ r (r a dealer bit shared in XOR and arithmetic form, 1 bit)
 *      together with x − A (64 bits), where the dealer's (A, C = A·r) is a Beaver pair whose second
 *      operand is r itself — r is already uniform and never opened, so r − B need not be sent and
 *      [x·r] = (x − A)·[r] + [C]. Since x·s = x·(c ⊕ r) = c ? x − x·r : x·r and x·r does not depend
 *      on s, B2A and the multiply share one round: ReLU(x) = x − x·s = c ? x·r : x − x·r. (Every
 *      opened value is masked by fresh uniform dealer randomness: c by r, x − A by A.)
 * Every opening is packed to its exact bit width, so per element and party (AND gate = 2 bits):
 *   ANDs(m) = m + 2(m − 1) − ⌈log2 m⌉,  bits = 2·ANDs(m) + 65,  rounds = 2 + ⌈log2 m⌉   (m ≥ 1)
 *   b = 1 (m = 0): the sign is t0[0] ⊕ t1[0]: 65 bits, 1 round.   b = 0: no comparison, ReLU = x.
 *   b = 64: 181 ANDs → 427 bits, 8 rounds; b = 32: 237/7; 16: 143/6; 8: 97/5; 2: 67/2.
 * (ltz / signBit alone: bits − 64 resp. bits − 65, rounds − 0 resp. − 1.)
 * Option `fold` merges the generate level into the first tree level: each leaf pair's G and P are
 * computed directly from the one-sided bits (G = A1B1 ⊕ (A1A0)B0 ⊕ A0(B1B0), P = A1A0 ⊕ B1B0 ⊕
 * A1B0 ⊕ A0B1), which saves one round for ⌊m/2⌋ − 1 extra AND gates: b = 64 → 487 bits, 7 rounds.
 * It is off by default (fewer bits); it pays when one round costs more than the extra bits, e.g.
 * a LAN round (0.5 ms) against 60·n bits at 1 Gbit/s for n below ~8,000 elements.
 *
 * Exactness of a reduced range: with lsb = 0 the sign is exact for −2^(msb−1) ≤ x < 2^(msb−1);
 * with lsb > 0 for −2^(msb−1) + 2^lsb ≤ x < 2^(msb−1), except that 0 ≤ x < 2^lsb may read as
 * negative (the dropped low bits may carry), so ReLU returns x or 0 for those.
 *
 * CrypTen baseline ('crypten'): exactly CrypTen's cost per ReLU per party, 29 64-bit words = 1,856
 * bits and 9 rounds: A2B through a full-word Kogge–Stone adder (1 word-AND generate = 2 words, then
 * 6 levels of 2 word-ANDs = 4 words each), B2A opening one 64-bit word, then a Beaver multiply
 * (2 words). Always over the full ring (no bit range).
 */
import type { PartyContext } from '../context.js';
import { inLanes } from '../lanes.js';
import { timed } from '../profile.js';
import {
  bitsToRing,
  convOutSize,
  type PoolGeom,
  type Ring,
  ringAdd,
  ringAddScalar,
  ringFromBytesLE,
  ringMul,
  ringMulScalar,
  ringReluTail,
  ringSub,
  ringToBytes,
  toBitPlanes,
} from '../ring.js';
import { uninit } from '../ring-wasm.js';
import { beaverMul } from './arith.js';
import { andBits, andGates, bitBytes, xorBits, xorInto, zeroBits } from './bits.js';
import { fssReluCost, fssReluWithMask, fssSignBit } from './fss/relu.js';
import { reluSignOnlyResident, signOnlyResident } from './sign-tree.js';

/**
 * Which ReLU protocol: the packed sign-only tree (default), the CrypTen-equivalent baseline, or
 * function secret sharing from the dealer (fss/relu.ts: 'fss' one round; 'fss2' two rounds with
 * keys half the size, the sign XOR-shared after round 1), with the same reduced-ring semantics.
 */
export type ReluProtocol = 'signonly' | 'crypten' | 'fss' | 'fss2';

/** Options of a comparison call. */
export interface CompareOptions {
  /** Lowest bit of the range the sign is computed on (default 0). */
  lsb?: number;
  /** One past the highest bit (default 64); the sign estimate is bit msb − 1. */
  msb?: number;
  /** Protocol (default 'signonly'). */
  protocol?: ReluProtocol;
  /** Sign-only only: fold the generate level into the first tree level (one round fewer, more bits). */
  fold?: boolean;
  /**
   * ReLU only: interleaved lanes the elements are split over (`lanes.ts`), so one lane computes
   * while the other's opening is in flight. Default: 2 from LANE_MIN elements (signonly, crypten).
   */
  lanes?: number;
}

/** Elements from which a ReLU runs as two interleaved lanes by default (below, extra messages cost more than overlap saves). */
export const LANE_MIN = 1 << 14;

/** Validated options. */
interface Resolved {
  lsb: number;
  b: number;
  protocol: ReluProtocol;
  fold: boolean;
}

function resolve(opts: CompareOptions | undefined): Resolved {
  const protocol = opts?.protocol ?? 'signonly';
  const lsb = opts?.lsb ?? 0,
    msb = opts?.msb ?? 64;
  if (protocol !== 'signonly' && protocol !== 'crypten' && protocol !== 'fss' && protocol !== 'fss2')
    throw new Error(`compare: unknown ReLU protocol '${String(protocol)}'`);
  if (!Number.isInteger(lsb) || !Number.isInteger(msb) || lsb < 0 || msb > 64 || lsb > msb) {
    throw new Error(`compare: invalid bit range [${lsb}, ${msb}) (need 0 <= lsb <= msb <= 64)`);
  }
  if (protocol === 'crypten' && (lsb !== 0 || msb !== 64)) {
    throw new Error(`compare: the crypten protocol works on the full ring; bit range [${lsb}, ${msb}) is not allowed`);
  }
  return { lsb, b: msb - lsb, protocol, fold: opts?.fold ?? false };
}

const ceilLog2 = (m: number): number => (m <= 1 ? 0 : Math.ceil(Math.log2(m)));

/** AND gates per element of the sign-only carry circuit on b bits (generate + tree). */
export function signOnlyAndGates(b: number, fold = false): number {
  const m = b - 1;
  if (m <= 0) return 0;
  if (!fold || m < 2) return m + 2 * (m - 1) - ceilLog2(m);
  const q = Math.floor(m / 2),
    k = Math.ceil(m / 2);
  return 3 + 5 * (q - 1) + (m % 2) + 2 * (k - 1) - ceilLog2(k);
}

/** Exact communication of one ReLU per element and party: bits sent and rounds. */
export function reluCost(opts?: CompareOptions): { bits: number; rounds: number } {
  const r = resolve(opts);
  if (r.protocol === 'crypten') return { bits: 29 * 64, rounds: 9 };
  if (r.b === 0) return { bits: 0, rounds: 0 };
  if (r.protocol === 'fss' || r.protocol === 'fss2') {
    const c = fssReluCost(r.lsb, r.lsb + r.b, r.protocol === 'fss' ? 1 : 2);
    return { bits: c.bits, rounds: c.rounds };
  }
  const m = r.b - 1;
  const treeRounds = m === 0 ? 0 : r.fold && m >= 2 ? 1 + ceilLog2(Math.ceil(m / 2)) : 1 + ceilLog2(m);
  return { bits: 2 * signOnlyAndGates(r.b, r.fold) + 65, rounds: treeRounds + 1 };
}

// ---------------------------------------------------------------------------------------------
// Sign-only circuit
// ---------------------------------------------------------------------------------------------

/** XOR shares of a generate/propagate segment (P omitted for the lowest segment). */
interface Segment {
  g: Uint8Array;
  p?: Uint8Array;
}

type Gate = readonly [Uint8Array, Uint8Array];

/**
 * XOR share of the sign estimate over bits [lsb, lsb + b), b ≥ 1. Without `fold` the vectors stay
 * resident in wasm memory (sign-tree.ts); `arrays` forces this JS-array version, which computes the
 * same messages and share (kept for `fold` and as the reference the tests compare against).
 */
export async function signOnly(ctx: PartyContext, x: Ring, lsb: number, b: number, fold: boolean, arrays = false): Promise<Uint8Array> {
  if (!fold && !arrays) return signOnlyResident(ctx, x, lsb, b);
  const n = x.length,
    st = bitBytes(n);
  const all = timed(ctx, 'bitplanes', () => toBitPlanes(x, lsb, b));
  const plane = (j: number): Uint8Array => all.subarray(j * st, (j + 1) * st);
  const top = plane(b - 1).slice();
  const m = b - 1;
  if (m === 0) return top;
  const zero = zeroBits(n);
  // A one-sided AND of party 0's value and party 1's value: each party supplies its own operand.
  const oneSided = (mine: Uint8Array): Gate => (ctx.party === 0 ? [mine, zero] : [zero, mine]);
  let segs: Segment[];
  if (!fold || m < 2) {
    const g = await andGates(
      ctx,
      Array.from({ length: m }, (_, j) => oneSided(plane(j))),
      n,
    );
    segs = g.map((gj, j) => (j === 0 ? { g: gj } : { g: gj, p: plane(j) }));
  } else {
    // Level 1 on one-sided bits: party 0 holds A1 = t0[hi], A0 = t0[lo]; party 1 holds B1, B0.
    const q = m >> 1,
      gates: Gate[] = [],
      both: Uint8Array[] = [];
    for (let k = 0; k < q; k++) {
      const v1 = plane(2 * k + 1),
        v0 = plane(2 * k),
        v10 = andBits(v1, v0);
      both.push(v10);
      // G = A1B1 ⊕ (A1A0)B0 ⊕ A0(B1B0): party 0's operand is listed first in each product
      if (ctx.party === 0) gates.push([v1, zero], [v10, zero], [v0, zero]);
      else gates.push([zero, v1], [zero, v0], [zero, v10]);
      // P = A1A0 ⊕ B1B0 ⊕ A1B0 ⊕ A0B1 (not needed for the lowest pair)
      if (k > 0) {
        if (ctx.party === 0) gates.push([v1, zero], [v0, zero]);
        else gates.push([zero, v0], [zero, v1]);
      }
    }
    if (m & 1) gates.push(oneSided(plane(m - 1)));
    const z = await andGates(ctx, gates, n);
    segs = [];
    let at = 0;
    const t0 = performance.now();
    for (let k = 0; k < q; k++) {
      const g = xorInto(xorInto(z[at]!, z[at + 1]!), z[at + 2]!);
      at += 3;
      if (k === 0) segs.push({ g });
      else {
        segs.push({ g, p: xorInto(xorInto(z[at]!, z[at + 1]!), both[k]!) });
        at += 2;
      }
    }
    if (m & 1) segs.push({ g: z[at]!, p: plane(m - 1) });
    ctx.profile?.add('and', performance.now() - t0);
  }
  // Sign-only tree: pair adjacent segments bottom-up; one exchange per level.
  while (segs.length > 1) {
    const gates: Gate[] = [];
    for (let k = 0; k + 1 < segs.length; k += 2) {
      const lo = segs[k]!,
        hi = segs[k + 1]!;
      gates.push([hi.p!, lo.g]);
      if (k > 0) gates.push([hi.p!, lo.p!]);
    }
    const z = await andGates(ctx, gates, n);
    const next: Segment[] = [];
    let at = 0;
    const t0 = performance.now();
    for (let k = 0; k < segs.length; k += 2) {
      const lo = segs[k]!,
        hi = segs[k + 1];
      if (!hi) {
        next.push(lo);
        continue;
      }
      const g = xorBits(hi.g, z[at++]!);
      next.push(k === 0 ? { g } : { g, p: z[at++]! });
    }
    ctx.profile?.add('and', performance.now() - t0);
    segs = next;
  }
  return timed(ctx, 'and', () => xorInto(top, segs[0]!.g));
}

// ---------------------------------------------------------------------------------------------
// CrypTen baseline: full-word Kogge–Stone on XOR-shared 64-bit words
// ---------------------------------------------------------------------------------------------

/** Word-aligned copy of packed 64-bit words shifted left by s (1 ≤ s ≤ 32) per element. */
function shl64(a: Uint8Array, s: number): Uint8Array {
  const src = (a.byteOffset & 3) === 0 ? new Uint32Array(a.buffer, a.byteOffset, a.length >>> 2) : new Uint32Array(a.slice().buffer);
  const out = new Uint32Array(src.length);
  if (s === 32) {
    for (let i = 0; i < src.length; i += 2) out[i + 1] = src[i]!;
  } else {
    for (let i = 0; i < src.length; i += 2) {
      const lo = src[i]!,
        hi = src[i + 1]!;
      out[i] = lo << s;
      out[i + 1] = (hi << s) | (lo >>> (32 - s));
    }
  }
  return new Uint8Array(out.buffer);
}

/** Packed plane of bit `bit` of every 64-bit word in `words`. */
const wordBit = (words: Uint8Array, bit: number): Uint8Array => toBitPlanes(ringFromBytesLE(words), bit, 1);

/** XOR share of [x < 0] the CrypTen way: 1 + 6 rounds of full 64-bit word ANDs. */
async function signCrypten(ctx: PartyContext, x: Ring): Promise<Uint8Array> {
  const n = x.length,
    nbits = 64 * n;
  const mine = timed(ctx, 'pack', () => ringToBytes(x).slice());
  const zero = new Uint8Array(8 * n);
  // Addends x0 and x1 as XOR-shared words: party i holds its own share, the other holds 0.
  let [g] = (await andGates(ctx, [ctx.party === 0 ? [mine, zero] : [zero, mine]], nbits)) as [Uint8Array];
  let p: Uint8Array = mine;
  for (let s = 1; s < 64; s <<= 1) {
    const [gs, ps] = timed(ctx, 'and', () => [shl64(g, s), shl64(p, s)]);
    const [pg, pp] = (await andGates(
      ctx,
      [
        [p, gs],
        [p, ps],
      ],
      nbits,
    )) as [Uint8Array, Uint8Array];
    g = timed(ctx, 'and', () => xorInto(g, pg));
    p = pp;
  }
  // sum bit 63 = x0[63] ⊕ x1[63] ⊕ carry into 63 (= G over bits 0..62)
  return timed(ctx, 'bitplanes', () => xorInto(wordBit(mine, 63), wordBit(g, 62)));
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** This party's XOR share (packed bits) of the sign estimate [x < 0] on the options' bit range. */
export async function signBit(ctx: PartyContext, x: BigInt64Array, opts?: CompareOptions): Promise<Uint8Array> {
  const r = resolve(opts);
  if (x.length === 0) return new Uint8Array(0);
  if (r.protocol === 'crypten') return signCrypten(ctx, x);
  if (r.b === 0) return zeroBits(x.length);
  if (r.protocol === 'fss')
    throw new Error('compare: the fss protocol yields arithmetic shares only (use ltz or reluWithMask, or fss2), not an XOR-shared sign');
  if (r.protocol === 'fss2') return fssSignBit(ctx, x, r.lsb, r.lsb + r.b);
  return signOnly(ctx, x, r.lsb, r.b, r.fold);
}

/** Arithmetic share of a dealer bit r given the public c = s ⊕ r: share of s = c + r − 2cr. */
function b2aLocal(ctx: PartyContext, c: Uint8Array, rArith: Ring): Ring {
  const n = rArith.length;
  let t = ringMulScalar(rArith, -2n);
  if (ctx.party === 0) t = ringAddScalar(t, 1n);
  return ringAdd(rArith, ringMul(bitsToRing(c, n), t));
}

/** Open c = s ⊕ r for a dealer bit r; CrypTen sends each masked bit as a full 64-bit word. */
async function openMaskedBit(ctx: PartyContext, s: Uint8Array, rXor: Uint8Array, n: number, wordWide: boolean): Promise<Uint8Array> {
  const c = xorBits(s, rXor.subarray(0, s.length));
  if (!wordWide) return xorInto(c, await ctx.peer.exchange(c));
  const peer = await ctx.peer.exchange(ringToBytes(bitsToRing(c, n)));
  return xorInto(c, wordBit(peer, 0));
}

/** This party's arithmetic share of [x < 0] (0/1) on the options' bit range. */
export async function ltz(ctx: PartyContext, x: BigInt64Array, opts?: CompareOptions): Promise<BigInt64Array> {
  const r = resolve(opts);
  const n = x.length;
  if ((r.protocol !== 'crypten' && r.b === 0) || n === 0) return new BigInt64Array(n);
  if (r.protocol === 'fss') {
    const { mask } = await fssReluWithMask(ctx, x, r.lsb, r.lsb + r.b);
    const one = new BigInt64Array(n);
    if (ctx.party === 0) one.fill(1n);
    return ringSub(one, mask);
  }
  const s = await signBit(ctx, x, opts);
  const rb = await ctx.dealer.sharedBits(n);
  const c = await openMaskedBit(ctx, s, rb.xor, n, r.protocol === 'crypten');
  return b2aLocal(ctx, c, rb.arith);
}

/**
 * ReLU(x) = x · [x ≥ 0] on shares; also returns this party's arithmetic share of the mask
 * [x ≥ 0] (0/1). With b = msb − lsb = 0 no comparison is made: ReLU is the identity and the mask 1.
 */
export async function reluWithMask(ctx: PartyContext, x: BigInt64Array, opts?: CompareOptions): Promise<{ y: BigInt64Array; mask: BigInt64Array }> {
  const r = resolve(opts);
  const n = x.length;
  const one = (): Ring => {
    const m = new BigInt64Array(n);
    if (ctx.party === 0) m.fill(1n);
    return m;
  };
  if (n === 0) return { y: new BigInt64Array(0), mask: new BigInt64Array(0) };
  if (r.protocol !== 'crypten' && r.b === 0) return { y: x.slice(), mask: one() };
  if (r.protocol === 'fss') return fssReluWithMask(ctx, x, r.lsb, r.lsb + r.b);
  const lanes = r.protocol === 'fss2' ? 1 : (opts?.lanes ?? (n >= LANE_MIN ? 2 : 1));
  if (!Number.isInteger(lanes) || lanes < 1) throw new Error(`compare: lanes must be a positive integer, got ${String(lanes)}`);
  if (lanes > 1 && n >= 2 * lanes) {
    // slices of whole 64-element words, so every lane's packed bit vectors are word aligned
    const per = Math.ceil(n / lanes / 64) * 64;
    const lanesN = Math.ceil(n / per);
    if (r.protocol === 'signonly' && !r.fold) {
      // the resident lanes write their results straight into the slices of one pair of arrays
      const y = new BigInt64Array(uninit(8 * n), 0, n),
        mask = new BigInt64Array(uninit(8 * n), 0, n);
      const slice = (a: Ring, k: number): Ring => a.subarray(k * per, Math.min(n, (k + 1) * per));
      await inLanes(ctx, lanesN, (lane, k) => reluSignOnlyResident(lane, slice(x, k), r.lsb, r.b, { y: slice(y, k), mask: slice(mask, k) }));
      return { y, mask };
    }
    const parts = await inLanes(ctx, lanesN, (lane, k) => reluWithMask(lane, x.subarray(k * per, Math.min(n, (k + 1) * per)), { ...opts, lanes: 1 }));
    const y = new BigInt64Array(n),
      mask = new BigInt64Array(n);
    parts.forEach((p, k) => (y.set(p.y, k * per), mask.set(p.mask, k * per)));
    return { y, mask };
  }
  if (r.protocol === 'signonly' && !r.fold) return reluSignOnlyResident(ctx, x, r.lsb, r.b);
  const s = await signBit(ctx, x, opts);
  if (r.protocol === 'crypten') {
    const rb = await ctx.dealer.sharedBits(n);
    const c = await openMaskedBit(ctx, s, rb.xor, n, true);
    const mask = ringSub(one(), b2aLocal(ctx, c, rb.arith));
    return { y: await beaverMul(ctx, x, mask), mask };
  }
  return reluFromSign(ctx, x, s);
}

/**
 * The sign-only ReLU's last round from this party's XOR share `s` of [x < 0] (JS arrays; the
 * default path runs sign-tree.ts's resident version, with the same messages and shares).
 */
export async function reluFromSign(ctx: PartyContext, x: Ring, s: Uint8Array): Promise<{ y: BigInt64Array; mask: BigInt64Array }> {
  const n = x.length;
  // One exchange: c = s ⊕ r (packed bits) and D = x − A, the only Beaver opening x·r needs.
  const t = await ctx.dealer.bitMulTriples(n);
  const cb = bitBytes(n);
  const { c, d, msg } = timed(ctx, 'pack', () => {
    const c = xorBits(s, t.xor.subarray(0, s.length));
    const d = ringSub(x, t.a);
    const msg = new Uint8Array(cb + 8 * n);
    msg.set(c, 0);
    msg.set(ringToBytes(d), cb);
    return { c, d, msg };
  });
  const peer = await ctx.peer.exchange(msg, true); // handed off: msg is not used again
  if (peer.length !== msg.length) throw new Error(`compare: ReLU opening has ${peer.length} bytes, expected ${msg.length}`);
  // [x·r] = D·[r] + [A·r] with D = x − A opened; ReLU = c ? x·r : x − x·r = (x − x·r) + c·(2·x·r − x);
  // mask = 1 − s likewise from [r]: one fused wasm pass (ringReluTail)
  return timed(ctx, 'ring', () => ringReluTail(x, d, peer.subarray(cb), t.c, t.arith, xorInto(c, peer.subarray(0, cb)), ctx.party === 0));
}

/** This party's share of ReLU(x) on the options' bit range (b = 0: the identity). */
export async function relu(ctx: PartyContext, x: BigInt64Array, opts?: CompareOptions): Promise<BigInt64Array> {
  return (await reluWithMask(ctx, x, opts)).y;
}

// ---------------------------------------------------------------------------------------------
// MaxPool
// ---------------------------------------------------------------------------------------------

/** Copy 64-bit elements by index through 32-bit views (no BigInt boxing). */
function gather(src: Ring, idx: Int32Array): Ring {
  const out = new BigInt64Array(idx.length);
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length * 2),
    o = new Uint32Array(out.buffer);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i]! * 2;
    o[2 * i] = s[j]!;
    o[2 * i + 1] = s[j + 1]!;
  }
  return out;
}

/**
 * Max pooling on shares (NCHW, `geom` as the ring's PoolGeom): a tournament over each window's
 * in-bounds elements (padding is excluded, not zero), max(a, b) = b + ReLU(a − b); all comparisons
 * of one tournament level go into one batched ReLU call (2×2 windows: 2 levels; 3×3: 4 levels).
 */
export async function maxPool2d(ctx: PartyContext, x: BigInt64Array, geom: PoolGeom, opts?: CompareOptions): Promise<BigInt64Array> {
  const { oh, ow } = convOutSize(geom);
  const { n, c, h, w: w_, kh, kw, strideH, strideW, padT, padL } = geom;
  if (x.length !== n * c * h * w_) throw new Error(`compare.maxPool2d: input has ${x.length} elements, expected ${n * c * h * w_}`);
  // Candidates per window (public structure), in typed arrays: window w's list is
  // cand[w·K, w·K + len[w]), indices into the current value array.
  const K = kh * kw,
    W = n * c * oh * ow;
  let cand = new Int32Array(W * K);
  const len = new Int32Array(W);
  let w = 0;
  for (let pl = 0; pl < n * c; pl++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++, w++) {
        let l = 0;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * strideH - padT + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * strideW - padL + kx;
            if (ix >= 0 && ix < w_) cand[w * K + l++] = (pl * h + iy) * w_ + ix;
          }
        }
        if (l === 0) throw new Error(`compare.maxPool2d: a ${kh}x${kw} window lies entirely in the padding`);
        len[w] = l;
      }
    }
  }
  let vals: Ring = x;
  for (;;) {
    let pairs = 0,
      odd = 0;
    for (let i = 0; i < W; i++) (pairs += len[i]! >>> 1), (odd += len[i]! & 1);
    if (pairs === 0) break;
    const ia = new Int32Array(pairs),
      ib = new Int32Array(pairs),
      pass = new Int32Array(odd);
    const next = new Int32Array(W * K);
    let pi = 0,
      oi = 0;
    for (let i = 0; i < W; i++) {
      const base = i * K,
        l = len[i]!;
      let m = 0;
      for (let k = 0; k + 1 < l; k += 2) {
        ia[pi] = cand[base + k]!;
        ib[pi] = cand[base + k + 1]!;
        next[base + m++] = pi++;
      }
      // this level's maxima come first in the next value array, then the odd elements passed through
      if (l & 1) (pass[oi] = cand[base + l - 1]!), (next[base + m++] = pairs + oi++);
      len[i] = m;
    }
    const a = gather(vals, ia),
      b = gather(vals, ib);
    const mx = ringAdd(b, await relu(ctx, ringSub(a, b), opts));
    const passVals = gather(vals, pass);
    vals = new BigInt64Array(mx.length + passVals.length);
    vals.set(mx, 0);
    vals.set(passVals, mx.length);
    cand = next;
  }
  return gather(
    vals,
    Int32Array.from({ length: W }, (_, i) => cand[i * K]!),
  );
}
