/**
 * Arithmetic two-party protocols on additive shares over Z_2^64: input sharing, reveal, linear
 * operations, Beaver multiplication, local truncation, products with public or secret weights
 * (matrix / convolution triples), pooling. A share is a `BigInt64Array`; fixed-point values carry
 * `ctx.fracBits` fractional bits. Every opening sends exactly 8 bytes per ring element, and the two
 * openings of a multiplication travel together in one frame (one round).
 *
 * Truncation (CrypTen's 2-party local truncation, used by `truncate` and `divPublic`): party 0 keeps
 * ⌊x0 / d⌋, party 1 keeps −⌊−x1 / d⌋ (d = 2^bits for `truncate`). Write x0 = y + x with y = −x1 read
 * as a signed integer. If y + x does not wrap around ±2^63 the result is ⌊(y+x)/d⌋ − ⌊y/d⌋, which is
 * ⌊x/d⌋ or ⌊x/d⌋ + 1: an error below 1 unit of the result, rounding up with probability
 * frac(x/d) (unbiased, stochastic rounding). Because x0 is uniform, the wrap happens with
 * probability exactly |x| / 2^64 (x read as signed), and then the result is off by about 2^64 / d
 * (2^48 units, i.e. 2^32 in value, for d = 2^16): a product with 32 fractional bits of real magnitude
 * v fails with probability |v| / 2^32 per element. Keep |x| ≪ 2^63.
 */

import { secretBytes } from '../../crypto/random.js';
import type { PartyContext, PartyId } from '../context.js';
import {
  type ConvGeom,
  convOutSize,
  type PoolGeom,
  ringAdd,
  ringAddBroadcast,
  ringAddScalar,
  ringConv2d,
  ringMatmul,
  ringMul,
  ringMulBroadcast,
  ringMulScalar,
  ringNeg,
  ringShr,
  ringSub,
  ringSumPool2d,
  ringSumSpatial,
  ringToBytes,
} from '../ring.js';

/** Ring elements from a received message: exactly 8·n bytes (a view when aligned, else a copy). */
function fromWire(what: string, msg: Uint8Array, n: number): BigInt64Array {
  if (msg.length !== 8 * n) throw new Error(`arith.${what}: expected ${8 * n} bytes from the peer, got ${msg.length}`);
  if (msg.byteOffset % 8 === 0) return new BigInt64Array(msg.buffer, msg.byteOffset, n);
  const out = new BigInt64Array(n);
  new Uint8Array(out.buffer).set(msg);
  return out;
}

function checkLen(what: string, name: string, got: number, want: number): void {
  if (got !== want) throw new Error(`arith.${what}: ${name} has ${got} elements, expected ${want}`);
}

/** Open u = x − a and v = y − b (shares) together in one exchange; returns the plaintexts u and v. */
async function openMasked(
  ctx: PartyContext,
  what: string,
  x: BigInt64Array,
  a: BigInt64Array,
  y: BigInt64Array,
  b: BigInt64Array,
): Promise<[BigInt64Array, BigInt64Array]> {
  const nu = x.length,
    nv = y.length;
  checkLen(what, 'triple part a', a.length, nu);
  checkLen(what, 'triple part b', b.length, nv);
  const mine = new BigInt64Array(nu + nv);
  ringSub(x, a, mine.subarray(0, nu));
  ringSub(y, b, mine.subarray(nu));
  const theirs = fromWire(what, await ctx.peer.exchange(ringToBytes(mine)), nu + nv);
  const sum = ringAdd(mine, theirs, mine);
  return [sum.subarray(0, nu), sum.subarray(nu)];
}

// ---------------------------------------------------------------------------------------------
// Sharing and revealing
// ---------------------------------------------------------------------------------------------

/**
 * `n` uniform ring elements straight from the CSPRNG: an input's mask is used once, so it needs no
 * seed to expand. (In the page a fresh seed's AES-CTR stream has no WebCrypto keystream fetched
 * yet and came from the JS AES, 3.5–4.7 ms per 28×28 image; getRandomValues is native.)
 */
