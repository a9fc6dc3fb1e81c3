/** Checking a recovered model against the original: random feeds and relative output error. */

import type { Model, Tensor } from '../onnx/ir.js';
import { allocArray, ModelError, sizeOf } from '../onnx/ir.js';
import { ortSession, runOrt } from '../onnx/ort.js';
import type { Wiring } from './extract.js';
import { Prng } from './rng.js';

/** Options of `randomFeeds`. */
export interface FeedOptions {
  /** Value of symbolic (named) dimensions such as 'batch' (default 1). */
  batch?: number;
  /** PRNG seed (default: random). */
  seed?: number;
}

/** Largest valid index for an integer input: the smallest table it indexes through a Gather, else 2. */
function indexBound(model: Model, input: string): number {
  let bound = Infinity;
  for (const n of model.graph.nodes) {
    if (n.opType !== 'Gather' || n.inputs[1] !== input) continue;
    const data = model.graph.initializers.get(n.inputs[0]!);
    const axisAttr = n.attrs.axis;
    const axis = axisAttr?.kind === 'int' ? axisAttr.value : 0;
    if (data) bound = Math.min(bound, data.dims[axis < 0 ? axis + data.dims.length : axis]!);
  }
  return Number.isFinite(bound) ? bound : 2;
}

/** Random inputs for every graph input: N(0,1) floats, valid Gather indices for integers. */
export function randomFeeds(model: Model, opts: FeedOptions = {}): Record<string, Tensor> {
  const rng = new Prng(opts.seed);
  const batch = opts.batch ?? 1;
  const feeds: Record<string, Tensor> = {};
  for (const v of model.graph.inputs) {
    if (model.graph.initializers.has(v.name)) continue;
    if (!v.shape) throw new ModelError(`input '${v.name}' of '${model.graph.name}' has no shape: cannot draw a random feed`);
    const dims = v.shape.map((d) => (typeof d === 'number' ? d : batch));
    const data = allocArray(v.dtype, sizeOf(dims));
    if (data instanceof BigInt64Array) {
      const hi = indexBound(model, v.name);
      for (let i = 0; i < data.length; i++) data[i] = BigInt(rng.int(hi));
    } else if (data instanceof Float32Array || data instanceof Float64Array) {
      for (let i = 0; i < data.length; i++) data[i] = rng.normal();
    } else {
      const hi = v.dtype === 'bool' ? 2 : indexBound(model, v.name);
      for (let i = 0; i < data.length; i++) data[i] = rng.int(hi);
    }
    feeds[v.name] = { dtype: v.dtype, dims, data };
  }
  return feeds;
}

/** max|a−b| / max|b| over one tensor pair (max|a−b| when b is all zero); Infinity on a shape mismatch. */
export function relativeError(a: Tensor, b: Tensor): number {
  if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.data.length; i++) {
    const x = Number(a.data[i]!);
    const y = Number(b.data[i]!);
    if (Number.isNaN(x) !== Number.isNaN(y)) return Infinity;
    diff = Math.max(diff, Math.abs(x - y));
    scale = Math.max(scale, Math.abs(y));
  }
  return scale > 0 ? diff / scale : diff;
}

/** Largest relative error over the outputs of `expected`; Infinity if `actual` lacks one. */
export function maxRelativeError(actual: Record<string, Tensor>, expected: Record<string, Tensor>): number {
  let worst = 0;
  for (const [k, b] of Object.entries(expected)) {
    const a = actual[k];
    worst = Math.max(worst, a ? relativeError(a, b) : Infinity);
  }
  return worst;
}

/**
 * Run subgraph models one after another in onnxruntime, passing boundary values by the wiring,
 * and return the original model's outputs: proves every subgraph loads and runs on its own.
 */
export async function runParts(parts: readonly Model[], wiring: Wiring, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const values = new Map<string, Tensor>(Object.entries(feeds));
  for (let i = 0; i < parts.length; i++) {
    const m = parts[i]!;
    const w = wiring.parts[i]!;
    const f: Record<string, Tensor> = {};
    m.graph.inputs.forEach((v, j) => {
      const t = values.get(w.inputs[j]!);
      if (!t) throw new ModelError(`subgraph ${i} needs '${w.inputs[j]}', which no earlier subgraph produced`);
      f[v.name] = t;
    });
    const s = await ortSession(m, { graphOptimizationLevel: 'disabled' });
    try {
      const out = await runOrt(m, f, s);
      m.graph.outputs.forEach((v, j) => values.set(w.outputs[j]!, out[v.name]!));
    } finally {
      await s.release();
    }
  }
  return Object.fromEntries(wiring.outputs.map((v) => [v.name, values.get(v.name)!]));
}
