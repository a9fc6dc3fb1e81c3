/**
 * Z_2^64 ring kernels for the MPC engine: elementwise arithmetic, matrix products, convolution,
 * pooling, fixed-point encoding and bit slicing on `BigInt64Array` (two's-complement view), all
 * mod 2^64. The work runs in WebAssembly (assembly/ring.ts, built to build/ring.wasm by
 * `npm run build:wasm`); this module copies operands into one reusable wasm arena per call, so
 * calls are synchronous, never modify their inputs (unless an `out` is given) and never leak memory.
 */
import { alloc, checkInt, checkLen, i64, k, put, reset, take, uninit } from './ring-wasm.js';

/** A vector of Z_2^64 elements (signed two's-complement view). */
export type Ring = BigInt64Array;

/** Geometry of a 2-D convolution: NCHW input, OIHW weights (I = c / group), NCHW output. */
export interface ConvGeom {
  n: number;
  c: number;
  h: number;
  w: number;
  co: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padT: number;
  padL: number;
  padB: number;
  padR: number;
  group: number;
}

/** Geometry of a 2-D sum pooling over NCHW input (zero padding). */
export interface PoolGeom {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padT: number;
  padL: number;
  padB: number;
  padR: number;
}

function binary(name: string, op: 'add' | 'sub' | 'mul', a: Ring, b: Ring, out?: Ring): Ring {
  checkLen(name, 'b', b.length, a.length);
  const kk = reset();
  const pa = put(a),
    pb = put(b),
    po = alloc(a.length * 8);
  kk[op](pa, pb, po, a.length);
  return take(po, a.length, out);
}

// ---------------------------------------------------------------------------------------------
// Elementwise
// ---------------------------------------------------------------------------------------------

/** a + b elementwise (into `out` if given; `out` may alias an input). */
export function ringAdd(a: Ring, b: Ring, out?: Ring): Ring {
  return binary('ringAdd', 'add', a, b, out);
}

/** a − b elementwise (into `out` if given; `out` may alias an input). */
export function ringSub(a: Ring, b: Ring, out?: Ring): Ring {
  return binary('ringSub', 'sub', a, b, out);
}

/** a · b elementwise (into `out` if given). */
export function ringMul(a: Ring, b: Ring, out?: Ring): Ring {
  return binary('ringMul', 'mul', a, b, out);
}

/** −a elementwise. */
export function ringNeg(a: Ring, out?: Ring): Ring {
  const kk = reset();
  const pa = put(a),
    po = alloc(a.length * 8);
  kk.neg(pa, po, a.length);
  return take(po, a.length, out);
}

/** a · s for a scalar s (taken mod 2^64). */
export function ringMulScalar(a: Ring, s: bigint, out?: Ring): Ring {
  const kk = reset();
  const pa = put(a),
    po = alloc(a.length * 8);
  kk.mulScalar(pa, i64(s), po, a.length);
  return take(po, a.length, out);
}

/** a + s for a scalar s (taken mod 2^64). */
export function ringAddScalar(a: Ring, s: bigint, out?: Ring): Ring {
  const kk = reset();
  const pa = put(a),
    po = alloc(a.length * 8);
  kk.addScalar(pa, i64(s), po, a.length);
  return take(po, a.length, out);
}

function broadcast(name: string, op: 'mulBroadcast' | 'addBroadcast', a: Ring, b: Ring, outer: number, inner: number): Ring {
  checkInt(name, outer, 0);
  checkInt(name, inner, 0);
  checkLen(name, 'a', a.length, outer * b.length * inner);
  const kk = reset();
  const pa = put(a),
    pb = put(b),
    po = alloc(a.length * 8);
  kk[op](pa, pb, po, outer, b.length, inner);
  return take(po, a.length);
}

/** a has shape [outer, C, inner] and b shape [C]: out[o,c,i] = a[o,c,i] · b[c] (e.g. per-channel scale). */
export function ringMulBroadcast(a: Ring, b: Ring, outer: number, inner: number): Ring {
  return broadcast('ringMulBroadcast', 'mulBroadcast', a, b, outer, inner);
}

/** a has shape [outer, C, inner] and b shape [C]: out[o,c,i] = a[o,c,i] + b[c] (e.g. bias add). */
export function ringAddBroadcast(a: Ring, b: Ring, outer: number, inner: number): Ring {
  return broadcast('ringAddBroadcast', 'addBroadcast', a, b, outer, inner);
}