function randomRing(n: number): BigInt64Array {
  const b = secretBytes(8 * n);
  return new BigInt64Array(b.buffer, b.byteOffset, n);
}

/**
 * Secret-share `n` ring elements owned by `owner`: the owner sends a fresh random share (one
 * one-way message of 8·n bytes) and keeps `plain − share`; the other party receives its share.
 */
export async function shareInput(ctx: PartyContext, owner: PartyId, plain: BigInt64Array | undefined, n: number): Promise<BigInt64Array> {
  if (!Number.isInteger(n) || n < 0) throw new Error(`arith.shareInput: bad element count ${n}`);
  if (ctx.party !== owner) return fromWire('shareInput', await ctx.peer.recv(), n);
  if (!plain) throw new Error(`arith.shareInput: party ${owner} owns the input but passed no plaintext`);
  checkLen('shareInput', 'plain', plain.length, n);
  const r = randomRing(n);
  ctx.peer.send(ringToBytes(r));
  return ringSub(plain, r);
}

/**
 * The input-independent half of shareInput, for an offline phase: the owner draws the mask r and
 * sends it before its input exists (r does not depend on it). The owner gets r back (its share is
 * later x − r, see {@link maskedShare}); the other party gets r, its share.
 */
export async function shareInputMask(ctx: PartyContext, owner: PartyId, n: number): Promise<BigInt64Array> {
  if (!Number.isInteger(n) || n < 0) throw new Error(`arith.shareInputMask: bad element count ${n}`);
  if (ctx.party !== owner) return fromWire('shareInputMask', await ctx.peer.recv(), n);
  const r = randomRing(n);
  ctx.peer.send(ringToBytes(r));
  return r;
}

/** Online half: this party's share of the owner's input from the mask of {@link shareInputMask} (no message). */
export function maskedShare(ctx: PartyContext, owner: PartyId, mask: BigInt64Array, plain: BigInt64Array | undefined): BigInt64Array {
  if (ctx.party !== owner) return mask;
  if (!plain) throw new Error(`arith.maskedShare: party ${owner} owns the input but passed no plaintext`);
  checkLen('maskedShare', 'plain', plain.length, mask.length);
  return ringSub(plain, mask);
}

