/** Shared by the MPC plan tests: deterministic test weights, two-party runs with per-party models, ORT references. */

import { prepareWeights, runPlan, type WeightMode } from '../../src/mpc/executor.js';
import { runTwoParty } from '../../src/mpc/local.js';
import { applyPost, planModel } from '../../src/mpc/plan.js';
import { reveal, shareInput } from '../../src/mpc/protocols/arith.js';
import { decodeFixed, encodeFixed } from '../../src/mpc/ring.js';
import type { Model, Tensor } from '../../src/onnx/ir.js';
import { floatTensor } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';

/** Deterministic pseudo-random floats in [lo, hi) (test data, not secret). */
export function lcg(seed: number): (lo?: number, hi?: number) => number {
  let s = seed >>> 0 || 1;
  return (lo = -1, hi = 1) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((s >>> 8) / 2 ** 24) * (hi - lo);
  };
}

/** A float tensor of `dims` filled from `rnd`. */
export function randTensor(rnd: (lo?: number, hi?: number) => number, dims: number[], lo = -1, hi = 1): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return floatTensor(
    dims,
    Array.from({ length: n }, () => rnd(lo, hi)),
  );
}

/** `model` with every float32 initializer replaced by `fill(i)` values (party 0's view in tests). */
export function refill(model: Model, fill: () => number, keep: Set<string> = new Set()): Model {
  const inits = new Map<string, Tensor>();
  for (const [k, t] of model.graph.initializers) {
    inits.set(k, t.dtype === 'float32' && !keep.has(k) ? floatTensor(t.dims, Array.from({ length: t.data.length }, fill)) : t);
  }
  return { ...model, graph: { ...model.graph, initializers: inits } };
}

/**
 * Private inference in one process: party 0 plans `model0`, party 1 plans `model1` (the real
 * weights); returns party 0's decoded (and post-processed) output.
 */
export async function twoParty(model0: Model, model1: Model, x: Float32Array, batch: number, weights: WeightMode, fracBits = 16): Promise<Float32Array> {
  const plans = [planModel(model0, batch), planModel(model1, batch)] as const;
  const [y0] = await runTwoParty(
    async (ctx) => {
      const plan = plans[ctx.party];
      const w = await prepareWeights(ctx, plan, weights);
      const xs = await shareInput(ctx, 0, ctx.party === 0 ? encodeFixed(x, ctx.fracBits) : undefined, x.length);
      const { output } = await runPlan(ctx, plan, w, xs, { weights });
      const y = await reveal(ctx, output, 0);
      return y && applyPost(plan, decodeFixed(y, ctx.fracBits));
    },
    { fracBits },
  );
  return y0!;
}

/** onnxruntime's output of `model` on `x` with `dims`. */
export async function ortOut(model: Model, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const inName = model.graph.inputs.find((v) => !model.graph.initializers.has(v.name))!.name;
  const out = await runOrt(model, { [inName]: { dtype: 'float32', dims, data: x } });
  return out[model.graph.outputs[0]!.name]!.data as Float32Array;
}

/** max |a − b|. */
export function maxDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
