/**
 * Float64 graphs in plain JS. tfjs has no float64, and rounding a double model to float32 would be
 * a silently different answer; graphs that hold float64 values and use only the element-wise,
 * reduction and scan ops below run here in double precision instead (values declared float32 are
 * rounded to float32 after every op, as a float32 kernel would). Anything else stays refused.
 */
import { attrInt, type DType, type Model, ModelError, type Node, sizeOf, type Tensor } from '../onnx/ir.js';

/** A value of the interpreter: every element held as a double, tagged with its ONNX dtype. */
interface Val {
  dtype: DType;
  dims: number[];
  data: Float64Array;
}

const UNARY: Record<string, (x: number) => number> = {
  Identity: (x) => x,
  Neg: (x) => -x,
  Abs: Math.abs,
  Exp: Math.exp,
  Log: Math.log,
  Sqrt: Math.sqrt,
  Relu: (x) => (x < 0 ? 0 : x),
};
const BINARY: Record<string, (a: number, b: number) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => a / b,
  // NaN wins, as numpy's maximum/minimum (onnxruntime's reference behaviour for float Max/Min).
  Max: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
  Min: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
  Mod: (a, b) => a % b, // fmod=1 (C fmod: the sign of the dividend), the only Mod ONNX defines for floats
};
const REDUCE = new Set(['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceLogSumExp']);
const FLOATS = new Set<DType>(['float32', 'float64']);

/** Op types the float64 interpreter runs. */
export const F64_OPS = new Set([...Object.keys(UNARY), ...Object.keys(BINARY), ...REDUCE, 'Cast', 'CumSum']);

/** Why `model` (canonical) cannot run in the float64 interpreter, or undefined when it can. */
export function f64Unsupported(model: Model): string | undefined {
  const g = model.graph;
  for (const v of g.inputs) if (!FLOATS.has(v.dtype) && v.dtype !== 'int64' && v.dtype !== 'int32') return `input '${v.name}' is ${v.dtype}`;
  for (const n of g.nodes) {
    if ((n.domain && n.domain !== 'ai.onnx') || !F64_OPS.has(n.opType)) return `node '${n.name}' (${n.opType}) has no float64 kernel`;
    if (n.opType === 'Cast' && ![1, 11].includes(attrInt(n, 'to', 0))) return `node '${n.name}' (Cast) to a type other than float32/float64`;
    if (n.opType === 'Mod' && attrInt(n, 'fmod', 0) !== 1) return `node '${n.name}' (Mod) with fmod=0 on floats`;
  }
  return undefined;
}

/** True when the model holds float64 values anywhere (inputs, outputs, initializers, value info, Cast targets). */
export function usesFloat64(model: Model): boolean {
  const g = model.graph;
  return (
    [...g.inputs, ...g.outputs, ...g.valueInfo].some((v) => v.dtype === 'float64') ||
    [...g.initializers.values()].some((t) => t.dtype === 'float64') ||
    g.nodes.some((n) => n.opType === 'Cast' && attrInt(n, 'to', 0) === 11)
  );
}

const round = (dtype: DType, data: Float64Array): Float64Array => {
  if (dtype === 'float32') for (let i = 0; i < data.length; i++) data[i] = Math.fround(data[i]!);
  return data;
};
const strides = (dims: number[]): number[] => dims.map((_, i) => sizeOf(dims.slice(i + 1)));

function broadcast(a: Val, b: Val, f: (x: number, y: number) => number, fail: (m: string) => never): Val {
  const r = Math.max(a.dims.length, b.dims.length);
  const pa = [...new Array(r - a.dims.length).fill(1), ...a.dims];
  const pb = [...new Array(r - b.dims.length).fill(1), ...b.dims];
  const out = pa.map((d, i) => {
    const e = pb[i]!;
    if (d !== e && d !== 1 && e !== 1) fail(`cannot broadcast [${a.dims}] and [${b.dims}]`);
    return d === 1 ? e : d;
  });
  const [sa, sb, so] = [strides(pa), strides(pb), strides(out)];
  const data = new Float64Array(sizeOf(out));
  for (let i = 0; i < data.length; i++) {
    let ia = 0;
    let ib = 0;
    for (let d = 0; d < r; d++) {
      const k = Math.floor(i / so[d]!) % out[d]!;
      if (pa[d] !== 1) ia += k * sa[d]!;
      if (pb[d] !== 1) ib += k * sb[d]!;
    }
    data[i] = f(a.data[ia]!, b.data[ib]!);
  }
  return { dtype: a.dtype, dims: out, data };
}

