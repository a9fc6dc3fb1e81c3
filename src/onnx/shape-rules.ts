/**
 * The per-op rules of static shape inference (shape.ts runs them): each maps a node's input dtypes,
 * shapes and tracked small-int values to its outputs'. Split from shape.ts to keep files small.
 */

import type { Dim, DType, Node, Tensor, ValueInfo } from './ir.js';
import { attrInt, attrInts, attrString, DTYPE_CODE, ModelError } from './ir.js';

/** Render a shape for error messages: [batch, 3, ?]. */
export function formatShape(shape: readonly Dim[] | undefined): string {
  return shape ? `[${shape.map((d) => d ?? '?').join(', ')}]` : '[?]';
}

/** A rule's result for one output; `vals` = known elements of a small int tensor. */
export interface Out {
  dtype: DType;
  shape?: Dim[];
  vals?: Dim[];
}

/** A required input's shape is unknown (rank unknown): outputs get a dtype but no shape. */
export class NoShape extends Error {}
/** A required input has no inferred info at all (produced by an unknown op): outputs are skipped. */
export class Missing extends Error {}

const CODE_DTYPE = new Map<number, DType>(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));
/** Int dtypes whose small tensors are tracked element-wise. */
export const INT_DTYPES = new Set<DType>(['int64', 'int32', 'int16', 'int8', 'uint8']);
/** Largest int tensor whose elements are tracked (shape vectors are tiny). */
export const MAX_VALS = 64;

/** Per-node view of the inference state handed to each rule. */
export class Ctx {
  constructor(
    readonly node: Node,
    private readonly env: Map<string, ValueInfo>,
    private readonly vals: Map<string, Dim[]>,
    /** Small float initializers (Resize scales): not in `vals`, which only int rules may read. */
    private readonly floatConsts: ReadonlyMap<string, Tensor> = new Map(),
  ) {}

  fail(msg: string): never {
    throw new ModelError(`node '${this.node.name}' (${this.node.opType}): ${msg}`);
  }
  /** True when optional input `i` is given. */
  has(i: number): boolean {
    return !!this.node.inputs[i];
  }
  info(i: number): ValueInfo {
    const name = this.node.inputs[i];
    if (!name) this.fail(`missing input #${i}`);
    const v = this.env.get(name);
    if (!v) throw new Missing(name);
    return v;
  }
  dtype(i: number): DType {
    return this.info(i).dtype;
  }
  shape(i: number): Dim[] {
    const s = this.info(i).shape;
    if (!s) throw new NoShape();
    return s;
  }
  /** Tracked elements of input `i` (symbols/null allowed), if known. */
  dims(i: number): Dim[] | undefined {
    const name = this.node.inputs[i];
    return name ? this.vals.get(name) : undefined;
  }
  /** Tracked elements of input `i` if all are numbers. */
  ints(i: number): number[] | undefined {
    const d = this.dims(i);
    return d && d.every((x) => typeof x === 'number') ? (d as number[]) : undefined;
  }
  /** Elements of input `i` when it is a float initializer (not overridden by a graph input). */
  floats(i: number): number[] | undefined {
    const name = this.node.inputs[i];
    const t = name ? this.floatConsts.get(name) : undefined;
    return t ? Array.from(t.data as Float32Array | Float64Array) : undefined;
  }
  /** Normalise a possibly negative axis against `rank`. */
  axis(a: number, rank: number): number {
    const r = a < 0 ? a + rank : a;
    if (r < 0 || r >= rank) this.fail(`axis ${a} out of range for rank ${rank}`);
    return r;
  }
}

type Rule = (c: Ctx) => Out[];

const isNum = (d: Dim | undefined): d is number => typeof d === 'number';

/** Product of dims: a number, a lone symbol (times 1s), or null. */
function prod(dims: readonly Dim[]): Dim {
  let n = 1;
  const syms: Dim[] = [];
  for (const d of dims) {
    if (d === 0) return 0;
    if (isNum(d)) n *= d;
    else syms.push(d);
  }
  if (syms.length === 0) return n;
  return syms.length === 1 && n === 1 ? syms[0]! : null;
}

