/** Shape-manipulating kernels: Flatten, Reshape, Transpose, Concat, Pad, Gather, Slice, … */
import { attrInt, attrInts, attrString, type Tensor as IrTensor } from '../../onnx/ir.js';
import { tf } from '../tf.js';
import { logical, logicalShape, nhwcAxis, plain } from './layout.js';
import { type OpContext, opError, type RtValue, registerOp } from './registry.js';
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
    return [
      {
        t: tf.concat(
          vals.map((v) => v.t),
          nhwcAxis(axis),
        ),
        layout: 'nhwc',
      },
    ];
  }
  return [plain(tf.concat(vals.map(logical), axis))];
}

function pad(ctx: OpContext): RtValue[] {
  const xv = need(ctx, 0);
  const rank = logicalShape(xv).length;
  const given = intsOf(ctx, 1);
  if (!given) throw opError(ctx, 'missing pads');
  // Opset 18: optional axes input; pads then hold begins and ends of those axes only.
  const axes = ctx.inputs[3] ? intsOf(ctx, 3)!.map((a) => normAxis(ctx, a, rank)) : [...Array(rank).keys()];
  if (given.length !== 2 * axes.length) throw opError(ctx, `pads must have ${2 * axes.length} entries, has ${given.length}`);
  const pads = new Array(2 * rank).fill(0);
  axes.forEach((a, i) => {
    pads[a] = given[i]!;
    pads[a + rank] = given[i + axes.length]!;
  });
  const mode = attrString(ctx.node, 'mode', 'constant');
  const value = ctx.inputs[2] ? scalarOf(ctx, 2)! : 0;
  let pairs: [number, number][] = [...Array(rank).keys()].map((i) => [pads[i]!, pads[i + rank]!]);
  let x = logical(xv);
  let layout: RtValue['layout'] = 'nchw';
  if (xv.layout === 'nhwc') {
    pairs = [pairs[0]!, pairs[2]!, pairs[3]!, pairs[1]!];
    x = xv.t;
    layout = 'nhwc';
  }
  // Negative pads crop.
  if (pairs.some(([p, q]) => p < 0 || q < 0)) {
    x = tf.slice(
      x,
      pairs.map(([p]) => Math.max(-p, 0)),
      x.shape.map((d, i) => d - Math.max(-pairs[i]![0], 0) - Math.max(-pairs[i]![1], 0)),
    );
    pairs = pairs.map(([p, q]) => [Math.max(p, 0), Math.max(q, 0)]);
  }
  let y: tf.Tensor;
  if (mode === 'constant') y = tf.pad(x, pairs, value);
  else if (mode === 'reflect') y = tf.mirrorPad(x, pairs, 'reflect');
  else if (mode === 'edge') {
    y = x;
    pairs.forEach(([p, q], a) => {
      if (!p && !q) return;
      const n = y.shape[a]!;
      const edge = (at: number, times: number): tf.Tensor =>
        tf.tile(
          tf.slice(
            y,
            y.shape.map((_, i) => (i === a ? at : 0)),
            y.shape.map((d, i) => (i === a ? 1 : d)),
          ),
          y.shape.map((_, i) => (i === a ? times : 1)),
        );
      y = tf.concat([...(p ? [edge(0, p)] : []), y, ...(q ? [edge(n - 1, q)] : [])], a);
    });
  } else throw opError(ctx, `Pad mode '${mode}' is not supported`);
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
  return [
    plain(
      axes && axes.length
        ? tf.squeeze(
            x,
            axes.map((a) => normAxis(ctx, a, x.rank)),
          )
        : tf.squeeze(x),
    ),
  ];
}

function slice(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const starts = intsOf(ctx, 1);
  const ends = intsOf(ctx, 2);
  if (!starts || !ends) throw opError(ctx, 'missing starts or ends');
  const axes = intsOf(ctx, 3) ?? starts.map((_, i) => i);
  const steps = intsOf(ctx, 4) ?? starts.map(() => 1);
  const begin = new Array(x.rank).fill(0);
  const end = [...x.shape];
  const stride = new Array(x.rank).fill(1);
  let endMask = 0;
  axes.forEach((a0, i) => {
    const a = normAxis(ctx, a0, x.rank);
    const dim = x.shape[a]!;
    const step = steps[i]!;
    if (step === 0) throw opError(ctx, 'Slice step 0 is invalid');
    const norm = (v: number): number => (v < 0 ? v + dim : v);
    if (step > 0) {
      begin[a] = Math.min(Math.max(norm(starts[i]!), 0), dim);
      end[a] = Math.min(Math.max(norm(ends[i]!), 0), dim);
    } else {
      // Backwards: start clamps to [0, dim-1], end to [-1, dim-1]; -1 (before the first) is the end mask.
      begin[a] = Math.min(Math.max(norm(starts[i]!), 0), dim - 1);
      const e = Math.min(Math.max(norm(ends[i]!), -1), dim - 1);
      if (e === -1) endMask |= 1 << a;
      end[a] = e;
    }
    stride[a] = step;
  });
  return [plain(tf.stridedSlice(x, begin, end, stride, 0, endMask))];
}

function split(ctx: OpContext): RtValue[] {
  const x = logical(need(ctx, 0));
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.rank);
  let sizes = ctx.node.attrs['split'] ? attrInts(ctx.node, 'split') : intsOf(ctx, 1);
  if (!sizes) {
    // Opset 18: num_outputs chunks of ceil(dim / n), the last one smaller.
    const n = ctx.node.outputs.length;
    const chunk = Math.ceil(x.shape[axis]! / n);
    sizes = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(chunk, x.shape[axis]! - i * chunk)));
  }
  const parts = sizes;
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
