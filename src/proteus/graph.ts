/**
 * Node-level dataflow view of a Graph (who feeds whom), plus the small DAG algorithms Proteus
 * needs: topological order, strongly connected components, quotient edges between node groups.
 */

import type { Graph } from '../onnx/ir.js';
import { ModelError } from '../onnx/ir.js';

/** Dataflow adjacency of a graph's nodes, by index into `graph.nodes`. */
export interface NodeGraph {
  /** Number of nodes. */
  n: number;
  /** Distinct successor node indices of each node. */
  succ: number[][];
  /** Distinct predecessor node indices of each node. */
  pred: number[][];
  /** Index of the node producing each value. */
  producer: Map<string, number>;
  /** Indices of the nodes consuming each value (a node once per input slot). */
  consumers: Map<string, number[]>;
  /** Names of initializers that are true constants (not overridden by a graph input). */
  constants: Set<string>;
  /** Names of graph outputs. */
  outputs: Set<string>;
  /** Whether each node computes a constant (every input is a constant or a constant node's output). */
  constantNode: boolean[];
  /** A topological order of the nodes. */
  order: number[];
}

/** Build the dataflow view; control flow, dangling inputs and cycles are ModelErrors. */
export function nodeGraph(graph: Graph): NodeGraph {
  const n = graph.nodes.length;
  const producer = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  const inputNames = new Set(graph.inputs.map((v) => v.name));
  const constants = new Set([...graph.initializers.keys()].filter((k) => !inputNames.has(k)));
  graph.nodes.forEach((node, i) => {
    for (const a of Object.values(node.attrs)) {
      if (a.kind === 'graph') throw new ModelError(`node '${node.name}' (${node.opType}): control flow (graph attributes) is not supported by Proteus`);
    }
    for (const o of node.outputs) {
      if (!o) continue;
      if (producer.has(o) || inputNames.has(o) || constants.has(o)) throw new ModelError(`node '${node.name}' (${node.opType}): value '${o}' is defined twice`);
      producer.set(o, i);
    }
  });
  const succ: Set<number>[] = Array.from({ length: n }, () => new Set());
  const pred: Set<number>[] = Array.from({ length: n }, () => new Set());
  graph.nodes.forEach((node, i) => {
    for (const t of node.inputs) {
      if (!t) continue;
      const list = consumers.get(t);
      if (list) list.push(i);
      else consumers.set(t, [i]);
      const p = producer.get(t);
      if (p !== undefined) {
        succ[p]!.add(i);
        pred[i]!.add(p);
      } else if (!inputNames.has(t) && !constants.has(t)) {
        throw new ModelError(`node '${node.name}' (${node.opType}): input '${t}' is not defined`);
      }
    }
  });
  const adj = succ.map((s) => [...s]);
  const order = topoOrder(adj);
  if (!order) throw new ModelError(`graph '${graph.name}' has a cycle`);
  const constantNode = new Array<boolean>(n).fill(false);
  for (const i of order) {
    const node = graph.nodes[i]!;
    // A node without inputs other than constants is folded by the optimizer; nondeterministic ops are not.
    if (/^Random/.test(node.opType)) continue;
    constantNode[i] = node.inputs.every((t) => !t || constants.has(t) || (producer.has(t) && constantNode[producer.get(t)!]));
  }
  return {
    n,
    succ: adj,
    pred: pred.map((s) => [...s]),
    producer,
    consumers,
    constants,
    outputs: new Set(graph.outputs.map((v) => v.name)),
    constantNode,
    order,
  };
}

/** Kahn topological order of an adjacency list (ties by smallest index), or null if cyclic. */
export function topoOrder(adj: readonly (readonly number[])[]): number[] | null {
  const n = adj.length;
  const indeg = new Array<number>(n).fill(0);
  for (const s of adj) for (const v of s) indeg[v]!++;
  // A binary heap keeps the order stable (smallest ready index first) without O(n²) scans.
  const heap: number[] = [];
  const push = (v: number): void => {
    heap.push(v);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heap[p]! <= heap[i]!) break;
      [heap[p], heap[i]] = [heap[i]!, heap[p]!];
      i = p;
    }
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l]! < heap[m]!) m = l;
        if (r < heap.length && heap[r]! < heap[m]!) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
    return top;
  };
  for (let v = 0; v < n; v++) if (indeg[v] === 0) push(v);
  const out: number[] = [];
  while (heap.length > 0) {
    const u = pop();
    out.push(u);
    for (const v of adj[u]!) if (--indeg[v]! === 0) push(v);
  }
  return out.length === n ? out : null;
}

/** Strongly connected components (iterative Tarjan), each as a list of vertex indices. */
export function sccs(adj: readonly (readonly number[])[]): number[][] {
  const n = adj.length;
  const index = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const onStack = new Array<boolean>(n).fill(false);
  const stack: number[] = [];
  const comps: number[][] = [];
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const work: [number, number][] = [[root, 0]];
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const [v, k] = top;
      const next = adj[v]!;
      if (k < next.length) {
        top[1] = k + 1;
        const w = next[k]!;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = true;
          work.push([w, 0]);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v]!, index[w]!);
        }
      } else {
        work.pop();
        if (work.length > 0) {
          const u = work[work.length - 1]![0];
          low[u] = Math.min(low[u]!, low[v]!);
        }
        if (low[v] === index[v]) {
          const comp: number[] = [];
          let w: number;
          do {
            w = stack.pop()!;
            onStack[w] = false;
            comp.push(w);
          } while (w !== v);
          comps.push(comp.sort((a, b) => a - b));
        }
      }
    }
  }
  return comps;
}

/** Edges between groups induced by node edges; `groupOf[i]` is node i's group in [0, groups). */
export function quotientAdjacency(ng: NodeGraph, groupOf: readonly number[], groups: number): number[][] {
  const adj: Set<number>[] = Array.from({ length: groups }, () => new Set());
  for (let u = 0; u < ng.n; u++) {
    for (const v of ng.succ[u]!) {
      const a = groupOf[u]!;
      const b = groupOf[v]!;
      if (a !== b) adj[a]!.add(b);
    }
  }
  return adj.map((s) => [...s].sort((x, y) => x - y));
}

/** Whether the groups' quotient graph is a DAG (no cycle through two or more groups). */
export function isQuotientAcyclic(ng: NodeGraph, groups: readonly (readonly number[])[]): boolean {
  const groupOf = new Array<number>(ng.n).fill(-1);
  groups.forEach((g, gi) => g.forEach((i) => (groupOf[i] = gi)));
  return topoOrder(quotientAdjacency(ng, groupOf, groups.length)) !== null;
}