/** Numpy broadcasting of several shapes; incompatible fixed dims are a ModelError. */
function broadcast(c: Ctx, shapes: Dim[][]): Dim[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i];
      if (e === undefined || e === 1) continue;
      if (d === 1 || d === e) d = e;
      else if (isNum(d) && isNum(e)) c.fail(`cannot broadcast shapes ${shapes.map(formatShape).join(' and ')}`);
      else if (isNum(e))
        d = e; // a symbol broadcast against a fixed size must equal it (or be 1)
      else if (!isNum(d)) d = null;
    }
    out.push(d);
  }
  return out;
}

/** Elements of a small int tensor as numbers (int64 clamped to ±2^53: only used for shapes/indices). */
export function tensorVals(t: Tensor): Dim[] | undefined {
  if (!INT_DTYPES.has(t.dtype) || t.dims.length > 1 || t.data.length > MAX_VALS) return undefined;
  const lim = BigInt(Number.MAX_SAFE_INTEGER);
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v > lim ? lim : v < -lim ? -lim : v) : v));
}

/** Output sizes of a sliding window (Conv, pools) along each spatial axis. */
function windowOut(c: Ctx, inp: Dim[], kernel: Dim[], ceilMode: boolean): Dim[] {
  const k = inp.length;
  const n = c.node;
  const strides = attrInts(n, 'strides', Array(k).fill(1));
  const dil = attrInts(n, 'dilations', Array(k).fill(1));
  const pads = attrInts(n, 'pads', Array(2 * k).fill(0));
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  return inp.map((d, i) => {
    const kk = kernel[i];
    const s = strides[i] ?? 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return isNum(d) ? Math.ceil(d / s) : null;
    if (!isNum(d) || !isNum(kk)) return null;
    const ek = (kk - 1) * (dil[i] ?? 1) + 1;
    const pb = autoPad === 'VALID' ? 0 : (pads[i] ?? 0);
    const total = d + pb + (autoPad === 'VALID' ? 0 : (pads[i + k] ?? 0)) - ek;
    if (total < 0) c.fail(`kernel extent ${ek} exceeds padded input size ${total + ek} on spatial axis ${i}`);
    let o = (ceilMode ? Math.ceil(total / s) : Math.floor(total / s)) + 1;
    if (ceilMode && (o - 1) * s >= d + pb) o--; // the last window must start inside the input (ORT/PyTorch rule)
    return o;
  });
}

/** Shape `x` with `axes` removed, or set to 1 when `keep`. */
function reduce(c: Ctx, x: Dim[], axes: number[] | undefined, keep: boolean): Dim[] {
  const set = new Set((axes && axes.length ? axes : x.map((_, i) => i)).map((a) => c.axis(a, x.length)));
  return keep ? x.map((d, i) => (set.has(i) ? 1 : d)) : x.filter((_, i) => !set.has(i));
}

/** Infer the `-1` entry of a Reshape target from the element count, symbols cancelling out. */
function inferMinusOne(c: Ctx, x: Dim[], rest: Dim[]): Dim {
  const factor = (dims: Dim[]) => {
    let num = 1;
    const syms: string[] = [];
    for (const d of dims) {
      if (d === null) return null;
      if (isNum(d)) num *= d;
      else syms.push(d);
    }
    return { num, syms };
  };
  const a = factor(x);
  const b = factor(rest);
  if (!a || !b || b.num === 0) return null;
  for (const s of b.syms) {
    const j = a.syms.indexOf(s);
    if (j < 0) return null;
    a.syms.splice(j, 1);
  }
  if (a.num % b.num !== 0) {
    if (a.syms.length === 0) c.fail(`cannot reshape ${formatShape(x)} to ${formatShape([...rest, -1])}`);
    return null;
  }
  const r = a.num / b.num;
  if (a.syms.length === 0) return r;
  return a.syms.length === 1 && r === 1 ? a.syms[0]! : null;
}

