/** Convolution, pooling and batch normalisation kernels (NHWC inside, ONNX semantics outside). */
import { attrFloat, attrInt } from '../../onnx/ir.js';
import { avgPoolDivisors, type WindowGeometry, windowGeometry } from '../../onnx/lower.js';
import { CONV_KERNELS, type ConvKernel, forgetFilter, packFilter, rememberFilter, sgemmConv, sgemmEnabled } from '../kernels/sgemm.js';
import { activeBackend, tf } from '../tf.js';
import { asNhwc, logical, logicalShape, nhwc, plain } from './layout.js';
import { type OpContext, opError, type RtValue, registerOp } from './registry.js';
import { need } from './util.js';

type Pad4 = [number, number, number, number];
const explicit = (p: Pad4): [[number, number], [number, number], [number, number], [number, number]] => [
  [0, 0],
  [p[0], p[1]],
  [p[2], p[3]],
  [0, 0],
];
const zeroPad = (p: Pad4): boolean => p.every((v) => v === 0);

/** Shared window geometry (lower.ts), with its errors naming the node. */
function geometry(ctx: OpContext, spatial: number[], kernel?: number[]): WindowGeometry {
  try {
    return windowGeometry(ctx.node, spatial, kernel);
  } catch (e) {
    throw opError(ctx, (e as Error).message);
  }
}

/** Lift 1-D geometry to 2-D (a leading spatial dim of size 1) so tfjs's 2-D kernels run it. */
function lift(g: WindowGeometry): { kernel: [number, number]; strides: [number, number]; dil: [number, number]; pads: Pad4 } {
  if (g.kernel.length === 1) {
    return { kernel: [1, g.kernel[0]!], strides: [1, g.strides[0]!], dil: [1, g.dilations[0]!], pads: [0, 0, g.pads[0]!, g.effectiveEndPads[0]!] };
  }
  return {
    kernel: [g.kernel[0]!, g.kernel[1]!],
    strides: [g.strides[0]!, g.strides[1]!],
    dil: [g.dilations[0]!, g.dilations[1]!],
    pads: [g.pads[0]!, g.effectiveEndPads[0]!, g.pads[1]!, g.effectiveEndPads[1]!],
  };
}

/** Pad (or crop, for negative amounts) the spatial dims of an NHWC tensor. */
function padOrCrop(x: tf.Tensor4D, p: Pad4, value = 0): tf.Tensor4D {
  const pos = p.map((v) => Math.max(v, 0)) as Pad4;
  let y = zeroPad(pos) ? x : (tf.pad(x, explicit(pos), value) as tf.Tensor4D);
  if (p.some((v) => v < 0)) {
    const [, h, w] = y.shape;
    const t = Math.max(-p[0], 0);
    const l = Math.max(-p[2], 0);
    y = tf.slice(y, [0, t, l, 0], [-1, h - t - Math.max(-p[1], 0), w - l - Math.max(-p[3], 0), -1]);
  }
  return y;
}

/** Input as NHWC, rank-3 (1-D) inputs with a unit height. */
function spatialNhwc(xv: RtValue): tf.Tensor4D {
  const shape = logicalShape(xv);
  if (shape.length === 3) return tf.expandDims(tf.transpose(xv.t, [0, 2, 1]), 1) as tf.Tensor4D;
  return asNhwc(xv);
}

/** Result of a 1-D op back to logical [N, C, L]. */
const from1d = (y: tf.Tensor4D): RtValue => plain(tf.transpose(tf.squeeze(y, [1]), [0, 2, 1]));

/** The caller's `convKernel` runtime option ('auto' when unset); a bad value is refused, naming it. */
function convKernel(ctx: OpContext): ConvKernel {
  const k = ctx.options.convKernel ?? 'auto';
  if (!CONV_KERNELS.includes(k as ConvKernel)) throw new Error(`convKernel must be one of ${CONV_KERNELS.join(', ')} (got '${String(k)}')`);
  return k as ConvKernel;
}

