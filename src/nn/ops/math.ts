/** Elementwise, matrix, softmax and normalisation kernels. */
import { attrFloat, attrInt, attrInts, attrString } from '../../onnx/ir.js';
import { DROPOUT_RANDOM } from '../checks.js';
import { tf } from '../tf.js';
import { cachedFilter } from './conv.js';
import { broadcastPartnerNhwc, logical, logicalShape, plain } from './layout.js';
import { type OpContext, type OpKernel, opError, type RtValue, registerOp } from './registry.js';
import { intsOf, need, normAxis, scalarOf } from './util.js';

type Bin = (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** Binary op with numpy broadcasting; stays in NHWC when a rank-4 operand already is. */
export function binary(f: Bin): OpKernel {
  return (ctx) => {
    const a = need(ctx, 0);
    const b = need(ctx, 1);
    if (a.layout === 'nhwc' || b.layout === 'nhwc') {
      const an = a.layout === 'nhwc' ? a.t : logicalShape(a).length <= 4 ? broadcastPartnerNhwc(a) : undefined;
      const bn = b.layout === 'nhwc' ? b.t : logicalShape(b).length <= 4 ? broadcastPartnerNhwc(b) : undefined;
      if (an && bn) return [{ t: f(an, bn), layout: 'nhwc' }];
    }
    return [plain(f(logical(a), logical(b)))];
  };
}

/** Unary op that keeps the layout. */
export function unaryOp(f: (x: tf.Tensor) => tf.Tensor): OpKernel {
  return (ctx) => {
    const x = need(ctx, 0);
    return [{ t: f(x.t), layout: x.layout }];
  };
}

const SQRT1_2 = Math.SQRT1_2;
const gelu = (x: tf.Tensor): tf.Tensor => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1));
const geluTanh = (x: tf.Tensor): tf.Tensor =>
  tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1));

function gemm(ctx: OpContext): RtValue[] {
  const a = logical(need(ctx, 0));
  const b = logical(need(ctx, 1));
  const transA = attrInt(ctx.node, 'transA', 0) === 1;
  const transB = attrInt(ctx.node, 'transB', 0) === 1;
  if (a.rank !== 2 || b.rank !== 2) throw opError(ctx, `Gemm needs 2-D inputs, got [${a.shape}] and [${b.shape}]`);
  const k1 = transA ? a.shape[0] : a.shape[1];
  const k2 = transB ? b.shape[1] : b.shape[0];
  if (k1 !== k2) throw opError(ctx, `inner dimensions differ: A [${a.shape}]${transA ? 'ᵀ' : ''} × B [${b.shape}]${transB ? 'ᵀ' : ''}`);
  const alpha = attrFloat(ctx.node, 'alpha', 1);
  const beta = attrFloat(ctx.node, 'beta', 1);
  // tfjs-wasm's matMul with transposeB is several times slower than on a transposed copy (4.7 vs
  // 0.7 ms for MobileNetV2's 1×1280 · 1280×1000 classifier, medians of 21 alternating pairs);
  // PyTorch's Linear always exports transB=1: transpose a constant weight once and keep it
  // (cachedFilter: inference only, refreshed when the weight changes).
  const bb = !transB ? b : ctx.constInput(1) !== undefined ? cachedFilter(ctx, b, () => tf.transpose(b)) : tf.transpose(b);
  let y = tf.matMul(a as tf.Tensor2D, bb as tf.Tensor2D, transA, false);
  if (alpha !== 1) y = tf.mul(y, alpha);
  const c = ctx.inputs[2];
  if (c && beta !== 0) y = tf.add(y, beta === 1 ? logical(c) : tf.mul(logical(c), beta));
  return [plain(y)];
}

