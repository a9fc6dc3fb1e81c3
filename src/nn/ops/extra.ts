/**
 * The common ops of real exports beyond the core set: activations, comparisons and logic, the
 * remaining reductions, index ops (ArgMax, GatherElements, TopK, Trilu, ...) and generators
 * (ConstantOfShape, Range). Semantics follow the ONNX operator spec at the canonical opset.
 */
import { attrFloat, attrInt, attrString } from '../../onnx/ir.js';
import { tf } from '../tf.js';
import { logical, plain } from './layout.js';
import { binary, unaryOp } from './math.js';
import { type OpContext, type OpKernel, opError, type RtValue, registerOp } from './registry.js';
import { irToTf } from './tensor.js';
import { intsOf, need, normAxis, scalarOf } from './util.js';

const isInt = (t: tf.Tensor): boolean => t.dtype === 'int32';

/** Truncating integer division (ONNX/C semantics); tfjs divides int32 with floor. */
function div(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!isInt(a)) return tf.div(a, b);
  const q = tf.floorDiv(tf.abs(a), tf.abs(b));
  return tf.mul(q, tf.mul(tf.sign(a), tf.sign(b)));
}

function mod(ctx: OpContext): RtValue[] {
  const fmod = attrInt(ctx.node, 'fmod', 0) === 1;
  return binary((a, b) => {
    if (!fmod) return tf.mod(a, b); // sign of the divisor, like Python's %
    // C fmod: sign of the dividend.
    return tf.sub(a, tf.mul(isInt(a) ? div(a, b) : tf.mul(tf.sign(tf.div(a, b)), tf.floor(tf.abs(tf.div(a, b)))), b));
  })(ctx);
}

/** Broadcast the three operands of Where to one shape (tfjs needs equal shapes). */
function where(ctx: OpContext): RtValue[] {
  const [c, a, b] = [0, 1, 2].map((i) => logical(need(ctx, i)));
  const r = Math.max(c!.rank, a!.rank, b!.rank);
  const pad = (s: number[]): number[] => [...new Array(r - s.length).fill(1), ...s];
  const shapes = [c!, a!, b!].map((t) => pad(t.shape));
  const out = shapes[0]!.map((_, i) => Math.max(...shapes.map((s) => s[i]!)));
  const bc = (t: tf.Tensor, s: number[]): tf.Tensor => tf.broadcastTo(tf.reshape(t, s), out);
  return [plain(tf.where(bc(c!, shapes[0]!) as tf.Tensor, bc(a!, shapes[1]!), bc(b!, shapes[2]!)))];
}

type ReduceKind = 'max' | 'min' | 'prod' | 'l1' | 'l2' | 'logsum' | 'logsumexp' | 'sumsquare';

/** Reduce* with axes as an input (canonical form), keepdims and noop_with_empty_axes. */
export function reduceKernel(f: (x: tf.Tensor, axes: number[], keep: boolean) => tf.Tensor): OpKernel {
  return (ctx) => {
    const x = logical(need(ctx, 0));
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    let axes = intsOf(ctx, 1);
    if (!axes || axes.length === 0) {
      if (attrInt(ctx.node, 'noop_with_empty_axes', 0) === 1) return [plain(x)];
      axes = [...Array(x.rank).keys()];
    }
    if (x.size === 0) throw opError(ctx, 'reduction over an empty tensor is not supported');
    return [
      plain(
        f(
          x,
          axes.map((a) => normAxis(ctx, a, x.rank)),
          keep,
        ),
      ),
    ];
  };
}

const REDUCERS: Record<ReduceKind, (x: tf.Tensor, ax: number[], keep: boolean) => tf.Tensor> = {
  max: (x, ax, k) => tf.max(x, ax, k),
  min: (x, ax, k) => tf.min(x, ax, k),
  prod: (x, ax, k) => tf.prod(x, ax, k),
  l1: (x, ax, k) => tf.sum(tf.abs(x), ax, k),
  l2: (x, ax, k) => tf.sqrt(tf.sum(tf.square(x), ax, k)),
  logsum: (x, ax, k) => tf.log(tf.sum(x, ax, k)),
  logsumexp: (x, ax, k) => tf.logSumExp(x, ax, k),
  sumsquare: (x, ax, k) => tf.sum(tf.square(x), ax, k),
};

