/**
 * The inference state a shape rule sees (Ctx) and the helpers rules share: broadcasting, window
 * sizes, reductions, symbolic products. shape-rules.ts holds the per-op rules, shape.ts runs them.
 */

import type { Dim, DType, Node, Tensor, ValueInfo } from './ir.js';
import { attrInts, attrString, ModelError } from './ir.js';
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
    return d?.every((x) => typeof x === 'number') ? (d as number[]) : undefined;
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

/** A shape-inference rule: a node's outputs from its inputs, seen through `c`. */
export type Rule = (c: Ctx) => Out[];

export const isNum = (d: Dim | undefined): d is number => typeof d === 'number';

/** Product of dims: a number, a lone symbol (times 1s), or null. */
export function prod(dims: readonly Dim[]): Dim {
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
export function broadcast(c: Ctx, shapes: Dim[][]): Dim[] {
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
export function windowOut(c: Ctx, inp: Dim[], kernel: Dim[], ceilMode: boolean): Dim[] {
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
export function reduce(c: Ctx, x: Dim[], axes: number[] | undefined, keep: boolean): Dim[] {
  const set = new Set((axes?.length ? axes : x.map((_, i) => i)).map((a) => c.axis(a, x.length)));
  return keep ? x.map((d, i) => (set.has(i) ? 1 : d)) : x.filter((_, i) => !set.has(i));
}

/** Infer the `-1` entry of a Reshape target from the element count, symbols cancelling out. */
export function inferMinusOne(c: Ctx, x: Dim[], rest: Dim[]): Dim {
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