/** Arithmetic (sign-extending) right shift of every element by `bits` ≥ 0 (≥ 64 acts as 63). */
export function ringShr(a: Ring, bits: number, out?: Ring): Ring {
  checkInt('ringShr', bits, 0);
  const kk = reset();
  const pa = put(a),
    po = alloc(a.length * 8);
  kk.shr(pa, Math.min(bits, 63), po, a.length);
  return take(po, a.length, out);
}

/** Logical (zero-filling) right shift of every element by `bits` ≥ 0 (≥ 64 gives 0). */
export function ringShrLogical(a: Ring, bits: number, out?: Ring): Ring {
  checkInt('ringShrLogical', bits, 0);
  if (bits >= 64) return out ? (out.fill(0n), out) : new BigInt64Array(a.length);
  const kk = reset();
  const pa = put(a),
    po = alloc(a.length * 8);
  kk.shrLogical(pa, bits, po, a.length);
  return take(po, a.length, out);
}

/** (a >>> lsb) mod 2^nbits elementwise (logical shift), 0 ≤ lsb ≤ 63, 1 ≤ nbits ≤ 64. */
export function ringLowBits(a: Ring, lsb: number, nbits: number, out?: Ring): Ring {
  checkInt('ringLowBits', lsb, 0, 63);
  checkInt('ringLowBits', nbits, 1, 64);
  const mask = nbits === 64 ? -1n : (1n << BigInt(nbits)) - 1n;
  const kk = reset();
  const pa = put(a),
    po = alloc(a.length * 8);
  kk.lowBits(pa, lsb, mask, po, a.length);
  return take(po, a.length, out);
}

/** Sum of all elements mod 2^64 (signed). */
export function ringSum(a: Ring): bigint {
  const kk = reset();
  return BigInt.asIntN(64, kk.sum(put(a), a.length));
}

/** Global sum pooling: x of shape [n, c, hw] -> [n*c] with out[i] = Σ_j x[i, j]. */
export function ringSumSpatial(x: Ring, n: number, c: number, hw: number): Ring {
  checkInt('ringSumSpatial', n, 0);
  checkInt('ringSumSpatial', c, 0);
  checkInt('ringSumSpatial', hw, 0);
  checkLen('ringSumSpatial', 'x', x.length, n * c * hw);
  const kk = reset();
  const px = put(x),
    po = alloc(n * c * 8);
  kk.sumRows(px, po, n * c, hw);
  return take(po, n * c);
}

/** Transpose a row-major rows×cols matrix into cols×rows. */
export function ringTranspose(a: Ring, rows: number, cols: number): Ring {
  checkInt('ringTranspose', rows, 0);
  checkInt('ringTranspose', cols, 0);
  checkLen('ringTranspose', 'a', a.length, rows * cols);
  const kk = reset();
  const pa = put(a),
    po = alloc(a.length * 8);
  kk.transpose(pa, po, rows, cols);
  return take(po, a.length);
}

// ---------------------------------------------------------------------------------------------
// Matrix products, convolution, pooling
// ---------------------------------------------------------------------------------------------

function checkMatmul(name: string, a: Ring, b: Ring, m: number, k: number, n: number): void {
  checkInt(name, m, 0);
  checkInt(name, k, 0);
  checkInt(name, n, 0);
  checkLen(name, 'a', a.length, m * k);
  checkLen(name, 'b', b.length, k * n);
}

/** Row-major product of a (m×k) and b (k×n) -> m×n. */
export function ringMatmul(a: Ring, b: Ring, m: number, k: number, n: number): Ring {
  checkMatmul('ringMatmul', a, b, m, k, n);
  const kk = reset();
  const pa = put(a),
    pb = put(b),
    pc = alloc(m * n * 8);
  kk.matmul(pa, pb, pc, m, k, n, k, n, n, alloc(kk.packedSize(k, n)));
  return take(pc, m * n);
}

/** Row-major a (m×k) times the transpose of b (n×k) -> m×n. */
export function ringMatmulTransB(a: Ring, b: Ring, m: number, k: number, n: number): Ring {
  checkMatmul('ringMatmulTransB', a, b, m, k, n);
  const kk = reset();
  const pa = put(a),
    pb = put(b),
    pc = alloc(m * n * 8);
  kk.matmulTransB(pa, pb, pc, m, k, n, k, k, n, alloc(kk.packedSize(k, n)));
  return take(pc, m * n);
}

