/**
 * Statistics the sentinel generator draws from: operator transition (bigram) counts along dataflow
 * edges, topology rates and CNN block templates (with block-to-block transitions) learned from a
 * corpus of real models, and per-subgraph profiles (the kernel sizes, strides, channel counts, op
 * pairs and weight statistics actually seen in one real subgraph).
 */

import type { Graph, Model, Node, Tensor } from '../onnx/ir.js';
import { attrInts } from '../onnx/ir.js';
import { findAtoms } from './atoms.js';
import { nodeGraph } from './graph.js';

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
  /** Convolutional block templates (residual, bottleneck, inverted residual, conv units, pooling). */
  blocks: BlockTemplate[];
  /** blockNext[a][b]: how often block `b` directly follows block `a` ('<in>' = network input). */
  blockNext: Record<string, Record<string, number>>;
}

/** One node of a block template; inputs index earlier template nodes, -1 is the block input. */
export interface TemplateNode {
  op: string;
  ins: number[];
  /** Conv/pool kernel, stride, padding (square). */
  k?: number;
  s?: number;
  p?: number;
  /** Depthwise Conv (group = its input channels). */
  dw?: boolean;
  /** Conv output channels: the block's input channels, its output channels, or a ratio of its input channels. */
  ch?: 'in' | 'out' | number;
}

/** A block between two single-tensor cuts of a real CNN, re-instantiable at other channel counts. */
export interface BlockTemplate {
  key: string;
  nodes: TemplateNode[];
  /** Output channels equal the input's ('in') or are chosen per instance ('new'). */
  out: 'in' | 'new';
  /** Spatial downsampling factor along the block. */
  stride: number;
  /** Distinct op types. */
  ops: string[];
  /** Occurrences in the corpus. */
  count: number;
  /** Output/input channel ratios seen for a 'new' block (an expansion ×6, a projection ÷6, a stage ×2). */
  ratios: number[];
}

/** Ops a block template may contain (4-D feature-map ops the generator can instantiate). */
const BLOCK_OPS = new Set(['Conv', 'BatchNormalization', 'Relu', 'Clip', 'Sigmoid', 'LeakyRelu', 'HardSigmoid', 'Add', 'MaxPool', 'AveragePool']);

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
  const blockNext: Record<string, Record<string, number>> = {};
  const blocks = new Map<string, BlockTemplate>();
  for (const m of models) {
    let prev = '<in>';
    for (const t of cutBlocks(m.graph)) {
      const key = t ? t.key : '<x>';
      if (t) {
        const b = blocks.get(key);
        if (b) {
          b.count++;
          for (const r of t.ratios) if (!b.ratios.includes(r)) b.ratios.push(r);
        } else blocks.set(key, t);
      }
      const row = (blockNext[prev] ??= {});
      row[key] = (row[key] ?? 0) + 1;
      prev = key;
    }
  }
  return { unigram, bigram, skipRate: binary ? skip / binary : 0, meanFanout: fanN ? fanSum / fanN : 1, blocks: [...blocks.values()], blockNext };
}

/**
 * Cut a graph into blocks at values every later path goes through (single live activation), never
 * inside a fusion atom, and turn each block into a template (undefined where it is not a pure
 * feature-map block, e.g. the classifier head or anything with shape arithmetic).
 */
function cutBlocks(g: Graph): (BlockTemplate | undefined)[] {
  let ng;
  let atoms;
  try {
    ng = nodeGraph(g);
    atoms = findAtoms(g, ng);
  } catch {
    return [];
  }
  const atomOf = new Array<number>(ng.n);
  atoms.forEach((a, ai) => a.forEach((v) => (atomOf[v] = ai)));
  const order = atoms.flat();
  const left = new Map<string, number>();
  for (const [t, cs] of ng.consumers) if (!ng.constants.has(t)) left.set(t, cs.length);
  const live = new Set<string>(g.inputs.map((v) => v.name).filter((t) => left.has(t)));
  const out: (BlockTemplate | undefined)[] = [];
  let start = 0;
  let entry = live.size === 1 ? [...live][0]! : '';
  order.forEach((v, i) => {
    const node = g.nodes[v]!;
    for (const t of node.inputs) {
      if (!left.has(t)) continue;
      const r = left.get(t)! - 1;
      left.set(t, r);
      if (r === 0) live.delete(t);
    }
    for (const o of node.outputs) if ((left.get(o) ?? 0) > 0) live.add(o);
    const next = order[i + 1];
    if (live.size !== 1 || (next !== undefined && atomOf[next] === atomOf[v])) return;
    const exit = [...live][0]!;
    out.push(entry ? template(g, order.slice(start, i + 1), entry) : undefined);
    start = i + 1;
    entry = exit;
  });
  return out;
}