const same: Rule = (c) => [{ dtype: c.dtype(0), shape: c.shape(0) }];
const compare: Rule = (c) => [{ dtype: 'bool', shape: broadcast(c, [c.shape(0), c.shape(1)]) }];
/** Binary arithmetic; also folds small int vectors (PyTorch computes reshape targets this way). */
const arith =
  (f: (a: number, b: number) => number): Rule =>
  (c) => {
    const shape = broadcast(
      c,
      c.node.inputs.map((_, i) => c.shape(i)),
    );
    const dtype = c.dtype(0);
    const a = c.ints(0);
    const b = c.ints(1);
    let vals: Dim[] | undefined;
    if (INT_DTYPES.has(dtype) && a && b && (a.length === b.length || a.length === 1 || b.length === 1)) {
      vals = Array.from({ length: Math.max(a.length, b.length) }, (_, i) => f(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!));
    }
    return [{ dtype, shape, vals }];
  };

function conv(c: Ctx): Out[] {
  const x = c.shape(0);
  const w = c.shape(1);
  if (x.length < 3 || w.length !== x.length) c.fail(`input ${formatShape(x)} and weight ${formatShape(w)} must have the same rank ≥ 3`);
  const group = attrInt(c.node, 'group', 1);
  const [cx, cw] = [x[1]!, w[1]!];
  if (isNum(cx) && isNum(cw) && cx !== cw * group) {
    c.fail(`input channels ${cx} (X ${formatShape(x)}) do not match weight ${formatShape(w)} × group ${group}`);
  }
  const kernel = attrInts(c.node, 'kernel_shape', []);
  return [{ dtype: c.dtype(0), shape: [x[0]!, w[0]!, ...windowOut(c, x.slice(2), kernel.length ? kernel : w.slice(2), false)] }];
}

function convTranspose(c: Ctx): Out[] {
  const x = c.shape(0);
  const w = c.shape(1);
  const n = c.node;
  if (x.length < 3 || w.length !== x.length) c.fail(`input ${formatShape(x)} and weight ${formatShape(w)} must have the same rank ≥ 3`);
  const group = attrInt(n, 'group', 1);
  if (isNum(x[1]!) && isNum(w[0]!) && x[1] !== w[0]) c.fail(`input channels ${x[1]} (X ${formatShape(x)}) do not match weight ${formatShape(w)}`);
  const k = x.length - 2;
  const m = isNum(w[1]!) ? w[1] * group : null;
  const given = attrInts(n, 'output_shape', []);
  if (given.length) return [{ dtype: c.dtype(0), shape: [x[0]!, m, ...given.slice(-k)] }];
  const kernel = attrInts(n, 'kernel_shape', []);
  const ks = kernel.length ? kernel : w.slice(2);
  const strides = attrInts(n, 'strides', Array(k).fill(1));
  const dil = attrInts(n, 'dilations', Array(k).fill(1));
  const pads = attrInts(n, 'pads', Array(2 * k).fill(0));
  const outPad = attrInts(n, 'output_padding', Array(k).fill(0));
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  const spatial = x.slice(2).map((d, i) => {
    const kk = ks[i];
    const s = strides[i] ?? 1;
    if (!isNum(d)) return null;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return d * s;
    if (!isNum(kk)) return null;
    const pad = autoPad === 'VALID' ? 0 : (pads[i] ?? 0) + (pads[i + k] ?? 0);
    return s * (d - 1) + (outPad[i] ?? 0) + (kk - 1) * (dil[i] ?? 1) + 1 - pad;
  });
  return [{ dtype: c.dtype(0), shape: [x[0]!, m, ...spatial] }];
}

function pool(c: Ctx): Out[] {
  const x = c.shape(0);
  if (x.length < 3) c.fail(`input ${formatShape(x)} must have rank ≥ 3`);
  const shape = [x[0]!, x[1]!, ...windowOut(c, x.slice(2), attrInts(c.node, 'kernel_shape'), attrInt(c.node, 'ceil_mode', 0) === 1)];
  return [
    { dtype: c.dtype(0), shape },
    { dtype: 'int64', shape },
  ];
}