function argExt(kind: 'max' | 'min'): OpKernel {
  return (ctx) => {
    const x = logical(need(ctx, 0));
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.rank);
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    const last = attrInt(ctx.node, 'select_last_index', 0) === 1;
    const f = kind === 'max' ? tf.argMax : tf.argMin;
    let idx = last ? tf.sub(tf.scalar(x.shape[axis]! - 1, 'int32'), f(tf.reverse(x, axis), axis)) : f(x, axis);
    if (keep) idx = tf.expandDims(idx, axis);
    return [plain(idx)];
  };
}

/** Positions of every element along each axis, broadcast to `shape` (int32). */
function coords(shape: number[], axis: number): tf.Tensor {
  const s = shape.map((d, i) => (i === axis ? d : 1));
  return tf.broadcastTo(tf.reshape(tf.range(0, shape[axis]!, 1, 'int32'), s), shape);
}

function gatherElements(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  let idx = logical(need(ctx, 1));
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.rank);
  if (idx.dtype !== 'int32') idx = tf.cast(idx, 'int32');
  const i32 = (v: number): tf.Tensor => tf.scalar(v, 'int32');
  idx = tf.where(tf.less(idx, i32(0)), tf.add(idx, i32(x.shape[axis]!)), idx);
  const strides = x.shape.map((_, i) => x.shape.slice(i + 1).reduce((p, d) => p * d, 1));
  let flat: tf.Tensor = tf.mul(idx, i32(strides[axis]!));
  for (let d = 0; d < x.rank; d++) if (d !== axis) flat = tf.add(flat, tf.mul(coords(idx.shape, d), i32(strides[d]!)));
  return [plain(tf.reshape(tf.gather(tf.reshape(x, [-1]), tf.reshape(flat, [-1])), idx.shape))];
}

function trilu(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const k = ctx.inputs[1] ? scalarOf(ctx, 1)! : 0;
  const upper = attrInt(ctx.node, 'upper', 1) === 1;
  const [n, m] = x.shape.slice(-2) as [number, number];
  const diff = tf.sub(tf.reshape(tf.range(0, m, 1, 'int32'), [1, m]), tf.reshape(tf.range(0, n, 1, 'int32'), [n, 1]));
  const mask = upper ? tf.greaterEqual(diff, k) : tf.lessEqual(diff, k);
  return [plain(tf.where(tf.broadcastTo(mask, x.shape), x, tf.zerosLike(x)))];
}

function topK(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const k = intsOf(ctx, 1)?.[0];
  if (k === undefined) throw opError(ctx, 'missing k');
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.rank);
  const largest = attrInt(ctx.node, 'largest', 1) === 1;
  const perm = [...Array(x.rank).keys()];
  perm[axis] = x.rank - 1;
  perm[x.rank - 1] = axis;
  const moved = axis === x.rank - 1 ? x : tf.transpose(x, perm);
  // tfjs topk orders ties by index like onnxruntime; the smallest k are the largest of -x.
  const r = tf.topk(largest ? moved : tf.neg(moved), k, true);
  const vals = largest ? r.values : tf.neg(r.values);
  const back = (t: tf.Tensor): tf.Tensor => (axis === x.rank - 1 ? t : tf.transpose(t, perm));
  return [plain(back(vals)), plain(back(r.indices))];
}

function constantOfShape(ctx: OpContext): RtValue[] {
  const shape = intsOf(ctx, 0) ?? [];
  const v = ctx.node.attrs['value'];
  if (v?.kind !== 'tensor') return [plain(tf.zeros(shape))];
  const t = irToTf(v.value);
  const val = t.dataSync()[0]!;
  return [plain(tf.fill(shape, val, t.dtype as 'float32' | 'int32' | 'bool'))];
}

function range(ctx: OpContext): RtValue[] {
  const [s, l, d] = [0, 1, 2].map((i) => scalarOf(ctx, i)!);
  const int = logical(need(ctx, 0)).dtype === 'int32';
  const n = Math.max(Math.ceil((l! - s!) / d!), 0);
  // tf.range differs at the boundary for float steps; ONNX defines the count first.
  return [plain(tf.add(tf.mul(tf.range(0, n, 1, int ? 'int32' : 'float32'), int ? tf.scalar(d!, 'int32') : d!), int ? tf.scalar(s!, 'int32') : s!))];
}