/** Template of the nodes `idx` (topological) reading only `entry` and initializers, or undefined. */
function template(g: Graph, idx: number[], entry: string): BlockTemplate | undefined {
  const pos = new Map<string, number>([[entry, -1]]);
  const chan = new Map<number, number>();
  const nodes: TemplateNode[] = [];
  let cin = 0;
  for (const v of idx) {
    const n = g.nodes[v]!;
    if (!BLOCK_OPS.has(n.opType) || (n.domain !== '' && n.domain !== 'ai.onnx')) return undefined;
    const ins: number[] = [];
    for (const t of n.inputs) {
      if (!t || g.initializers.has(t)) continue;
      const p = pos.get(t);
      if (p === undefined) return undefined;
      ins.push(p);
    }
    // A bias-like Add (one activation operand) is not a feature-map join.
    if (n.opType === 'Add' && ins.length !== 2) return undefined;
    const tn: TemplateNode = { op: n.opType, ins };
    if (n.opType === 'Conv') {
      const w = g.initializers.get(n.inputs[1] ?? '');
      const k = attrInts(n, 'kernel_shape', []);
      if (w?.dims.length !== 4 || k.length !== 2 || k[0] !== k[1]) return undefined;
      const grp = n.attrs.group?.kind === 'int' ? n.attrs.group.value : 1;
      if (grp > 1 && grp !== w.dims[0]) return undefined;
      if (ins[0] === -1 && !cin) cin = w.dims[1]! * grp;
      chan.set(nodes.length, w.dims[0]!);
      tn.k = k[0];
      tn.s = attrInts(n, 'strides', [1, 1])[0];
      tn.p = attrInts(n, 'pads', [0, 0, 0, 0])[0];
      if (grp > 1) tn.dw = true;
    } else if (n.opType === 'MaxPool' || n.opType === 'AveragePool') {
      const k = attrInts(n, 'kernel_shape', []);
      if (k.length !== 2 || k[0] !== k[1]) return undefined;
      tn.k = k[0];
      tn.s = attrInts(n, 'strides', [1, 1])[0];
      tn.p = attrInts(n, 'pads', [0, 0, 0, 0])[0];
    }
    pos.set(n.outputs[0]!, nodes.length);
    nodes.push(tn);
  }
  if (nodes.length === 0) return undefined;
  if (chan.size > 0 && !cin) return undefined;
  // Channels of each node's output, to express every conv width relative to the block's ends.
  const cOf = (i: number): number => (i < 0 ? cin : (chan.get(i) ?? cOf(nodes[i]!.ins[0] ?? -1)));
  const cout = cOf(nodes.length - 1);
  nodes.forEach((tn, i) => {
    if (tn.op !== 'Conv' || tn.dw) return;
    const c = chan.get(i)!;
    tn.ch = c === cin ? 'in' : c === cout ? 'out' : Math.round((c / cin) * 8) / 8;
  });
  // Downsampling along the main path (first inputs back from the output).
  let stride = 1;
  for (let i = nodes.length - 1; i >= 0; i = nodes[i]!.ins[0] ?? -1) stride *= nodes[i]!.s ?? 1;
  const ops = [...new Set(nodes.map((n) => n.op))].sort();
  const key = nodes
    .map((n) => `${n.op}${n.k ? `k${n.k}s${n.s}p${n.p}` : ''}${n.dw ? 'dw' : ''}${n.ch !== undefined ? `c${n.ch}` : ''}(${n.ins.join(',')})`)
    .join(';');
  const out = cout === cin || chan.size === 0 ? 'in' : 'new';
  return { key, nodes, out, stride, ops, count: 1, ratios: out === 'new' ? [Math.round((cout / cin) * 64) / 64] : [] };
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
  /** Channel counts of the depthwise convs (a sentinel's own depthwise units widen to one of them). */
  dwWidths: number[];
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
  /** Op types reading a Conv's output, and an Add's output (what follows a residual join). */
  convNext: string[];
  addNext: string[];
  /** Op type producing each graph output ('' for a graph input passed through). */
  outputOps: string[];
  /** Distinct dataflow op pairs 'A>B'. */
  pairs: string[];
  /** [kernel, stride] of every non-depthwise Conv (with repeats: how often each is used). */
  convKS: [number, number][];
  /** Indices of graph inputs an Add reads directly (identity shortcuts entering the subgraph). */
  skipInputs: number[];
}