function gemm(c: Ctx): Out[] {
  const a = c.shape(0);
  const b = c.shape(1);
  if (a.length !== 2 || b.length !== 2) c.fail(`A ${formatShape(a)} and B ${formatShape(b)} must be 2-D`);
  const [m, ka] = attrInt(c.node, 'transA', 0) ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [kb, n] = attrInt(c.node, 'transB', 0) ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (isNum(ka) && isNum(kb) && ka !== kb)
    c.fail(
      `inner dimensions differ: A ${formatShape(a)} and B ${formatShape(b)} (transA=${attrInt(c.node, 'transA', 0)}, transB=${attrInt(c.node, 'transB', 0)})`,
    );
  const shape = [m, n];
  if (c.has(2)) broadcast(c, [shape, c.shape(2)]);
  return [{ dtype: c.dtype(0), shape }];
}

function matmul(c: Ctx): Out[] {
  const a0 = c.shape(0);
  const b0 = c.shape(1);
  if (a0.length === 0 || b0.length === 0) c.fail('inputs must not be scalars');
  const a = a0.length === 1 ? [1, a0[0]!] : a0;
  const b = b0.length === 1 ? [b0[0]!, 1] : b0;
  const ka = a[a.length - 1]!;
  const kb = b[b.length - 2]!;
  if (isNum(ka) && isNum(kb) && ka !== kb) c.fail(`inner dimensions differ: A ${formatShape(a0)} and B ${formatShape(b0)}`);
  const batch = broadcast(c, [a.slice(0, -2), b.slice(0, -2)]);
  const shape = [...batch, ...(a0.length === 1 ? [] : [a[a.length - 2]!]), ...(b0.length === 1 ? [] : [b[b.length - 1]!])];
  return [{ dtype: c.dtype(0), shape }];
}

function reshape(c: Ctx): Out[] {
  const x = c.shape(0);
  const tgt = c.dims(1) ?? (c.has(1) ? undefined : attrInts(c.node, 'shape'));
  if (!tgt) {
    const len = c.shape(1)[0];
    if (!isNum(len)) throw new NoShape();
    return [{ dtype: c.dtype(0), shape: Array(len).fill(null) }];
  }
  const allowZero = attrInt(c.node, 'allowzero', 0) === 1;
  const out = tgt.map((d, i) => {
    if (d !== 0 || allowZero) return d;
    if (i >= x.length) c.fail(`shape entry 0 at index ${i} has no input dim to copy (input ${formatShape(x)})`);
    return x[i]!;
  });
  const neg = out.flatMap((d, i) => (d === -1 ? [i] : []));
  if (neg.length > 1) c.fail(`shape ${formatShape(tgt)} has more than one -1`);
  if (neg.length === 1)
    out[neg[0]!] = inferMinusOne(
      c,
      x,
      out.filter((d) => d !== -1),
    );
  else if (x.every(isNum) && out.every(isNum) && prod(x) !== prod(out)) c.fail(`cannot reshape ${formatShape(x)} to ${formatShape(out)}`);
  return [{ dtype: c.dtype(0), shape: out, vals: c.dims(0) }];
}

function concat(c: Ctx): Out[] {
  const shapes = c.node.inputs.map((_, i) => c.shape(i));
  const first = shapes[0]!;
  const ax = c.axis(attrInt(c.node, 'axis'), first.length);
  const out = [...first];
  for (const s of shapes.slice(1)) {
    if (s.length !== first.length) c.fail(`inputs have different ranks: ${shapes.map(formatShape).join(', ')}`);
    s.forEach((d, i) => {
      const o = out[i]!;
      if (i === ax || d === o) return;
      if (isNum(d) && isNum(o)) c.fail(`input shapes ${shapes.map(formatShape).join(', ')} differ outside axis ${ax}`);
      if (isNum(d)) out[i] = d;
      else if (!isNum(o)) out[i] = null;
    });
  }
  const along = shapes.map((s) => s[ax]!);
  out[ax] = along.every(isNum) ? along.reduce((p, q) => p + q, 0) : null;
  const parts = c.node.inputs.map((_, i) => c.dims(i));
  const vals = parts.every((p) => p) ? parts.flatMap((p) => p!) : undefined;
  return [{ dtype: c.dtype(0), shape: out, vals }];
}