function matmul(ctx: OpContext): RtValue[] {
  let a = logical(need(ctx, 0));
  let b = logical(need(ctx, 1));
  const aVec = a.rank === 1;
  const bVec = b.rank === 1;
  if (aVec) a = tf.reshape(a, [1, a.shape[0]!]);
  if (bVec) b = tf.reshape(b, [b.shape[0]!, 1]);
  const k = a.shape[a.rank - 1];
  if (k !== b.shape[b.rank - 2]) throw opError(ctx, `inner dimensions differ: [${a.shape}] × [${b.shape}]`);
  let y: tf.Tensor;
  if (b.rank === 2 && a.rank > 2) {
    // [.., M, K] × [K, N]: one large GEMM is much faster than a broadcast batched matmul.
    const lead = a.shape.slice(0, -1);
    y = tf.reshape(tf.matMul(tf.reshape(a, [-1, k!]) as tf.Tensor2D, b as tf.Tensor2D), [...lead, b.shape[1]!]);
  } else {
    y = tf.matMul(a, b);
  }
  if (aVec) y = tf.squeeze(y, [y.rank - 2]);
  if (bVec) y = tf.squeeze(y, [y.rank - 1]);
  return [plain(y)];
}

/** Apply `f` along `axis` by moving it last (tfjs softmax works on the last axis only). */
function alongAxis(ctx: OpContext, f: (x: tf.Tensor) => tf.Tensor): RtValue[] {
  const x = logical(need(ctx, 0));
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.rank);
  if (axis === x.rank - 1) return [plain(f(x))];
  const perm = [...Array(x.rank).keys()];
  perm[axis] = x.rank - 1;
  perm[x.rank - 1] = axis;
  return [plain(tf.transpose(f(tf.transpose(x, perm)), perm))];
}

function layerNorm(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.rank);
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const axes = [...Array(x.rank - axis).keys()].map((i) => i + axis);
  const { mean, variance } = tf.moments(x, axes, true);
  const inv = tf.rsqrt(tf.add(variance, eps));
  let y = tf.mul(tf.sub(x, mean), inv);
  y = tf.mul(y, logical(need(ctx, 1)));
  const b = ctx.inputs[2];
  if (b) y = tf.add(y, logical(b));
  // Optional outputs Mean and InvStdDev keep the normalised axes as size 1.
  return [plain(y), plain(mean), plain(inv)];
}

/** True when the producing Conv already clamped `x` to exactly [lo, hi] (fused activation). */
const preClamped = (x: RtValue, lo: number, hi: number): boolean => x.clamped !== undefined && x.clamped[0] === lo && x.clamped[1] === hi;

function relu(ctx: OpContext): RtValue[] {
  const x = need(ctx, 0);
  if (preClamped(x, 0, Infinity)) return [{ t: x.t, layout: x.layout }];
  return [{ t: tf.relu(x.t), layout: x.layout }];
}

function clip(ctx: OpContext): RtValue[] {
  const x = need(ctx, 0);
  // Opset ≥ 11 passes min/max as inputs; older opsets as attributes.
  const lo = scalarOf(ctx, 1) ?? (ctx.node.attrs['min'] ? attrFloat(ctx.node, 'min') : -Infinity);
  const hi = scalarOf(ctx, 2) ?? (ctx.node.attrs['max'] ? attrFloat(ctx.node, 'max') : Infinity);
  if (preClamped(x, lo, hi)) return [{ t: x.t, layout: x.layout }];
  // tf.clipByValue's gradient is fine; minimum/maximum keep infinities cheap.
  if (lo > hi) return [{ t: tf.fill(x.t.shape, hi, x.t.dtype as 'float32'), layout: x.layout }]; // ONNX: all max
  // One clipByValue kernel: tfjs-wasm's broadcasting maximum/minimum with a scalar is very slow.
  if (x.t.dtype === 'float32') return [{ t: tf.clipByValue(x.t, Math.max(lo, -3.4028234663852886e38), Math.min(hi, 3.4028234663852886e38)), layout: x.layout }];
  let y = x.t;
  if (lo !== -Infinity) y = tf.maximum(y, tf.scalar(lo, y.dtype));
  if (hi !== Infinity) y = tf.minimum(y, tf.scalar(hi, y.dtype));
  return [{ t: y, layout: x.layout }];
}

