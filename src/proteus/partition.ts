/**
 * The Proteus partitioner: cut a graph into connected subgraphs of about `size` operators by
 * randomized contraction of its fusion atoms, never creating a cycle between subgraphs. Several
 * randomized tries are made and the most balanced kept. The result is plain JSON (node indices),
 * so it can be stored in the owner's key file.
 */

import type { Graph, Model } from '../onnx/ir.js';
import { ModelError } from '../onnx/ir.js';
import { findAtoms, orderGroups } from './atoms.js';
import type { NodeGraph } from './graph.js';
import { nodeGraph, quotientAdjacency } from './graph.js';
import type { Rng } from './rng.js';
import { secretRng } from './rng.js';

/** Options of `partitionGraph`. */
export interface PartitionOptions {
  /** Target operators per subgraph (default 16). */
  size?: number;
  /** Randomized contractions tried; the most balanced is kept (default 8). */
  tries?: number;
  /** Test-only reproducible stream (guessable); default: a fresh secret AES-CTR stream. */
  seed?: number;
  /** Keep fusion atoms whole (default true); false only to measure what ignoring fusions costs. */
  fusionAware?: boolean;
}

/** A partition of a graph's nodes (indices into `graph.nodes`); JSON-serializable. */
export interface Partition {
  /** Target operators per subgraph the partition was made for. */
  size: number;
  /** Fusion atoms (each kept whole), node indices in topological order. */
  atoms: number[][];
  /** Subgraphs in a topological order of their quotient DAG; node indices in topological order. */
  parts: number[][];
}

/** Mean squared deviation of part sizes from the target, per node (0 = perfectly balanced). */
export function balanceScore(parts: readonly (readonly number[])[], size: number): number {
  const total = parts.reduce((s, p) => s + p.length, 0);
  if (total === 0) return 0;
  return parts.reduce((s, p) => s + (p.length - size) ** 2, 0) / total;
}

/** Cluster graph under contraction: weights and neighbour sets of live clusters. */
class Clusters {
  readonly weight: number[];
  readonly succ: Set<number>[];
  readonly pred: Set<number>[];
  readonly alive: boolean[];
  /** Atom → cluster representative. */
  readonly owner: number[];

  constructor(weights: readonly number[], adj: readonly (readonly number[])[]) {
    const n = weights.length;
    this.weight = [...weights];
    this.succ = adj.map((s) => new Set(s));
    this.pred = Array.from({ length: n }, () => new Set<number>());
    adj.forEach((s, u) => s.forEach((v) => this.pred[v]!.add(u)));
    this.alive = new Array<boolean>(n).fill(true);
    this.owner = Array.from({ length: n }, (_, i) => i);
  }

  /** Whether merging adjacent clusters a and b keeps the cluster graph acyclic. */
  canMerge(a: number, b: number): boolean {
    // Edge u→v may be contracted iff v is not reachable from u by another path.
    const [u, v] = this.succ[a]!.has(b) ? [a, b] : [b, a];
    const seen = new Set<number>([u]);
    const stack = [...this.succ[u]!].filter((x) => x !== v);
    while (stack.length > 0) {
      const x = stack.pop()!;
      if (x === v) return false;
      if (seen.has(x)) continue;
      seen.add(x);
      for (const y of this.succ[x]!) if (!seen.has(y)) stack.push(y);
    }
    return true;
  }

  /** Contract b into a. */
  merge(a: number, b: number): void {
    this.weight[a]! += this.weight[b]!;
    this.alive[b] = false;
    for (const s of this.succ[b]!) {
      this.pred[s]!.delete(b);
      if (s !== a) {
        this.succ[a]!.add(s);
        this.pred[s]!.add(a);
      }
    }
    for (const p of this.pred[b]!) {
      this.succ[p]!.delete(b);
      if (p !== a) {
        this.pred[a]!.add(p);
        this.succ[p]!.add(a);
      }
    }
    this.succ[a]!.delete(b);
    this.pred[a]!.delete(b);
    this.succ[b]!.clear();
    this.pred[b]!.clear();
    for (let i = 0; i < this.owner.length; i++) if (this.owner[i] === b) this.owner[i] = a;
  }

  /** Merge one light cluster into a light neighbour under `cap`; false when none is possible. */
  step(rng: Rng, cap: number, only: (w: number) => boolean, jitter: number): boolean {
    const live = this.weight.map((w, i) => i).filter((i) => this.alive[i] && only(this.weight[i]!));
    // Lightest first, with random noise so each try (and each owner) contracts differently.
    const order = live.map((i) => [i, this.weight[i]! + rng.next() * jitter] as const).sort((x, y) => x[1] - y[1]);
    for (const [c] of order) {
      const nbrs = [...this.succ[c]!, ...this.pred[c]!].filter((n) => this.weight[c]! + this.weight[n]! <= cap);
      const ranked = nbrs.map((n) => [n, this.weight[n]! + rng.next() * jitter] as const).sort((x, y) => x[1] - y[1]);
      for (const [n] of ranked) {
        if (this.canMerge(c, n)) {
          this.merge(Math.min(c, n), Math.max(c, n));
          return true;
        }
      }
    }
    return false;
  }
}

/** One randomized contraction of the atom DAG; returns the atom → cluster map. */
function contract(weights: readonly number[], adj: readonly (readonly number[])[], size: number, rng: Rng): number[] {
  const c = new Clusters(weights, adj);
  const jitter = Math.max(1, size / 2);
  while (c.step(rng, size, (w) => w < size, jitter));
  // Leftover fragments (boxed in by full neighbours) join a neighbour up to 1.5× the target.
  while (c.step(rng, Math.floor(size * 1.5), (w) => w < size / 2, jitter));
  return c.owner;
}

/** Partition a graph's nodes into connected, fusion-respecting subgraphs of about `opts.size` operators. */
export function partitionGraph(graph: Graph, opts: PartitionOptions = {}, ng: NodeGraph = nodeGraph(graph)): Partition {
  const size = opts.size ?? 16;
  const tries = opts.tries ?? 8;
  if (!Number.isInteger(size) || size < 1) throw new ModelError(`partition size must be a positive integer (got ${size})`);
  if (!Number.isInteger(tries) || tries < 1) throw new ModelError(`partition tries must be a positive integer (got ${tries})`);
  const atoms = opts.fusionAware === false ? ng.order.map((v) => [v]) : findAtoms(graph, ng);
  const atomOf = new Array<number>(ng.n);
  atoms.forEach((a, ai) => a.forEach((v) => (atomOf[v] = ai)));
  const adj = quotientAdjacency(ng, atomOf, atoms.length);
  const weights = atoms.map((a) => a.length);
  const rng = secretRng(opts.seed);
  let best: number[][] | undefined;
  let bestScore = Infinity;
  for (let t = 0; t < tries; t++) {
    const owner = contract(weights, adj, size, rng);
    const ids = new Map<number, number>();
    for (const o of owner) if (!ids.has(o)) ids.set(o, ids.size);
    const groupOf = atomOf.map((a) => ids.get(owner[a]!)!);
    const parts = orderGroups(ng, groupOf, ids.size);
    const score = balanceScore(parts, size);
    if (score < bestScore) {
      bestScore = score;
      best = parts;
    }
  }
  return { size, atoms, parts: best ?? [] };
}

/** Partition a model's graph (see `partitionGraph`). */
export function partitionModel(model: Model, opts: PartitionOptions = {}): Partition {
  return partitionGraph(model.graph, opts);
}