function split(c: Ctx): Out[] {
  const x = c.shape(0);
  const ax = c.axis(attrInt(c.node, 'axis', 0), x.length);
  const n = c.node.outputs.length;
  const d = x[ax]!;
  let sizes: Dim[] | undefined = c.has(1) ? c.ints(1) : c.node.attrs.split ? attrInts(c.node, 'split') : undefined;
  if (c.has(1) && !sizes) sizes = Array(n).fill(null);
  if (!sizes) {
    const chunk = isNum(d) ? Math.ceil(d / n) : null;
    sizes = Array.from({ length: n }, (_, i) => (chunk === null || !isNum(d) ? null : i < n - 1 ? chunk : d - chunk * (n - 1)));
  } else if (sizes.length !== n) {
    c.fail(`split sizes [${sizes}] do not match ${n} outputs`);
  } else if (isNum(d) && sizes.every(isNum) && sizes.reduce((p, q) => p + q, 0) !== d) {
    c.fail(`split sizes [${sizes}] do not sum to ${d} (input ${formatShape(x)}, axis ${ax})`);
  }
  return sizes.map((s) => ({ dtype: c.dtype(0), shape: x.map((e, i) => (i === ax ? s : e)) }));
}

function slice(c: Ctx): Out[] {
  const x = c.shape(0);
  const byInput = c.has(1);
  const starts = byInput ? c.ints(1) : attrInts(c.node, 'starts');
  const ends = byInput ? c.ints(2) : attrInts(c.node, 'ends');
  const axesIn = byInput ? (c.has(3) ? c.ints(3) : undefined) : c.node.attrs.axes ? attrInts(c.node, 'axes') : undefined;
  if ((byInput && c.has(3) && !axesIn) || !starts || !ends) {
    // Unknown bounds: rank is kept, sliced axes become unknown.
    return [{ dtype: c.dtype(0), shape: axesIn ? x.map((d, i) => (axesIn.some((a) => c.axis(a, x.length) === i) ? null : d)) : x.map(() => null) }];
  }
  const axes = (axesIn ?? starts.map((_, i) => i)).map((a) => c.axis(a, x.length));
  const steps = byInput && c.has(4) ? c.ints(4) : starts.map(() => 1);
  const out = [...x];
  let vals = x.length === 1 ? c.dims(0) : undefined;
  axes.forEach((ax, j) => {
    const d = x[ax]!;
    const step = steps?.[j];
    const [s0, e0] = [starts[j]!, ends[j]!];
    if (step === 0) c.fail('slice step cannot be 0');
    if (!isNum(d) || step === undefined) {
      out[ax] = s0 === 0 && step === 1 && e0 >= Number.MAX_SAFE_INTEGER ? d : null;
      vals = undefined;
      return;
    }
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
    const [s, e] = step > 0 ? [clamp(s0, 0, d), clamp(e0, 0, d)] : [clamp(s0, -1, d - 1), clamp(e0, -1, d - 1)];
    out[ax] = Math.max(0, Math.ceil((e - s) / step));
    if (vals) vals = Array.from({ length: out[ax] as number }, (_, i) => vals![s + i * step]!);
  });
  return [{ dtype: c.dtype(0), shape: out, vals }];
}

/** Axes from the opset-13+ input `i` or the older attribute. */
function axesOf(c: Ctx, i: number): number[] | undefined {
  if (c.has(i)) {
    const a = c.ints(i);
    if (!a) throw new NoShape();
    return a;
  }
  return c.node.attrs.axes ? attrInts(c.node, 'axes') : undefined;
}

