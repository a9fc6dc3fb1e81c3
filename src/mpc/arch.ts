/**
 * What party 0 may know of a model under `--weights secret`: the architecture. Every float
 * initializer that carries model information is a weight (party 1 secret-shares it); the only
 * constants both parties use in the clear are those the architecture itself fixes — integer
 * tensors (shapes, axes, pads, indices) and the float inputs listed in ARCH_SLOTS (Clip bounds, a
 * Pad value). Their values are part of the architecture hash the handshake checks.
 */

import { canonicalize } from '../onnx/canonical.js';
import { allocArray, type Model, type Tensor } from '../onnx/ir.js';
import { sha256Hex } from './net/handshake.js';

/** The canonical form the plan runs on (Constant nodes are initializers there, so they are covered too). */
const canonical = (model: Model): Model => canonicalize(model, { throwOnProblems: false }).model;

/** Per op: input positions whose constants are architecture (public), not weights. */
export const ARCH_SLOTS: Readonly<Record<string, readonly number[]>> = {
  Reshape: [1],
  Pad: [1, 2, 3],
  Clip: [1, 2],
  Squeeze: [1],
  Unsqueeze: [1],
  Slice: [1, 2, 3, 4],
  Expand: [1],
  Tile: [1],
  Split: [1],
  Resize: [1, 2, 3],
  Upsample: [1],
  ReduceMean: [1],
  ReduceSum: [1],
};

/**
 * Names of the initializers that are architecture: non-float tensors, and float tensors used only
 * in ARCH_SLOTS positions. Decided from the graph's structure, never from values.
 */
export function architectureConstants(model: Model): Set<string> {
  const g = model.graph;
  const weightUse = new Set<string>();
  for (const n of g.nodes) {
    const slots = ARCH_SLOTS[n.opType] ?? [];
    n.inputs.forEach((name, i) => {
      if (name && !slots.includes(i)) weightUse.add(name);
    });
  }
  // A graph output that is an initializer reveals it: treat it as a weight (refused by the plan anyway).
  for (const o of g.outputs) weightUse.add(o.name);
  const out = new Set<string>();
  for (const [name, t] of g.initializers) {
    const isFloat = t.dtype === 'float32' || t.dtype === 'float64';
    if (!isFloat || !weightUse.has(name)) out.add(name);
  }
  return out;
}

const tensorValues = (t: Tensor): unknown[] => Array.from(t.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : v));

/**
 * Hash of the architecture: nodes (ops, wiring, attributes), inputs, outputs, every initializer's
 * name, type and shape, and the values of the architecture constants — not the weights' values.
 */
export function architectureHash(original: Model): string {
  const model = canonical(original);
  const g = model.graph;
  const arch = architectureConstants(model);
  const attr = (v: Model['graph']['nodes'][number]['attrs'][string]): unknown =>
    v.kind === 'tensor' ? { dtype: v.value.dtype, dims: v.value.dims, data: tensorValues(v.value) } : v.kind === 'graph' ? 'graph' : v.value;
  const desc = {
    nodes: g.nodes.map((n) => ({ op: n.opType, d: n.domain, i: n.inputs, o: n.outputs, a: Object.entries(n.attrs).map(([k, v]) => [k, v.kind, attr(v)]) })),
    inputs: g.inputs.map((v) => [v.name, v.dtype, v.shape]),
    outputs: g.outputs.map((v) => [v.name, v.dtype, v.shape]),
    inits: [...g.initializers].map(([k, t]) => [k, t.dtype, t.dims, arch.has(k) ? tensorValues(t) : null]),
  };
  return sha256Hex(JSON.stringify(desc));
}

/** Canonical `model` with every weight initializer zero-filled (architecture constants kept): what party 0 receives. */
export function stripWeights(original: Model): Model {
  const model = canonical(original);
  const arch = architectureConstants(model);
  const inits = new Map<string, Tensor>();
  for (const [k, t] of model.graph.initializers)
    inits.set(k, arch.has(k) ? t : { dtype: t.dtype, dims: [...t.dims], data: allocArray(t.dtype, t.data.length) });
  const metadata = { ...model.metadata, 'privml.architecture': 'weights zero-filled; party 0 of --weights secret' };
  return { ...model, metadata, graph: { ...model.graph, initializers: inits } };
}
