/**
 * Correlation maths: what each party draws from its PRG per request (in a fixed order), the
 * dealer's correction for party 1 from both parties' draws, and assembling a party's material.
 */

import type { Prg } from '../../crypto/prg.js';
import type { AndTriples, BitMulTriples, PartyId, SharedBits } from '../context.js';
import { assembleFssRelu, drawFssRelu, type FssDrawn } from '../protocols/fss/keys.js';
import { Region } from '../resident.js';
import { bitsToRing, bytesAndCorrection, ringAdd, ringConv2d, ringMatmul, ringMul, ringSub, ringToBytes } from '../ring.js';
import type { CorrelationRequest, Sizes } from './wire.js';

/** XOR of two equal-length byte arrays (word-wise where possible). */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  const words = a.length >> 2;
  if (words > 0 && a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const aw = new Uint32Array(a.buffer, a.byteOffset, words),
      bw = new Uint32Array(b.buffer, b.byteOffset, words);
    const ow = new Uint32Array(out.buffer, 0, words);
    for (let i = 0; i < words; i++) ow[i] = aw[i]! ^ bw[i]!;
    for (let i = words * 4; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  } else {
    for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  }
  return out;
}

/**
 * (a0⊕a1)&(b0⊕b1)⊕c0, written over c0 (the dealer's mirror draw, not used afterwards) and returned.
 * One fused pass on 32-bit words: the dealer's largest loop (the AND triples of a whole batch, tens
 * of MB). Plain JS on typed-array views beats a wasm kernel here: wasm would first copy all five
 * operands into its memory and the result out again, ~6x the bytes this pass touches.
 */
export function andCorrection(a0: Uint8Array, a1: Uint8Array, b0: Uint8Array, b1: Uint8Array, c0: Uint8Array): Uint8Array {
  const len = c0.length;
  if (a0.length < len || a1.length < len || b0.length < len || b1.length < len) throw new Error(`dealer: AND triple parts shorter than ${len} bytes`);
  let i = 0;
  if ((a0.byteOffset | a1.byteOffset | b0.byteOffset | b1.byteOffset | c0.byteOffset) % 4 === 0) {
    const w = len >>> 2;
    const A0 = new Int32Array(a0.buffer, a0.byteOffset, w),
      A1 = new Int32Array(a1.buffer, a1.byteOffset, w),
      B0 = new Int32Array(b0.buffer, b0.byteOffset, w),
      B1 = new Int32Array(b1.buffer, b1.byteOffset, w),
      C = new Int32Array(c0.buffer, c0.byteOffset, w);
    for (let k = 0; k < w; k++) C[k] = ((A0[k]! ^ A1[k]!) & (B0[k]! ^ B1[k]!)) ^ C[k]!;
    i = w << 2;
  }
  for (; i < len; i++) c0[i] = ((a0[i]! ^ a1[i]!) & (b0[i]! ^ b1[i]!)) ^ c0[i]!;
  return c0;
}

/**
 * The dealer's AND-triple correction for `nbits` gates straight from the two mirrors' streams: the
 * same bytes as `correction` on `draw`'s parts (a0, b0, c0 from party 0's stream, a1, b1 from party
 * 1's, ceil(nbits/8) bytes each, in that order), and the mirrors end at the same positions. The
 * parts are expanded piece by piece through forked readers (AES-CTR is seekable) into the wasm
 * arena and combined there (`bytesAndCorrection`), so the dealer never allocates, page-faults or
 * re-reads five whole parts (tens of MB per batch): measured ~35 → ~15 ms CPU per 8 MB of triples.
 */
export function andCorrectionStreamed(mirror0: Prg, mirror1: Prg, nbits: number): Uint8Array {
  const len = (nbits + 7) >>> 3;
  const out = new Uint8Array(len);
  if (len === 0) return out;
  // part order of bytesAndCorrection: a0, a1, b0, b1, c0
  const rd = [mirror0.fork(0), mirror1.fork(0), mirror0.fork(len), mirror1.fork(len), mirror0.fork(2 * len)];
  mirror0.skip(3 * len);
  mirror1.skip(2 * len);
  bytesAndCorrection(out, (i, into) => void rd[i]!.fill(into));
  // draw's parts have their unused high bits cleared (Prg.bits); so has the correction
  if (nbits & 7) out[len - 1]! &= (1 << (nbits & 7)) - 1;
  return out;
}