function reduce(kind: 'mean' | 'sum'): OpKernel {
  return (ctx) => {
    const x = logical(need(ctx, 0));
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    let axes = ctx.node.attrs['axes'] ? attrInts(ctx.node, 'axes') : intsOf(ctx, 1);
    if (!axes || axes.length === 0) {
      if (attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1) return [plain(x)];
      axes = [...Array(x.rank).keys()];
    }
    const ax = axes.map((a) => normAxis(ctx, a, x.rank));
    return [plain(kind === 'mean' ? tf.mean(x, ax, keep) : tf.sum(x, ax, keep))];
  };
}

function cast(ctx: OpContext): RtValue[] {
  const x = need(ctx, 0);
  const to = attrInt(ctx.node, 'to');
  const map: Record<number, 'float32' | 'int32' | 'bool'> = { 1: 'float32', 11: 'float32', 6: 'int32', 7: 'int32', 9: 'bool' };
  const dt = map[to];
  if (!dt) throw opError(ctx, `Cast to ONNX dtype ${to} is not supported`);
  return [{ t: tf.cast(x.t, dt), layout: x.layout }];
}

/** Register the elementwise / matrix / normalisation kernels. */
export function registerMathOps(): void {
  registerOp('Add', binary(tf.add));
  registerOp('Sub', binary(tf.sub));
  registerOp('Mul', binary(tf.mul));
  registerOp('Div', binary(tf.div));
  registerOp(
    'Pow',
    binary((a, b) =>
      a.dtype === 'int32' ? tf.cast(tf.round(tf.pow(tf.cast(a, 'float32'), tf.cast(b, 'float32'))), 'int32') : tf.pow(a, tf.cast(b, 'float32')),
    ),
  );
  registerOp('Max', binary(tf.maximum));
  registerOp('Min', binary(tf.minimum));
  registerOp('Relu', relu);
  registerOp('Sigmoid', unaryOp(tf.sigmoid));
  registerOp('Tanh', unaryOp(tf.tanh));
  registerOp('Erf', unaryOp(tf.erf));
  registerOp('Sqrt', unaryOp(tf.sqrt));
  registerOp('Exp', unaryOp(tf.exp));
  registerOp('Log', unaryOp(tf.log));
  registerOp('Neg', unaryOp(tf.neg));
  registerOp('Abs', unaryOp(tf.abs));
  registerOp(
    'Identity',
    unaryOp((x) => x),
  );
  registerOp('LeakyRelu', (ctx) => unaryOp((x) => tf.leakyRelu(x, attrFloat(ctx.node, 'alpha', 0.01)))(ctx));
  registerOp('Gelu', (ctx) => unaryOp(attrString(ctx.node, 'approximate', 'none') === 'tanh' ? geluTanh : gelu)(ctx));
  registerOp('Clip', clip);
  registerOp('Dropout', (ctx) => {
    // Inference semantics (ratio ignored); privml trains without dropout. training_mode fed at run
    // time: true with a non-zero ratio would be random — refused rather than run as inference.
    // The mask of inference (or ratio-0) Dropout is all true.
    const x = need(ctx, 0);
    if (ctx.inputs[2] && scalarOf(ctx, 2) !== 0 && (scalarOf(ctx, 1) ?? 0.5) !== 0) throw opError(ctx, DROPOUT_RANDOM);
    return ctx.node.outputs[1] ? [x, plain(tf.onesLike(logical(x)).cast('bool'))] : [x];
  });
  registerOp('Gemm', gemm);
  registerOp('MatMul', matmul);
  registerOp('Softmax', (ctx) => alongAxis(ctx, (x) => tf.softmax(x)));
  registerOp('LogSoftmax', (ctx) => alongAxis(ctx, (x) => tf.logSoftmax(x)));
  registerOp('LayerNormalization', layerNorm);
  registerOp('ReduceMean', reduce('mean'));
  registerOp('ReduceSum', reduce('sum'));
  registerOp('Cast', cast);
}
