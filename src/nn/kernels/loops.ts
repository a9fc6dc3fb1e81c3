/**
 * Plain loops over NHWC Float32Arrays used by the fast training kernels. They know nothing about
 * tfjs, so they can run on the wasm heap, on ordinary arrays in tests, or in a worker.
 */

/** Geometry of a 2-D window op (conv or pool) on an NHWC input, dilation 1. */
export interface WindowGeom {
  /** Batch, input height, input width, channels. */
  n: number;
  h: number;
  w: number;
  c: number;
  /** Window (kernel) height and width. */
  kh: number;
  kw: number;
  /** Strides. */
  sh: number;
  sw: number;
  /** Leading padding (top, left); trailing padding is implied by the output size. */
  pt: number;
  pl: number;
  /** Output height and width. */
  oh: number;
  ow: number;
}

/** First output column `o` whose input column `o*s + k - p` is >= 0. */
function firstValid(k: number, s: number, p: number): number {
  const d = p - k;
  return d <= 0 ? 0 : Math.ceil(d / s);
}

/** One past the last output column whose input column `o*s + k - p` is < size (clamped to [0, out]). */
function endValid(k: number, s: number, p: number, size: number, out: number): number {
  const d = size - 1 + p - k;
  if (d < 0) return 0;
  return Math.min(out, Math.floor(d / s) + 1);
}

/**
 * Transposed im2col: out[(ky*kw + kx)*c + ci][(b*oh + y)*ow + x] = x[b, y*sh+ky-pt, x*sw+kx-pl, ci]
 * (0 outside). Rows follow the [KH,KW,CI] filter layout so `out @ dy[P,CO]` is dW directly; the
 * long P axis is the inner (contiguous) one, which is the matMul layout XNNPACK runs fastest.
 * Loops go over output rows first so the few input rows read stay in cache (~20% faster than
 * filling one output row at a time).
 */
export function im2colT(x: Float32Array, g: WindowGeom, out: Float32Array): void {
  const { n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow } = g;
  const p = n * oh * ow;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const col0 = (b * oh + y) * ow;
      for (let ky = 0; ky < kh; ky++) {
        const iy = y * sh + ky - pt;
        const inside = iy >= 0 && iy < h;
        const rowBase = (b * h + iy) * w * c;
        for (let kx = 0; kx < kw; kx++) {
          const lo = Math.min(firstValid(kx, sw, pl), ow);
          const hi = Math.max(endValid(kx, sw, pl, w, ow), lo);
          const step = sw * c;
          for (let ci = 0; ci < c; ci++) {
            const o = ((ky * kw + kx) * c + ci) * p + col0;
            if (!inside) {
              out.fill(0, o, o + ow);
              continue;
            }
            for (let xo = 0; xo < lo; xo++) out[o + xo] = 0;
            let src = rowBase + (lo * sw + kx - pl) * c + ci;
            for (let xo = lo; xo < hi; xo++, src += step) out[o + xo] = x[src]!;
            for (let xo = hi; xo < ow; xo++) out[o + xo] = 0;
          }
        }
      }
    }
  }
}

/** Padding (may be negative = crop) around a zero-dilated NHWC tensor. */
export interface DilatePad {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** Output [H', W'] of `dilatePad` for an input of spatial size [h, w]. */
export function dilatePadShape(h: number, w: number, sh: number, sw: number, p: DilatePad): [number, number] {
  return [(h - 1) * sh + 1 + p.top + p.bottom, (w - 1) * sw + 1 + p.left + p.right];
}

/**
 * Insert (s-1) zeros between spatial elements of an NHWC tensor and pad (or crop, when a pad is
 * negative) its borders: the input of a transposed convolution done as a forward one.
 */
export function dilatePad(x: Float32Array, shape: readonly [number, number, number, number], sh: number, sw: number, pad: DilatePad, out: Float32Array): void {
  const [n, h, w, c] = shape;
  const [oh, ow] = dilatePadShape(h, w, sh, sw, pad);
  out.fill(0);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      const ty = y * sh + pad.top;
      if (ty < 0 || ty >= oh) continue;
      for (let xi = 0; xi < w; xi++) {
        const tx = xi * sw + pad.left;
        if (tx < 0 || tx >= ow) continue;
        const src = ((b * h + y) * w + xi) * c;
        const dst = ((b * oh + ty) * ow + tx) * c;
        for (let ci = 0; ci < c; ci++) out[dst + ci] = x[src + ci]!;
      }
    }
  }
}