/** Parts from this size on are drawn lazily by `LazyAndTriples` (below, a fork costs more than the copy saved). */
export const LAZY_AND_BYTES = 1 << 16;

/**
 * A party's AND triples whose PRG parts (a, b, and party 0's c) are expanded only when consumed,
 * through forks of the stream at their fixed positions (the stream itself skips past them at once,
 * so the draw order and bytes are those of `draw`): `fill` writes a part straight into the
 * consumer's array (e.g. wasm memory) and the whole part never exists as a JS array — no
 * allocation, no page faults, no copy, no garbage per AND level. The properties still work (they
 * expand the part into a new array once) for consumers without `fill`.
 */
export class LazyAndTriples implements AndTriples {
  private readonly parts: (Prg | Uint8Array | null)[];
  private readonly len: number;

  constructor(
    prg: Prg,
    party: PartyId,
    private readonly nbits: number,
  ) {
    const len = (nbits + 7) >>> 3;
    this.len = len;
    const k = party === 0 ? 3 : 2;
    this.parts = Array.from({ length: k }, (_, i) => prg.fork(i * len));
    prg.skip(k * len);
  }

  /** Party 1: its c, the dealer's correction. */
  setC(c: Uint8Array): this {
    this.parts[2] = c;
    return this;
  }

  /** Expand every part still to be drawn into an array now (an offline phase). */
  expand(): void {
    for (let i = 0; i < this.parts.length; i++) this.get(i as 0 | 1 | 2);
  }

  get a(): Uint8Array {
    return this.get(0);
  }
  get b(): Uint8Array {
    return this.get(1);
  }
  get c(): Uint8Array {
    return this.get(2);
  }

  private get(i: 0 | 1 | 2): Uint8Array {
    const p = this.parts[i];
    if (p instanceof Uint8Array) return p;
    const out = new Uint8Array(this.len);
    this.fill(i, out);
    this.parts[i] = out;
    return out;
  }

  fill(i: 0 | 1 | 2, into: Uint8Array): void {
    const p = this.parts[i];
    if (into.length !== this.len) throw new Error(`dealer client: AND triple part of ${this.len} bytes, filled into ${into.length}`);
    if (p === null || p === undefined) throw new Error(`dealer client: AND triple part ${'abc'[i]} was already consumed`);
    if (p instanceof Uint8Array) into.set(p);
    else {
      p.fill(into);
      // as Prg.bits: the unused high bits of the last byte are zero
      if (this.nbits & 7) into[this.len - 1]! &= (1 << (this.nbits & 7)) - 1;
    }
    this.parts[i] = null;
  }
}

type BitMulPart = 'xor' | 'arith' | 'a' | 'c';

/**
 * A party's bit-multiplication triples drawn when consumed (as LazyAndTriples): r's XOR share
 * (bits), A, and party 0's [r] and C through forks at their `draw` positions; party 1's [r] and C
 * are the dealer's correction. `fill` writes a part straight into the consumer's memory.
 */
export class LazyBitMul implements BitMulTriples {
  private readonly parts = new Map<BitMulPart, Prg | Uint8Array | null>();

  constructor(
    prg: Prg,
    party: PartyId,
    private readonly n: number,
  ) {
    const L = (n + 7) >>> 3;
    this.parts.set('xor', prg.fork(0));
    this.parts.set('a', prg.fork(L));
    if (party === 0) {
      this.parts.set('arith', prg.fork(L + 8 * n));
      this.parts.set('c', prg.fork(L + 16 * n));
    }
    prg.skip(L + (party === 0 ? 24 : 8) * n);
  }

  /** Party 1: [r] and C from the dealer's correction (16n bytes). */
  setCorrection(corr: Uint8Array): this {
    this.parts.set('arith', corr.subarray(0, 8 * this.n));
    this.parts.set('c', corr.subarray(8 * this.n, 16 * this.n));
    return this;
  }

  /** Expand every part still to be drawn into an array now (an offline phase). */
  expand(): void {
    for (const k of this.parts.keys()) this.get(k);
  }

  get xor(): Uint8Array {
    return this.get('xor');
  }
  get arith(): BigInt64Array {
    return ringView(this.get('arith'), this.n);
  }
  get a(): BigInt64Array {
    return ringView(this.get('a'), this.n);
  }
  get c(): BigInt64Array {
    return ringView(this.get('c'), this.n);
  }

  private bytes(part: BitMulPart): number {
    return part === 'xor' ? (this.n + 7) >>> 3 : 8 * this.n;
  }