function squeeze(c: Ctx): Out[] {
  const x = c.shape(0);
  const axes = axesOf(c, 1);
  let shape: Dim[];
  if (axes) {
    const set = new Set(axes.map((a) => c.axis(a, x.length)));
    for (const a of set) if (isNum(x[a]!) && x[a] !== 1) c.fail(`cannot squeeze axis ${a} of size ${x[a]} (input ${formatShape(x)})`);
    shape = x.filter((_, i) => !set.has(i));
  } else {
    if (!x.every(isNum)) throw new NoShape(); // which symbolic dims are 1 is unknown
    shape = x.filter((d) => d !== 1);
  }
  return [{ dtype: c.dtype(0), shape, vals: c.dims(0) }];
}

function unsqueeze(c: Ctx): Out[] {
  const x = c.shape(0);
  const axes = axesOf(c, 1);
  if (!axes) c.fail('axes are required');
  const rank = x.length + axes.length;
  const set = new Set(axes.map((a) => c.axis(a, rank)));
  const rest = [...x];
  const shape = Array.from({ length: rank }, (_, i) => (set.has(i) ? 1 : rest.shift()!));
  return [{ dtype: c.dtype(0), shape, vals: c.dims(0) }];
}

function pad(c: Ctx): Out[] {
  const x = c.shape(0);
  const pads = c.has(1) ? c.ints(1) : c.node.attrs.pads ? attrInts(c.node, 'pads') : undefined;
  const axes = (c.has(3) ? c.ints(3) : x.map((_, i) => i))?.map((a) => c.axis(a, x.length));
  if (!axes) return [{ dtype: c.dtype(0), shape: x.map(() => null) }];
  const out = [...x];
  axes.forEach((ax, j) => {
    const d = x[ax]!;
    const p = pads ? pads[j]! + pads[j + axes.length]! : null;
    out[ax] = p === null ? null : p === 0 ? d : isNum(d) ? d + p : null;
  });
  return [{ dtype: c.dtype(0), shape: out }];
}

function gather(c: Ctx): Out[] {
  const x = c.shape(0);
  const idx = c.shape(1);
  const ax = c.axis(attrInt(c.node, 'axis', 0), x.length);
  const data = c.dims(0);
  const picks = c.ints(1);
  let vals: Dim[] | undefined;
  if (data && picks && ax === 0) vals = picks.map((p) => data[p < 0 ? p + data.length : p] ?? null);
  return [{ dtype: c.dtype(0), shape: [...x.slice(0, ax), ...idx, ...x.slice(ax + 1)], vals }];
}

function reduceOp(c: Ctx): Out[] {
  const x = c.shape(0);
  const axes = axesOf(c, 1);
  const keep = attrInt(c.node, 'keepdims', 1) === 1;
  if ((!axes || axes.length === 0) && attrInt(c.node, 'noop_with_empty_axes', 0) === 1) return [{ dtype: c.dtype(0), shape: x }];
  return [{ dtype: c.dtype(0), shape: reduce(c, x, axes, keep) }];
}

function constant(c: Ctx): Out[] {
  const [name, a] = Object.entries(c.node.attrs)[0] ?? c.fail('has no value attribute');
  switch (a.kind) {
    case 'tensor':
      return [{ dtype: a.value.dtype, shape: [...a.value.dims], vals: tensorVals(a.value) }];
    case 'float':
      return [{ dtype: 'float32', shape: [] }];
    case 'floats':
      return [{ dtype: 'float32', shape: [a.value.length] }];
    case 'int':
      return [{ dtype: 'int64', shape: [], vals: [a.value] }];
    case 'ints':
      return [{ dtype: 'int64', shape: [a.value.length], vals: a.value.length <= MAX_VALS ? [...a.value] : undefined }];
    default:
      return c.fail(`value attribute '${name}' of kind ${a.kind} is not supported`);
  }
}

function cast(c: Ctx): Out[] {
  const to = CODE_DTYPE.get(attrInt(c.node, 'to'));
  if (!to) c.fail(`cast to unsupported element type code ${attrInt(c.node, 'to')}`);
  return [{ dtype: to, shape: c.shape(0), vals: INT_DTYPES.has(to) ? c.dims(0) : undefined }];
}

