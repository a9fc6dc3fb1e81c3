/**
 * Constant folding for the canonical pass: Constant nodes become initializers, Identity of an
 * initializer becomes an aliased initializer, and (unless only trivial folding is asked for) any
 * node whose inputs are all constant and whose op the small evaluator below knows is computed once
 * — which turns PyTorch's shape-only subgraphs (Shape → Gather → Unsqueeze → Concat → Reshape) into
 * constants whenever the dims involved are static. Symbolic dims are never guessed.
 */

import type { Problem } from './canonical.js';
import { allocArray, type DType, type Model, ModelError, type Node, sizeOf, type Tensor } from './ir.js';
import { inferShapes } from './shape.js';

/** Largest result (elements) the evaluator produces; bigger results stay nodes. */
const MAX_FOLD = 1 << 22;
const CODE_DTYPE: Record<number, DType> = { 1: 'float32', 2: 'uint8', 3: 'int8', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };
const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/** Fold constants in place (see module comment); problems (e.g. a string Constant) are appended. */
export function foldConstants(m: Model, problems: Problem[], opts: { onlyTrivial?: boolean } = {}): void {
  const g = m.graph;
  const outputs = new Set(g.outputs.map((o) => o.name));
  let shapes: Map<string, { shape?: (number | string | null)[] }> | undefined;
  const staticShape = (v: string): number[] | undefined => {
    if (!shapes) {
      try {
        shapes = inferShapes(m);
      } catch (e) {
        if (!(e instanceof ModelError)) throw e;
        shapes = new Map(); // an inconsistent graph is reported by the runtime that runs it
      }
    }
    const s = shapes.get(v)?.shape;
    return s && s.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
  };
  // Nodes already dead before folding stay (a runtime must still see and judge them); nodes that
  // only fed folded ones (Shape → Gather → ...) are dropped afterwards.
  const liveBefore = new Set(removeDead(g.nodes, outputs));
  const kept: Node[] = [];
  for (const n of g.nodes) {
    const std = !n.domain || n.domain === 'ai.onnx';
    let res: Tensor[] | undefined;
    if (std && n.opType === 'Constant') {
      try {
        res = [constantValue(n)];
      } catch (e) {
        problems.push({ op: n.opType, node: n.name, reason: (e as Error).message });
      }
    } else if (std && n.outputs.every((o) => !outputs.has(o))) {
      const ins = n.inputs.map((i) => (i ? g.initializers.get(i) : undefined));
      const allConst = n.inputs.every((i, k) => !i || ins[k]);
      if (n.opType === 'Identity' && allConst) res = [ins[0]!];
      else if (!opts.onlyTrivial) {
        try {
          if (allConst) res = evaluate(n, ins);
          else if (n.opType === 'Shape' || n.opType === 'Size') {
            const s = staticShape(n.inputs[0]!);
            if (s) res = [n.opType === 'Shape' ? i64([s.length], s) : i64([], [sizeOf(s)])];
          }
        } catch {
          res = undefined; // the runtime will report (or compute) it with full context
        }
      }
    }
    if (res && res.every((t) => sizeOf(t.dims) <= MAX_FOLD) && res.length >= n.outputs.filter((o) => o).length) {
      n.outputs.forEach((o, k) => o && g.initializers.set(o, res![k]!));
      // A folded graph output keeps a node: runtimes read outputs from nodes, not initializers.
      if (n.outputs.some((o) => outputs.has(o))) {
        const c = n.outputs[0]!;
        g.initializers.delete(c);
        const alias = `${c}__const`;
        g.initializers.set(alias, res[0]!);
        kept.push({ ...n, opType: 'Identity', inputs: [alias], attrs: {} });
      }
      continue;
    }
    kept.push(n);
  }
  const liveAfter = new Set(removeDead(kept, outputs));
  g.nodes = kept.filter((n) => liveAfter.has(n) || !liveBefore.has(n));
  const used = new Set<string>([...g.outputs.map((o) => o.name)]);
  for (const n of g.nodes) for (const i of n.inputs) used.add(i);
  for (const n of g.nodes)
    for (const a of Object.values(n.attrs)) if (a.kind === 'graph') for (const sn of a.value.nodes) for (const i of sn.inputs) used.add(i);
  for (const k of [...g.initializers.keys()]) if (!used.has(k)) g.initializers.delete(k);
}

