/**
 * Resize (nearest / linear / cubic, every coordinate mode but crop-and-resize) and ConvTranspose.
 * Resize is computed separably, axis by axis, with source indices and weights computed here from
 * ONNX's formulas, so no backend kernel's rounding convention leaks into the result.
 */
import { attrFloat, attrInt, attrInts, attrString } from '../../onnx/ir.js';
import { tf } from '../tf.js';
import { logical, plain } from './layout.js';
import { type OpContext, opError, type RtValue, registerOp } from './registry.js';
import { intsOf, need } from './util.js';

/** Source coordinate of output index `o` on an axis of input length `len`, output length `out`. */
function sourceCoord(mode: string, o: number, len: number, out: number, scale: number): number {
  switch (mode) {
    case 'half_pixel':
      return (o + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel':
      return out > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case 'align_corners':
      // ONNX uses the unrounded resized length len·scale here, not the integer output length.
      return out === 1 ? 0 : (o * (len - 1)) / (len * scale - 1);
    case 'asymmetric':
      return o / scale;
    case 'tf_half_pixel_for_nn':
      return (o + 0.5) / scale;
    default:
      throw new Error(`coordinate_transformation_mode '${mode}' is not supported`);
  }
}

function nearest(mode: string, x: number): number {
  const f = Math.floor(x);
  switch (mode) {
    case 'round_prefer_floor':
      return x - f === 0.5 ? f : Math.round(x);
    case 'round_prefer_ceil':
      return x - f === 0.5 ? f + 1 : Math.round(x);
    case 'floor':
      return f;
    case 'ceil':
      return Math.ceil(x);
    default:
      throw new Error(`nearest_mode '${mode}' is not supported`);
  }
}

/** Taps (indices, weights) of one output position along one axis. */
function taps(ctx: OpContext, mode: string, x: number, len: number): [number[], number[]] {
  const clampI = (i: number): number => Math.min(Math.max(i, 0), len - 1);
  if (mode === 'nearest') return [[clampI(nearest(attrString(ctx.node, 'nearest_mode', 'round_prefer_floor'), x))], [1]];
  if (mode === 'linear') {
    const c = Math.min(Math.max(x, 0), len - 1);
    const i0 = Math.floor(c);
    return [
      [i0, clampI(i0 + 1)],
      [1 - (c - i0), c - i0],
    ];
  }
  // cubic (Keys kernel with coefficient a)
  const a = attrFloat(ctx.node, 'cubic_coeff_a', -0.75);
  const exclude = attrInt(ctx.node, 'exclude_outside', 0) === 1;
  const i0 = Math.floor(x);
  const t = x - i0;
  const k = (d: number): number => {
    const z = Math.abs(d);
    return z <= 1 ? (a + 2) * z ** 3 - (a + 3) * z ** 2 + 1 : z < 2 ? a * z ** 3 - 5 * a * z ** 2 + 8 * a * z - 4 * a : 0;
  };
  const idx: number[] = [];
  const w: number[] = [];
  for (let j = -1; j <= 2; j++) {
    const src = i0 + j;
    const wt = k(t - j);
    if (exclude && (src < 0 || src >= len)) continue;
    idx.push(clampI(src));
    w.push(wt);
  }
  if (exclude) {
    const s = w.reduce((p, q) => p + q, 0);
    for (let j = 0; j < w.length; j++) w[j]! /= s;
  }
  return [idx, w];
}

function resize(ctx: OpContext): RtValue[] {
  const x0 = logical(need(ctx, 0));
  const mode = attrString(ctx.node, 'mode', 'nearest');
  const coordMode = attrString(ctx.node, 'coordinate_transformation_mode', 'half_pixel');
  if (attrInt(ctx.node, 'antialias', 0) !== 0) throw opError(ctx, 'antialias=1 is not supported');
  if (!['nearest', 'linear', 'cubic'].includes(mode)) throw opError(ctx, `mode '${mode}' is not supported`);
  if (coordMode === 'tf_crop_and_resize') throw opError(ctx, "coordinate_transformation_mode 'tf_crop_and_resize' is not supported");
  const rank = x0.rank;
  const axes = ctx.node.attrs['axes'] ? attrInts(ctx.node, 'axes').map((a) => (a < 0 ? a + rank : a)) : [...Array(rank).keys()];
  const scalesIn = ctx.inputs[2] ? Array.from(logical(ctx.inputs[2]).dataSync()) : [];
  const sizesIn = ctx.inputs[3] ? (intsOf(ctx, 3) ?? []) : [];
  const scales = new Array(rank).fill(1);
  const outShape = [...x0.shape];
  if (scalesIn.length) {
    axes.forEach((a, i) => {
      scales[a] = scalesIn[i]!;
      outShape[a] = Math.floor(x0.shape[a]! * scalesIn[i]!);
    });
  } else if (sizesIn.length) {
    if (attrString(ctx.node, 'keep_aspect_ratio_policy', 'stretch') !== 'stretch')
      throw opError(ctx, 'keep_aspect_ratio_policy other than stretch is not supported');
    axes.forEach((a, i) => {
      outShape[a] = sizesIn[i]!;
      scales[a] = sizesIn[i]! / x0.shape[a]!;
    });
  } else throw opError(ctx, 'needs scales or sizes');
  let x = x0.dtype === 'float32' ? x0 : tf.cast(x0, 'float32');
  for (let a = 0; a < rank; a++) {
    const len = x0.shape[a]!;
    const out = outShape[a]!;
    if (out === len && scales[a] === 1) continue;
    const per = Array.from({ length: out }, (_, o) => taps(ctx, mode, sourceCoord(coordMode, o, len, out, scales[a]!), len));
    const nt = Math.max(...per.map((p) => p[0].length));
    const wshape = new Array(rank).fill(1);
    wshape[a] = out;
    let acc: tf.Tensor | undefined;
    for (let t = 0; t < nt; t++) {
      const idx = tf.tensor1d(
        per.map((p) => p[0][t] ?? p[0][0]!),
        'int32',
      );
      const w = per.map((p) => p[1][t] ?? 0);
      const g = tf.gather(x, idx, a);
      const term = w.every((v) => v === 1) ? g : tf.mul(g, tf.reshape(tf.tensor1d(w), wshape));
      acc = acc ? tf.add(acc, term) : term;
    }
    x = acc!;
  }
  return [plain(x0.dtype === 'float32' ? x : tf.cast(mode === 'nearest' ? x : tf.round(x), x0.dtype))];
}

/** ConvTranspose (1-D and 2-D, groups, dilations, pads, output_padding, output_shape, auto_pad). */
function convTranspose(ctx: OpContext): RtValue[] {
  let x = logical(need(ctx, 0));
  let w = logical(need(ctx, 1)); // [CI, CO/g, k...]
  const oneD = x.rank === 3;
  if (x.rank !== 4 && !oneD) throw opError(ctx, `only 1-D and 2-D ConvTranspose are supported, input has shape [${x.shape}]`);
  const n = oneD ? 1 : 2;
  const group = attrInt(ctx.node, 'group', 1);
  const k = w.shape.slice(2);
  const list = (name: string, d: number, len = n): number[] => attrInts(ctx.node, name, new Array(len).fill(d));
  const strides = list('strides', 1);
  const dil = list('dilations', 1);
  const outPad = list('output_padding', 0);
  const inSp = x.shape.slice(2);
  const span = k.map((kk, i) => (kk - 1) * dil[i]! + 1);
  const full = inSp.map((l, i) => (l - 1) * strides[i]! + span[i]!);
  let pads = list('pads', 0, 2 * n);
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  const outShapeAttr = ctx.node.attrs['output_shape'] ? attrInts(ctx.node, 'output_shape') : undefined;
  if (outShapeAttr || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const target = outShapeAttr ? outShapeAttr.slice(-n) : inSp.map((l, i) => l * strides[i]!);
    pads = new Array(2 * n).fill(0);
    target.forEach((t, i) => {
      const total = full[i]! + outPad[i]! - t;
      // C integer division (onnxruntime); with output_shape and NOTSET the extra cell goes to the end.
      const half = Math.trunc(total / 2);
      pads[i] = autoPad === 'SAME_LOWER' ? total - half : half;
      pads[i + n] = total - pads[i]!;
    });
  } else if (autoPad === 'VALID') pads = new Array(2 * n).fill(0);
  if (oneD) {
    x = tf.expandDims(x, 2);
    w = tf.expandDims(w, 2);
  }
  const s2 = oneD ? [1, strides[0]!] : strides;
  const d2 = oneD ? [1, dil[0]!] : dil;
  // Dilate the kernel explicitly (tfjs's transposed convolution has no dilations).
  if (d2.some((d) => d > 1)) {
    const [ci, cog, kh, kw] = w.shape as number[];
    let t = tf.reshape(w, [ci!, cog!, kh!, 1, kw!, 1]);
    t = tf.pad(t, [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, d2[0]! - 1],
      [0, 0],
      [0, d2[1]! - 1],
    ]);
    w = tf.slice(tf.reshape(t, [ci!, cog!, kh! * d2[0]!, kw! * d2[1]!]), [0, 0, 0, 0], [ci!, cog!, (kh! - 1) * d2[0]! + 1, (kw! - 1) * d2[1]! + 1]);
  }
  const [, , kh, kw] = w.shape as number[];
  const nhwc = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
  const [bn, h, wd] = [nhwc.shape[0], nhwc.shape[1], nhwc.shape[2]];
  const fullHW: [number, number] = [(h - 1) * s2[0]! + kh!, (wd - 1) * s2[1]! + kw!];
  const ci = x.shape[1]! / group;
  const parts: tf.Tensor4D[] = [];
  for (let g = 0; g < group; g++) {
    const xg = group === 1 ? nhwc : (tf.slice(nhwc, [0, 0, 0, g * ci], [-1, -1, -1, ci]) as tf.Tensor4D);
    const wg = group === 1 ? w : tf.slice(w, [g * ci, 0, 0, 0], [ci, -1, -1, -1]);
    const filter = tf.transpose(wg, [2, 3, 1, 0]) as tf.Tensor4D; // [kh, kw, CO/g, CI/g]
    parts.push(tf.conv2dTranspose(xg, filter, [bn, fullHW[0], fullHW[1], filter.shape[2]], s2 as [number, number], 'valid'));
  }
  let y: tf.Tensor = group === 1 ? parts[0]! : tf.concat(parts, 3);
  // output_padding appends cells past the full result; pads crop both ends (negative pads extend with zeros).
  const op2 = oneD ? [0, outPad[0]!] : outPad;
  const pb = oneD ? [0, pads[0]!] : [pads[0]!, pads[1]!];
  const pe = oneD ? [0, pads[1]!] : [pads[2]!, pads[3]!];
  const grow = [0, 1].map((i) => [Math.max(-pb[i]!, 0), Math.max(op2[i]! - pe[i]!, 0)]);
  y = tf.pad(y, [[0, 0], grow[0] as [number, number], grow[1] as [number, number], [0, 0]]);
  const size = [0, 1].map((i) => fullHW[i]! + op2[i]! - pb[i]! - pe[i]!);
  if (size.some((v) => v <= 0)) throw opError(ctx, 'pads leave an empty output');
  y = tf.slice(y, [0, Math.max(pb[0]!, 0), Math.max(pb[1]!, 0), 0], [-1, size[0]!, size[1]!, -1]);
  const b = ctx.inputs[2];
  if (b) y = tf.add(y, logical(b));
  y = tf.transpose(y, [0, 3, 1, 2]);
  return [plain(oneD ? tf.squeeze(y, [2]) : y)];
}

/** Register Resize and ConvTranspose. */
export function registerResizeOps(): void {
  registerOp('Resize', resize);
  registerOp('ConvTranspose', convTranspose);
}