/**
 * MaxPool gradient: each dy goes to the first maximum of its window in row-major order (strictly
 * greater than all earlier ones, starting from -Infinity), as tfjs's cpu backend picks it; padded
 * positions never win. Windows may overlap (contributions add up). `y` is the forward output; it
 * only speeds up the 2x2/2 case (a wrong `y` still gives the exact result, slower).
 */
export function maxPoolGrad(x: Float32Array, y: Float32Array, dy: Float32Array, g: WindowGeom, dx: Float32Array): void {
  const { n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow } = g;
  if (kh === 2 && kw === 2 && sh === 2 && sw === 2 && pt === 0 && pl === 0 && oh * 2 <= h && ow * 2 <= w) {
    maxPoolGrad2x2(x, y, dy, g, dx);
    return;
  }
  dx.fill(0);
  let d = 0;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const y0 = y * sh - pt;
      const ya = Math.max(0, y0);
      const yb = Math.min(h, y0 + kh);
      for (let xo = 0; xo < ow; xo++, d += c) {
        const x0 = xo * sw - pl;
        const xa = Math.max(0, x0);
        const xb = Math.min(w, x0 + kw);
        for (let ci = 0; ci < c; ci++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let iy = ya; iy < yb; iy++) {
            let idx = ((b * h + iy) * w + xa) * c + ci;
            for (let ix = xa; ix < xb; ix++, idx += c) {
              const v = x[idx]!;
              if (v > best) {
                best = v;
                at = idx;
              }
            }
          }
          if (at >= 0) dx[at] = dx[at]! + dy[d + ci]!;
        }
      }
    }
  }
}

/**
 * Non-overlapping 2x2 stride-2 unpadded case of `maxPoolGrad`; writes every covered dx once.
 * Branch-free select against the forward output `y` (random data makes compare-and-branch code
 * mispredict ~2x slower); a window whose `y` is not finite or matches none of its four inputs, or
 * whose dy is not finite, takes the exact compare loop instead, so `y` only affects speed.
 */
function maxPoolGrad2x2(x: Float32Array, y: Float32Array, dy: Float32Array, g: WindowGeom, dx: Float32Array): void {
  const { n, h, w, c, oh, ow } = g;
  // Rows/columns left over by odd sizes get no gradient; only then is a full clear needed.
  if (oh * 2 !== h || ow * 2 !== w) dx.fill(0);
  const row = w * c;
  const redo: number[] = []; // (x offset, dy offset) of windows for the exact loop
  let d = 0;
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < oh; r++) {
      let i00 = (b * h + 2 * r) * row;
      for (let xo = 0; xo < ow; xo++, i00 += 2 * c) {
        for (let ci = 0; ci < c; ci++, d++) {
          const a = i00 + ci;
          const m = y[d]!;
          const gy = dy[d]!;
          const e0 = +(x[a] === m);
          const e1 = (1 - e0) * +(x[a + c] === m);
          const e2 = (1 - e0 - e1) * +(x[a + row] === m);
          const e3 = (1 - e0 - e1 - e2) * +(x[a + row + c] === m);
          if (m - m !== 0 || gy - gy !== 0 || e0 + e1 + e2 + e3 === 0) {
            redo.push(a, d);
            continue;
          }
          dx[a] = e0 * gy;
          dx[a + c] = e1 * gy;
          dx[a + row] = e2 * gy;
          dx[a + row + c] = e3 * gy;
        }
      }
    }
  }
  for (let i = 0; i < redo.length; i += 2) maxPoolWindow2x2(x, redo[i]!, c, row, dy[redo[i + 1]!]!, dx);
}

