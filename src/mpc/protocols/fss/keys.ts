/**
 * Dealer material of the FSS ReLU gate on a bit window [lsb, msb), b = msb − lsb (1 ≤ b ≤ 64), and
 * how it travels. Per element the gate needs:
 *   - an additive share of a uniform window mask r ∈ Z_2^b (each party's share from its own PRG);
 *   - an additive share of a uniform A ∈ Z_2^64 (PRG; not needed for the full window [0, 64), where
 *     the opened value itself is x + r and A = r);
 *   - a DCF key on b − 1 bits with threshold α = r mod 2^(b−1) and payload β = (1 − 2·r_(b−1))·(1, A):
 *     its root seed comes from the party's PRG, its correction words (common to both keys) from the
 *     dealer;
 *   - an additive share of the offset o = r_(b−1)·(1, A) (party 0: PRG; party 1: from the dealer).
 * So party 0 expands everything random from its seed and receives only the correction words;
 * party 1 receives the correction words and its offset share (16 bytes per element more).
 * With u = [Y' < α] (Y the opened window value), the parties then hold shares of
 * v = r_(b−1) ⊕ u and of v·A (see relu.ts).
 *
 * The 2-round variant (`rounds` = 2) needs only r (PRG), a bit-output DCF key with α = r' (dcfbit.ts:
 * about half the correction words) and XOR shares of r_(b−1) (party 0: PRG; party 1: from the
 * dealer, 1 bit per element); its second round uses the dealer's ordinary bit-multiply triples.
 */
import type { Prg } from '../../../crypto/prg.js';
import { dcfCwBytes, dcfGenSteps } from './dcf.js';
import { dcfBitCwBytes, dcfBitGenSteps } from './dcfbit.js';
import { runSteps } from './mmo.js';

/** A party's FSS ReLU material for `n` elements on window [lsb, msb). */
export interface FssReluKey {
  party: 0 | 1;
  /** 1: one-round gate (DCF payload (v, v·A)); 2: XOR-shared sign then a bit-multiply round. */
  rounds: 1 | 2;
  n: number;
  lsb: number;
  msb: number;
  /** DCF root seeds, 16 bytes per element. */
  seeds: Uint8Array;
  /** Share of the window mask r (only the low b bits matter). */
  r: BigInt64Array;
  /** Share of A (empty for the full window, where A = r). */
  a: BigInt64Array;
  /** Share of the offset r_(b−1)·(1, A), interleaved per element (2n). */
  offset: BigInt64Array;
  /** The DCF correction words shared by both keys (dcf.ts layout; dcfbit.ts for rounds = 2). */
  cw: Uint8Array;
  /** rounds = 2: XOR share of r_(b−1), packed bits. */
  rTop?: Uint8Array;
}

/** Where a party's FSS material comes from (implemented by the dealer client). */
export interface FssCorrelations {
  /** Material for `n` FSS ReLU gates on bits [lsb, msb). */
  fssRelu(n: number, lsb: number, msb: number, rounds: 1 | 2): Promise<FssReluKey>;
}

/** Whether [lsb, msb) is the full ring, where the opened value x + r makes the second opening unnecessary. */
export const isFullWindow = (lsb: number, msb: number): boolean => lsb === 0 && msb === 64;

/** Throw a one-line error unless [lsb, msb) is a valid FSS window (1 ≤ b ≤ 64) and n a sane count. */
export function checkFssWindow(n: number, lsb: number, msb: number, max = 1 << 26): void {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`fss: element count must be an integer in [0, ${max}], got ${n}`);
  if (!Number.isInteger(lsb) || !Number.isInteger(msb) || lsb < 0 || msb > 64 || msb - lsb < 1) {
    throw new Error(`fss: bit window [${lsb}, ${msb}) does not fit the 64-bit ring (need 0 <= lsb < msb <= 64)`);
  }
}

/** Bytes the dealer sends party `p` for `n` gates on [lsb, msb): correction words (+ party 1's offset share). */
export function fssReluKeyBytes(p: 0 | 1, n: number, lsb: number, msb: number, rounds: 1 | 2 = 1): number {
  if (rounds === 2) return dcfBitCwBytes(n, msb - lsb - 1) + (p === 1 ? (n + 7) >>> 3 : 0);
  return dcfCwBytes(n, msb - lsb - 1) + (p === 1 ? 16 * n : 0);
}

/** A party's PRG-expanded part of the material (the dealer mirrors both). */
export interface FssDrawn {
  seeds: Uint8Array;
  r: BigInt64Array;
  a: BigInt64Array;
  /** Party 0 only: its offset share (rounds = 1) or XOR share of r_(b−1) (rounds = 2). */
  offset?: BigInt64Array;
  rTop?: Uint8Array;
}

/** Expand party `p`'s random parts for `n` gates from its PRG (same order on the party and the dealer). */
export function drawFssRelu(prg: Prg, p: 0 | 1, n: number, lsb: number, msb: number, rounds: 1 | 2 = 1): FssDrawn {
  const seeds = prg.bytes(16 * n);
  const r = prg.ring(n);
  if (rounds === 2) return p === 0 ? { seeds, r, a: new BigInt64Array(0), rTop: prg.bits(n) } : { seeds, r, a: new BigInt64Array(0) };
  const a = isFullWindow(lsb, msb) ? new BigInt64Array(0) : prg.ring(n);
  return p === 0 ? { seeds, r, a, offset: prg.ring(2 * n) } : { seeds, r, a };
}

