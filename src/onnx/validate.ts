/**
 * Graph validation for the canonical pass: every problem is collected (never the first one only),
 * each naming the op, node and reason, so a user fixes a model in one round.
 */

import type { NodeCheck, Problem } from './canonical.js';
import { attrInts, type Graph, type Model, type Node } from './ir.js';

/**
 * Order `g.nodes` topologically (stable: nodes already in order keep it). Nodes on a cycle or fed by
 * a value nothing defines are reported and kept at the end so later checks still see them.
 */
export function topoSort(g: Graph, problems: Problem[]): void {
  const produced = new Map<string, Node>();
  for (const n of g.nodes) {
    for (const o of n.outputs) {
      if (!o) continue;
      if (produced.has(o) || g.initializers.has(o) || g.inputs.some((v) => v.name === o)) {
        problems.push({ op: n.opType, node: n.name, reason: `output '${o}' is already defined elsewhere (ONNX values are assigned once)` });
      }
      produced.set(o, n);
    }
  }
  const available = new Set<string>([...g.initializers.keys(), ...g.inputs.map((v) => v.name)]);
  const outer = outerScopeNames(g);
  const pending = new Map<Node, number>();
  const waiting = new Map<string, Node[]>();
  const ready: Node[] = [];
  for (const n of g.nodes) {
    let missing = 0;
    for (const i of new Set([...n.inputs, ...outer.get(n)!])) {
      if (!i || available.has(i)) continue;
      if (!produced.has(i)) {
        problems.push({ op: n.opType, node: n.name, reason: `input '${i}' is not a graph input, an initializer or any node's output` });
        continue;
      }
      missing++;
      const w = waiting.get(i);
      if (w) w.push(n);
      else waiting.set(i, [n]);
    }
    pending.set(n, missing);
    if (missing === 0) ready.push(n);
  }
  const order: Node[] = [];
  // Keep the original order among ready nodes: a min-heap by original index would be exact; a
  // sorted insert is fine for the graph sizes privml handles (thousands of nodes).
  const index = new Map(g.nodes.map((n, i) => [n, i]));
  ready.sort((a, b) => index.get(a)! - index.get(b)!);
  while (ready.length) {
    const n = ready.shift()!;
    order.push(n);
    for (const o of n.outputs) {
      for (const c of waiting.get(o) ?? []) {
        const left = pending.get(c)! - 1;
        pending.set(c, left);
        if (left === 0) {
          const at = ready.findIndex((r) => index.get(r)! > index.get(c)!);
          if (at < 0) ready.push(c);
          else ready.splice(at, 0, c);
        }
      }
      waiting.delete(o);
    }
  }
  if (order.length < g.nodes.length) {
    const stuck = g.nodes.filter((n) => !order.includes(n));
    const cyc = stuck.filter((n) => pending.get(n)! > 0);
    for (const n of cyc) problems.push({ op: n.opType, node: n.name, reason: 'is on a cycle (its inputs depend on its own output)' });
    order.push(...stuck);
  }
  g.nodes = order;
}

/** Names a node's subgraph attributes read from the enclosing scope (If/Loop/Scan bodies). */
function outerScopeNames(g: Graph): Map<Node, string[]> {
  const m = new Map<Node, string[]>();
  for (const n of g.nodes) {
    const names: string[] = [];
    for (const a of Object.values(n.attrs)) {
      if (a.kind !== 'graph') continue;
      const local = new Set<string>([...a.value.initializers.keys(), ...a.value.inputs.map((v) => v.name)]);
      for (const sn of a.value.nodes) {
        for (const i of sn.inputs) if (i && !local.has(i)) names.push(i);
        for (const o of sn.outputs) local.add(o);
      }
    }
    m.set(n, names);
  }
  return m;
}

/** Options of `checkGraph`. */
export interface CheckOptions {
  ops?: ReadonlySet<string>;
  check?: NodeCheck;
  checkWeights: boolean;
}

