/**
 * Fusion atoms: groups of nodes the partitioner must never separate, because onnxruntime's graph
 * optimizer fuses them (Conv+BN+activation, MatMul+bias, Gelu chains, LayerNorm, attention, ...).
 * Cutting inside one would leave the fused kernel unavailable to the optimizer party.
 */

import type { Graph, Node } from '../onnx/ir.js';
import { attrInts } from '../onnx/ir.js';
import type { NodeGraph } from './graph.js';
import { nodeGraph, quotientAdjacency, sccs, topoOrder } from './graph.js';

/** Activations ORT folds into FusedConv / FusedGemm. */
const FUSABLE_ACT = new Set(['Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'Tanh', 'HardSigmoid']);

/** Union–find over node indices. */
class UnionFind {
  private readonly parent: number[];
  private readonly count: number[];
  constructor(n: number) {
    this.parent = Array.from({ length: n }, (_, i) => i);
    this.count = new Array<number>(n).fill(1);
  }
  /** Number of nodes in x's set. */
  size(x: number): number {
    return this.count[this.find(x)]!;
  }
  find(x: number): number {
    let r = x;
    while (this.parent[r] !== r) r = this.parent[r]!;
    while (this.parent[x] !== r) {
      const p = this.parent[x]!;
      this.parent[x] = r;
      x = p;
    }
    return r;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    const [lo, hi] = ra < rb ? [ra, rb] : [rb, ra];
    this.parent[hi] = lo;
    this.count[lo]! += this.count[hi]!;
  }
}

/** Pattern matcher state over one graph. */
class Matcher {
  readonly uf: UnionFind;
  /** Residual Adds already fused into one Conv chain (ORT fuses at most one Conv into an Add). */
  private readonly claimed = new Set<number>();
  private readonly pos: number[];

  constructor(
    readonly g: Graph,
    readonly ng: NodeGraph,
  ) {
    this.uf = new UnionFind(ng.n);
    this.pos = new Array<number>(ng.n);
    ng.order.forEach((v, i) => (this.pos[v] = i));
  }

  node(i: number): Node {
    return this.g.nodes[i]!;
  }
  /** Op type of a default-domain node ('' for other domains, which match no pattern). */
  op(i: number | undefined): string {
    if (i === undefined) return '';
    const n = this.node(i);
    return n.domain === '' || n.domain === 'ai.onnx' ? n.opType : '';
  }
  isConst(t: string): boolean {
    if (!t) return false;
    if (this.ng.constants.has(t)) return true;
    const p = this.ng.producer.get(t);
    return p !== undefined && this.ng.constantNode[p]!;
  }
  /** Element count of a constant when it is an initializer, else undefined. */
  constSize(t: string): number | undefined {
    const init = this.g.initializers.get(t);
    return init ? init.data.length : undefined;
  }
  producer(t: string | undefined): number | undefined {
    return t ? this.ng.producer.get(t) : undefined;
  }
  /** The only node reading node i's first output, if exactly one node reads it. */
  next(i: number): number | undefined {
    const out = this.node(i).outputs[0];
    const c = out ? this.ng.consumers.get(out) : undefined;
    return c && c.length === 1 ? c[0] : undefined;
  }
  /** Whether node i is binary with exactly one constant operand. */
  hasConstOperand(i: number): boolean {
    const ins = this.node(i).inputs;
    return ins.length === 2 && this.isConst(ins[0]!) !== this.isConst(ins[1]!);
  }
  /** The non-constant operand of a binary node with one constant operand. */
  varOperand(i: number): string | undefined {
    const ins = this.node(i).inputs;
    if (!this.hasConstOperand(i)) return undefined;
    return this.isConst(ins[0]!) ? ins[1] : ins[0];
  }
  /** Whether the constant operand of binary node i is a scalar (or unknown size). */
  scalarConst(i: number): boolean {
    const c = this.node(i).inputs.find((t) => this.isConst(t));
    const n = c ? this.constSize(c) : undefined;
    return n === undefined || n === 1;
  }
  union(...nodes: (number | undefined)[]): void {
    const ns = nodes.filter((x): x is number => x !== undefined);
    for (let k = 1; k < ns.length; k++) this.uf.union(ns[0]!, ns[k]!);
  }

  /** Nodes on a path from value x to node sink (x's consumers forward, sink backward). */
  between(x: string, sink: number): Set<number> {
    const limit = this.pos[sink]!;
    const fwd = new Set<number>();
    const stack = [...(this.ng.consumers.get(x) ?? [])].filter((v) => this.pos[v]! <= limit);
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (fwd.has(v)) continue;
      fwd.add(v);
      for (const w of this.ng.succ[v]!) if (this.pos[w]! <= limit && !fwd.has(w)) stack.push(w);
    }
    const region = new Set<number>();
    const back = [sink];
    while (back.length > 0) {
      const v = back.pop()!;
      if (region.has(v) || !fwd.has(v)) continue;
      region.add(v);
      for (const w of this.ng.pred[v]!) back.push(w);
    }
    return region;
  }
  /** Whether every input of the region is x, a constant, or computed inside it. */
  closed(region: Set<number>, x: string): boolean {
    for (const v of region) {
      for (const t of this.node(v).inputs) {
        if (!t || t === x || this.isConst(t)) continue;
        const p = this.producer(t);
        if (p === undefined || !region.has(p)) return false;
      }
    }
    return true;
  }
  /** Union a single-input region x → sink if it is closed and contains `key`; returns success. */
  unionRegion(x: string | undefined, sink: number | undefined, key: number): boolean {
    if (!x || sink === undefined) return false;
    const r = this.between(x, sink);
    if (!r.has(key) || !this.closed(r, x)) return false;
    this.union(...r);
    // A bias Add feeding only the region is absorbed too (BiasGelu, SkipLayerNorm with bias).
    const p = this.producer(x);
    if (p !== undefined && this.op(p) === 'Add' && this.hasConstOperand(p) && (this.ng.consumers.get(x) ?? []).every((c) => r.has(c))) this.union(p, key);
    return true;
  }
  /** Extend a sink forward through elementwise Mul/Add with a constant (scale and shift). */
  extendAffine(sink: number): number {
    let cur = sink;
    for (;;) {
      const j = this.next(cur);
      if (j === undefined || !['Mul', 'Add'].includes(this.op(j)) || !this.hasConstOperand(j)) return cur;
      cur = j;
    }
  }

  /** Conv → [BN | Mul/Add const]* → [residual Add] → [activation]. */
  convChain(i: number): void {
    let cur = i;
    let residual = false;
    for (;;) {
      const j = this.next(cur);
      const o = this.op(j);
      if (j === undefined) return;
      if (!residual && (o === 'BatchNormalization' || ((o === 'Mul' || o === 'Add') && this.hasConstOperand(j)))) {
        this.union(i, j);
      } else if (!residual && o === 'Add' && !this.claimed.has(j)) {
        this.claimed.add(j);
        this.union(i, j);
        residual = true;
      } else if (FUSABLE_ACT.has(o)) {
        this.union(i, j);
        return;
      } else {
        return;
      }
      cur = j;
    }
  }

  /** MatMul + bias (→ Gemm) + activation, MatMul × scalar (FusedMatMul), Transpose/scale inputs. */
  matmul(i: number): void {
    const j = this.next(i);
    if (j !== undefined && this.op(j) === 'Add' && this.hasConstOperand(j)) {
      this.union(i, j);
      const k = this.next(j);
      if (k !== undefined && FUSABLE_ACT.has(this.op(k))) this.union(i, k);
    } else if (j !== undefined && (this.op(j) === 'Mul' || this.op(j) === 'Div') && this.hasConstOperand(j) && this.scalarConst(j)) {
      this.union(i, j);
    }
    for (const t of this.node(i).inputs) {
      const p = this.producer(t);
      if (p === undefined || this.next(p) !== i) continue;
      if (this.op(p) === 'Transpose') {
        const perm = attrInts(this.node(p), 'perm', []);
        const r = perm.length;
        const swapsLast = r >= 2 && perm.every((v, k) => (k < r - 2 ? v === k : k === r - 2 ? v === r - 1 : v === r - 2));
        if (swapsLast) this.union(i, p);
      } else if ((this.op(p) === 'Mul' || this.op(p) === 'Div') && this.hasConstOperand(p) && this.scalarConst(p) && this.uf.size(p) === 1) {
        // A scale already claimed by an earlier pattern (the 0.5 of a Gelu) is fused there instead.
        this.union(i, p);
      }
    }
  }

  /** Exact Gelu: x → Div/Mul → Erf → Add(1) → Mul → [Mul 0.5]. */
  geluErf(e: number): void {
    const d = this.producer(this.node(e).inputs[0]);
    if (d === undefined || !['Div', 'Mul'].includes(this.op(d))) return;
    const a = this.next(e);
    if (a === undefined || this.op(a) !== 'Add') return;
    const m = this.next(a);
    if (m === undefined || this.op(m) !== 'Mul') return;
    const m2 = this.next(m);
    const sink = m2 !== undefined && this.op(m2) === 'Mul' && this.hasConstOperand(m2) ? m2 : m;
    this.unionRegion(this.varOperand(d), sink, e);
  }

  /** Tanh Gelu: 0.5·x·(1 + tanh(c·(x + 0.044715·x³))); x is whichever operand closes the region. */
  geluTanh(t: number): void {
    const a = this.next(t);
    if (a === undefined || this.op(a) !== 'Add') return;
    const m = this.next(a);
    if (m === undefined || this.op(m) !== 'Mul') return;
    const m2 = this.next(m);
    const sink = m2 !== undefined && this.op(m2) === 'Mul' && this.hasConstOperand(m2) ? m2 : m;
    let s = this.producer(this.node(t).inputs[0]);
    if (s !== undefined && this.op(s) === 'Mul' && this.hasConstOperand(s)) s = this.producer(this.varOperand(s));
    if (s === undefined || this.op(s) !== 'Add') return;
    for (const x of this.node(s).inputs) {
      if (this.unionRegion(x, sink, t)) {
        // ORT refuses FastGelu when the result is a graph output: keep the Gelu with its readers.
        for (const c of this.ng.consumers.get(this.node(sink).outputs[0]!) ?? []) this.union(t, c);
        return;
      }
    }
  }

  /** Decomposed LayerNorm: ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div [· γ + β]. */
  layerNormDecomposed(r: number): void {
    const x = this.node(r).inputs[0];
    const mean = this.node(r).outputs[0];
    if (!x || !mean) return;
    const sub = (this.ng.consumers.get(mean) ?? []).find((c) => this.op(c) === 'Sub' && this.node(c).inputs[0] === x);
    if (sub === undefined) return;
    const centred = this.node(sub).outputs[0]!;
    const div = (this.ng.consumers.get(centred) ?? []).find((c) => this.op(c) === 'Div');
    if (div === undefined) return;
    const sink = this.extendAffine(div);
    if (this.unionRegion(x, sink, r)) this.skipAdd(x, r);
  }

  /** Residual Add feeding a LayerNorm (SkipLayerNormalization), with its bias Add if any. */
  skipAdd(x: string | undefined, ln: number): void {
    const p = this.producer(x);
    if (p === undefined || this.op(p) !== 'Add' || this.hasConstOperand(p) || this.isConst(this.node(p).inputs[0]!)) return;
    this.union(p, ln);
    for (const t of this.node(p).inputs) {
      const q = this.producer(t);
      if (q !== undefined && this.op(q) === 'Add' && this.hasConstOperand(q) && this.next(q) === p) {
        this.union(q, ln);
        break; // SkipLayerNormalization takes one bias
      }
    }
  }

  /** Attention core: MatMul → [Div/Mul scale] → [Add mask] → Softmax → MatMul. */
  attention(s: number): void {
    let p = this.producer(this.node(s).inputs[0]);
    if (p !== undefined && this.op(p) === 'Add') {
      this.union(s, p);
      const ins = this.node(p).inputs.map((t) => this.producer(t));
      p = ins.find((q) => q !== undefined && ['Div', 'Mul', 'MatMul'].includes(this.op(q)));
    }
    if (p !== undefined && (this.op(p) === 'Div' || this.op(p) === 'Mul') && this.hasConstOperand(p)) {
      this.union(s, p);
      p = this.producer(this.varOperand(p));
    }
    if (p !== undefined && this.op(p) === 'MatMul') this.union(s, p);
    const n = this.next(s);
    if (n !== undefined && this.op(n) === 'MatMul' && this.node(n).inputs[0] === this.node(s).outputs[0]) this.union(s, n);
  }

  run(): void {
    for (let i = 0; i < this.ng.n; i++) {
      const o = this.op(i);
      if (o === 'Conv') this.convChain(i);
      else if (o === 'Gemm') {
        const j = this.next(i);
        if (j !== undefined && FUSABLE_ACT.has(this.op(j))) this.union(i, j);
      } else if (o === 'MatMul') this.matmul(i);
      else if (o === 'Erf') this.geluErf(i);
      else if (o === 'Tanh') this.geluTanh(i);
      else if (o === 'ReduceMean') this.layerNormDecomposed(i);
      else if (o === 'LayerNormalization') this.skipAdd(this.node(i).inputs[0], i);
      else if (o === 'Softmax') this.attention(i);
      else if (o === 'Identity' || o === 'Dropout') {
        // Eliminated by the optimizer only when producer and consumers stay together.
        this.union(i, this.producer(this.node(i).inputs[0]));
        for (const t of this.node(i).outputs) for (const c of this.ng.consumers.get(t) ?? []) this.union(i, c);
      }
      if (this.ng.constantNode[i]) {
        // Constant folding needs the folded node next to its users, else the value crosses a cut.
        for (const t of this.node(i).outputs) for (const c of this.ng.consumers.get(t) ?? []) this.union(i, c);
      }
    }
  }
}

/**
 * Group a graph's nodes into fusion atoms. Each atom lists node indices in topological order;
 * atoms are returned in topological order and their quotient graph is acyclic (any cycle a
 * pattern union would create is resolved by merging the atoms on it).
 */
export function findAtoms(graph: Graph, ng: NodeGraph = nodeGraph(graph)): number[][] {
  const m = new Matcher(graph, ng);
  m.run();
  const rootIds = new Map<number, number>();
  const groupOf = new Array<number>(ng.n);
  for (let i = 0; i < ng.n; i++) {
    const r = m.uf.find(i);
    if (!rootIds.has(r)) rootIds.set(r, rootIds.size);
    groupOf[i] = rootIds.get(r)!;
  }
  // Merge strongly connected atoms so the atom quotient is a DAG.
  const comps = sccs(quotientAdjacency(ng, groupOf, rootIds.size));
  const compOf = new Array<number>(rootIds.size);
  comps.forEach((c, ci) => c.forEach((a) => (compOf[a] = ci)));
  const finalOf = groupOf.map((g) => compOf[g]!);
  return orderGroups(ng, finalOf, comps.length);
}

/** Node lists of groups `groupOf`, each in topological node order, groups in topological order. */
export function orderGroups(ng: NodeGraph, groupOf: readonly number[], groups: number): number[][] {
  const members: number[][] = Array.from({ length: groups }, () => []);
  for (const v of ng.order) members[groupOf[v]!]!.push(v);
  const qorder = topoOrder(quotientAdjacency(ng, groupOf, groups));
  if (!qorder) throw new Error('internal: node groups form a cycle');
  // Re-rank by first member position so the order is the graph's natural one where possible.
  return qorder.map((g) => members[g]!).filter((m) => m.length > 0);
}
