/**
 * The nonlinear layers SmartPAF works on (Relu / MaxPool, exact or already PAF), in inference
 * order, and the "linear layers between the previous nonlinearity and this one" that Alternate
 * Training fine-tunes together with a layer's PAF.
 */
import { type Model, ModelError, type Node } from '../onnx/ir.js';
import { SMARTPAF_DOMAIN } from './ops.js';

/** One nonlinear layer of a model. */
export interface NonlinearLayer {
  node: string;
  kind: 'relu' | 'maxpool';
  /** True when the node is already a PafRelu / PafMaxPool. */
  replaced: boolean;
  input: string;
  output: string;
}

const isStd = (n: Node): boolean => n.domain === '' || n.domain === 'ai.onnx';

/** Kind of a nonlinear node (exact or PAF), or undefined for anything else. */
export function nonlinearKind(n: Node, maxPool = true): NonlinearLayer['kind'] | undefined {
  if (isStd(n) && n.opType === 'Relu') return 'relu';
  if (isStd(n) && n.opType === 'MaxPool' && maxPool) return 'maxpool';
  if (n.domain === SMARTPAF_DOMAIN && n.opType === 'PafRelu') return 'relu';
  if (n.domain === SMARTPAF_DOMAIN && n.opType === 'PafMaxPool' && maxPool) return 'maxpool';
  return undefined;
}

/** Relu / MaxPool (and PAF) nodes in inference (= topological graph) order; a ModelError when there are none. */
export function nonlinearLayers(model: Model, opts: { maxPool?: boolean; source?: string } = {}): NonlinearLayer[] {
  const out: NonlinearLayer[] = [];
  for (const n of model.graph.nodes) {
    const kind = nonlinearKind(n, opts.maxPool ?? true);
    if (!kind) continue;
    if (!n.name) throw new ModelError(`${opts.source ?? model.graph.name}: a ${n.opType} node has no name; SmartPAF needs named nonlinear nodes`);
    out.push({ node: n.name, kind, replaced: n.domain === SMARTPAF_DOMAIN, input: n.inputs[0]!, output: n.outputs[0]! });
  }
  if (out.length === 0) {
    throw new ModelError(`${opts.source ?? model.graph.name}: no Relu${(opts.maxPool ?? true) ? ' or MaxPool' : ''} node to replace with a PAF`);
  }
  return out;
}

/**
 * Float initializers of the linear layers feeding nonlinear layer `node`: walk producers back from
 * its input, stopping at nonlinear nodes. When that finds nothing (a MaxPool right after a Relu)
 * the walk continues through the nonlinearities to the nearest linear layers, so every layer has
 * something to alternate with. For the last nonlinear layer the layers after it (the classifier
 * head) are included too, since nothing later would ever adapt them. `keep` filters candidates
 * (e.g. the runtime's trainability rule); PAF coefficients are never included.
 */
export function linearGroup(model: Model, node: string, keep: (init: string) => boolean): string[] {
  const producer = new Map<string, Node>();
  for (const n of model.graph.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const start = model.graph.nodes.find((n) => n.name === node);
  if (!start) throw new ModelError(`${model.graph.name}: no node named '${node}'`);
  const isParam = (v: string) => model.graph.initializers.has(v) && keep(v);
  const collect = (throughNonlinear: boolean): Set<string> => {
    const found = new Set<string>();
    const seen = new Set<Node>();
    const stack = [start.inputs[0]!];
    while (stack.length) {
      const v = stack.pop()!;
      const p = producer.get(v);
      if (!p || seen.has(p)) continue;
      seen.add(p);
      const nl = nonlinearKind(p) !== undefined;
      if (nl && !throughNonlinear) continue;
      if (nl && found.size > 0) continue; // went through one nonlinearity and already found weights
      for (const i of p.inputs) if (i && isParam(i) && !nl) found.add(i);
      for (const i of p.inputs) if (i && !model.graph.initializers.has(i)) stack.push(i);
    }
    return found;
  };
  let group = collect(false);
  if (group.size === 0) group = collect(true);
  // Trailing head after the last nonlinear layer.
  const idx = model.graph.nodes.indexOf(start);
  const later = model.graph.nodes.slice(idx + 1);
  if (!later.some((n) => nonlinearKind(n) !== undefined)) {
    for (const n of later) for (const i of n.inputs) if (i && isParam(i)) group.add(i);
  }
  return [...group];
}