  private get(part: BitMulPart): Uint8Array {
    const p = this.parts.get(part);
    if (p instanceof Uint8Array) return p;
    const out = new Uint8Array(this.bytes(part));
    this.fill(part, out);
    this.parts.set(part, out);
    return out;
  }

  fill(part: BitMulPart, into: Uint8Array): void {
    const p = this.parts.get(part),
      len = this.bytes(part);
    if (into.length !== len) throw new Error(`dealer client: bit-multiplication part ${part} of ${len} bytes, filled into ${into.length}`);
    if (p === null || p === undefined) throw new Error(`dealer client: bit-multiplication part ${part} was already consumed`);
    if (p instanceof Uint8Array) into.set(p);
    else {
      p.fill(into);
      // as Prg.bits: the unused high bits of r's last byte are zero
      if (part === 'xor' && this.n & 7) into[len - 1]! &= (1 << (this.n & 7)) - 1;
    }
    this.parts.set(part, null);
  }
}

/** Elements per piece of `bitMulCorrectionStreamed` (64 KiB per ring part: the AES pieces stay in L2). */
const BITMUL_PIECE = 8192;

/**
 * The dealer's correction for `n` bit-multiplication triples straight from the mirrors' streams:
 * the same bytes as `correction` on `draw`'s parts ([r − c0_r, (A0 + A1)·r − c0_C] with r = r0 ⊕ r1)
 * and the mirrors end where `draw` leaves them. Piece by piece through forked readers into resident
 * wasm memory, combined there by the ring kernels: the six parts (~40 bytes per element) and the
 * intermediate ring arrays are never allocated whole (as andCorrectionStreamed for AND triples).
 */
export function bitMulCorrectionStreamed(mirror0: Prg, mirror1: Prg, n: number): Uint8Array {
  const L = (n + 7) >>> 3;
  const out = new Uint8Array(16 * n);
  if (n === 0) return out;
  // draw order: party 0 r0 (L bytes), A0 (8n), c0 = [c0_r, c0_C] (16n); party 1 r1 (L), A1 (8n)
  const rd = [mirror0.fork(0), mirror1.fork(0), mirror0.fork(L), mirror1.fork(L), mirror0.fork(L + 8 * n), mirror0.fork(L + 16 * n)];
  mirror0.skip(L + 24 * n);
  mirror1.skip(L + 8 * n);
  const R = new Region();
  try {
    const k = R.kk,
      P = BITMUL_PIECE;
    const [r0, r1, a0, a1, cr, cc, rr] = [P / 8, P / 8, 8 * P, 8 * P, 8 * P, 8 * P, 8 * P].map((b) => R.alloc(b).p) as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    for (let e = 0; e < n; e += P) {
      const m = Math.min(P, n - e),
        mb = (m + 7) >>> 3;
      // fresh views each piece (nothing below allocates, but a view must never outlive a grow)
      const u8 = new Uint8Array(k.memory.buffer);
      rd[0]!.fill(u8.subarray(r0, r0 + mb));
      rd[1]!.fill(u8.subarray(r1, r1 + mb));
      rd[2]!.fill(u8.subarray(a0, a0 + 8 * m));
      rd[3]!.fill(u8.subarray(a1, a1 + 8 * m));
      rd[4]!.fill(u8.subarray(cr, cr + 8 * m));
      rd[5]!.fill(u8.subarray(cc, cc + 8 * m));
      k.xorBytes(r0, r1, r0, mb);
      k.bitsToRing(r0, m, rr); // r as ring elements 0/1 (bits beyond m are not read)
      k.sub(rr, cr, cr, m); // r − c0_r
      k.add(a0, a1, a0, m);
      k.mul(a0, rr, a0, m);
      k.sub(a0, cc, cc, m); // A·r − c0_C
      out.set(u8.subarray(cr, cr + 8 * m), 8 * e);
      out.set(u8.subarray(cc, cc + 8 * m), 8 * (n + e));
    }
  } finally {
    R.close();
  }
  return out;
}

/** The random parts party `p` draws from its PRG for request `r`, in the fixed draw order. */
export interface Drawn {
  a: BigInt64Array | Uint8Array;
  b: BigInt64Array | Uint8Array;
  /** Party 0's c (its own third share); undefined for party 1 (c comes from the dealer). */
  c?: BigInt64Array | Uint8Array;
  /** FSS requests: the PRG-expanded part of the key. */
  fss?: FssDrawn;
}