/** Output spatial size of a convolution/pooling geometry; throws on an empty or invalid output. */
export function convOutSize(g: ConvGeom | PoolGeom): { oh: number; ow: number } {
  for (const key of ['n', 'c', 'h', 'w', 'kh', 'kw', 'strideH', 'strideW', 'padT', 'padL', 'padB', 'padR'] as const) {
    checkInt('conv', g[key], key.startsWith('stride') || key === 'kh' || key === 'kw' ? 1 : 0);
  }
  const oh = Math.floor((g.h + g.padT + g.padB - g.kh) / g.strideH) + 1;
  const ow = Math.floor((g.w + g.padL + g.padR - g.kw) / g.strideW) + 1;
  if (oh < 1 || ow < 1) throw new Error(`ring.conv: kernel ${g.kh}x${g.kw} larger than padded input ${g.h}x${g.w}`);
  return { oh, ow };
}

/**
 * im2col of an NCHW input: returns [N*OH*OW, C*KH*KW], row (n, oy, ox) holding the zero-padded
 * window in (c, ky, kx) order, so conv = im2col(x) · wᵀ with w reshaped to [CO, C*KH*KW].
 * (`g.co` and `g.group` are ignored; for grouped convs slice the columns per group.)
 */
export function ringIm2col(x: Ring, g: ConvGeom): Ring {
  const { oh, ow } = convOutSize(g);
  checkLen('ringIm2col', 'x', x.length, g.n * g.c * g.h * g.w);
  const rows = g.n * oh * ow,
    cols = g.c * g.kh * g.kw;
  const kk = reset();
  const px = put(x),
    pc = alloc(rows * cols * 8);
  kk.setConvGeom(g.n, g.c, g.h, g.w, 1, g.kh, g.kw, g.strideH, g.strideW, g.padT, g.padL, oh, ow, 1);
  kk.im2col(px, pc, 0, rows);
  return take(pc, rows * cols);
}

/** Exact convolution mod 2^64: x NCHW, w OIHW (I = c/group), no bias; returns NCHW [n, co, oh, ow]. */
export function ringConv2d(x: Ring, w: Ring, g: ConvGeom): Ring {
  const { oh, ow } = convOutSize(g);
  checkInt('ringConv2d', g.co, 1);
  checkInt('ringConv2d', g.group, 1);
  if (g.c % g.group !== 0 || g.co % g.group !== 0) {
    throw new Error(`ring.ringConv2d: group ${g.group} does not divide channels ${g.c} -> ${g.co}`);
  }
  const cg = g.c / g.group,
    P = oh * ow;
  const kg = cg * g.kh * g.kw;
  checkLen('ringConv2d', 'x', x.length, g.n * g.c * g.h * g.w);
  checkLen('ringConv2d', 'w', w.length, g.co * kg);
  const kk = reset();
  const px = put(x),
    pw = put(w),
    po = alloc(g.n * g.co * P * 8);
  if (g.group > 1 && cg === 1) {
    // depthwise-like: one input channel per group makes the im2col products tiny (8-wide panels wasted)
    kk.convDirect(px, pw, po, g.n, g.c, g.h, g.w, g.co, g.kh, g.kw, g.strideH, g.strideW, g.padT, g.padL, oh, ow, g.group);
    return take(po, g.n * g.co * P);
  }
  kk.setConvGeom(g.n, g.c, g.h, g.w, g.co, g.kh, g.kw, g.strideH, g.strideW, g.padT, g.padL, oh, ow, g.group);
  kk.conv(px, pw, po, alloc(kk.convScratch()));
  return take(po, g.n * g.co * P);
}

/** Sum over each pooling window (zero padding): x NCHW -> [n, c, oh, ow]. */
export function ringSumPool2d(x: Ring, g: PoolGeom): Ring {
  const { oh, ow } = convOutSize(g);
  checkLen('ringSumPool2d', 'x', x.length, g.n * g.c * g.h * g.w);
  const planes = g.n * g.c;
  const kk = reset();
  const px = put(x),
    po = alloc(planes * oh * ow * 8);
  kk.sumPool(px, po, planes, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW, g.padT, g.padL, oh, ow);
  return take(po, planes * oh * ow);
}

// ---------------------------------------------------------------------------------------------
// Fixed point
// ---------------------------------------------------------------------------------------------