function reduce(n: Node, x: Val, axesIn: number[] | undefined, fail: (m: string) => never): Val {
  const r = x.dims.length;
  const keep = attrInt(n, 'keepdims', 1) === 1;
  if ((!axesIn || axesIn.length === 0) && attrInt(n, 'noop_with_empty_axes', 0) === 1) return x;
  const axes = new Set((axesIn && axesIn.length ? axesIn : [...Array(r).keys()]).map((a) => (a < 0 ? a + r : a)));
  for (const a of axes) if (a < 0 || a >= r) fail(`axis out of range for rank ${r}`);
  const outKeep = x.dims.map((d, i) => (axes.has(i) ? 1 : d));
  const so = strides(outKeep);
  const sx = strides(x.dims);
  const m = sizeOf(outKeep);
  const target = (i: number): number => {
    let o = 0;
    for (let d = 0; d < r; d++) if (!axes.has(d)) o += (Math.floor(i / sx[d]!) % x.dims[d]!) * so[d]!;
    return o;
  };
  const op = n.opType;
  const acc = new Float64Array(m).fill(op === 'ReduceMax' || op === 'ReduceLogSumExp' ? -Infinity : op === 'ReduceMin' ? Infinity : 0);
  const cnt = x.data.length / Math.max(m, 1);
  for (let i = 0; i < x.data.length; i++) {
    const o = target(i);
    const v = x.data[i]!;
    if (op === 'ReduceMax' || op === 'ReduceLogSumExp') acc[o] = Number.isNaN(v) || Number.isNaN(acc[o]!) ? NaN : Math.max(acc[o]!, v);
    else if (op === 'ReduceMin') acc[o] = Number.isNaN(v) || Number.isNaN(acc[o]!) ? NaN : Math.min(acc[o]!, v);
    else acc[o] = acc[o]! + v;
  }
  if (op === 'ReduceMean') for (let o = 0; o < m; o++) acc[o] = acc[o]! / cnt;
  if (op === 'ReduceLogSumExp') {
    // log Σ exp(x) = max + log Σ exp(x − max): no overflow for large doubles.
    const sum = new Float64Array(m);
    for (let i = 0; i < x.data.length; i++) {
      const o = target(i);
      sum[o] = sum[o]! + (Number.isFinite(acc[o]!) ? Math.exp(x.data[i]! - acc[o]!) : x.data[i] === acc[o] ? 1 : 0);
    }
    for (let o = 0; o < m; o++) acc[o] = Number.isFinite(acc[o]!) ? acc[o]! + Math.log(sum[o]!) : acc[o]!;
  }
  return { dtype: x.dtype, dims: keep ? outKeep : x.dims.filter((_, i) => !axes.has(i)), data: acc };
}

function cumsum(n: Node, x: Val, axis: number, fail: (m: string) => never): Val {
  const r = x.dims.length;
  const a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r) fail(`axis ${axis} out of range for rank ${r}`);
  const exclusive = attrInt(n, 'exclusive', 0) === 1;
  const reverse = attrInt(n, 'reverse', 0) === 1;
  const len = x.dims[a]!;
  const inner = sizeOf(x.dims.slice(a + 1));
  const outer = sizeOf(x.dims.slice(0, a));
  const data = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      let s = 0;
      for (let t = 0; t < len; t++) {
        const j = reverse ? len - 1 - t : t;
        const idx = (o * len + j) * inner + k;
        if (exclusive) {
          data[idx] = s;
          s += x.data[idx]!;
        } else {
          s += x.data[idx]!;
          data[idx] = s;
        }
      }
    }
  }
  return { dtype: x.dtype, dims: [...x.dims], data };
}

const toVal = (t: Tensor): Val => ({ dtype: t.dtype, dims: [...t.dims], data: Float64Array.from(t.data as ArrayLike<number | bigint>, Number) });

/** Run a canonical float64 graph (see `f64Unsupported`) on IR feeds; outputs in their declared dtypes. */
export function runF64(model: Model, feeds: Record<string, Tensor>, source: string): Record<string, Tensor> {
  const g = model.graph;
  const env = new Map<string, Val>();
  for (const [k, t] of g.initializers) env.set(k, toVal(t));
  for (const v of g.inputs) {
    const t = feeds[v.name];
    if (!t) throw new ModelError(`${source}: missing input '${v.name}'`);
    if (t.dtype !== v.dtype) throw new ModelError(`${source}: input '${v.name}' must be ${v.dtype}, got ${t.dtype}`);
    if (v.shape && (v.shape.length !== t.dims.length || v.shape.some((d, i) => typeof d === 'number' && d !== t.dims[i]))) {
      throw new ModelError(`${source}: input '${v.name}' expects shape [${v.shape.map((d) => d ?? '?')}], got [${t.dims}]`);
    }
    env.set(v.name, toVal(t));
  }
  for (const n of g.nodes) {
    const fail = (m: string): never => {
      throw new ModelError(`${source}: node '${n.name}' (${n.opType}): ${m}`);
    };
    const inp = (i: number): Val => env.get(n.inputs[i] ?? '') ?? fail(`missing input #${i}`);
    const opt = (i: number): number[] | undefined => (n.inputs[i] ? Array.from(inp(i).data) : undefined);
    const x = inp(0);
    let y: Val;
    if (n.opType === 'Cast') {
      const dtype: DType = attrInt(n, 'to', 0) === 1 ? 'float32' : 'float64';
      y = { dtype, dims: [...x.dims], data: Float64Array.from(x.data) };
    } else if (UNARY[n.opType]) y = { dtype: x.dtype, dims: [...x.dims], data: x.data.map(UNARY[n.opType]!) };
    else if (BINARY[n.opType]) {
      const b = inp(1);
      if (b.dtype !== x.dtype) fail(`inputs are ${x.dtype} and ${b.dtype}`);
      y = broadcast(x, b, BINARY[n.opType]!, fail);
    } else if (n.opType === 'CumSum') y = cumsum(n, x, opt(1)?.[0] ?? fail('missing axis'), fail);
    else y = reduce(n, x, opt(1), fail);
    if (!FLOATS.has(y.dtype)) fail(`${y.dtype} data has no float64 kernel`);
    env.set(n.outputs[0]!, { ...y, data: round(y.dtype, y.data) });
  }
  const out: Record<string, Tensor> = {};
  for (const o of g.outputs) {
    const v = env.get(o.name);
    if (!v) throw new ModelError(`${source}: graph output '${o.name}' is never produced`);
    if (v.dtype !== o.dtype) throw new ModelError(`${source}: graph output '${o.name}' is declared ${o.dtype} but computes as ${v.dtype}`);
    out[o.name] = { dtype: v.dtype, dims: v.dims, data: v.dtype === 'float32' ? Float32Array.from(v.data) : Float64Array.from(v.data) };
  }
  return out;
}