/** Inference rule of each supported default-domain op. */
export const RULES: Record<string, Rule> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: pool,
  AveragePool: pool,
  LpPool: pool,
  GlobalAveragePool: (c) => [{ dtype: c.dtype(0), shape: c.shape(0).map((d, i) => (i < 2 ? d : 1)) }],
  GlobalMaxPool: (c) => [{ dtype: c.dtype(0), shape: c.shape(0).map((d, i) => (i < 2 ? d : 1)) }],
  BatchNormalization: (c) => [{ dtype: c.dtype(0), shape: c.shape(0) }, ...Array(2).fill({ dtype: c.dtype(0), shape: [c.shape(0)[1]!] })],
  LayerNormalization: (c) => {
    const x = c.shape(0);
    const ax = c.axis(attrInt(c.node, 'axis', -1), x.length);
    const stat = x.map((d, i) => (i < ax ? d : 1));
    return [
      { dtype: c.dtype(0), shape: x },
      { dtype: 'float32', shape: stat },
      { dtype: 'float32', shape: stat },
    ];
  },
  Gemm: gemm,
  MatMul: matmul,
  Flatten: (c) => {
    const x = c.shape(0);
    const a = attrInt(c.node, 'axis', 1);
    const ax = a < 0 ? a + x.length : a;
    if (ax < 0 || ax > x.length) c.fail(`axis ${a} out of range for rank ${x.length}`);
    return [{ dtype: c.dtype(0), shape: [prod(x.slice(0, ax)), prod(x.slice(ax))] }];
  },
  Reshape: reshape,
  Transpose: (c) => {
    const x = c.shape(0);
    const perm = attrInts(
      c.node,
      'perm',
      x.map((_, i) => x.length - 1 - i),
    );
    if (perm.length !== x.length) c.fail(`perm [${perm}] does not match input ${formatShape(x)}`);
    return [{ dtype: c.dtype(0), shape: perm.map((p) => x[c.axis(p, x.length)]!) }];
  },
  Concat: concat,
  Split: split,
  Slice: slice,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Pad: pad,
  Gather: gather,
  ReduceMean: reduceOp,
  ReduceSum: reduceOp,
  ReduceMax: reduceOp,
  ReduceMin: reduceOp,
  ReduceProd: reduceOp,
  ReduceL2: reduceOp,
  ReduceSumSquare: reduceOp,
  ArgMax: (c) => [{ dtype: 'int64', shape: reduce(c, c.shape(0), [attrInt(c.node, 'axis', 0)], attrInt(c.node, 'keepdims', 1) === 1) }],
  ArgMin: (c) => [{ dtype: 'int64', shape: reduce(c, c.shape(0), [attrInt(c.node, 'axis', 0)], attrInt(c.node, 'keepdims', 1) === 1) }],
  Constant: constant,
  Shape: (c) => {
    const x = c.shape(0);
    const r = x.length;
    const norm = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    const dims = x.slice(norm(attrInt(c.node, 'start', 0)), norm(attrInt(c.node, 'end', r)));
    return [{ dtype: 'int64', shape: [dims.length], vals: dims }];
  },
  Size: (c) => [{ dtype: 'int64', shape: [], vals: [prod(c.shape(0))] }],
  Expand: (c) => {
    const tgt = c.dims(1);
    if (!tgt) throw new NoShape();
    return [{ dtype: c.dtype(0), shape: broadcast(c, [c.shape(0), tgt]) }];
  },
  ConstantOfShape: (c) => {
    const v = c.node.attrs.value;
    const shape = c.dims(0);
    return [{ dtype: v?.kind === 'tensor' ? v.value.dtype : 'float32', shape }];
  },
  Tile: (c) => {
    const x = c.shape(0);
    const r = c.ints(1);
    return [{ dtype: c.dtype(0), shape: x.map((d, i) => (!r ? null : r[i] === 1 ? d : isNum(d) ? d * r[i]! : null)) }];
  },
  Cast: cast,
  Identity: (c) => [{ dtype: c.dtype(0), shape: c.shape(0), vals: c.dims(0) }],
  Dropout: (c) => [
    { dtype: c.dtype(0), shape: c.shape(0) },
    { dtype: 'bool', shape: c.shape(0) },
  ],
  Where: (c) => [{ dtype: c.dtype(1), shape: broadcast(c, [c.shape(0), c.shape(1), c.shape(2)]) }],
  Add: arith((a, b) => a + b),
  Sub: arith((a, b) => a - b),
  Mul: arith((a, b) => a * b),
  Div: arith((a, b) => Math.trunc(a / b)),
  Pow: (c) => [{ dtype: c.dtype(0), shape: broadcast(c, [c.shape(0), c.shape(1)]) }],
  Mod: arith((a, b) => a % b),
  PRelu: (c) => [{ dtype: c.dtype(0), shape: broadcast(c, [c.shape(0), c.shape(1)]) }],
  Resize: resizeRule,
};

