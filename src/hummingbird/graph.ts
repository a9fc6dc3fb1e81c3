/** Graph surgery for HummingBird: find the ReLUs, swap them for simulated ones and back, fingerprint a model. */
import { createHash } from 'node:crypto';
import { type Attribute, cloneModel, type Model, ModelError, type Node } from '../onnx/ir.js';
import { HB_DOMAIN, REDUCED_RELU } from './op.js';
import type { BitRange } from './simulate.js';

/** The model's Relu nodes in graph order (the layers a config assigns bit ranges to). */
export function reluNodes(model: Model): Node[] {
  return model.graph.nodes.filter((n) => n.opType === 'Relu' && (n.domain === '' || n.domain === 'ai.onnx'));
}

/**
 * A copy of `model` whose Relu nodes are `ai.privml.hummingbird.ReducedRelu` nodes with the same
 * names, inputs and outputs (bit range attributes from `ranges`, default [0, 64)). Weights are shared.
 */
export function toSimModel(model: Model, ranges: Record<string, BitRange> = {}): Model {
  const relus = new Set(reluNodes(model).map((n) => n.name));
  if (relus.size === 0) throw new ModelError(`${model.graph.name || 'model'}: no Relu nodes to simulate`);
  const out = cloneModel(model);
  out.graph.nodes = out.graph.nodes.map((n) => {
    if (!relus.has(n.name)) return n;
    const r = ranges[n.name] ?? { msb: 64, lsb: 0 };
    const attrs: Record<string, Attribute> = { msb: { kind: 'int', value: r.msb }, lsb: { kind: 'int', value: r.lsb } };
    return { ...n, opType: REDUCED_RELU, domain: HB_DOMAIN, attrs };
  });
  if (!out.opsetImports.some((o) => o.domain === HB_DOMAIN)) out.opsetImports = [...out.opsetImports, { domain: HB_DOMAIN, version: 1 }];
  return out;
}

/**
 * `original` with its float initializers replaced by `trained`'s (same names): the fine-tuned
 * weights in a graph whose Relu nodes are plain Relu again, so the MPC engine runs it.
 */
export function withWeightsOf(original: Model, trained: Model): Model {
  const out = cloneModel(original);
  for (const [name, t] of out.graph.initializers) {
    const nt = trained.graph.initializers.get(name);
    if (!nt) throw new ModelError(`${original.graph.name || 'model'}: fine-tuned model lacks initializer '${name}'`);
    if (nt.dtype !== t.dtype || nt.dims.join(',') !== t.dims.join(',')) {
      throw new ModelError(`${original.graph.name || 'model'}: initializer '${name}' changed shape or type during fine-tuning`);
    }
    out.graph.initializers.set(name, nt);
  }
  return out;
}

/**
 * SHA-256 of the model's computation: node list (names, ops, wiring, attributes) and every
 * initializer's bytes, but not metadata or doc strings, so re-saving or annotating keeps the hash.
 */
export function modelHash(model: Model): string {
  const h = createHash('sha256');
  const attr = (a: Attribute): unknown => {
    if (a.kind === 'tensor') return { dims: a.value.dims, dtype: a.value.dtype, data: bytesHash(a.value.data) };
    if (a.kind === 'graph') return { graph: a.value.nodes.length };
    return a.value;
  };
  for (const n of model.graph.nodes) {
    const attrs = Object.keys(n.attrs)
      .sort()
      .map((k) => [k, attr(n.attrs[k]!)]);
    h.update(JSON.stringify([n.name, n.domain, n.opType, n.inputs, n.outputs, attrs]));
  }
  for (const name of [...model.graph.initializers.keys()].sort()) {
    const t = model.graph.initializers.get(name)!;
    h.update(JSON.stringify([name, t.dtype, t.dims]));
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  h.update(JSON.stringify([model.graph.inputs.map((v) => v.name), model.graph.outputs.map((v) => v.name)]));
  return h.digest('hex');
}

function bytesHash(data: ArrayBufferView): string {
  return createHash('sha256')
    .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    .digest('hex');
}