/** Key of a weight's statistics: op and input slot; an Add's table (a position embedding) apart from its bias vectors. */
export function weightKey(op: string, slot: number, rank: number): string {
  return op === 'Add' && rank >= 2 ? `${op}:${slot}:table` : `${op}:${slot}`;
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
  const { mean, sd } = meanSd(t.data);
  return { mean, std: fan > 0 ? sd * Math.sqrt(fan) : sd };
}

/** Mean, (population) standard deviation and mean square of `d`. */
export function meanSd(d: ArrayLike<number | bigint>): { mean: number; sd: number; meanSquare: number } {
  let s = 0;
  let s2 = 0;
  const n = d.length;
  for (let i = 0; i < n; i++) {
    const v = Number(d[i]!);
    s += v;
    s2 += v * v;
  }
  const mean = s / n;
  return { mean, sd: Math.sqrt(Math.max(0, s2 / n - mean * mean)), meanSquare: s2 / n };
}

const uniq = (xs: number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);

/** Profile a real subgraph: its ops, geometry and weight statistics. */
export function profileOf(m: Model): Profile {
  const g = m.graph;
  const ops: Record<string, number> = {};
  const p: Profile = {
    nodes: g.nodes.length,
    ops,
    kernels: [],
    strides: [],
    channels: [],
    depthwise: false,
    dwWidths: [],
    poolKernels: [],
    widths: [],
    heads: [],
    vocab: [],
    weights: {},
    entry: [],
    params: 0,
    convNext: [],
    addNext: [],
    outputOps: [],
    pairs: [],
    convKS: [],
    skipInputs: [],
  };
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
      if (grp?.kind === 'int' && grp.value > 1) {
        p.depthwise = true;
        if (w) p.dwWidths.push(w.dims[0]!);
      } else p.convKS.push([attrInts(n, 'kernel_shape', [1])[0]!, attrInts(n, 'strides', [1])[0]!]);
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
      if (tt?.dtype !== 'float32' || tt.data.length < 2) return;
      // Additive attention masks (−1e4 / −inf entries) are constants, not weights.
      if (n.opType === 'Add' && (tt.data as Float32Array).some((v) => v <= -1e3)) return;
      const key = weightKey(n.opType, slot, tt.dims.length);
      const st = stat(tt, fanIn(n.opType, slot, tt.dims));
      const a = acc.get(key) ?? { s: 0, s2: 0, n: 0 };
      a.s += st.mean;
      a.s2 += st.std;
      a.n++;
      acc.set(key, a);
    });
  }
  for (const [k, a] of acc) p.weights[k] = { mean: a.s / a.n, std: a.s2 / a.n };
  const prod = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) prod.set(o, n);
  const next = { Conv: new Set<string>(), Add: new Set<string>() };
  const pairs = new Set<string>();
  for (const n of g.nodes) {
    for (const t of n.inputs) {
      const q = prod.get(t);
      if (q) pairs.add(`${q.opType}>${n.opType}`);
      if (q && (q.opType === 'Conv' || q.opType === 'Add')) next[q.opType].add(n.opType);
    }
  }
  p.pairs = [...pairs].sort();
  p.convNext = [...next.Conv].sort();
  p.addNext = [...next.Add].sort();
  p.outputOps = g.outputs.map((o) => prod.get(o.name)?.opType ?? '');
  p.skipInputs = g.inputs.map((v, i) => (g.nodes.some((n) => n.opType === 'Add' && n.inputs.includes(v.name)) ? i : -1)).filter((i) => i >= 0);
  p.kernels = uniq(p.kernels);
  p.strides = uniq(p.strides);
  p.channels = uniq(p.channels);
  p.dwWidths = uniq(p.dwWidths);
  p.poolKernels = uniq(p.poolKernels);
  p.widths = uniq(p.widths);
  p.heads = uniq(p.heads);
  p.vocab = uniq(p.vocab);
  return p;
}