/** Graph-level and per-node checks on a canonical model; appends to `problems`. */
export function checkGraph(m: Model, problems: Problem[], opts: CheckOptions): void {
  const g = m.graph;
  if (g.outputs.length === 0) problems.push({ op: '', node: '', reason: 'the graph has no outputs' });
  const defined = new Set<string>([...g.initializers.keys(), ...g.inputs.map((v) => v.name)]);
  for (const n of g.nodes) for (const o of n.outputs) if (o) defined.add(o);
  for (const o of g.outputs) if (!defined.has(o.name)) problems.push({ op: '', node: o.name, reason: 'graph output is never produced' });
  const users = new Map<string, Node[]>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) users.set(i, [...(users.get(i) ?? []), n]);
  for (const n of g.nodes) {
    const dom = n.domain && n.domain !== 'ai.onnx' ? n.domain : '';
    // Custom-domain ops are listed as 'domain.Op' by runtimes that register them.
    const key = dom ? `${dom}.${n.opType}` : n.opType;
    if (opts.ops && !opts.ops.has(key)) problems.push({ op: key, node: n.name, reason: dom ? `unsupported op (domain '${dom}')` : 'unsupported op' });
    checkGeometry(m, n, problems);
    if (opts.check && !dom) {
      const r = opts.check(n, m);
      for (const reason of r === undefined ? [] : Array.isArray(r) ? r : [r]) problems.push({ op: n.opType, node: n.name, reason });
    }
  }
  if (opts.checkWeights) {
    for (const [name, t] of g.initializers) {
      if (t.dtype !== 'float32' && t.dtype !== 'float64') continue;
      let bad = 0;
      let first = 0;
      for (let i = 0; i < t.data.length; i++) {
        if (!Number.isFinite(t.data[i] as number)) {
          if (bad === 0) first = t.data[i] as number;
          bad++;
        }
      }
      if (bad) {
        const u = users.get(name)?.[0];
        problems.push({
          op: u?.opType ?? '',
          node: u?.name ?? name,
          reason: `initializer '${name}' holds ${bad} non-finite value${bad > 1 ? 's' : ''} (first: ${first})`,
        });
      }
    }
  }
}

/** Conv/ConvTranspose/pool attributes that contradict the weight or each other. */
function checkGeometry(m: Model, n: Node, problems: Problem[]): void {
  const op = n.opType;
  const add = (reason: string): void => void problems.push({ op, node: n.name, reason });
  const ints = (name: string): number[] | undefined => {
    const a = n.attrs[name];
    if (!a) return undefined;
    if (a.kind !== 'ints') {
      add(`attribute '${name}' must be a list of ints, is ${a.kind}`);
      return undefined;
    }
    return attrInts(n, name);
  };
  if (op === 'Conv' || op === 'ConvTranspose') {
    const w = m.graph.initializers.get(n.inputs[1] ?? '');
    const k = ints('kernel_shape');
    if (w && k && (k.length !== w.dims.length - 2 || k.some((d, i) => d !== w.dims[i + 2]))) {
      add(`kernel_shape [${k}] contradicts the weight shape [${w.dims}]`);
    }
    if (w && w.dims.length < 3) add(`weight must have rank >= 3, has shape [${w.dims}]`);
    const rank = k?.length ?? (w ? w.dims.length - 2 : undefined);
    if (rank !== undefined) spatialAttrs(rank, ints, add);
  } else if (op === 'MaxPool' || op === 'AveragePool' || op === 'LpPool') {
    const k = ints('kernel_shape');
    if (!k) add("missing required attribute 'kernel_shape'");
    else {
      if (k.some((d) => d < 1)) add(`kernel_shape [${k}] must be positive`);
      spatialAttrs(k.length, ints, add);
    }
  }
}

function spatialAttrs(rank: number, ints: (n: string) => number[] | undefined, add: (r: string) => void): void {
  for (const [name, len, min] of [
    ['strides', rank, 1],
    ['dilations', rank, 1],
    ['pads', 2 * rank, 0],
  ] as const) {
    const v = ints(name);
    if (!v) continue;
    if (v.length !== len) add(`attribute '${name}' has ${v.length} entries, ${len} expected for ${rank} spatial dims`);
    else if (v.some((d) => d < min)) add(`attribute '${name}' [${v}] must be >= ${min}`);
  }
}