function hardmax(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.rank);
  const idx = tf.argMax(x, axis);
  const oh = tf.oneHot(tf.reshape(idx, [-1]), x.shape[axis]!);
  const lead = x.shape.filter((_, i) => i !== axis);
  const perm = [...Array(x.rank - 1).keys()];
  perm.splice(axis, 0, x.rank - 1);
  return [plain(tf.cast(tf.transpose(tf.reshape(oh, [...lead, x.shape[axis]!]), perm), x.dtype))];
}

function cumsum(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const axis = normAxis(ctx, intsOf(ctx, 1)![0]!, x.rank);
  return [plain(tf.cumsum(x, axis, attrInt(ctx.node, 'exclusive', 0) === 1, attrInt(ctx.node, 'reverse', 0) === 1))];
}

function depthToSpace(ctx: OpContext, toSpace: boolean): RtValue[] {
  const x = logical(need(ctx, 0));
  if (x.rank !== 4) throw opError(ctx, 'needs a rank-4 input');
  const b = attrInt(ctx.node, 'blocksize');
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (toSpace) {
    const crd = attrString(ctx.node, 'mode', 'DCR') === 'CRD';
    const t = crd ? tf.reshape(x, [n, c / (b * b), b, b, h, w]) : tf.reshape(x, [n, b, b, c / (b * b), h, w]);
    const p = crd ? tf.transpose(t, [0, 1, 4, 2, 5, 3]) : tf.transpose(t, [0, 3, 4, 1, 5, 2]);
    return [plain(tf.reshape(p, [n, c / (b * b), h * b, w * b]))];
  }
  const t = tf.reshape(x, [n, c, h / b, b, w / b, b]);
  return [plain(tf.reshape(tf.transpose(t, [0, 3, 5, 1, 2, 4]), [n, c * b * b, h / b, w / b]))];
}

function instanceNorm(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const eps = attrFloat(ctx.node, 'epsilon', 1e-5);
  const axes = [...Array(x.rank - 2).keys()].map((i) => i + 2);
  const { mean, variance } = tf.moments(x, axes, true);
  const bs = [1, -1, ...new Array(x.rank - 2).fill(1)];
  const y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
  return [plain(tf.add(tf.mul(y, tf.reshape(logical(need(ctx, 1)), bs)), tf.reshape(logical(need(ctx, 2)), bs)))];
}

function lrn(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const size = attrInt(ctx.node, 'size');
  if (size % 2 === 0 || x.rank !== 4) throw opError(ctx, 'LRN needs a rank-4 input and an odd size');
  const nhwc = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
  const y = tf.localResponseNormalization(
    nhwc,
    (size - 1) / 2,
    attrFloat(ctx.node, 'bias', 1),
    attrFloat(ctx.node, 'alpha', 1e-4) / size,
    attrFloat(ctx.node, 'beta', 0.75),
  );
  return [plain(tf.transpose(y, [0, 3, 1, 2]))];
}

const un = (f: (x: tf.Tensor) => tf.Tensor): OpKernel => unaryOp(f);
const fa = (ctx: OpContext, k: string, d: number): number => attrFloat(ctx.node, k, d);