/** Drop nodes none of whose outputs reach a graph output (ONNX ops have no side effects). */
function removeDead(nodes: Node[], outputs: Set<string>): Node[] {
  const live = new Set(outputs);
  const keep: boolean[] = new Array(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (n.outputs.some((o) => o && live.has(o))) {
      keep[i] = true;
      for (const x of n.inputs) if (x) live.add(x);
      for (const a of Object.values(n.attrs)) if (a.kind === 'graph') for (const sn of a.value.nodes) for (const x of sn.inputs) live.add(x);
    }
  }
  return nodes.filter((_, i) => keep[i]);
}

/** The tensor a Constant node holds. */
export function constantValue(n: Node): Tensor {
  const a = n.attrs;
  const v = a['value'];
  if (v?.kind === 'tensor') return v.value;
  if (a['value_float']?.kind === 'float') return f32([], [a['value_float'].value]);
  if (a['value_floats']?.kind === 'floats') return f32([a['value_floats'].value.length], a['value_floats'].value);
  if (a['value_int']?.kind === 'int') return i64([], [a['value_int'].value]);
  if (a['value_ints']?.kind === 'ints') return i64([a['value_ints'].value.length], a['value_ints'].value);
  if (a['sparse_value']) throw new Error('sparse Constant values are not supported');
  if (a['value_string'] || a['value_strings']) throw new Error('string tensors are not supported');
  throw new Error('Constant without a value attribute');
}

const f32 = (dims: number[], v: ArrayLike<number>): Tensor => ({ dtype: 'float32', dims, data: Float32Array.from(v) });
const i64 = (dims: number[], v: ArrayLike<number>): Tensor => make('int64', dims, Array.from(v));

/** Element values as JS numbers (int64 beyond ±2^53 loses precision; `make` clamps on the way back). */
function nums(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** A tensor of `dtype` from JS numbers (int64 clamped into range, bool as 0/1). */
export function make(dtype: DType, dims: number[], v: number[]): Tensor {
  const data = allocArray(dtype, v.length);
  if (data instanceof BigInt64Array) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      data[i] = x >= 9.2e18 ? INT64_MAX : x <= -9.2e18 ? INT64_MIN : BigInt(Math.trunc(x));
    }
  } else if (dtype === 'bool') for (let i = 0; i < v.length; i++) data[i] = v[i] ? 1 : 0;
  else (data as Float32Array).set(v);
  return { dtype, dims, data };
}

/** Copy elements of `t` at flat positions `idx` into a new tensor of shape `dims` (dtype kept exactly). */
function pick(t: Tensor, dims: number[], idx: ArrayLike<number>): Tensor {
  const data = allocArray(t.dtype, idx.length);
  const src = t.data as unknown as ArrayLike<number | bigint>;
  const dst = data as unknown as (number | bigint)[];
  for (let i = 0; i < idx.length; i++) dst[i] = src[idx[i]!]!;
  return { dtype: t.dtype, dims, data };
}

const strides = (dims: number[]): number[] => {
  const s = new Array(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1]!;
  return s;
};
const norm = (a: number, r: number): number => {
  const x = a < 0 ? a + r : a;
  if (x < 0 || x >= r) throw new Error(`axis ${a} out of range`);
  return x;
};
const isFloat = (d: DType): boolean => d === 'float32' || d === 'float64';

/** Numpy-broadcast binary op over JS numbers. */
function broadcast(a: Tensor, b: Tensor, f: (x: number, y: number) => number, dtype: DType): Tensor {
  const r = Math.max(a.dims.length, b.dims.length);
  const ad = [...new Array(r - a.dims.length).fill(1), ...a.dims];
  const bd = [...new Array(r - b.dims.length).fill(1), ...b.dims];
  const od = ad.map((d, i) => {
    if (d !== bd[i] && d !== 1 && bd[i] !== 1) throw new Error('shapes do not broadcast');
    return d === 1 ? bd[i]! : d;
  });
  const n = sizeOf(od);
  if (n > MAX_FOLD) throw new Error('too large');
  const [as, bs, os] = [strides(ad), strides(bd), strides(od)];
  const [av, bv] = [nums(a), nums(b)];
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let ai = 0;
    let bi = 0;
    let rem = i;
    for (let k = 0; k < r; k++) {
      const c = Math.floor(rem / os[k]!);
      rem -= c * os[k]!;
      if (ad[k] !== 1) ai += c * as[k]!;
      if (bd[k] !== 1) bi += c * bs[k]!;
    }
    out[i] = f(av[ai]!, bv[bi]!);
  }
  return make(dtype, od, out);
}

