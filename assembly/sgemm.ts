// Float32 GEMM and im2col kernels for the float runtime's inference convolutions (AssemblyScript ->
// WebAssembly, 128-bit SIMD). Built by scripts/build-wasm.mjs into build/sgemm.wasm and driven by
// src/nn/kernels/sgemm.ts. The register-blocked 4x8 micro-kernel reaches 25-31 GFLOP/s on ResNet-18's
// conv shapes with plain SIMD (about tfjs-wasm's XNNPACK), 37-40 with relaxed SIMD's FMA (the
// sgemm-relaxed.wasm build, faster than tfjs in-model; see docs/benchmarks.md, issue 12). Pointers are byte offsets into this module's memory, from alloc(); all 16-byte aligned.

const MR = 4;
const NR = 8;
/** K block: a 4x8 tile's B micro-panel (KC x 8 floats, 8 KiB) stays in L1 while the rows stream. */
const KC = 256;
/** M block: MC rows of A (MC x KC floats, 64 KiB) stay in L2 across the N panels. */
const MC = 64;

/** Allocate `bytes` (16-byte aligned) from the module's heap; memory grows as needed. */
export function alloc(bytes: i32): usize {
  return heap.alloc(<usize>bytes);
}

/** Release a block from alloc(). */
export function free(ptr: usize): void {
  heap.free(ptr);
}

/**
 * c + a * b. Built twice (scripts/build-wasm.mjs): plain SIMD (mul + add), and with relaxed SIMD as
 * one fused multiply-add where the engine supports it (Node >= 22, or 20 with
 * --experimental-wasm-relaxed-simd); the loader picks the relaxed module when it validates.
 */
// @ts-ignore: decorator
@inline
function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/**
 * One MR x NR tile of C: c (+)= A[4 rows, kc] x panel[kc][8]. `first`: start from the bias (or 0)
 * instead of C; `last`: clamp to [lo, hi] (the fused activation) before storing.
 */
// @ts-ignore: decorator
@inline
function tile(a: usize, sa: usize, bp: usize, kc: i32, c: usize, sc: usize, bias: usize, first: bool, last: bool, lo: v128, hi: v128): void {
  let c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128;
  if (first) {
    if (bias) {
      c00 = v128.load(bias);
      c01 = v128.load(bias, 16);
    } else {
      c00 = f32x4.splat(0);
      c01 = f32x4.splat(0);
    }
    c10 = c00; c11 = c01; c20 = c00; c21 = c01; c30 = c00; c31 = c01;
  } else {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    c10 = v128.load(c + sc); c11 = v128.load(c + sc, 16);
    c20 = v128.load(c + 2 * sc); c21 = v128.load(c + 2 * sc, 16);
    c30 = v128.load(c + 3 * sc); c31 = v128.load(c + 3 * sc, 16);
  }
  let a0 = a;
  let a1 = a + sa;
  let a2 = a + 2 * sa;
  let a3 = a + 3 * sa;
  const end = bp + ((<usize>kc) << 5);
  while (bp < end) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let x = v128.load32_splat(a0);
    c00 = madd(x, b0, c00); c01 = madd(x, b1, c01);
    x = v128.load32_splat(a1);
    c10 = madd(x, b0, c10); c11 = madd(x, b1, c11);
    x = v128.load32_splat(a2);
    c20 = madd(x, b0, c20); c21 = madd(x, b1, c21);
    x = v128.load32_splat(a3);
    c30 = madd(x, b0, c30); c31 = madd(x, b1, c31);
    a0 += 4; a1 += 4; a2 += 4; a3 += 4; bp += 32;
  }
  if (last) {
    // pmin/pmax: max(lo, NaN) keeps NaN like ONNX's Relu/Clip, not the bound.
    c00 = f32x4.pmin(f32x4.pmax(c00, lo), hi); c01 = f32x4.pmin(f32x4.pmax(c01, lo), hi);
    c10 = f32x4.pmin(f32x4.pmax(c10, lo), hi); c11 = f32x4.pmin(f32x4.pmax(c11, lo), hi);
    c20 = f32x4.pmin(f32x4.pmax(c20, lo), hi); c21 = f32x4.pmin(f32x4.pmax(c21, lo), hi);
    c30 = f32x4.pmin(f32x4.pmax(c30, lo), hi); c31 = f32x4.pmin(f32x4.pmax(c31, lo), hi);
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + sc, c10); v128.store(c + sc, c11, 16);
  v128.store(c + 2 * sc, c20); v128.store(c + 2 * sc, c21, 16);
  v128.store(c + 3 * sc, c30); v128.store(c + 3 * sc, c31, 16);
}