/** Reveal `x` to both parties (one exchange). */
export function reveal(ctx: PartyContext, x: BigInt64Array, to: 'both'): Promise<BigInt64Array>;
/** Reveal `x` to party `to` only (one one-way message); the other party gets undefined. */
export function reveal(ctx: PartyContext, x: BigInt64Array, to: PartyId | 'both'): Promise<BigInt64Array | undefined>;
export async function reveal(ctx: PartyContext, x: BigInt64Array, to: PartyId | 'both'): Promise<BigInt64Array | undefined> {
  if (to === 'both') return ringAdd(x, fromWire('reveal', await ctx.peer.exchange(ringToBytes(x)), x.length));
  if (to === ctx.party) return ringAdd(x, fromWire('reveal', await ctx.peer.recv(), x.length));
  ctx.peer.send(ringToBytes(x));
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Local linear operations
// ---------------------------------------------------------------------------------------------

/** x + y (shares; local). */
export function add(_ctx: PartyContext, x: BigInt64Array, y: BigInt64Array): BigInt64Array {
  return ringAdd(x, y);
}

/** x − y (shares; local). */
export function sub(_ctx: PartyContext, x: BigInt64Array, y: BigInt64Array): BigInt64Array {
  return ringSub(x, y);
}

/** −x (share; local). */
export function neg(_ctx: PartyContext, x: BigInt64Array): BigInt64Array {
  return ringNeg(x);
}

/** x + c for a public scalar or vector c (only party 0 adds it; local). */
export function addPublic(ctx: PartyContext, x: BigInt64Array, c: bigint | BigInt64Array): BigInt64Array {
  if (ctx.party === 1) return x.slice();
  return typeof c === 'bigint' ? ringAddScalar(x, c) : ringAdd(x, c);
}

/** x · c for a public scalar or vector c, no truncation (local). */
export function mulPublic(_ctx: PartyContext, x: BigInt64Array, c: bigint | BigInt64Array): BigInt64Array {
  return typeof c === 'bigint' ? ringMulScalar(x, c) : ringMul(x, c);
}

/** Fixed-point x · c for a public fixed-point scalar or vector c: mulPublic then truncate by fracBits. */
export function mulPublicFixed(ctx: PartyContext, x: BigInt64Array, c: bigint | BigInt64Array): BigInt64Array {
  return truncate(ctx, mulPublic(ctx, x, c), ctx.fracBits);
}

/** Divide a shared x by 2^bits with CrypTen's local truncation (error: see the module comment). */
export function truncate(ctx: PartyContext, x: BigInt64Array, bits: number): BigInt64Array {
  if (!Number.isInteger(bits) || bits < 0 || bits > 62) throw new Error(`arith.truncate: bits must be an integer in [0, 62], got ${bits}`);
  if (bits === 0) return x.slice();
  return ctx.party === 0 ? ringShr(x, bits) : ringNeg(ringShr(ringNeg(x), bits));
}

/**
 * Divide a shared x by a public positive integer d locally (party 0: ⌊x0/d⌋, party 1: −⌊−x1/d⌋);
 * same error law as `truncate` (powers of two use it directly). d ≤ 2^21.
 */
export function divPublic(ctx: PartyContext, x: BigInt64Array, d: number): BigInt64Array {
  if (!Number.isInteger(d) || d < 1 || d > 1 << 21) throw new Error(`arith.divPublic: divisor must be an integer in [1, 2^21], got ${d}`);
  if ((d & (d - 1)) === 0) return truncate(ctx, x, Math.log2(d));
  return ctx.party === 0 ? floorDiv(x, d) : ringNeg(floorDiv(ringNeg(x), d));
}

const TWO32 = 4294967296;

/**
 * Signed floor division of every element by a small positive d, on 32-bit halves in doubles (exact:
 * the partial dividend r·2^32 + lo stays below d·2^32 ≤ 2^53).
 */
function floorDiv(x: BigInt64Array, d: number): BigInt64Array {
  const out = x.slice();
  const w = new Uint32Array(out.buffer, out.byteOffset, 2 * out.length);
  for (let i = 0; i < w.length; i += 2) {
    let lo = w[i]!,
      hi = w[i + 1]!;
    const negative = hi >= 0x80000000;
    if (negative) {
      // ⌊x/d⌋ = −⌊(|x| + d − 1)/d⌋ for x < 0; |x| ≤ 2^63 fits the unsigned 64-bit (hi, lo)
      lo = (~lo >>> 0) + 1;
      hi = ~hi >>> 0;
      if (lo === TWO32) {
        lo = 0;
        hi = (hi + 1) >>> 0;
      }
      lo += d - 1;
      if (lo >= TWO32) {
        lo -= TWO32;
        hi = (hi + 1) >>> 0;
      }
    }
    const qh = Math.floor(hi / d);
    const t = (hi - qh * d) * TWO32 + lo;
    let ql = Math.floor(t / d);
    const r = t - ql * d;
    if (r < 0) ql--;
    else if (r >= d) ql++;
    if (negative) {
      // negate (qh, ql) in two's complement
      let nlo = (~ql >>> 0) + 1,
        nhi = ~qh >>> 0;
      if (nlo === TWO32) {
        nlo = 0;
        nhi = (nhi + 1) >>> 0;
      }
      w[i] = nlo;
      w[i + 1] = nhi;
    } else {
      w[i] = ql;
      w[i + 1] = qh;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Multiplication
// ---------------------------------------------------------------------------------------------

/**
 * Elementwise product of two shared vectors with one Beaver triple (no truncation): opens
 * d = x − a and e = y − b together in one round, 16 bytes per element each way.
 */
export async function beaverMul(ctx: PartyContext, x: BigInt64Array, y: BigInt64Array): Promise<BigInt64Array> {
  const n = x.length;
  checkLen('beaverMul', 'y', y.length, n);
  const t = await ctx.dealer.beaver(n);
  const [d, e] = await openMasked(ctx, 'beaverMul', x, t.a, y, t.b);
  // x·y = d·e + d·b + e·a + c; party 0 also takes d·e, folded in as d·(b + e).
  const bb = ctx.party === 0 ? ringAdd(t.b, e) : t.b;
  return ringAdd(ringAdd(ringMul(d, bb), ringMul(e, t.a)), t.c);
}

/** Fixed-point elementwise product: beaverMul then truncation by fracBits. */
export async function mulFixed(ctx: PartyContext, x: BigInt64Array, y: BigInt64Array): Promise<BigInt64Array> {
  return truncate(ctx, await beaverMul(ctx, x, y), ctx.fracBits);
}

/** Shared X (m×k) times public W (k×n), row-major, no truncation (local). */
export function matmulPublic(_ctx: PartyContext, x: BigInt64Array, w: BigInt64Array, m: number, k: number, n: number): BigInt64Array {
  return ringMatmul(x, w, m, k, n);
}

/**
 * Shared X (m×k) times shared W (k×n), no truncation, with one matrix triple: opens D = X − A and
 * E = W − B in one round (8·(mk + kn) bytes each way).
 */
export async function matmulSecret(ctx: PartyContext, x: BigInt64Array, w: BigInt64Array, m: number, k: number, n: number): Promise<BigInt64Array> {
  checkLen('matmulSecret', 'X', x.length, m * k);
  checkLen('matmulSecret', 'W', w.length, k * n);
  const t = await ctx.dealer.matmulTriple(m, k, n);
  const [d, e] = await openMasked(ctx, 'matmulSecret', x, t.a, w, t.b);
  // XW = D·E + D·B + A·E + C; party 0 takes D·(B + E).
  const bb = ctx.party === 0 ? ringAdd(t.b, e) : t.b;
  return ringAdd(ringAdd(ringMatmul(d, bb, m, k, n), ringMatmul(t.a, e, m, k, n)), t.c);
}

/** Convolution of a shared NCHW x with public OIHW weights, no bias or truncation (local). */
export function conv2dPublic(_ctx: PartyContext, x: BigInt64Array, w: BigInt64Array, geom: ConvGeom): BigInt64Array {
  return ringConv2d(x, w, geom);
}

/**
 * Convolution of shared x with shared weights, no bias or truncation, with one convolution triple
 * (A like x, B like w, C = conv(A, B); conv is bilinear so Beaver's identity holds): opens
 * D = x − A and E = w − B in one round, 8·(|x| + |w|) bytes each way. A conv triple is chosen over
 * im2col + matrix triple because it opens x itself rather than its kh·kw-times larger im2col.
 */
export async function conv2dSecret(ctx: PartyContext, x: BigInt64Array, w: BigInt64Array, geom: ConvGeom): Promise<BigInt64Array> {
  if (!ctx.dealer.convTriple) throw new Error('arith.conv2dSecret: the dealer does not provide convolution triples');
  checkLen('conv2dSecret', 'x', x.length, geom.n * geom.c * geom.h * geom.w);
  checkLen('conv2dSecret', 'w', w.length, geom.co * (geom.c / geom.group) * geom.kh * geom.kw);
  const t = await ctx.dealer.convTriple(geom);
  const [d, e] = await openMasked(ctx, 'conv2dSecret', x, t.a, w, t.b);
  const bb = ctx.party === 0 ? ringAdd(t.b, e) : t.b;
  return ringAdd(ringAdd(ringConv2d(d, bb, geom), ringConv2d(t.a, e, geom)), t.c);
}

// ---------------------------------------------------------------------------------------------
// Layers (fixed point in, fixed point out)
// ---------------------------------------------------------------------------------------------

/** Add a per-channel bias to y of shape [outer, C, inner]: public (party 0 adds) or shared (both add). */
export function addBias(ctx: PartyContext, y: BigInt64Array, bias: BigInt64Array, outer: number, inner: number, shared = false): BigInt64Array {
  if (!shared && ctx.party === 1) return y;
  return ringAddBroadcast(y, bias, outer, inner);
}

/** Gemm with public fixed-point weights W (k×n) and optional public bias (n): trunc(X·W) + bias. */
export function gemmPublic(
  ctx: PartyContext,
  x: BigInt64Array,
  w: BigInt64Array,
  bias: BigInt64Array | undefined,
  m: number,
  k: number,
  n: number,
): BigInt64Array {
  return finishGemm(ctx, matmulPublic(ctx, x, w, m, k, n), bias, m);
}

/** The rest of gemmPublic after the product xw (m rows, e.g. computed by the thread pool). */
export function finishGemm(ctx: PartyContext, xw: BigInt64Array, bias: BigInt64Array | undefined, m: number): BigInt64Array {
  const y = truncate(ctx, xw, ctx.fracBits);
  return bias ? addBias(ctx, y, bias, m, 1) : y;
}

/** Gemm with shared weights W (k×n) and optional shared bias (n): trunc(X·W) + bias. */
export async function gemmSecret(
  ctx: PartyContext,
  x: BigInt64Array,
  w: BigInt64Array,
  bias: BigInt64Array | undefined,
  m: number,
  k: number,
  n: number,
): Promise<BigInt64Array> {
  const y = truncate(ctx, await matmulSecret(ctx, x, w, m, k, n), ctx.fracBits);
  return bias ? addBias(ctx, y, bias, m, 1, true) : y;
}

/** Conv layer with public fixed-point weights and optional public per-channel bias: trunc(conv) + bias. */
export function convPublic(ctx: PartyContext, x: BigInt64Array, w: BigInt64Array, bias: BigInt64Array | undefined, geom: ConvGeom): BigInt64Array {
  return finishConv(ctx, conv2dPublic(ctx, x, w, geom), bias, geom);
}

/** The rest of convPublic after the raw convolution (e.g. computed by the thread pool). */
export function finishConv(ctx: PartyContext, raw: BigInt64Array, bias: BigInt64Array | undefined, geom: ConvGeom): BigInt64Array {
  const y = truncate(ctx, raw, ctx.fracBits);
  if (!bias) return y;
  const { oh, ow } = convOutSize(geom);
  return addBias(ctx, y, bias, geom.n, oh * ow);
}

/** Conv layer with shared weights and optional shared per-channel bias: trunc(conv) + bias. */
export async function convSecret(
  ctx: PartyContext,
  x: BigInt64Array,
  w: BigInt64Array,
  bias: BigInt64Array | undefined,
  geom: ConvGeom,
): Promise<BigInt64Array> {
  const y = truncate(ctx, await conv2dSecret(ctx, x, w, geom), ctx.fracBits);
  if (!bias) return y;
  const { oh, ow } = convOutSize(geom);
  return addBias(ctx, y, bias, geom.n, oh * ow, true);
}

/** Per-channel affine map (BatchNorm, scaled Add) with public fixed-point scale and shift: trunc(x·scale) + shift. */
export function affinePublic(ctx: PartyContext, x: BigInt64Array, scale: BigInt64Array, shift: BigInt64Array, outer: number, inner: number): BigInt64Array {
  const y = truncate(ctx, ringMulBroadcast(x, scale, outer, inner), ctx.fracBits);
  return addBias(ctx, y, shift, outer, inner);
}

/** Sum over each pooling window (local). */
export function sumPool(_ctx: PartyContext, x: BigInt64Array, geom: PoolGeom): BigInt64Array {
  return ringSumPool2d(x, geom);
}

/**
 * Average pooling: window sums, then an exact local division by the public divisor (default
 * kh·kw, i.e. count_include_pad) — a plain truncation when it is a power of two, `divPublic`
 * otherwise — so the only error is the truncation's (below 1 unit, see the module comment).
 */
export function avgPool(ctx: PartyContext, x: BigInt64Array, geom: PoolGeom, divisor = geom.kh * geom.kw): BigInt64Array {
  return divPublic(ctx, sumPool(ctx, x, geom), divisor);
}

/** Global average pooling of [n, c, hw] -> [n·c]: spatial sums then exact division by hw (local). */
export function globalAvgPool(ctx: PartyContext, x: BigInt64Array, n: number, c: number, hw: number): BigInt64Array {
  return divPublic(ctx, ringSumSpatial(x, n, c, hw), hw);
}