/** Inference with no gradient being recorded (tf.grad may run a non-training forward too). */
export function plainInference(ctx: OpContext): boolean {
  return !ctx.training && (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth === 0;
}

/**
 * The weight in tfjs's filter layout, kept across inference runs (transposing ResNet-18's weights
 * on every call costs as much as a quarter of the run). Keyed by the weight's data id: assigning a
 * variable (training) gives it a new one, so a stale filter is never used. Not cached while training
 * (the tape must see the transpose).
 */
export function cachedFilter(ctx: OpContext, w: tf.Tensor, make: () => tf.Tensor): tf.Tensor {
  if (!plainInference(ctx)) return make();
  const c = ctx.state.get('filter') as { id: object; t: tf.Tensor } | undefined;
  const id = (w as unknown as { dataId: object }).dataId;
  if (c && c.id === id) return c.t;
  if (c) c.t.dispose();
  const t = tf.keep(make());
  ctx.state.set('filter', { id, t });
  return t;
}

/** A filter packed for the sgemm kernel, freed when the model is disposed or the weight changes. */
interface PackedEntry {
  w: object;
  b: object | undefined;
  id: number;
  free(): void;
}

/** The id of the weight (and bias) packed for kernels/sgemm.ts, packed once per constant filter. */
function packedFilter(ctx: OpContext, w: tf.Tensor, w4: tf.Tensor4D, b: tf.Tensor | undefined): number {
  const dataId = (t: tf.Tensor): object => (t as unknown as { dataId: object }).dataId;
  const c = ctx.state.get('sgemm') as PackedEntry | undefined;
  if (c && c.w === dataId(w) && c.b === (b && dataId(b))) return c.id;
  c?.free();
  const [co, ci, kh, kw] = w4.shape;
  const f = packFilter(w4.dataSync() as Float32Array, co, ci, kh, kw, b ? (b.dataSync() as Float32Array) : undefined);
  const id = rememberFilter(f);
  ctx.state.set('sgemm', { w: dataId(w), b: b && dataId(b), id, free: () => forgetFilter(id) } satisfies PackedEntry);
  return id;
}

function conv(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  const shape = logicalShape(xv);
  const w = logical(need(ctx, 1));
  const group = attrInt(ctx.node, 'group', 1);
  const ci = shape[1]!;
  if (w.rank !== shape.length) throw opError(ctx, `weight [${w.shape}] and input [${shape}] ranks differ`);
  const cig = w.shape[1]!;
  const co = w.shape[0]!;
  if (ci !== cig * group) throw opError(ctx, `input has ${ci} channels but weight [${w.shape}] with group ${group} expects ${cig * group}`);
  const g = geometry(ctx, shape.slice(2), w.shape.slice(2));
  const b = ctx.inputs[2];
  if (shape.length === 5) {
    if (group !== 1) throw opError(ctx, '3-D convolution with groups is not supported');
    const x = padNd(tf.transpose(logical(xv), [0, 2, 3, 4, 1]), g);
    let y: tf.Tensor = tf.conv3d(
      x as tf.Tensor5D,
      tf.transpose(w, [2, 3, 4, 1, 0]) as tf.Tensor5D,
      g.strides as [number, number, number],
      'valid',
      'NDHWC',
      g.dilations as [number, number, number],
    );
    if (b) y = tf.add(y, logical(b));
    return [plain(tf.transpose(y, [0, 4, 1, 2, 3]))];
  }
  if (shape.length !== 4 && shape.length !== 3) throw opError(ctx, `only 1-D, 2-D and 3-D convolution are supported, input has shape [${shape}]`);
  const lifted = lift(g);
  const { dil, pads } = lifted;
  // tfjs refuses strides > 1 together with dilations > 1: run stride 1 and subsample the result.
  const subsample = lifted.strides.some((v) => v > 1) && dil.some((v) => v > 1) ? lifted.strides : undefined;
  const strides: [number, number] = subsample ? [1, 1] : lifted.strides;
  const w4 = (shape.length === 3 ? tf.expandDims(w, 2) : w) as tf.Tensor4D; // [CO, CI/g, KH, KW]
  const [, , kh, kw] = w4.shape;
  const x = padOrCrop(spatialNhwc(xv), pads.map((p) => Math.min(p, 0)) as Pad4);
  const wrap = (t0: tf.Tensor4D): RtValue => {
    const t = subsample ? (tf.stridedSlice(t0, [0, 0, 0, 0], t0.shape, [1, subsample[0], subsample[1], 1]) as tf.Tensor4D) : t0;
    return shape.length === 3 ? from1d(t) : nhwc(t);
  };
  const pp = pads.map((p) => Math.max(p, 0)) as Pad4;
  let y: tf.Tensor4D;
  if (group === 1 && x.dtype === 'float32' && plainInference(ctx) && activeBackend() === 'wasm' && sgemmEnabled(convKernel(ctx))) {
    // Inference on the wasm backend: our GEMM kernel where it is faster (kernels/sgemm.ts, sgemmEnabled).
    const id = packedFilter(ctx, w, w4, b ? logical(b) : undefined);
    const [sh, sw] = lifted.strides;
    // A following Relu/Clip (this Conv's only consumer, runtime.ts) is applied in the GEMM's epilogue.
    const act = ctx.state.get('activation') as [number, number] | undefined;
    const [lo, hi] = act ?? [-Infinity, Infinity];
    const t = sgemmConv(x, id, { sh, sw, dh: dil[0], dw: dil[1], pt: pp[0], pb: pp[1], pl: pp[2], pr: pp[3], lo, hi });
    return [{ ...(shape.length === 3 ? from1d(t) : nhwc(t)), ...(act ? { clamped: act } : {}) }];
  }
  if (group === 1) {
    const f = cachedFilter(ctx, w, () => tf.transpose(w4, [2, 3, 1, 0])) as tf.Tensor4D;
    // Inference: the fused kernel adds the bias in the same pass (tfjs-wasm's broadcast add is slow).
    if (b && plainInference(ctx))
      return [wrap(tf.fused.conv2d({ x, filter: f, strides, pad: explicit(pp), dataFormat: 'NHWC', dilations: dil, bias: logical(b) }))];
    y = tf.conv2d(x, f, strides, explicit(pp), 'NHWC', dil);
  } else if (cig === 1 && co % group === 0 && group === ci) {
    // Depthwise: weight [C*M, 1, KH, KW] -> [KH, KW, C, M].
    const m = co / group;
    const f = cachedFilter(ctx, w, () => tf.transpose(tf.reshape(w4, [ci, m, kh, kw]), [2, 3, 0, 1])) as tf.Tensor4D;
    if (b && plainInference(ctx)) {
      const xp = zeroPad(pp) ? x : (tf.pad(x, explicit(pp)) as tf.Tensor4D);
      return [wrap(tf.fused.depthwiseConv2d({ x: xp, filter: f, strides, pad: 'valid', dataFormat: 'NHWC', dilations: dil, bias: logical(b) }))];
    }
    y = tf.depthwiseConv2d(x, f, strides, explicit(pp), 'NHWC', dil);
  } else {
    const xs = tf.split(x, group, 3);
    const ws = tf.split(w4, group, 0);
    y = tf.concat(
      xs.map((xi, k) => tf.conv2d(xi as tf.Tensor4D, tf.transpose(ws[k]!, [2, 3, 1, 0]) as tf.Tensor4D, strides, explicit(pp), 'NHWC', dil)),
      3,
    ) as tf.Tensor4D;
  }
  if (b) y = tf.add(y, logical(b));
  return [wrap(y)];
}

/** Explicitly pad an NDHWC tensor by the geometry's begin / effective end pads (3-D ops). */
function padNd(x: tf.Tensor, g: WindowGeometry, value = 0): tf.Tensor {
  const n = g.kernel.length;
  const pairs: [number, number][] = [
    [0, 0],
    ...Array.from({ length: n }, (_, i) => [g.pads[i]!, Math.max(g.effectiveEndPads[i]!, 0)] as [number, number]),
    [0, 0],
  ];
  let y = pairs.every(([p, q]) => p === 0 && q === 0) ? x : tf.pad(x, pairs, value);
  // A negative effective end pad: the last cells are never read (floor output); crop them.
  if (g.effectiveEndPads.some((p) => p < 0))
    y = tf.slice(
      y,
      new Array(n + 2).fill(0),
      y.shape.map((d, i) => (i >= 1 && i <= n ? d + Math.min(g.effectiveEndPads[i - 1]!, 0) : d)),
    );
  return y;
}

/** Max over a dilated window as a max of strided slices (tfjs pools have no dilations). */
function dilatedMax(x: tf.Tensor4D, kernel: [number, number], strides: [number, number], dil: [number, number], out: [number, number]): tf.Tensor4D {
  let acc: tf.Tensor4D | undefined;
  for (let i = 0; i < kernel[0]; i++) {
    for (let j = 0; j < kernel[1]; j++) {
      const s = tf.stridedSlice(
        x,
        [0, i * dil[0], j * dil[1], 0],
        [x.shape[0], i * dil[0] + (out[0] - 1) * strides[0] + 1, j * dil[1] + (out[1] - 1) * strides[1] + 1, x.shape[3]],
        [1, strides[0], strides[1], 1],
      ) as tf.Tensor4D;
      acc = acc ? (tf.maximum(acc, s) as tf.Tensor4D) : s;
    }
  }
  return acc!;
}

/**
 * MaxPool with its Indices output, in plain JS over the logical tensor (any number of spatial
 * dims): index = flat position in the whole input (batch and channel included), row-major, or with
 * storage_order=1 the spatial dims in column-major order (onnxruntime's rule). Ties keep the first.
 */
function maxPoolWithIndices(ctx: OpContext, xv: RtValue, shape: number[], g: WindowGeometry): RtValue[] {
  const x = logical(xv);
  const data = x.dataSync();
  if (data.length > 2 ** 31 - 1) throw opError(ctx, 'the Indices output of an input this large does not fit the int32 the runtime holds');
  const colMajor = attrInt(ctx.node, 'storage_order', 0) === 1;
  const sp = shape.slice(2);
  const n = sp.length;
  const inStride = sp.map((_, i) => sp.slice(i + 1).reduce((p, d) => p * d, 1));
  const colStride = sp.map((_, i) => sp.slice(0, i).reduce((p, d) => p * d, 1));
  const outSize = g.outShape.reduce((p, d) => p * d, 1);
  const planeIn = sp.reduce((p, d) => p * d, 1);
  const planes = shape[0]! * shape[1]!;
  const kCells = g.kernel.reduce((p, d) => p * d, 1);
  const yv = new Float32Array(planes * outSize);
  const iv = new Int32Array(planes * outSize);
  const o = new Array<number>(n).fill(0);
  const k = new Array<number>(n).fill(0);
  for (let pl = 0; pl < planes; pl++) {
    for (let oi = 0; oi < outSize; oi++) {
      for (let d = n - 1, r = oi; d >= 0; d--) {
        o[d] = r % g.outShape[d]!;
        r = Math.floor(r / g.outShape[d]!);
      }
      let best = -Infinity;
      let bestIdx = -1;
      for (let ki = 0; ki < kCells; ki++) {
        for (let d = n - 1, r = ki; d >= 0; d--) {
          k[d] = r % g.kernel[d]!;
          r = Math.floor(r / g.kernel[d]!);
        }
        let off = 0;
        let col = 0;
        let inside = true;
        for (let d = 0; d < n; d++) {
          const p = o[d]! * g.strides[d]! - g.pads[d]! + k[d]! * g.dilations[d]!;
          if (p < 0 || p >= sp[d]!) {
            inside = false;
            break;
          }
          off += p * inStride[d]!;
          col += p * colStride[d]!;
        }
        if (!inside) continue;
        const v = data[pl * planeIn + off]!;
        if (v > best || bestIdx < 0) {
          best = v;
          bestIdx = pl * planeIn + (colMajor ? col : off);
        }
      }
      yv[pl * outSize + oi] = best;
      iv[pl * outSize + oi] = bestIdx;
    }
  }
  const outDims = [shape[0]!, shape[1]!, ...g.outShape];
  const y = tf.tensor(yv, outDims, 'float32');
  return [plain(x.dtype === 'float32' ? y : tf.cast(y, x.dtype)), plain(tf.tensor(iv, outDims, 'int32'))];
}

function maxPool(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  const shape = logicalShape(xv);
  const g = geometry(ctx, shape.slice(2));
  if (ctx.node.outputs[1] || attrInt(ctx.node, 'storage_order', 0) === 1) return maxPoolWithIndices(ctx, xv, shape, g);
  if (shape.length === 5) {
    if (g.dilations.some((d) => d !== 1)) throw opError(ctx, '3-D pooling with dilations is not supported');
    // tfjs-wasm's maxPool3d starts its max at FLT_MIN (wrong for negative inputs): max of strided slices.
    const x = tf.transpose(padNd(tf.transpose(logical(xv), [0, 2, 3, 4, 1]), g, -Infinity), [0, 4, 1, 2, 3]);
    let acc: tf.Tensor | undefined;
    const [k0, k1, k2] = g.kernel as [number, number, number];
    for (let i = 0; i < k0; i++)
      for (let j = 0; j < k1; j++)
        for (let l = 0; l < k2; l++) {
          const off = [i, j, l];
          const s = tf.stridedSlice(
            x,
            [0, 0, ...off],
            [x.shape[0]!, x.shape[1]!, ...off.map((o, d) => o + (g.outShape[d]! - 1) * g.strides[d]! + 1)],
            [1, 1, ...g.strides],
          );
          acc = acc ? tf.maximum(acc, s) : s;
        }
    return [plain(acc!)];
  }
  if (shape.length !== 4 && shape.length !== 3) throw opError(ctx, `only 1-D, 2-D and 3-D pooling are supported, input has shape [${shape}]`);
  const { kernel, strides, dil, pads } = lift(g);
  const xin = spatialNhwc(xv);
  const x = padOrCrop(xin.dtype === 'float32' ? xin : (tf.cast(xin, 'float32') as tf.Tensor4D), pads, -Infinity);
  const out: [number, number] = shape.length === 3 ? [1, g.outShape[0]!] : [g.outShape[0]!, g.outShape[1]!];
  let y = dil[0] === 1 && dil[1] === 1 ? tf.maxPool(x, kernel, strides, 'valid') : dilatedMax(x, kernel, strides, dil, out);
  if (xin.dtype !== 'float32') y = tf.cast(y, xin.dtype) as tf.Tensor4D;
  return [shape.length === 3 ? from1d(y) : nhwc(y)];
}

function avgPool(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  const shape = logicalShape(xv);
  const g = geometry(ctx, shape.slice(2));
  if (g.dilations.some((d) => d !== 1)) throw opError(ctx, 'AveragePool with dilations is not supported');
  const includePad = attrInt(ctx.node, 'count_include_pad', 0) === 1;
  // Sum over the window (zero padding), divided by the count of cells ONNX counts at each position.
  const div = avgPoolDivisors(g, shape.slice(2), includePad);
  const cells = g.kernel.reduce((p, k) => p * k, 1);
  // Outer product of the per-dim divisors: shape [out_0, out_1, ...].
  const outer = (dims: number[][]): tf.Tensor =>
    dims.reduce<tf.Tensor>(
      (acc, d, i) =>
        tf.mul(
          acc,
          tf.reshape(
            tf.tensor1d(d),
            dims.map((e, j) => (j === i ? e.length : 1)),
          ),
        ),
      tf.scalar(1),
    );
  const uniform = div.every((d) => d.every((v) => v === div[0]![0]));
  if (shape.length === 5) {
    const x = padNd(tf.transpose(logical(xv), [0, 2, 3, 4, 1]), g) as tf.Tensor5D;
    let y: tf.Tensor = tf.mul(tf.avgPool3d(x, g.kernel as [number, number, number], g.strides as [number, number, number], 'valid'), cells);
    y = tf.div(y, tf.expandDims(tf.expandDims(outer(div), 0), -1));
    return [plain(tf.transpose(y, [0, 4, 1, 2, 3]))];
  }
  if (shape.length !== 4 && shape.length !== 3) throw opError(ctx, `only 1-D, 2-D and 3-D pooling are supported, input has shape [${shape}]`);
  const { kernel, strides, pads } = lift(g);
  const x = padOrCrop(spatialNhwc(xv), pads);
  let y = tf.avgPool(x, kernel, strides, 'valid') as tf.Tensor4D;
  if (!(uniform && div[0]![0] === cells)) {
    const d2 = shape.length === 3 ? [[1], div[0]!] : div;
    y = tf.div(tf.mul(y, cells), tf.reshape(outer(d2), [1, d2[0]!.length, d2[1]!.length, 1])) as tf.Tensor4D;
  }
  return [shape.length === 3 ? from1d(y) : nhwc(y)];
}

function globalPool(kind: 'mean' | 'max'): (ctx: OpContext) => RtValue[] {
  return (ctx) => {
    const xv = need(ctx, 0);
    const r = logicalShape(xv).length;
    if (r < 3) throw opError(ctx, `input must have rank >= 3, has rank ${r}`);
    if (r === 4) return [nhwc(kind === 'mean' ? tf.mean(asNhwc(xv), [1, 2], true) : tf.max(asNhwc(xv), [1, 2], true))];
    const axes = [...Array(r - 2).keys()].map((i) => i + 2);
    return [plain(kind === 'mean' ? tf.mean(logical(xv), axes, true) : tf.max(logical(xv), axes, true))];
  };
}

/** BatchNormalization: inference form unless training with batch statistics enabled. */
function batchNorm(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const momentum = attrFloat(ctx.node, 'momentum', 0.9);
  const scale = logical(need(ctx, 1));
  const bias = logical(need(ctx, 2));
  let mean = logical(need(ctx, 3));
  let variance = logical(need(ctx, 4));
  const rank = logicalShape(xv).length;
  const x = xv.t;
  const chAxis = xv.layout === 'nhwc' ? 3 : 1;
  // training_mode=1 (opset 14+): normalise by the batch's statistics and output the updated
  // running mean / variance (population variance, ONNX's reference) — deterministic, so computed.
  if (attrInt(ctx.node, 'training_mode', 0) === 1) {
    const axes = [...Array(rank).keys()].filter((a) => a !== chAxis);
    const m = tf.moments(x, axes);
    const run = (old: tf.Tensor, cur: tf.Tensor): RtValue => plain(tf.add(tf.mul(old, momentum), tf.mul(cur, 1 - momentum)));
    const bs = chAxis === 3 ? [-1] : [-1, ...new Array(rank - 2).fill(1)];
    const inv = tf.rsqrt(tf.add(tf.reshape(m.variance, bs), eps));
    const y = tf.add(tf.mul(tf.sub(x, tf.reshape(m.mean, bs)), tf.mul(inv, tf.reshape(scale, bs))), tf.reshape(bias, bs));
    return [{ t: y, layout: xv.layout }, run(mean, m.mean), run(variance, m.variance)];
  }
  const useBatch = ctx.training && ctx.options['batchNorm'] !== 'frozen';
  if (useBatch) {
    const axes = [...Array(rank).keys()].filter((a) => a !== chAxis);
    const m = tf.moments(x, axes);
    // Running statistics are updated by the trainer from this record (ONNX's momentum convention).
    ctx.state.set('batchStats', { mean: tf.keep(tf.clone(m.mean)), variance: tf.keep(tf.clone(m.variance)), momentum });
    mean = m.mean;
    variance = m.variance;
  }
  const bshape = chAxis === 3 ? [-1] : [-1, ...new Array(rank - 2).fill(1)];
  const r = (t: tf.Tensor) => tf.reshape(t, bshape);
  const inv = tf.rsqrt(tf.add(r(variance), eps));
  const y = tf.add(tf.mul(tf.sub(x, r(mean)), tf.mul(inv, r(scale))), r(bias));
  return [{ t: y, layout: xv.layout }];
}

/** Register the convolution / pooling / normalisation kernels. */
export function registerConvOps(): void {
  registerOp('Conv', conv);
  registerOp('MaxPool', maxPool);
  registerOp('AveragePool', avgPool);
  registerOp('GlobalAveragePool', globalPool('mean'));
  registerOp('GlobalMaxPool', globalPool('max'));
  registerOp('BatchNormalization', batchNorm);
}