/** Evaluate one node on constant inputs, or undefined when the op is not in the evaluator. */
function evaluate(n: Node, ins: (Tensor | undefined)[]): Tensor[] | undefined {
  const x = ins[0];
  const a = n.attrs;
  const intAttr = (k: string, d: number): number => (a[k]?.kind === 'int' ? (a[k].value as number) : d);
  const intsIn = (i: number): number[] | undefined => (ins[i] ? nums(ins[i]!) : undefined);
  const reshape = (t: Tensor, dims: number[]): Tensor => ({ dtype: t.dtype, dims, data: t.data });
  const arith = (f: (p: number, q: number) => number, exactInt = true): Tensor[] | undefined => {
    const [p, q] = [ins[0]!, ins[1]!];
    if (p.dtype !== q.dtype || p.dtype === 'bool') return undefined;
    if (!isFloat(p.dtype) && exactInt && [...nums(p), ...nums(q)].some((v) => Math.abs(v) > 2 ** 31)) return undefined;
    return [broadcast(p, q, f, p.dtype)];
  };
  switch (n.opType) {
    case 'Identity':
      return [x!];
    case 'Shape':
      return [i64([x!.dims.length], x!.dims)];
    case 'Size':
      return [i64([], [sizeOf(x!.dims)])];
    case 'Cast': {
      const to = CODE_DTYPE[intAttr('to', 0)];
      if (!to) return undefined;
      if (to === x!.dtype) return [x!];
      if (x!.dtype === 'int64' && to !== 'int64' && nums(x!).some((v) => Math.abs(v) > 2 ** 31)) return undefined;
      return [make(to, x!.dims, nums(x!))];
    }
    case 'Unsqueeze': {
      const axes = intsIn(1);
      if (!axes) return undefined;
      const r = x!.dims.length + axes.length;
      const dims = [...x!.dims];
      for (const ax of axes.map((v) => norm(v, r)).sort((p, q) => p - q)) dims.splice(ax, 0, 1);
      return [reshape(x!, dims)];
    }
    case 'Squeeze': {
      const axes = intsIn(1)?.map((v) => norm(v, x!.dims.length));
      return [
        reshape(
          x!,
          x!.dims.filter((d, i) => (axes ? !axes.includes(i) : d !== 1)),
        ),
      ];
    }
    case 'Reshape': {
      const spec = intsIn(1)!;
      const allowZero = intAttr('allowzero', 0) === 1;
      const dims = spec.map((d, i) => (d === 0 && !allowZero ? x!.dims[i]! : d));
      const known = dims.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
      const hole = dims.indexOf(-1);
      if (hole >= 0) dims[hole] = sizeOf(x!.dims) / known;
      if (sizeOf(dims) !== sizeOf(x!.dims) || !dims.every(Number.isInteger)) return undefined;
      return [reshape(x!, dims)];
    }
    case 'Flatten': {
      const ax = intAttr('axis', 1);
      const k = ax < 0 ? ax + x!.dims.length : ax;
      return [reshape(x!, [sizeOf(x!.dims.slice(0, k)), sizeOf(x!.dims.slice(k))])];
    }
    case 'Concat': {
      const ts = ins.filter((t): t is Tensor => !!t);
      const r = ts[0]!.dims.length;
      const ax = norm(intAttr('axis', 0), r);
      const outer = sizeOf(ts[0]!.dims.slice(0, ax));
      const dims = [...ts[0]!.dims];
      dims[ax] = ts.reduce((s, t) => s + t.dims[ax]!, 0);
      const idx: number[] = [];
      const sources: number[] = [];
      for (let o = 0; o < outer; o++) {
        ts.forEach((t, ti) => {
          const inner = sizeOf(t.dims.slice(ax));
          for (let j = 0; j < inner; j++) {
            idx.push(o * inner + j);
            sources.push(ti);
          }
        });
      }
      if (ts.some((t) => t.dtype !== ts[0]!.dtype)) return undefined;
      const data = allocArray(ts[0]!.dtype, idx.length) as unknown as (number | bigint)[];
      for (let i = 0; i < idx.length; i++) data[i] = (ts[sources[i]!]!.data as unknown as (number | bigint)[])[idx[i]!]!;
      return [{ dtype: ts[0]!.dtype, dims, data: data as unknown as Tensor['data'] }];
    }
    case 'Gather': {
      const ax = norm(intAttr('axis', 0), x!.dims.length);
      const ind = nums(ins[1]!).map((v) => (v < 0 ? v + x!.dims[ax]! : v));
      if (ind.some((v) => v < 0 || v >= x!.dims[ax]!)) throw new Error('index out of range');
      const outer = sizeOf(x!.dims.slice(0, ax));
      const inner = sizeOf(x!.dims.slice(ax + 1));
      const idx: number[] = [];
      for (let o = 0; o < outer; o++) for (const j of ind) for (let k = 0; k < inner; k++) idx.push((o * x!.dims[ax]! + j) * inner + k);
      return [pick(x!, [...x!.dims.slice(0, ax), ...ins[1]!.dims, ...x!.dims.slice(ax + 1)], idx)];
    }
    case 'Slice': {
      const starts = intsIn(1)!;
      const ends = intsIn(2)!;
      const axes = intsIn(3) ?? starts.map((_, i) => i);
      const steps = intsIn(4) ?? starts.map(() => 1);
      const r = x!.dims.length;
      const lo = new Array(r).fill(0);
      const st = new Array(r).fill(1);
      const cnt = [...x!.dims];
      axes.forEach((a0, i) => {
        const ax = norm(a0, r);
        const d = x!.dims[ax]!;
        const step = steps[i]!;
        if (step === 0) throw new Error('zero step');
        const cl = (v: number, neg: boolean): number => {
          const w = v < 0 ? v + d : v;
          return step > 0 ? Math.min(Math.max(w, 0), d) : Math.min(Math.max(w, neg ? -1 : 0), d - 1);
        };
        const s = cl(starts[i]!, false);
        const e = cl(ends[i]!, true);
        lo[ax] = s;
        st[ax] = step;
        cnt[ax] = Math.max(0, Math.ceil((e - s) / step));
      });
      const xs = strides(x!.dims);
      const total = sizeOf(cnt);
      const idx = new Array<number>(total);
      const cs = strides(cnt);
      for (let i = 0; i < total; i++) {
        let rem = i;
        let off = 0;
        for (let k = 0; k < r; k++) {
          const c = Math.floor(rem / cs[k]!);
          rem -= c * cs[k]!;
          off += (lo[k] + c * st[k]) * xs[k]!;
        }
        idx[i] = off;
      }
      return [pick(x!, cnt, idx)];
    }
    case 'Transpose': {
      const r = x!.dims.length;
      const perm = a['perm']?.kind === 'ints' ? a['perm'].value : [...Array(r).keys()].reverse();
      const dims = perm.map((p) => x!.dims[p]!);
      const xs = strides(x!.dims);
      const os = strides(dims);
      const total = sizeOf(dims);
      const idx = new Array<number>(total);
      for (let i = 0; i < total; i++) {
        let rem = i;
        let off = 0;
        for (let k = 0; k < r; k++) {
          const c = Math.floor(rem / os[k]!);
          rem -= c * os[k]!;
          off += c * xs[perm[k]!]!;
        }
        idx[i] = off;
      }
      return [pick(x!, dims, idx)];
    }
    case 'ConstantOfShape': {
      const dims = nums(x!);
      const v = a['value']?.kind === 'tensor' ? a['value'].value : f32([1], [0]);
      if (sizeOf(dims) > MAX_FOLD) return undefined;
      return [make(v.dtype, dims, new Array(sizeOf(dims)).fill(nums(v)[0]))];
    }
    case 'Range': {
      const [s, l, d] = [nums(ins[0]!)[0]!, nums(ins[1]!)[0]!, nums(ins[2]!)[0]!];
      const cnt = Math.max(Math.ceil((l - s) / d), 0);
      if (cnt > MAX_FOLD) return undefined;
      return [
        make(
          ins[0]!.dtype,
          [cnt],
          Array.from({ length: cnt }, (_, i) => s + i * d),
        ),
      ];
    }
    case 'Add':
      return arith((p, q) => p + q);
    case 'Sub':
      return arith((p, q) => p - q);
    case 'Mul':
      return arith((p, q) => p * q);
    case 'Div':
      // ONNX integer Div truncates toward zero (C semantics, as onnxruntime computes it).
      return isFloat(ins[0]!.dtype) ? arith((p, q) => p / q) : ins[1] && nums(ins[1]).includes(0) ? undefined : arith((p, q) => Math.trunc(p / q));
    case 'Equal':
      return ins[0]!.dtype === ins[1]!.dtype ? [broadcast(ins[0]!, ins[1]!, (p, q) => +(p === q), 'bool')] : undefined;
    case 'Where': {
      const [c, p, q] = [ins[0]!, ins[1]!, ins[2]!];
      if (p.dtype !== q.dtype) return undefined;
      const picked = broadcast(
        broadcast(c, p, (cv, pv) => (cv ? pv : NaN), 'float64'),
        q,
        (pv, qv) => (Number.isNaN(pv) ? qv : pv),
        'float64',
      );
      if (isFloat(p.dtype) && [...nums(p), ...nums(q)].some(Number.isNaN)) return undefined;
      return [make(p.dtype, picked.dims, nums(picked))];
    }
    default:
      return undefined;
  }
}