/** Dealer: the bytes for party 0 (correction words) and party 1 (offset share ‖ correction words). */
export function dealFssRelu(d0: FssDrawn, d1: FssDrawn, n: number, lsb: number, msb: number, rounds: 1 | 2 = 1): { to0: Uint8Array; to1: Uint8Array } {
  return runSteps(dealFssReluSteps(d0, d1, n, lsb, msb, rounds));
}

/** dealFssRelu as steps (one DCF tree level each), so a dealer can keep its links alive between them. */
export function* dealFssReluSteps(
  d0: FssDrawn,
  d1: FssDrawn,
  n: number,
  lsb: number,
  msb: number,
  rounds: 1 | 2 = 1,
): Generator<void, { to0: Uint8Array; to1: Uint8Array }> {
  if (rounds === 2) return yield* dealFssRelu2(d0, d1, n, lsb, msb);
  const b = msb - lsb,
    full = isFullWindow(lsb, msb);
  const low = (1n << BigInt(b - 1)) - 1n;
  const alpha = new BigInt64Array(n),
    beta = new BigInt64Array(2 * n);
  const off1 = new BigInt64Array(2 * n);
  // Per-element BigInt work is fine here: the dealer's AES work (8 blocks per level) dominates.
  for (let e = 0; e < n; e++) {
    const r = BigInt.asUintN(b, d0.r[e]! + d1.r[e]!);
    const A = full ? BigInt.asIntN(64, r) : BigInt.asIntN(64, d0.a[e]! + d1.a[e]!);
    const top = (r >> BigInt(b - 1)) & 1n;
    alpha[e] = BigInt.asIntN(64, r & low);
    const sgn = 1n - 2n * top;
    beta[2 * e] = sgn;
    beta[2 * e + 1] = BigInt.asIntN(64, sgn * A);
    off1[2 * e] = BigInt.asIntN(64, top - d0.offset![2 * e]!);
    off1[2 * e + 1] = BigInt.asIntN(64, top * A - d0.offset![2 * e + 1]!);
  }
  const cw = yield* dcfGenSteps(b - 1, alpha, beta, d0.seeds, d1.seeds);
  alpha.fill(0n);
  beta.fill(0n);
  const to1 = new Uint8Array(16 * n + cw.length);
  to1.set(new Uint8Array(off1.buffer), 0);
  to1.set(cw, 16 * n);
  off1.fill(0n);
  return { to0: cw, to1 };
}

/** The 2-round variant's dealing: bit-output DCF on α = r', XOR shares of r_(b−1). */
function* dealFssRelu2(d0: FssDrawn, d1: FssDrawn, n: number, lsb: number, msb: number): Generator<void, { to0: Uint8Array; to1: Uint8Array }> {
  const b = msb - lsb;
  const alpha = new BigInt64Array(n),
    aw = new Uint32Array(alpha.buffer);
  const r0 = new Uint32Array(d0.r.buffer, d0.r.byteOffset, 2 * n),
    r1 = new Uint32Array(d1.r.buffer, d1.r.byteOffset, 2 * n);
  const nb = (n + 7) >>> 3,
    to1 = new Uint8Array(nb + dcfBitCwBytes(n, b - 1));
  const rTop0 = d0.rTop!;
  // r = r0 + r1 mod 2^b on 32-bit halves (no BigInt per element: this runs once per ReLU element)
  const k = b - 1,
    hi = k >= 32,
    sh = k & 31;
  const loMask = k >= 32 ? 0xffffffff : k === 0 ? 0 : 0xffffffff >>> (32 - k);
  const hiMask = k <= 32 ? 0 : 0xffffffff >>> (64 - k);
  for (let e = 0; e < n; e++) {
    const lo = r0[2 * e]! + r1[2 * e]!;
    const l32 = lo >>> 0,
      h32 = (r0[2 * e + 1]! + r1[2 * e + 1]! + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    aw[2 * e] = l32 & loMask;
    aw[2 * e + 1] = h32 & hiMask;
    const top = (((hi ? h32 : l32) >>> sh) & 1) ^ ((rTop0[e >>> 3]! >>> (e & 7)) & 1);
    if (top) to1[e >>> 3] = to1[e >>> 3]! | (1 << (e & 7));
  }
  const cw = yield* dcfBitGenSteps(b - 1, alpha, d0.seeds, d1.seeds);
  alpha.fill(0n);
  to1.set(cw, nb);
  return { to0: cw, to1 };
}

/** A party's key from its drawn parts and the dealer's bytes (checked for length). */
export function assembleFssRelu(p: 0 | 1, d: FssDrawn, bytes: Uint8Array, n: number, lsb: number, msb: number, rounds: 1 | 2 = 1): FssReluKey {
  const want = fssReluKeyBytes(p, n, lsb, msb, rounds);
  if (bytes.length !== want)
    throw new Error(`fss: key material for ${n} gates on [${lsb}, ${msb}) has ${bytes.length} bytes, expected ${want} (truncated or from another request)`);
  if (rounds === 2) {
    const nb = (n + 7) >>> 3;
    const rTop = p === 0 ? d.rTop! : bytes.slice(0, nb);
    return { party: p, rounds, n, lsb, msb, seeds: d.seeds, r: d.r, a: d.a, offset: new BigInt64Array(0), cw: p === 0 ? bytes : bytes.subarray(nb), rTop };
  }
  let offset: BigInt64Array, cw: Uint8Array;
  if (p === 0) {
    offset = d.offset!;
    cw = bytes;
  } else {
    offset = new BigInt64Array(2 * n);
    new Uint8Array(offset.buffer).set(bytes.subarray(0, 16 * n));
    cw = bytes.subarray(16 * n);
  }
  return { party: p, rounds: 1, n, lsb, msb, seeds: d.seeds, r: d.r, a: d.a, offset, cw };
}
