/**
 * Static shape inference over the IR: dtype and (possibly symbolic) shape of every value.
 *
 * Symbolic dims ('batch') flow through ops that keep them; a dim that cannot be expressed becomes
 * null. Small integer tensors (shape vectors built by Shape/Gather/Concat/... as PyTorch exports
 * them, or constants) are tracked element-wise so Reshape/Expand/Slice targets resolve, symbols included.
 */

import type { Dim, Model, Tensor, ValueInfo } from './ir.js';
import { cloneModel, ModelError } from './ir.js';
import { Ctx, fallbackDtypes, formatShape, INT_DTYPES, MAX_VALS, Missing, NoShape, type Out, RULES, tensorVals } from './shape-rules.js';

/** Options of `inferShapes`. */
export interface ShapeOptions {
  /** Throw a ModelError on an op without an inference rule instead of skipping its outputs. */
  strict?: boolean;
}

/** Render a shape for error messages: [batch, 3, ?]. */
export { formatShape };

/**
 * Infer dtype and shape of every value: graph inputs, initializers and node outputs.
 * Outputs of ops without a rule are left out (or, with `strict`, a ModelError); annotations
 * already in `graph.valueInfo` stand in for them. A shape mismatch is a ModelError naming the node.
 */
export function inferShapes(model: Model, opts: ShapeOptions = {}): Map<string, ValueInfo> {
  const g = model.graph;
  const env = new Map<string, ValueInfo>();
  const vals = new Map<string, Dim[]>();
  const floatConsts = new Map<string, Tensor>();
  const annotated = new Map(g.valueInfo.map((v) => [v.name, v]));
  for (const [name, t] of g.initializers) {
    env.set(name, { name, dtype: t.dtype, shape: [...t.dims] });
    const v = tensorVals(t);
    if (v) vals.set(name, v);
    if ((t.dtype === 'float32' || t.dtype === 'float64') && t.data.length <= MAX_VALS) floatConsts.set(name, t);
  }
  for (const v of g.inputs) {
    env.set(v.name, { name: v.name, dtype: v.dtype, shape: v.shape ? [...v.shape] : undefined });
    // An input that overrides an initializer may take any value at run time.
    vals.delete(v.name);
    floatConsts.delete(v.name);
  }
  for (const node of g.nodes) {
    const c = new Ctx(node, env, vals, floatConsts);
    const rule = node.domain === '' || node.domain === 'ai.onnx' ? RULES[node.opType] : undefined;
    let outs: Out[] | undefined;
    if (!rule) {
      if (opts.strict) c.fail(`no shape inference rule for op ${node.domain ? `${node.domain}.` : ''}${node.opType}`);
    } else {
      try {
        outs = rule(c);
      } catch (e) {
        if (e instanceof NoShape) {
          try {
            outs = fallbackDtypes(c).map((dtype) => ({ dtype }));
          } catch (e2) {
            if (!(e2 instanceof Missing)) throw e2;
          }
        } else if (e instanceof Missing) {
          if (opts.strict) c.fail(`input '${e.message}' is not defined`);
        } else if (e instanceof ModelError) {
          throw e;
        } else {
          throw new ModelError((e as Error).message); // attribute errors from ir.ts already name the node
        }
      }
    }
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const o = outs?.[i];
      if (o) {
        env.set(name, { name, dtype: o.dtype, shape: o.shape ? [...o.shape] : undefined });
        if (o.vals && INT_DTYPES.has(o.dtype) && o.vals.length <= MAX_VALS) vals.set(name, o.vals);
      } else if (annotated.has(name)) {
        env.set(name, { ...annotated.get(name)! });
      }
    });
  }
  return env;
}

/**
 * Copy of `model` whose graph.valueInfo holds the inferred info of every intermediate value;
 * graph outputs declared without a shape get the inferred one too.
 */
export function annotateShapes(model: Model, opts: ShapeOptions = {}): Model {
  const info = inferShapes(model, opts);
  const m = cloneModel(model);
  const g = m.graph;
  const skip = new Set([...g.inputs, ...g.outputs].map((v) => v.name));
  for (const k of g.initializers.keys()) skip.add(k);
  g.valueInfo = [...info.values()].filter((v) => !skip.has(v.name));
  g.outputs = g.outputs.map((o) => (o.shape === undefined && info.get(o.name)?.shape ? { ...o, shape: info.get(o.name)!.shape } : o));
  return m;
}