/**
 * C[m, ldc] = clamp(A[m, k] (row stride lda) x B + bias, lo, hi), B packed by packB (panels of 8
 * columns, n a multiple of 8, zero-padded). m must be a multiple of 4 (callers pad A with rows).
 * bias: n floats or 0.
 */
export function gemm(a: usize, lda: i32, bp: usize, c: usize, ldc: i32, m: i32, n: i32, k: i32, bias: usize, lo: f32, hi: f32): void {
  const sa = (<usize>lda) << 2;
  const sc = (<usize>ldc) << 2;
  const vlo = f32x4.splat(lo);
  const vhi = f32x4.splat(hi);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    const first = pc == 0;
    const last = pc + kc >= k;
    for (let ic = 0; ic < m; ic += MC) {
      const mc = min(MC, m - ic);
      for (let jr = 0; jr < n; jr += NR) {
        const panel = bp + ((<usize>(jr * k + pc * NR)) << 2);
        const bb = bias ? bias + ((<usize>jr) << 2) : 0;
        for (let ir = 0; ir < mc; ir += MR) {
          const ap = a + (<usize>(ic + ir)) * sa + ((<usize>pc) << 2);
          const cp = c + (<usize>(ic + ir)) * sc + ((<usize>jr) << 2);
          if (first) {
            if (last) tile(ap, sa, panel, kc, cp, sc, bb, true, true, vlo, vhi);
            else tile(ap, sa, panel, kc, cp, sc, bb, true, false, vlo, vhi);
          } else if (last) tile(ap, sa, panel, kc, cp, sc, bb, false, true, vlo, vhi);
          else tile(ap, sa, panel, kc, cp, sc, bb, false, false, vlo, vhi);
        }
      }
    }
  }
}

/** Copy `bytes` (a multiple of 4): short runs inline (memory.copy is a call into the engine), long ones bulk. */
// @ts-ignore: decorator
@inline
function copy(dst: usize, src: usize, bytes: usize): void {
  if (bytes >= 256) {
    memory.copy(dst, src, bytes);
    return;
  }
  const end = dst + bytes;
  while (dst + 16 <= end) {
    v128.store(dst, v128.load(src));
    dst += 16;
    src += 16;
  }
  while (dst < end) {
    store<f32>(dst, load<f32>(src));
    dst += 4;
    src += 4;
  }
}

/** Zero `bytes` (a multiple of 4). */
// @ts-ignore: decorator
@inline
function zero(dst: usize, bytes: usize): void {
  if (bytes >= 256) {
    memory.fill(dst, 0, bytes);
    return;
  }
  const end = dst + bytes;
  const z = f32x4.splat(0);
  while (dst + 16 <= end) {
    v128.store(dst, z);
    dst += 16;
  }
  while (dst < end) {
    store<f32>(dst, 0);
    dst += 4;
  }
}

/**
 * im2col of an NHWC input into rows of A: row (b, oy, ox), columns (ky, kx, ci), zero outside the
 * image; rows m..mpad-1 are zero. With dilation 1 a window row inside the image is kw*ci
 * contiguous floats in NHWC: one copy.
 */
export function im2col(
  x: usize, col: usize,
  nb: i32, h: i32, w: i32, ci: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32,
  oh: i32, ow: i32, mpad: i32,
): void {
  const rowBytes = (<usize>(kh * kw * ci)) << 2;
  const cb = (<usize>ci) << 2;
  const wb = cb * kw;
  let dst = col;
  for (let b = 0; b < nb; b++) {
    const img = x + ((<usize>(b * h * w * ci)) << 2);
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const ix0 = ox * sw - pl;
        const inside = ix0 >= 0 && ix0 + (kw - 1) * dw < w;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - pt + ky * dh;
          if (iy < 0 || iy >= h) {
            zero(dst, wb);
            dst += wb;
            continue;
          }
          const line = img + (<usize>(iy * w)) * cb;
          if (inside && dw == 1) {
            copy(dst, line + (<usize>ix0) * cb, wb);
            dst += wb;
            continue;
          }
          for (let kx = 0; kx < kw; kx++) {
            const ix = ix0 + kx * dw;
            if (ix < 0 || ix >= w) zero(dst, cb);
            else copy(dst, line + (<usize>ix) * cb, cb);
            dst += cb;
          }
        }
      }
    }
  }
  const m = nb * oh * ow;
  if (mpad > m) memory.fill(dst, 0, (<usize>(mpad - m)) * rowBytes);
}