/** Exact (compare-loop) gradient of one 2x2 window at x[a], as the generic `maxPoolGrad`. */
function maxPoolWindow2x2(x: Float32Array, a: number, c: number, row: number, gy: number, dx: Float32Array): void {
  const idx = [a, a + c, a + row, a + row + c];
  let best = Number.NEGATIVE_INFINITY;
  let at = -1;
  for (const i of idx) {
    dx[i] = 0;
    if (x[i]! > best) {
      best = x[i]!;
      at = i;
    }
  }
  if (at >= 0) dx[at] = gy;
}

/**
 * AvgPool gradient consistent with the forward pass of tfjs (cpu and wasm alike): a window's
 * average is over its in-bounds elements only, so each dy is spread over those elements divided
 * by their count. (tfjs's own AvgPoolGrad divides by kh*kw even for windows clipped by padding.)
 */
export function avgPoolGrad(dy: Float32Array, g: WindowGeom, dx: Float32Array): void {
  const { n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow } = g;
  dx.fill(0);
  let d = 0;
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const y0 = y * sh - pt;
      const ya = Math.max(0, y0);
      const yb = Math.min(h, y0 + kh);
      for (let xo = 0; xo < ow; xo++, d += c) {
        const x0 = xo * sw - pl;
        const xa = Math.max(0, x0);
        const xb = Math.min(w, x0 + kw);
        const count = (yb - ya) * (xb - xa);
        if (count <= 0) continue;
        const inv = 1 / count;
        for (let iy = ya; iy < yb; iy++) {
          let idx = ((b * h + iy) * w + xa) * c;
          for (let ix = xa; ix < xb; ix++, idx += c) {
            for (let ci = 0; ci < c; ci++) dx[idx + ci] = dx[idx + ci]! + dy[d + ci]! * inv;
          }
        }
      }
    }
  }
}

/**
 * Depthwise conv filter gradient: dW[ky,kx,ci,m] = sum over b,y,x of
 * x[b, y*sh+ky-pt, x*sw+kx-pl, ci] * dy[b, y, x, ci*mult+m]; accumulated in float64.
 */
export function depthwiseFilterGrad(x: Float32Array, dy: Float32Array, g: WindowGeom, mult: number, dw: Float32Array): void {
  const { n, h, w, c, kh, kw, sh, sw, pt, pl, oh, ow } = g;
  const co = c * mult;
  const acc = new Float64Array(kh * kw * co);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let ky = 0; ky < kh; ky++) {
        const iy = y * sh + ky - pt;
        if (iy < 0 || iy >= h) continue;
        for (let kx = 0; kx < kw; kx++) {
          const lo = firstValid(kx, sw, pl);
          const hi = endValid(kx, sw, pl, w, ow);
          const a0 = (ky * kw + kx) * co;
          for (let xo = lo; xo < hi; xo++) {
            const xi = ((b * h + iy) * w + xo * sw + kx - pl) * c;
            const di = ((b * oh + y) * ow + xo) * co;
            if (mult === 1) {
              for (let ci = 0; ci < c; ci++) acc[a0 + ci] = acc[a0 + ci]! + x[xi + ci]! * dy[di + ci]!;
            } else {
              for (let ci = 0; ci < c; ci++) {
                const xv = x[xi + ci]!;
                const base = ci * mult;
                for (let m = 0; m < mult; m++) acc[a0 + base + m] = acc[a0 + base + m]! + xv * dy[di + base + m]!;
              }
            }
          }
        }
      }
    }
  }
  for (let i = 0; i < acc.length; i++) dw[i] = acc[i]!;
}