/** round(x · 2^fracBits) as two's complement (half rounds up, saturates at ±2^63, NaN -> 0). */
export function encodeFixed(x: Float32Array | Float64Array, fracBits: number): Ring {
  checkInt('encodeFixed', fracBits, 0, 62);
  const kk = reset();
  const n = x.length,
    scale = 2 ** fracBits;
  const px = alloc(n * x.BYTES_PER_ELEMENT),
    po = alloc(n * 8);
  if (x instanceof Float64Array) {
    new Float64Array(kk.memory.buffer, px, n).set(x);
    kk.encodeF64(px, scale, po, n);
  } else {
    new Float32Array(kk.memory.buffer, px, n).set(x);
    kk.encodeF32(px, scale, po, n);
  }
  return take(po, n);
}

/** Signed fixed-point ring elements back to floats: a / 2^fracBits. */
export function decodeFixed(a: Ring, fracBits: number): Float32Array {
  checkInt('decodeFixed', fracBits, 0, 62);
  const kk = reset();
  const pa = put(a),
    po = alloc(a.length * 4);
  kk.decodeF32(pa, 2 ** -fracBits, po, a.length);
  const out = new Float32Array(uninit(a.length * 4), 0, a.length);
  out.set(new Float32Array(kk.memory.buffer, po, a.length));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bytes and bits
// ---------------------------------------------------------------------------------------------

/** The first `n` little-endian 8-byte words of `bytes` as ring elements (copy; e.g. PRG output). */
export function ringFromBytes(bytes: Uint8Array, n: number): Ring {
  checkInt('ringFromBytes', n, 0);
  if (bytes.length < n * 8) throw new Error(`ring.ringFromBytes: ${bytes.length} bytes, need ${n * 8}`);
  const out = new BigInt64Array(uninit(n * 8), 0, n);
  new Uint8Array(out.buffer).set(bytes.subarray(0, n * 8));
  return out;
}

/** Little-endian bytes of `a` (a view sharing `a`'s memory, no copy). */
export function ringToBytes(a: Ring): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Inverse of ringToBytes: a copy, any alignment; length must be a multiple of 8. */
export function ringFromBytesLE(bytes: Uint8Array): Ring {
  if (bytes.length % 8 !== 0) throw new Error(`ring.ringFromBytesLE: ${bytes.length} bytes is not a multiple of 8`);
  return ringFromBytes(bytes, bytes.length / 8);
}

/**
 * Bit-sliced planes: plane j (0 ≤ j < nbits) holds bit (lsb + j) of every element, packed
 * little-endian (element i -> byte i>>3, bit i&7); planes are concatenated, each ceil(n/8) bytes.
 */
export function toBitPlanes(a: Ring, lsb: number, nbits: number): Uint8Array {
  checkInt('toBitPlanes', lsb, 0, 63);
  checkInt('toBitPlanes', nbits, 0, 64 - lsb);
  const n = a.length,
    stride = (n + 7) >> 3;
  const kk = reset();
  const pa = put(a),
    po = alloc(stride * nbits);
  kk.toBitPlanes(pa, n, lsb, nbits, po, stride, alloc(kk.bitPlanesScratch()));
  const out = new Uint8Array(uninit(stride * nbits), 0, stride * nbits);
  out.set(new Uint8Array(kk.memory.buffer, po, stride * nbits));
  return out;
}

/** Inverse of toBitPlanes with lsb 0: element i = Σ_j (bit i of plane j) << j, nbits ≤ 64 planes. */
export function fromBitPlanes(planes: Uint8Array, n: number, nbits: number): Ring {
  checkInt('fromBitPlanes', n, 0);
  checkInt('fromBitPlanes', nbits, 0, 64);
  const stride = (n + 7) >> 3;
  if (planes.length < stride * nbits) throw new Error(`ring.fromBitPlanes: ${planes.length} bytes, need ${stride * nbits}`);
  const kk = reset();
  const pb = alloc(stride * nbits),
    po = alloc(n * 8);
  new Uint8Array(kk.memory.buffer, pb, stride * nbits).set(planes.subarray(0, stride * nbits));
  kk.fromBitPlanes(pb, n, nbits, stride, po);
  return take(po, n);
}

/** Packed bits (element i -> byte i>>3, bit i&7) -> ring elements 0/1. */
export function bitsToRing(bits: Uint8Array, n: number): Ring {
  checkInt('bitsToRing', n, 0);
  const nb = (n + 7) >> 3;
  if (bits.length < nb) throw new Error(`ring.bitsToRing: ${bits.length} bytes, need ${nb}`);
  const kk = reset();
  const pb = alloc(nb),
    po = alloc(n * 8);
  new Uint8Array(kk.memory.buffer, pb, nb).set(bits.subarray(0, nb));
  kk.bitsToRing(pb, n, po);
  return take(po, n);
}

// ---------------------------------------------------------------------------------------------
// XOR-shared AND gates on packed bits (whole layers per call)
// ---------------------------------------------------------------------------------------------

/** Copy `bytes` (the first `len` of them) into the arena at a fresh offset. */
function putBytes(bytes: Uint8Array, len = bytes.length): number {
  const p = alloc(len);
  new Uint8Array(k().memory.buffer, p, len).set(bytes.length === len ? bytes : bytes.subarray(0, len));
  return p;
}

/** Copy `len` arena bytes at `p` out into a fresh array. */
function takeBytes(p: number, len: number): Uint8Array {
  const out = new Uint8Array(uninit(len), 0, len);
  out.set(new Uint8Array(k().memory.buffer, p, len));
  return out;
}

/** The tight concatenation of `vs` (each `nbits` bits, ceil(nbits/8) bytes) at arena offset `dst`. */
function stageTight(vs: readonly Uint8Array[], nbits: number, dst: number): void {
  const vb = (nbits + 7) >>> 3;
  const aligned = (nbits & 7) === 0;
  const stage = aligned ? dst : alloc(vs.length * vb);
  const mem = new Uint8Array(k().memory.buffer);
  vs.forEach((v, i) => mem.set(v.length === vb ? v : v.subarray(0, vb), stage + i * vb));
  if (!aligned) k().packTight(stage, vs.length, nbits, dst);
}

/**
 * Opening message of count = xs.length AND gates of `nbits` bits each against dealer masks a, b:
 * d = concat(xs) ⊕ a and e = concat(ys) ⊕ b, each count·nbits bits, tightly concatenated [d, e].
 */
export function andGateOpen(xs: readonly Uint8Array[], ys: readonly Uint8Array[], nbits: number, a: Uint8Array, b: Uint8Array): Uint8Array {
  const total = xs.length * nbits,
    tb = (total + 7) >>> 3;
  if (ys.length !== xs.length || a.length < tb || b.length < tb)
    throw new Error(`ring.andGateOpen: ${xs.length}/${ys.length} operands, masks ${a.length}/${b.length} bytes, need ${tb}`);
  const kk = reset();
  const de = alloc(2 * tb),
    pa = putBytes(a, tb),
    pb = putBytes(b, tb);
  stageTight(xs, nbits, de);
  stageTight(ys, nbits, de + tb);
  kk.xorBytes(de, pa, de, tb);
  kk.xorBytes(de + tb, pb, de + tb, tb);
  const mb = (2 * total + 7) >>> 3;
  // whole bytes per half: [d, e] already is the tight message (packTight would be a plain copy)
  if ((total & 7) === 0) return takeBytes(de, mb);
  const msg = alloc(mb);
  kk.packTight(de, 2, total, msg);
  return takeBytes(msg, mb);
}

/**
 * Close the AND gates opened by `andGateOpen` (`mine` = this party's message, `peer` the other's):
 * this party's XOR shares z = d&b ⊕ e&a ⊕ c (⊕ d&e on party 0), as `count` vectors of `nbits` bits
 * stored ceil(nbits/8) bytes apart in one array.
 */
export function andGateClose(
  mine: Uint8Array,
  peer: Uint8Array,
  count: number,
  nbits: number,
  a: Uint8Array,
  b: Uint8Array,
  c: Uint8Array,
  party0: boolean,
): Uint8Array {
  const total = count * nbits,
    tb = (total + 7) >>> 3,
    mb = (2 * total + 7) >>> 3,
    vb = (nbits + 7) >>> 3;
  if (mine.length !== mb || peer.length !== mb || a.length < tb || b.length < tb || c.length < tb)
    throw new Error(`ring.andGateClose: messages ${mine.length}/${peer.length} bytes (need ${mb}), masks ${a.length}/${b.length}/${c.length} (need ${tb})`);
  const kk = reset();
  const pm = putBytes(mine),
    pp = putBytes(peer);
  // whole bytes per half: the messages already are [d, e] (unpackTight would be a plain copy)
  const aligned = (total & 7) === 0;
  const de = aligned ? pm : alloc(2 * tb),
    pde = aligned ? pp : alloc(2 * tb);
  if (!aligned) {
    kk.unpackTight(pm, 2, total, de);
    kk.unpackTight(pp, 2, total, pde);
  }
  const pa = putBytes(a, tb),
    pb = putBytes(b, tb),
    pc = putBytes(c, tb),
    z = alloc(tb);
  kk.andClose(de, de + tb, pde, pde + tb, pa, pb, pc, z, tb, party0 ? 1 : 0);
  if ((nbits & 7) === 0) return takeBytes(z, tb);
  const out = alloc(count * vb);
  kk.unpackTight(z, count, nbits, out);
  return takeBytes(out, count * vb);
}

/**
 * out = ((p0 ⊕ p1) & (p2 ⊕ p3)) ⊕ p4 over out.length bytes, where `fill(i, view)` writes the next
 * view.length bytes of part i straight into the arena (the dealer's AND-triple correction from its
 * PRG streams): pieces of `piece` bytes, so the five parts never exist whole and are combined by the
 * SIMD kernels while still in cache (a JS word loop ran ~5 ns per word here).
 */
export function bytesAndCorrection(out: Uint8Array, fill: (part: number, into: Uint8Array) => void, piece = 1 << 16): Uint8Array {
  checkInt('bytesAndCorrection', piece, 16);
  const kk = reset();
  const ps = [alloc(piece), alloc(piece), alloc(piece), alloc(piece), alloc(piece)] as const;
  for (let off = 0; off < out.length; off += piece) {
    const n = Math.min(piece, out.length - off);
    // fresh views each piece: nothing below grows memory, but a view must never outlive a grow
    for (let i = 0; i < 5; i++) fill(i, new Uint8Array(kk.memory.buffer, ps[i], n));
    kk.xorBytes(ps[0], ps[1], ps[0], n);
    kk.xorBytes(ps[2], ps[3], ps[2], n);
    kk.andBytes(ps[0], ps[2], ps[0], n);
    kk.xorBytes(ps[0], ps[4], ps[0], n);
    out.set(new Uint8Array(kk.memory.buffer, ps[0], n), off);
  }
  return out;
}

/** out = a ⊕ b over out.length bytes (SIMD; `out` may alias an input). */
export function bytesXor(a: Uint8Array, b: Uint8Array, out: Uint8Array = new Uint8Array(a.length)): Uint8Array {
  return bytesOp('xorBytes', a, b, out);
}

/** out = a & b over out.length bytes (SIMD; `out` may alias an input). */
export function bytesAnd(a: Uint8Array, b: Uint8Array, out: Uint8Array = new Uint8Array(a.length)): Uint8Array {
  return bytesOp('andBytes', a, b, out);
}

function bytesOp(op: 'xorBytes' | 'andBytes', a: Uint8Array, b: Uint8Array, out: Uint8Array): Uint8Array {
  const len = out.length;
  if (a.length < len || b.length < len) throw new Error(`ring.${op}: operand lengths ${a.length}/${b.length} < ${len}`);
  const kk = reset();
  const pa = putBytes(a, len),
    pb = putBytes(b, len);
  kk[op](pa, pb, pa, len);
  out.set(new Uint8Array(kk.memory.buffer, pa, len));
  return out;
}

/**
 * The sign-only ReLU's local closing step in one pass (see assembly/bits.ts reluTail): from x, this
 * party's d = x − A, the peer's d (`peerD`, little-endian bytes), the dealer's [C] and [r], and the
 * opened bits c: this party's shares of ReLU(x) and of the mask [x ≥ 0].
 */
export function ringReluTail(x: Ring, d: Ring, peerD: Uint8Array, tc: Ring, ar: Ring, c: Uint8Array, party0: boolean): { y: Ring; mask: Ring } {
  const n = x.length,
    nb = (n + 7) >>> 3;
  if (d.length !== n || peerD.length !== 8 * n || tc.length < n || ar.length < n || c.length < nb)
    throw new Error(`ring.ringReluTail: operand sizes do not match ${n} elements`);
  const kk = reset();
  const px = put(x),
    pd = put(d),
    pp = putBytes(peerD),
    pc = put(tc.subarray(0, n)),
    pr = put(ar.subarray(0, n)),
    pb = putBytes(c, nb);
  const py = alloc(8 * n),
    pm = alloc(8 * n);
  kk.reluTail(px, pd, pp, pc, pr, pb, n, party0 ? 1 : 0, py, pm);
  return { y: take(py, n), mask: take(pm, n) };
}
