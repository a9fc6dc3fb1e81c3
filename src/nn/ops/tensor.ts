/** Shape-manipulating kernels: Flatten, Reshape, Transpose, Concat, Pad, Gather, Slice, … */
import { attrInt, attrInts, attrString, type Tensor as IrTensor } from '../../onnx/ir.js';
import { tf } from '../tf.js';
import { logical, logicalShape, nhwcAxis, plain } from './layout.js';
import { opError, registerOp, type OpContext, type RtValue } from './registry.js';
import { intsOf, need, normAxis, scalarOf } from './util.js';

/** Convert an IR constant to a tfjs tensor (int64 → int32, the widest int tfjs holds). */
export function irToTf(t: IrTensor): tf.Tensor {
  const shape = [...t.dims];
  switch (t.dtype) {
    case 'float32':
      return tf.tensor(t.data as Float32Array, shape, 'float32');
    case 'float64':
      return tf.tensor(Float32Array.from(t.data as Float64Array), shape, 'float32');
    case 'bool':
      return tf.tensor(t.data as Uint8Array, shape, 'bool');
    case 'int64': {
      const src = t.data as BigInt64Array;
      const out = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = src[i]!;
        // Clamp huge sentinels (e.g. Slice ends = INT64_MAX) into int32 range.
        out[i] = v > 2147483647n ? 2147483647 : v < -2147483648n ? -2147483648 : Number(v);
      }
      return tf.tensor(out, shape, 'int32');
    }
    default:
      return tf.tensor(Int32Array.from(t.data as ArrayLike<number>), shape, 'int32');
  }
}

function flatten(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const axis = attrInt(ctx.node, 'axis', 1);
  const a = axis < 0 ? axis + x.rank : axis;
  const outer = x.shape.slice(0, a).reduce((p, d) => p * d, 1);
  return [plain(tf.reshape(x, [outer, -1]))];
}

/** Resolve an ONNX Reshape target (0 = copy, -1 = infer) against the input shape. */
export function reshapeTarget(ctx: OpContext, inShape: number[], spec: number[]): number[] {
  const allowZero = attrInt(ctx.node, 'allowzero', 0) === 1;
  const out = spec.map((d, i) => {
    if (d === 0 && !allowZero) {
      if (i >= inShape.length) throw opError(ctx, `shape entry ${i} is 0 but input has rank ${inShape.length}`);
      return inShape[i]!;
    }
    return d;
  });
  const total = inShape.reduce((p, d) => p * d, 1);
  const known = out.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const holes = out.filter((d) => d === -1).length;
  if (holes > 1) throw opError(ctx, `shape [${spec}] has more than one -1`);
  if (holes === 1) {
    if (known === 0 || total % known !== 0) throw opError(ctx, `cannot reshape [${inShape}] to [${spec}]`);
    out[out.indexOf(-1)] = total / known;
  } else if (known !== total) {
    throw opError(ctx, `cannot reshape [${inShape}] (${total} elements) to [${spec}] (${known} elements)`);
  }
  return out;
}

function reshape(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const spec = intsOf(ctx, 1);
  if (!spec) throw opError(ctx, 'missing shape input');
  return [plain(tf.reshape(x, reshapeTarget(ctx, x.shape, spec)))];
}

function transpose(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const perm = attrInts(ctx.node, 'perm', [...Array(x.rank).keys()].reverse());
  return [plain(tf.transpose(x, perm))];
}

function concat(ctx: OpContext): RtValue[] {
  const vals = ctx.inputs.filter((v): v is RtValue => !!v);
  const rank = logicalShape(vals[0]!).length;
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis'), rank);
  if (rank === 4 && vals.every((v) => v.layout === 'nhwc')) {
    return [{ t: tf.concat(vals.map((v) => v.t), nhwcAxis(axis)), layout: 'nhwc' }];
  }
  return [plain(tf.concat(vals.map(logical), axis))];
}

function pad(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  const rank = logicalShape(xv).length;
  const pads = ctx.node.attrs['pads'] ? attrInts(ctx.node, 'pads') : intsOf(ctx, 1);
  if (!pads || pads.length !== 2 * rank) throw opError(ctx, `pads must have ${2 * rank} entries`);
  if (ctx.inputs[3]) throw opError(ctx, 'the axes input of Pad is not supported');
  if (pads.some((p) => p < 0)) throw opError(ctx, 'negative pads are not supported');
  const mode = attrString(ctx.node, 'mode', 'constant');
  const value = scalarOf(ctx, 2) ?? 0;
  let pairs: [number, number][] = [...Array(rank).keys()].map((i) => [pads[i]!, pads[i + rank]!]);
  let x = logical(xv);
  let layout: RtValue['layout'] = 'nchw';
  if (xv.layout === 'nhwc') {
    pairs = [pairs[0]!, pairs[2]!, pairs[3]!, pairs[1]!];
    x = xv.t;
    layout = 'nhwc';
  }
  let y: tf.Tensor;
  if (mode === 'constant') y = tf.pad(x, pairs, value);
  else if (mode === 'reflect') y = tf.mirrorPad(x, pairs, 'reflect');
  else throw opError(ctx, `Pad mode '${mode}' is not supported`);
  return [{ t: y, layout }];
}

