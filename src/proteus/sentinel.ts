/**
 * Sentinel generator: fake subgraphs with exactly the real subgraph's interface (number, order,
 * dtypes and shapes of inputs and outputs), assembled per kind of piece (sentinel-cnn.ts,
 * sentinel-tf.ts, the op-level walk of sentinel-walk.ts) on the generator core (sentinel-gen.ts),
 * with weights resampled from the model's own weights under a secret stream (weights.ts). Among
 * cheap attempts, a sentinel is kept whose skip structure (residual joins, branch points) and width
 * diversity equal the real subgraph's and whose size is near a target drawn around it.
 */

import type { Model } from '../onnx/ir.js';
import { ModelError, sizeOf } from '../onnx/ir.js';
import { inferShapes } from '../onnx/shape.js';
import type { Rng } from './rng.js';
import { secretRng } from './rng.js';
import { cnnAttempt, eligibleBlocks, isCnn } from './sentinel-cnn.js';
import { Dead, FILLS, same } from './sentinel-gen.js';
import { isTransformer, tfAttempt } from './sentinel-tf.js';
import { attempt } from './sentinel-walk.js';
import type { OpStats } from './stats.js';
import { profileOf } from './stats.js';
import { WeightPool } from './weights.js';

export { opsetOf } from './sentinel-gen.js';

/** Options of `generateSentinels`. */
export interface SentinelOptions {
  /** Corpus statistics (see `learnStats`). */
  stats: OpStats;
  /** Test-only reproducible stream (guessable: never for a real bundle); default: a fresh secret stream. */
  seed?: number;
  /** Or a stream to draw from (wins over `seed`). */
  rng?: Rng;
  /** Real weights to resample sentinel weights from (default: the real subgraph's own). */
  pool?: WeightPool;
  /** Op types of the whole model the subgraph was cut from: styles a piece alone does not show (the GELU flavour). */
  modelOps?: ReadonlySet<string>;
  /** Attempts per sentinel before giving up (default 12). */
  attempts?: number;
}

/** The I/O shapes a sentinel must reproduce: static except dimension 0. */
function checkInterface(real: Model): void {
  for (const v of [...real.graph.inputs, ...real.graph.outputs]) {
    const what = `subgraph '${real.graph.name}' value '${v.name}'`;
    if (!v.shape || v.shape.length === 0) throw new ModelError(`${what} has no known shape: cannot build sentinels for it`);
    if (v.shape.slice(1).some((d) => typeof d !== 'number'))
      throw new ModelError(`${what} has a symbolic dimension past the first: sentinels need static shapes`);
    if (v.dtype !== 'float32' && !(v.dtype === 'int64' && real.graph.inputs.includes(v)))
      throw new ModelError(`${what} has dtype ${v.dtype}: sentinels support float32 values and int64 index inputs`);
  }
}

/** Whether `m` computes exactly the declared output types (shape inference over the whole graph). */
export function interfaceHolds(m: Model): boolean {
  const info = inferShapes(m);
  return m.graph.outputs.every((o) => {
    const v = info.get(o.name);
    return v !== undefined && v.dtype === o.dtype && v.shape !== undefined && same(v.shape, o.shape ?? []);
  });
}

/** Dataflow topology of a graph: joins (nodes reading ≥ 2 activations), branches (extra reads of shared values), distinct weight dims. */
export function topologyOf(m: Model): { joins: number; branches: number; dims: number } {
  const g = m.graph;
  const uses = new Map<string, number>();
  let joins = 0;
  for (const n of g.nodes) {
    let acts = 0;
    for (const t of n.inputs) {
      if (!t || g.initializers.has(t)) continue;
      acts++;
      uses.set(t, (uses.get(t) ?? 0) + 1);
    }
    if (acts >= 2) joins++;
  }
  let branches = 0;
  for (const c of uses.values()) branches += c - 1;
  // Width diversity: distinct weight dimensions (kernel sizes, channel counts, feature widths).
  const dims = new Set<number>();
  for (const t of g.initializers.values()) for (const d of t.dims) dims.add(d);
  return { joins, branches, dims: dims.size };
}

/** Structure of a graph without widths or weights: op types, kernels, strides, depthwise-ness and wiring. */
export function structureOf(m: Model): string {
  const g = m.graph;
  const prod = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => prod.set(o, i)));
  const inIdx = new Map(g.inputs.map((v, i) => [v.name, i]));
  return g.nodes
    .map((n) => {
      const a = n.attrs;
      const k = a.kernel_shape?.kind === 'ints' ? a.kernel_shape.value.join('x') : '';
      const st = a.strides?.kind === 'ints' ? a.strides.value.join('x') : '';
      const dw = a.group?.kind === 'int' && a.group.value > 1 ? 'dw' : '';
      const ins = n.inputs.filter((t) => t && !g.initializers.has(t)).map((t) => (prod.has(t) ? String(prod.get(t)) : `i${inIdx.get(t)}`));
      return `${n.opType}${k}/${st}${dw}(${ins.sort().join(',')})`;
    })
    .join(';');
}