/**
 * Resize (the canonical form's: X, roi, scales, sizes, axes attribute): floor(dim · scale) per axis,
 * or the sizes (stretch policy); a dim not computable here is null, never a guess.
 */
function resizeRule(c: Ctx): Out[] {
  const x = c.shape(0);
  const rank = x.length;
  const axes = c.node.attrs['axes'] ? attrInts(c.node, 'axes').map((a) => c.axis(a, rank)) : [...Array(rank).keys()];
  const scales = c.has(2) ? c.floats(2) : undefined;
  const sizes = c.has(3) ? c.dims(3) : undefined;
  const crop = attrString(c.node, 'coordinate_transformation_mode', 'half_pixel') === 'tf_crop_and_resize';
  const out: Dim[] = [...x];
  axes.forEach((a, i) => {
    if (sizes && sizes.length) out[a] = attrString(c.node, 'keep_aspect_ratio_policy', 'stretch') === 'stretch' ? (sizes[i] ?? null) : null;
    else if (scales && scales.length && !crop) {
      const d = x[a];
      out[a] = scales[i] === 1 ? (d ?? null) : isNum(d) ? Math.floor(d * scales[i]!) : null;
    } else out[a] = null;
  });
  return [{ dtype: c.dtype(0), shape: out }];
}
for (const op of ['Sum', 'Max', 'Min', 'Mean'])
  RULES[op] = (c) => [
    {
      dtype: c.dtype(0),
      shape: broadcast(
        c,
        c.node.inputs.map((_, i) => c.shape(i)),
      ),
    },
  ];
for (const op of ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor']) RULES[op] = compare;
for (const op of [
  'Relu',
  'Sigmoid',
  'Tanh',
  'Erf',
  'Sqrt',
  'Exp',
  'Log',
  'Neg',
  'Abs',
  'Clip',
  'LeakyRelu',
  'Gelu',
  'Softmax',
  'LogSoftmax',
  'Reciprocal',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'Elu',
  'Selu',
  'Celu',
  'HardSigmoid',
  'HardSwish',
  'Softplus',
  'Softsign',
  'Mish',
  'Sin',
  'Cos',
  'Not',
  'ThresholdedRelu',
  'Hardmax',
  'InstanceNormalization',
  'LRN',
])
  RULES[op] = same;

/** Output dtypes when a rule cannot run for lack of input shapes (rank unknown). */
export function fallbackDtypes(c: Ctx): DType[] {
  const op = c.node.opType;
  const d0 = (): DType => c.dtype(0);
  const one = (d: DType) => c.node.outputs.map(() => d);
  if (op === 'Cast') {
    const to = CODE_DTYPE.get(attrInt(c.node, 'to'));
    if (!to) throw new Missing(op);
    return one(to);
  }
  if (op === 'Shape' || op === 'Size' || op === 'ArgMax' || op === 'ArgMin') return one('int64');
  if (RULES[op] === compare) return one('bool');
  if (op === 'Where') return one(c.dtype(1));
  if (op === 'ConstantOfShape') {
    const v = c.node.attrs.value;
    return one(v?.kind === 'tensor' ? v.value.dtype : 'float32');
  }
  if (op === 'MaxPool') return [d0(), 'int64'];
  if (op === 'Dropout') return [d0(), 'bool'];
  if (op === 'LayerNormalization') return [d0(), 'float32', 'float32'];
  return one(d0());
}
