/**
 * The wasm side of the Z_2^64 ring kernels: the instance of build/ring.wasm (compiled synchronously
 * on first use, from assembly/ring.ts) and the one reusable arena every call copies its operands into.
 * ring.ts builds the typed kernels on these; nothing else should touch the arena.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Ring } from './ring.js';

/** A convolution's geometry as the wasm module takes it: input, output channels, kernel, stride, padding, output, groups. */
type ConvGeomArgs = [
  n: number,
  c: number,
  h: number,
  w: number,
  co: number,
  kh: number,
  kw: number,
  sh: number,
  sw: number,
  padT: number,
  padL: number,
  oh: number,
  ow: number,
  group: number,
];

export interface Kernels {
  memory: WebAssembly.Memory;
  add(a: number, b: number, out: number, n: number): void;
  sub(a: number, b: number, out: number, n: number): void;
  neg(a: number, out: number, n: number): void;
  mul(a: number, b: number, out: number, n: number): void;
  mulScalar(a: number, s: bigint, out: number, n: number): void;
  addScalar(a: number, s: bigint, out: number, n: number): void;
  mulBroadcast(a: number, b: number, out: number, outer: number, c: number, inner: number): void;
  addBroadcast(a: number, b: number, out: number, outer: number, c: number, inner: number): void;
  shr(a: number, bits: number, out: number, n: number): void;
  shrLogical(a: number, bits: number, out: number, n: number): void;
  lowBits(a: number, lsb: number, mask: bigint, out: number, n: number): void;
  sum(a: number, n: number): bigint;
  sumRows(x: number, out: number, rows: number, hw: number): void;
  transpose(a: number, out: number, rows: number, cols: number): void;
  encodeF64(x: number, scale: number, out: number, n: number): void;
  encodeF32(x: number, scale: number, out: number, n: number): void;
  decodeF32(a: number, invScale: number, out: number, n: number): void;
  bitPlanesScratch(): number;
  toBitPlanes(a: number, n: number, lsb: number, nbits: number, out: number, stride: number, scratch: number): void;
  fromBitPlanes(bits: number, n: number, nbits: number, stride: number, out: number): void;
  bitsToRing(bits: number, n: number, out: number): void;
  packedSize(k: number, n: number): number;
  matmul(a: number, b: number, c: number, m: number, k: number, n: number, lda: number, ldb: number, ldc: number, scratch: number): void;
  matmulTransB(a: number, b: number, c: number, m: number, k: number, n: number, lda: number, ldb: number, ldc: number, scratch: number): void;
  setConvGeom(...geom: ConvGeomArgs): void;
  im2col(x: number, col: number, r0: number, r1: number): void;
  convScratch(): number;
  conv(x: number, wt: number, out: number, scratch: number): void;
  convDirect(x: number, wt: number, out: number, ...geom: ConvGeomArgs): void;
  sumPool(
    x: number,
    out: number,
    planes: number,
    h: number,
    w: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    padT: number,
    padL: number,
    oh: number,
    ow: number,
  ): void;
  xorBytes(a: number, b: number, out: number, len: number): void;
  andBytes(a: number, b: number, out: number, len: number): void;
  packTight(src: number, count: number, nbits: number, out: number): void;
  unpackTight(buf: number, count: number, nbits: number, out: number): void;
  reluTail(x: number, d: number, pd: number, tc: number, ar: number, cbits: number, n: number, party0: number, y: number, mask: number): void;
  andClose(d: number, e: number, pd: number, pe: number, a: number, b: number, c: number, z: number, len: number, party0: number): void;
}

const WASM_URL = new URL('../../build/ring.wasm', import.meta.url);
/** First arena byte: above anything the AssemblyScript module might place in low memory. */
const ARENA_BASE = 65536;
const PAGE = 65536;

let kernels: Kernels | null = null;
let module: WebAssembly.Module | null = null;
let top = ARENA_BASE;

/** A new instance of the ring kernels with its own memory (the module is compiled once, synchronously). */
export function instantiate(): Kernels {
  if (!module) {
    const path = fileURLToPath(WASM_URL);
    if (!existsSync(path)) throw new Error(`ring: ${path} is missing (run npm run build:wasm)`);
    module = new WebAssembly.Module(readFileSync(path));
  }
  return new WebAssembly.Instance(module, {}).exports as unknown as Kernels;
}

/** The instantiated kernels of the per-call arena (compiled synchronously on first use). */
export function k(): Kernels {
  kernels ??= instantiate();
  return kernels;
}

/** Start a new call: the arena is reused from its base. */
export function reset(): Kernels {
  const kk = k();
  top = ARENA_BASE;
  return kk;
}

/** Reserve `bytes` (16-byte aligned) in the arena, growing wasm memory if needed. */
export function alloc(bytes: number): number {
  const p = top;
  top = p + ((bytes + 15) & ~15);
  const mem = kernels!.memory;
  const have = mem.buffer.byteLength;
  if (top > have) {
    if (top > 0xffff0000) throw new Error(`ring: operands need ${top} bytes, above the 4 GiB wasm limit`);
    mem.grow(Math.ceil((top - have) / PAGE));
  }
  return p;
}

/** Copy `a` into the arena; returns its offset. */
export function put(a: Ring): number {
  const p = alloc(a.length * 8);
  new BigInt64Array(kernels!.memory.buffer, p, a.length).set(a);
  return p;
}

/**
 * A fresh buffer with unspecified contents (the caller overwrites all of it): skips the zeroing
 * that new/slice pay (~0.3 ms per 6 MB). Large results still page-fault whenever glibc has
 * returned freed memory to the OS; hot loops should pass an `out` array instead.
 */
export function uninit(bytes: number): ArrayBuffer {
  const b = Buffer.allocUnsafeSlow(bytes);
  return b.buffer as ArrayBuffer;
}

/** Copy `n` elements at arena offset `p` out into `out` (or a new array). */
export function take(p: number, n: number, out?: Ring): Ring {
  const view = new BigInt64Array(kernels!.memory.buffer, p, n);
  if (out) {
    if (out.length !== n) throw new Error(`ring: out has length ${out.length}, expected ${n}`);
    out.set(view);
    return out;
  }
  const fresh = new BigInt64Array(uninit(n * 8), 0, n);
  fresh.set(view);
  return fresh;
}

export function checkInt(name: string, v: number, min: number, max = 0x7fffffff): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`ring.${name}: expected an integer in [${min}, ${max}], got ${v}`);
}

export function checkLen(name: string, what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`ring.${name}: ${what} has ${got} elements, expected ${want}`);
}

/** Reduce a bigint to the signed 64-bit value the wasm i64 parameter expects. */
export function i64(s: bigint): bigint {
  return BigInt.asIntN(64, s);
}
