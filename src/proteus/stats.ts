/**
 * Statistics the sentinel generator draws from: operator transition (bigram) counts along dataflow
 * edges and topology rates learned from a corpus of real models, and per-subgraph profiles (the
 * kernel sizes, strides, channel counts and weight statistics actually seen in one real subgraph).
 */
import { attrInts } from '../onnx/ir.js';
import type { Model, Node, Tensor } from '../onnx/ir.js';

/** Corpus statistics; JSON-serialisable so they can be cached or shipped. */
export interface OpStats {
  /** Op-type counts. */
  unigram: Record<string, number>;
  /** bigram[a][b]: how often an `a` node's output feeds a `b` node. */
  bigram: Record<string, Record<string, number>>;
  /** Fraction of Add/Mul nodes whose two inputs are both activations (skip connections, gating). */
  skipRate: number;
  /** Mean number of consumers of an activation that has any. */
  meanFanout: number;
}

const opKey = (n: Node): string => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType);

/** Learn op transition and topology statistics from real models (the zoo and user-supplied ones). */
export function learnStats(models: readonly Model[]): OpStats {
  const unigram: Record<string, number> = {};
  const bigram: Record<string, Record<string, number>> = {};
  let binary = 0;
  let skip = 0;
  let fanSum = 0;
  let fanN = 0;
  for (const m of models) {
    const g = m.graph;
    const prod = new Map<string, Node>();
    const uses = new Map<string, number>();
    for (const n of g.nodes) for (const o of n.outputs) if (o) prod.set(o, n);
    for (const n of g.nodes) {
      const k = opKey(n);
      unigram[k] = (unigram[k] ?? 0) + 1;
      let acts = 0;
      for (const t of n.inputs) {
        if (!t || g.initializers.has(t)) continue;
        acts++;
        uses.set(t, (uses.get(t) ?? 0) + 1);
        const p = prod.get(t);
        // '<in>' stands for a graph input: which ops a (sub)graph starts with.
        const row = (bigram[p ? opKey(p) : '<in>'] ??= {});
        row[k] = (row[k] ?? 0) + 1;
      }
      if (n.opType === 'Add' || n.opType === 'Mul') {
        binary++;
        if (acts >= 2) skip++;
      }
    }
    for (const c of uses.values()) {
      fanSum += c;
      fanN++;
    }
  }
  return { unigram, bigram, skipRate: binary ? skip / binary : 0, meanFanout: fanN ? fanSum / fanN : 1 };
}

/** Mean and standard deviation of a tensor's values (std normalised by √fanIn for weight matrices). */
export interface WeightStat {
  mean: number;
  std: number;
}

/** What one real subgraph looks like: the menu a sentinel for it draws shapes and attributes from. */
export interface Profile {
  /** Number of operators. */
  nodes: number;
  /** Op-type counts. */
  ops: Record<string, number>;
  /** Conv kernel sizes, strides, output channel counts, groups>1 seen (depthwise). */
  kernels: number[];
  strides: number[];
  channels: number[];
  depthwise: boolean;
  /** Pool windows/strides seen. */
  poolKernels: number[];
  /** Feature widths seen (MatMul/Gemm output dims, LayerNorm widths). */
  widths: number[];
  /** Attention head counts seen (from 4-D Reshape targets). */
  heads: number[];
  /** Embedding table rows seen (Gather on a weight). */
  vocab: number[];
  /** Weight statistics keyed `${op}:${inputSlot}`. */
  weights: Record<string, WeightStat>;
  /** Op types of the nodes reading the subgraph's inputs. */
  entry: string[];
  /** Total weight elements (sentinels keep to a similar budget). */
  params: number;
}

/** Fan-in of a weight used by `op` at `slot` (for He-normalised statistics), or 0 if not a matrix. */
export function fanIn(op: string, slot: number, dims: readonly number[]): number {
  if (slot !== 1) return 0;
  if (op === 'Conv' && dims.length === 4) return dims[1]! * dims[2]! * dims[3]!;
  if (op === 'MatMul' && dims.length === 2) return dims[0]!;
  if (op === 'Gemm' && dims.length === 2) return dims[1]!; // transB=1 layout [out, in]
  return 0;
}