/** Weight elements of a graph (initializer sizes; drawn lazily, so read off the dims). */
function paramsOf(m: Model): number {
  let n = 0;
  for (const t of m.graph.initializers.values()) n += sizeOf(t.dims);
  return n;
}

/** Share of a graph's convolutions that are 1×1 (0 without convolutions). */
function pointwise(m: Model): number {
  const convs = m.graph.nodes.filter((n) => n.opType === 'Conv');
  const ones = convs.filter((n) => n.attrs.kernel_shape?.kind === 'ints' && n.attrs.kernel_shape.value.every((v) => v === 1)).length;
  return convs.length ? ones / convs.length : 0;
}

/** Generate `k` sentinels for one real subgraph (same interface, realistic body, matched weights). */
export function generateSentinels(real: Model, k: number, opts: SentinelOptions): Model[] {
  checkInterface(real);
  const rng = opts.rng ?? secretRng(opts.seed);
  const pool = opts.pool ?? new WeightPool([real]);
  const prof = profileOf(real);
  const blocks = isCnn(real, prof) ? eligibleBlocks(prof, opts.stats) : [];
  const tf = !blocks.length && isTransformer(real, prof);
  // Structured pieces also match the real subgraph's skip structure, which takes more (cheap) attempts.
  const structured = blocks.length > 0 || tf;
  const tries = opts.attempts ?? (structured ? 24 : 12);
  const topo = topologyOf(real);
  const shape = structured ? structureOf(real) : '';
  const softmaxes = (m: Model): number => m.graph.nodes.filter((n) => n.opType === 'Softmax').length;
  const cores = softmaxes(real);
  const realPointwise = pointwise(real);
  const out: Model[] = [];
  for (let i = 0; i < k; i++) {
    const target = Math.max(1, Math.round(prof.nodes + rng.normal() * Math.max(1, prof.nodes * 0.15)));
    const tol = Math.max(2, target * 0.15);
    // A weight count around the real one, drawn per sentinel: aiming every sentinel at the real count
    // left the real member the smallest file of its group (attempts overshoot more than they undershoot).
    const paramTarget = prof.params * 2 ** (0.3 * rng.normal());
    // Distance of an attempt from the target: node count in tolerance units, then joins and branches
    // (a sentinel with fewer residual joins or branch points than its real subgraph stands out),
    // and the same width diversity.
    const dist = (m: Model): number => {
      const t = topologyOf(m);
      let dn = Math.max(0, Math.abs(m.graph.nodes.length - target) - tol) / tol;
      if (!structured) return Math.abs(m.graph.nodes.length - target) / tol;
      // Transformer layers come in few sizes: keep the node count centred on the target, not banded;
      // and as many attention cores as the real piece (their mask constants dominate weight statistics).
      if (tf) dn = Math.abs(m.graph.nodes.length - target) / tol + 3 * Math.abs(softmaxes(m) - cores);
      // A copy of the real structure hides nothing: kept only when no other attempt comes close.
      const copy = structureOf(m) === shape ? 1 : 0;
      // CNN pieces also keep the real kernel mix (budget-driven 1×1 fallbacks made sentinels 1×1-heavy;
      // depthwise pieces are left out: their 1×1/3×3 mix is fixed by the inverted-residual blocks).
      const kernels = blocks.length && !prof.depthwise ? 6 * Math.abs(pointwise(m) - realPointwise) : 0;
      // And a weight count near the real one (wider blocks drawn from corpus ratios can overshoot it).
      const weights = blocks.length ? 2 * Math.abs(Math.log2((paramsOf(m) + 1) / (paramTarget + 1))) : 0;
      return dn + Math.abs(t.joins - topo.joins) + Math.abs(t.branches - topo.branches) + 0.5 * Math.abs(t.dims - topo.dims) + copy + kernels + weights;
    };
    let best: Model | undefined;
    let bestD = Infinity;
    let lastErr = '';
    for (let t = 0; t < tries; t++) {
      try {
        // CNN pieces are assembled from learned blocks, transformer pieces from whole layers; the
        // op-level walk is the fallback.
        const own = structured && (best !== undefined || t < tries - 2);
        const m =
          own && blocks.length
            ? cnnAttempt(real, prof, opts.stats, rng, target, blocks)
            : own
              ? tfAttempt(real, prof, opts.stats, rng, target, opts.modelOps)
              : attempt(real, prof, opts.stats, rng, target);
        if (!interfaceHolds(m)) {
          lastErr = 'output shapes did not check';
          continue;
        }
        const d = dist(m);
        if (d < bestD) {
          best = m;
          bestD = d;
        }
        if (structured ? d === 0 : d <= 1) break;
      } catch (e) {
        if (!(e instanceof Dead)) {
          if (e instanceof ModelError) throw e;
          lastErr = (e as Error).message;
        }
      }
    }
    if (!best) throw new ModelError(`could not generate a sentinel for subgraph '${real.graph.name}' (${lastErr || 'no valid walk'})`);
    // Each sentinel reads the weights of one real subgraph (drawn secretly), as a real piece would.
    FILLS.get(best)?.(pool, rng.int(Math.max(1, pool.parts)));
    out.push(best);
  }
  return out;
}