/** Register the extra kernels. */
export function registerExtraOps(): void {
  registerOp('Div', binary(div));
  registerOp('Mod', mod);
  registerOp('Equal', binary(tf.equal));
  registerOp('Less', binary(tf.less));
  registerOp('Greater', binary(tf.greater));
  registerOp('LessOrEqual', binary(tf.lessEqual));
  registerOp('GreaterOrEqual', binary(tf.greaterEqual));
  registerOp('And', binary(tf.logicalAnd));
  registerOp('Or', binary(tf.logicalOr));
  registerOp('Xor', binary(tf.logicalXor));
  registerOp(
    'PRelu',
    binary((x, s) => tf.add(tf.relu(x), tf.mul(s, tf.minimum(x, 0)))),
  );
  registerOp('Where', where);
  registerOp('Not', un(tf.logicalNot));
  registerOp('Reciprocal', un(tf.reciprocal));
  for (const [op, f] of Object.entries({
    Cos: tf.cos,
    Sin: tf.sin,
    Tan: tf.tan,
    Acos: tf.acos,
    Asin: tf.asin,
    Atan: tf.atan,
    Cosh: tf.cosh,
    Sinh: tf.sinh,
    Asinh: tf.asinh,
    Acosh: tf.acosh,
    Atanh: tf.atanh,
    Floor: tf.floor,
    Ceil: tf.ceil,
    Round: tf.round,
    Sign: tf.sign,
    Softplus: tf.softplus,
    IsNaN: tf.isNaN,
  })) {
    registerOp(op, un(f as (x: tf.Tensor) => tf.Tensor));
  }
  registerOp(
    'Softsign',
    un((x) => tf.div(x, tf.add(tf.abs(x), 1))),
  );
  registerOp(
    'Mish',
    un((x) => tf.mul(x, tf.tanh(tf.softplus(x)))),
  );
  registerOp('HardSigmoid', (ctx) => un((x) => tf.clipByValue(tf.add(tf.mul(x, fa(ctx, 'alpha', 0.2)), fa(ctx, 'beta', 0.5)), 0, 1))(ctx));
  registerOp(
    'HardSwish',
    un((x) => tf.mul(x, tf.clipByValue(tf.add(tf.div(x, 6), 0.5), 0, 1))),
  );
  registerOp('Elu', (ctx) => un((x) => tf.where(tf.greater(x, 0), x, tf.mul(tf.sub(tf.exp(x), 1), fa(ctx, 'alpha', 1))))(ctx));
  registerOp('Selu', (ctx) =>
    un((x) => tf.mul(tf.where(tf.greater(x, 0), x, tf.mul(tf.sub(tf.exp(x), 1), fa(ctx, 'alpha', 1.6732632423543772))), fa(ctx, 'gamma', 1.0507009873554805)))(
      ctx,
    ),
  );
  registerOp('Celu', (ctx) => {
    const a = fa(ctx, 'alpha', 1);
    return un((x) => tf.add(tf.relu(x), tf.minimum(0, tf.mul(tf.sub(tf.exp(tf.div(x, a)), 1), a))))(ctx);
  });
  registerOp('ThresholdedRelu', (ctx) => un((x) => tf.where(tf.greater(x, fa(ctx, 'alpha', 1)), x, tf.zerosLike(x)))(ctx));
  registerOp('Shrink', (ctx) => {
    const [b, l] = [fa(ctx, 'bias', 0), fa(ctx, 'lambd', 0.5)];
    return un((x) => tf.where(tf.less(x, -l), tf.add(x, b), tf.where(tf.greater(x, l), tf.sub(x, b), tf.zerosLike(x))))(ctx);
  });
  registerOp('IsInf', (ctx) => {
    const [neg, pos] = [attrInt(ctx.node, 'detect_negative', 1) === 1, attrInt(ctx.node, 'detect_positive', 1) === 1];
    return un((x) => tf.logicalOr(neg ? tf.equal(x, -Infinity) : tf.zerosLike(x).cast('bool'), pos ? tf.equal(x, Infinity) : tf.zerosLike(x).cast('bool')))(
      ctx,
    );
  });
  for (const [op, k] of Object.entries({
    ReduceMax: 'max',
    ReduceMin: 'min',
    ReduceProd: 'prod',
    ReduceL1: 'l1',
    ReduceL2: 'l2',
    ReduceLogSum: 'logsum',
    ReduceLogSumExp: 'logsumexp',
    ReduceSumSquare: 'sumsquare',
  })) {
    registerOp(op, reduceKernel(REDUCERS[k as ReduceKind]));
  }
  registerOp('ArgMax', argExt('max'));
  registerOp('ArgMin', argExt('min'));
  registerOp('GatherElements', gatherElements);
  registerOp('Trilu', trilu);
  registerOp('TopK', topK);
  registerOp('ConstantOfShape', constantOfShape);
  registerOp('Range', range);
  registerOp('Size', (ctx) => [plain(tf.scalar(logical(need(ctx, 0)).size, 'int32'))]);
  registerOp('Tile', (ctx) => [plain(tf.tile(logical(need(ctx, 0)), intsOf(ctx, 1)!))]);
  registerOp('Hardmax', hardmax);
  registerOp('CumSum', cumsum);
  registerOp('DepthToSpace', (ctx) => depthToSpace(ctx, true));
  registerOp('SpaceToDepth', (ctx) => depthToSpace(ctx, false));
  registerOp('InstanceNormalization', instanceNorm);
  registerOp('LRN', lrn);
}