function stat(t: Tensor, fan: number): WeightStat {
  let s = 0;
  let s2 = 0;
  const n = t.data.length;
  for (let i = 0; i < n; i++) {
    const v = Number(t.data[i]!);
    s += v;
    s2 += v * v;
  }
  const mean = s / n;
  const std = Math.sqrt(Math.max(0, s2 / n - mean * mean));
  return { mean, std: fan > 0 ? std * Math.sqrt(fan) : std };
}

const uniq = (xs: number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);

/** Profile a real subgraph: its ops, geometry and weight statistics. */
export function profileOf(m: Model): Profile {
  const g = m.graph;
  const ops: Record<string, number> = {};
  const p: Profile = { nodes: g.nodes.length, ops, kernels: [], strides: [], channels: [], depthwise: false, poolKernels: [], widths: [], heads: [], vocab: [], weights: {}, entry: [], params: 0 };
  for (const t of g.initializers.values()) p.params += t.data.length;
  const inputNames = new Set(g.inputs.map((v) => v.name));
  const acc = new Map<string, { s: number; s2: number; n: number }>();
  for (const n of g.nodes) {
    ops[opKey(n)] = (ops[opKey(n)] ?? 0) + 1;
    if (n.inputs.some((t) => inputNames.has(t))) p.entry.push(opKey(n));
    const w = g.initializers.get(n.inputs[1] ?? '');
    if (n.opType === 'Conv') {
      p.kernels.push(...attrInts(n, 'kernel_shape', []));
      p.strides.push(...attrInts(n, 'strides', [1]));
      if (w) p.channels.push(w.dims[0]!);
      const grp = n.attrs.group;
      if (grp?.kind === 'int' && grp.value > 1) p.depthwise = true;
    } else if (n.opType === 'MaxPool' || n.opType === 'AveragePool') {
      p.poolKernels.push(...attrInts(n, 'kernel_shape', []));
    } else if (n.opType === 'MatMul' && w && w.dims.length === 2) {
      p.widths.push(w.dims[1]!);
    } else if (n.opType === 'Gemm' && w && w.dims.length === 2) {
      p.widths.push(w.dims[0]!);
    } else if (n.opType === 'LayerNormalization' && w) {
      p.widths.push(w.dims[0]!);
    } else if (n.opType === 'Reshape' && w && w.dims[0] === 4) {
      const v = [...w.data].map(Number);
      if (v[2]! > 0) p.heads.push(v[2]!);
    } else if (n.opType === 'Gather') {
      const t = g.initializers.get(n.inputs[0]!);
      if (t && t.dtype === 'float32' && t.dims.length === 2) {
        p.vocab.push(t.dims[0]!);
        p.widths.push(t.dims[1]!);
      }
    }
    n.inputs.forEach((t, slot) => {
      const tt = g.initializers.get(t);
      if (!tt || tt.dtype !== 'float32' || tt.data.length < 2) return;
      const key = `${n.opType}:${slot}`;
      const st = stat(tt, fanIn(n.opType, slot, tt.dims));
      const a = acc.get(key) ?? { s: 0, s2: 0, n: 0 };
      a.s += st.mean;
      a.s2 += st.std;
      a.n++;
      acc.set(key, a);
    });
  }
  for (const [k, a] of acc) p.weights[k] = { mean: a.s / a.n, std: a.s2 / a.n };
  p.kernels = uniq(p.kernels);
  p.strides = uniq(p.strides);
  p.channels = uniq(p.channels);
  p.poolKernels = uniq(p.poolKernels);
  p.widths = uniq(p.widths);
  p.heads = uniq(p.heads);
  p.vocab = uniq(p.vocab);
  return p;
}