function gather(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.rank);
  let idx = logical(need(ctx, 1));
  if (idx.dtype !== 'int32') idx = tf.cast(idx, 'int32');
  // ONNX allows negative indices; tfjs does not.
  const n = x.shape[axis]!;
  idx = tf.where(tf.less(idx, tf.scalar(0, 'int32')), tf.add(idx, tf.scalar(n, 'int32')), idx);
  return [plain(tf.gather(x, idx, axis))];
}

function constant(ctx: OpContext): RtValue[] {
  const a = ctx.node.attrs;
  if (a['value']?.kind === 'tensor') return [plain(irToTf(a['value'].value))];
  if (a['value_float']?.kind === 'float') return [plain(tf.scalar(a['value_float'].value))];
  if (a['value_floats']?.kind === 'floats') return [plain(tf.tensor1d(a['value_floats'].value))];
  if (a['value_int']?.kind === 'int') return [plain(tf.scalar(a['value_int'].value, 'int32'))];
  if (a['value_ints']?.kind === 'ints') return [plain(tf.tensor1d(a['value_ints'].value, 'int32'))];
  throw opError(ctx, 'Constant without a supported value attribute');
}

function unsqueeze(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const axes = ctx.node.attrs['axes'] ? attrInts(ctx.node, 'axes') : intsOf(ctx, 1);
  if (!axes) throw opError(ctx, 'missing axes');
  const outRank = x.rank + axes.length;
  const norm = axes.map((a) => normAxis(ctx, a, outRank)).sort((p, q) => p - q);
  const shape = [...x.shape];
  for (const a of norm) shape.splice(a, 0, 1);
  return [plain(tf.reshape(x, shape))];
}

function squeeze(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const axes = ctx.node.attrs['axes'] ? attrInts(ctx.node, 'axes') : intsOf(ctx, 1);
  return [plain(axes && axes.length ? tf.squeeze(x, axes.map((a) => normAxis(ctx, a, x.rank))) : tf.squeeze(x))];
}

function slice(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const starts = intsOf(ctx, 1);
  const ends = intsOf(ctx, 2);
  if (!starts || !ends) throw opError(ctx, 'Slice needs constant starts and ends');
  const axes = intsOf(ctx, 3) ?? starts.map((_, i) => i);
  const steps = intsOf(ctx, 4) ?? starts.map(() => 1);
  const begin = new Array(x.rank).fill(0);
  const end = [...x.shape];
  const stride = new Array(x.rank).fill(1);
  axes.forEach((a0, i) => {
    const a = normAxis(ctx, a0, x.rank);
    const dim = x.shape[a]!;
    const step = steps[i]!;
    if (step <= 0) throw opError(ctx, 'Slice with non-positive steps is not supported');
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
    begin[a] = clamp(starts[i]!);
    end[a] = clamp(ends[i]!);
    stride[a] = step;
  });
  return [plain(tf.stridedSlice(x, begin, end, stride))];
}

function split(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.rank);
  const sizes = ctx.node.attrs['split'] ? attrInts(ctx.node, 'split') : intsOf(ctx, 1);
  const parts = sizes ?? ctx.node.outputs.length;
  return tf.split(x, parts, axis).map(plain);
}

function shapeOp(ctx: OpContext): RtValue[] {
  const s = logicalShape(need(ctx, 0));
  return [plain(tf.tensor1d(s, 'int32'))];
}

function expand(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const target = intsOf(ctx, 1);
  if (!target) throw opError(ctx, 'missing shape input');
  const rank = Math.max(x.rank, target.length);
  const xs = [...new Array(rank - x.rank).fill(1), ...x.shape];
  const ts = [...new Array(rank - target.length).fill(1), ...target];
  const out = xs.map((d, i) => (d === 1 ? ts[i]! : d));
  return [plain(tf.broadcastTo(tf.reshape(x, xs), out))];
}

/** Register the shape-manipulating kernels. */
export function registerTensorOps(): void {
  registerOp('Flatten', flatten);
  registerOp('Reshape', reshape);
  registerOp('Transpose', transpose);
  registerOp('Concat', concat);
  registerOp('Pad', pad);
  registerOp('Gather', gather);
  registerOp('Constant', constant);
  registerOp('Unsqueeze', unsqueeze);
  registerOp('Squeeze', squeeze);
  registerOp('Slice', slice);
  registerOp('Split', split);
  registerOp('Shape', shapeOp);
  registerOp('Expand', expand);
}