/** Draw party `party`'s random parts of request `r` from its PRG (fixed order). */
export function draw(prg: Prg, party: PartyId, r: CorrelationRequest, s: Sizes): Drawn {
  if (r.kind === 'fssrelu') return { a: new Uint8Array(0), b: new Uint8Array(0), fss: drawFssRelu(prg, party, r.n, r.lsb, r.msb, r.rounds) };
  if (r.kind === 'and') {
    const a = prg.bits(s.la),
      b = prg.bits(s.lb);
    return party === 0 ? { a, b, c: prg.bits(s.lc) } : { a, b };
  }
  if (r.kind === 'bits') {
    // a = XOR share of r; party 0's c = its arithmetic share; party 1's arithmetic share is the correction.
    const a = prg.bits(s.la);
    return party === 0 ? { a, b: new Uint8Array(0), c: prg.ring(s.lc) } : { a, b: new Uint8Array(0) };
  }
  if (r.kind === 'bitmul') {
    // a = XOR share of r, b = share of A; party 0's c = its shares of [r] and C; party 1's come as the correction.
    const a = prg.bits(s.la),
      b = prg.ring(s.lb);
    return party === 0 ? { a, b, c: prg.ring(s.lc) } : { a, b };
  }
  const a = prg.ring(s.la),
    b = prg.ring(s.lb);
  return party === 0 ? { a, b, c: prg.ring(s.lc) } : { a, b };
}

/** The dealer's correction for party 1, from both parties' drawn parts. */
export function correction(r: CorrelationRequest, p0: Drawn, p1: Drawn): Uint8Array {
  if (r.kind === 'and') {
    return andCorrection(p0.a as Uint8Array, p1.a as Uint8Array, p0.b as Uint8Array, p1.b as Uint8Array, p0.c as Uint8Array);
  }
  if (r.kind === 'bits') {
    const bits = bitsToRing(xorBytes(p0.a as Uint8Array, p1.a as Uint8Array), r.n);
    return ringToBytes(ringSub(bits, p0.c as BigInt64Array));
  }
  if (r.kind === 'bitmul') {
    const bits = bitsToRing(xorBytes(p0.a as Uint8Array, p1.a as Uint8Array), r.n);
    const a = ringAdd(p0.b as BigInt64Array, p1.b as BigInt64Array);
    const both = new BigInt64Array(2 * r.n);
    both.set(bits, 0);
    both.set(ringMul(a, bits), r.n);
    return ringToBytes(ringSub(both, p0.c as BigInt64Array));
  }
  if (r.kind === 'fssrelu') throw new Error('dealer: FSS keys are dealt by dealFssRelu, not as a correction');
  const a = ringAdd(p0.a as BigInt64Array, p1.a as BigInt64Array);
  const b = ringAdd(p0.b as BigInt64Array, p1.b as BigInt64Array);
  const prod = r.kind === 'beaver' ? ringMul(a, b) : r.kind === 'matmul' ? ringMatmul(a, b, r.m, r.k, r.n) : ringConv2d(a, b, r.geom);
  return ringToBytes(ringSub(prod, p0.c as BigInt64Array));
}

/** Ring elements from received bytes: a view when aligned, else a copy. */
export function ringView(bytes: Uint8Array, n: number): BigInt64Array {
  if (bytes.byteOffset % 8 === 0) return new BigInt64Array(bytes.buffer, bytes.byteOffset, n);
  const out = new BigInt64Array(n);
  new Uint8Array(out.buffer).set(bytes.subarray(0, 8 * n));
  return out;
}

/** Assemble party `p`'s material from its drawn parts and (party 1) the dealer's correction. */
export function assemble(r: CorrelationRequest, d: Drawn, corr: Uint8Array | undefined): unknown {
  if (r.kind === 'fssrelu') return assembleFssRelu(1, d.fss!, corr!, r.n, r.lsb, r.msb, r.rounds);
  const c = d.c ?? (r.kind === 'and' ? corr! : ringView(corr!, corr!.length / 8));
  if (r.kind === 'bits') return { xor: d.a as Uint8Array, arith: c as BigInt64Array } satisfies SharedBits;
  if (r.kind === 'bitmul') {
    const rc = c as BigInt64Array;
    return { xor: d.a as Uint8Array, arith: rc.subarray(0, r.n), a: d.b as BigInt64Array, c: rc.subarray(r.n) } satisfies BitMulTriples;
  }
  return { a: d.a, b: d.b, c };
}
