/** Convolution, pooling and batch normalisation kernels (NHWC inside, ONNX semantics outside). */
import { attrFloat, attrInt, attrInts } from '../../onnx/ir.js';
import { tf } from '../tf.js';
import { asNhwc, logical, logicalShape, nhwc } from './layout.js';
import { opError, registerOp, type OpContext, type RtValue } from './registry.js';
import { need, pair, spatialPads } from './util.js';

type Pad4 = [number, number, number, number];
const explicit = (p: Pad4): [[number, number], [number, number], [number, number], [number, number]] => [
  [0, 0],
  [p[0], p[1]],
  [p[2], p[3]],
  [0, 0],
];
const zeroPad = (p: Pad4): boolean => p.every((v) => v === 0);

function conv(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  const shape = logicalShape(xv);
  if (shape.length !== 4) throw opError(ctx, `only 2-D convolution (rank-4 input) is supported, input has shape [${shape}]`);
  const w = logical(need(ctx, 1)) as tf.Tensor4D; // [CO, CI/g, KH, KW]
  const [co, cig, kh, kw] = w.shape;
  const group = attrInt(ctx.node, 'group', 1);
  const ci = shape[1]!;
  if (ci !== cig * group) throw opError(ctx, `input has ${ci} channels but weight [${w.shape}] with group ${group} expects ${cig * group}`);
  const strides = pair(ctx, 'strides', 1);
  const dil = pair(ctx, 'dilations', 1);
  const pads = spatialPads(ctx, [shape[2]!, shape[3]!], [kh, kw], strides, dil);
  const x = asNhwc(xv);
  let y: tf.Tensor4D;
  if (group === 1) {
    y = tf.conv2d(x, tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D, strides, explicit(pads), 'NHWC', dil);
  } else if (cig === 1 && co % group === 0 && group === ci) {
    // Depthwise: weight [C*M, 1, KH, KW] -> [KH, KW, C, M].
    const m = co / group;
    const f = tf.transpose(tf.reshape(w, [ci, m, kh, kw]), [2, 3, 0, 1]) as tf.Tensor4D;
    y = tf.depthwiseConv2d(x, f, strides, explicit(pads), 'NHWC', dil);
  } else {
    const xs = tf.split(x, group, 3);
    const ws = tf.split(w, group, 0);
    y = tf.concat(
      xs.map((xi, g) => tf.conv2d(xi as tf.Tensor4D, tf.transpose(ws[g]!, [2, 3, 1, 0]) as tf.Tensor4D, strides, explicit(pads), 'NHWC', dil)),
      3,
    ) as tf.Tensor4D;
  }
  const b = ctx.inputs[2];
  if (b) y = tf.add(y, logical(b));
  return [nhwc(y)];
}

function poolGeometry(ctx: OpContext, shape: number[]) {
  if (shape.length !== 4) throw opError(ctx, `only 2-D pooling (rank-4 input) is supported, input has shape [${shape}]`);
  const k = attrInts(ctx.node, 'kernel_shape');
  if (k.length !== 2) throw opError(ctx, `kernel_shape must have 2 entries, has ${k.length}`);
  const kernel: [number, number] = [k[0]!, k[1]!];
  const strides = pair(ctx, 'strides', 1);
  const dil = pair(ctx, 'dilations', 1);
  if (dil[0] !== 1 || dil[1] !== 1) throw opError(ctx, 'pooling with dilations > 1 is not supported');
  const pads = spatialPads(ctx, [shape[2]!, shape[3]!], kernel, strides, dil);
  if (attrInt(ctx.node, 'ceil_mode', 0) === 1) {
    // Extend bottom/right padding so the last partial window exists (it must start inside the input or top/left pad).
    for (let d = 0; d < 2; d++) {
      const inP = shape[2 + d]! + pads[2 * d]! + pads[2 * d + 1]!;
      const floorOut = Math.floor((inP - kernel[d]!) / strides[d]!) + 1;
      let ceilOut = Math.ceil((inP - kernel[d]!) / strides[d]!) + 1;
      if ((ceilOut - 1) * strides[d]! >= shape[2 + d]! + pads[2 * d]!) ceilOut--;
      pads[2 * d + 1]! += (ceilOut - floorOut) * strides[d]!;
    }
  }
  return { kernel, strides, pads };
}

function maxPool(ctx: OpContext): RtValue[] {
  if (ctx.node.outputs.length > 1 && ctx.node.outputs[1]) throw opError(ctx, 'the Indices output of MaxPool is not supported');
  const xv = need(ctx, 0);
  const { kernel, strides, pads } = poolGeometry(ctx, logicalShape(xv));
  let x = asNhwc(xv);
  if (!zeroPad(pads)) x = tf.pad(x, explicit(pads), -3.4e38) as tf.Tensor4D;
  return [nhwc(tf.maxPool(x, kernel, strides, 'valid'))];
}

function avgPool(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  const shape = logicalShape(xv);
  const { kernel, strides, pads } = poolGeometry(ctx, shape);
  const x = asNhwc(xv);
  if (zeroPad(pads)) return [nhwc(tf.avgPool(x, kernel, strides, 'valid'))];
  const sum = tf.avgPool(tf.pad(x, explicit(pads)) as tf.Tensor4D, kernel, strides, 'valid');
  const includePad = attrInt(ctx.node, 'count_include_pad', 0) === 1;
  // Divisor per output position: the window's cells inside the input (or inside input+pads when counting pads).
  const ones = tf.ones([1, shape[2]!, shape[3]!, 1]);
  const declared = attrInts(ctx.node, 'pads', [0, 0, 0, 0]);
  const inner = includePad ? tf.pad(ones, explicit([declared[0]!, declared[2]!, declared[1]!, declared[3]!]), 1) : ones;
  const rest: Pad4 = includePad
    ? [pads[0] - declared[0]!, pads[1] - declared[2]!, pads[2] - declared[1]!, pads[3] - declared[3]!]
    : pads;
  const frac = tf.avgPool(tf.pad(inner, explicit(rest)) as tf.Tensor4D, kernel, strides, 'valid');
  return [nhwc(tf.div(sum, frac))];
}

function globalAvgPool(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  if (logicalShape(xv).length !== 4) throw opError(ctx, 'only rank-4 input is supported');
  return [nhwc(tf.mean(asNhwc(xv), [1, 2], true))];
}

function globalMaxPool(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  if (logicalShape(xv).length !== 4) throw opError(ctx, 'only rank-4 input is supported');
  return [nhwc(tf.max(asNhwc(xv), [1, 2], true))];
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
  registerOp('GlobalAveragePool', globalAvgPool);
  registerOp('GlobalMaxPool', globalMaxPool);
  registerOp('BatchNormalization', batchNorm);
}
