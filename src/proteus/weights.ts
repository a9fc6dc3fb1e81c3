/**
 * Sentinel weight values, resampled from the model's own weights of the same kind (op and input
 * slot): the optimizer sees the real weights anyway, so drawing from them gives sentinels the real
 * value distribution, tails, sparsity, per-channel norm spread, BatchNorm running-statistic ranges
 * and float bit patterns. Values are drawn from the smoothed empirical distribution (uniform between
 * adjacent order statistics, exponential tails past the extremes) with a secret stream, so no exact
 * value is copied across members; tensors with few distinct values (constants, quantised weights)
 * are resampled exactly, as their duplicates are part of what real weights look like.
 */
import type { Model } from '../onnx/ir.js';
import { channelAxis } from './battery.js';
import type { Rng } from './rng.js';
import { fanIn, weightKey } from './stats.js';

/** One real weight tensor, prepared for sampling. */
interface Source {
  /** Sorted values of each output channel (one row for vectors and tables). */
  rows: Float32Array[];
  /** Elements per row (= fan-in for matrices, 0 otherwise). */
  fan: number;
  /** Few distinct values: resample exactly instead of smoothing. */
  discrete: boolean;
  /** Trailing mantissa bits that are zero in every value (quantised sources keep their grid). */
  zeroBits: number;
}

/** A pool of real weights by kind, per subgraph of the model (a sentinel reads one subgraph's weights, like a real piece would). */
export class WeightPool {
  private readonly byPart: Map<string, Source[]>[] = [];
  private readonly all = new Map<string, Source[]>();

  /** Index the float weights of `parts` (the real subgraphs of one model). */
  constructor(parts: readonly Model[]) {
    for (const m of parts) {
      const own = new Map<string, Source[]>();
      const g = m.graph;
      const seen = new Set<string>();
      for (const n of g.nodes) {
        n.inputs.forEach((t, slot) => {
          const w = g.initializers.get(t);
          if (!w || seen.has(t) || w.dtype !== 'float32' || w.data.length < 2) return;
          const d = w.data as Float32Array;
          if (n.opType === 'Add' && d.some((v) => v <= -1e3)) return; // masks are constants, not weights
          seen.add(t);
          const key = weightKey(n.opType, slot, w.dims.length);
          const src = prepare(d, w.dims, channelAxis(n.opType, slot, w.dims), fanIn(n.opType, slot, w.dims));
          (own.get(key) ?? own.set(key, []).get(key)!).push(src);
          (this.all.get(key) ?? this.all.set(key, []).get(key)!).push(src);
        });
      }
      this.byPart.push(own);
    }
  }

  /** Number of subgraphs indexed. */
  get parts(): number {
    return this.byPart.length;
  }

  /** Whether any real weight of this kind exists. */
  has(key: string): boolean {
    return this.all.has(key);
  }

  /**
   * Values for a sentinel weight of kind `key` and shape `dims` read by `op` at `slot`: from a
   * random tensor of that kind in subgraph `part` (else anywhere in the model); undefined when the
   * model has no weight of this kind.
   */
  sample(key: string, op: string, slot: number, dims: readonly number[], part: number, rng: Rng): Float32Array | undefined {
    const list = this.byPart[part]?.get(key) ?? this.all.get(key);
    if (!list?.length) return undefined;
    const src = list[rng.int(list.length)]!;
    const n = dims.reduce((p, q) => p * q, 1);
    const out = new Float32Array(n);
    const axis = channelAxis(op, slot, dims);
    const fan = fanIn(op, slot, dims);
    if (axis < 0 || src.fan === 0) {
      const all = src.rows.length === 1 ? src.rows[0]! : merged(src);
      for (let i = 0; i < n; i++) out[i] = quantise(draw(all, src, rng), src.zeroBits);
      return out;
    }
    // Channel by channel: each output channel draws from one real channel, so the spread of
    // channel norms is the real one; the scale follows the fan-in as trained weights' does.
    const c = dims[axis]!;
    const inner = dims.slice(axis + 1).reduce((p, q) => p * q, 1);
    const outer = n / (c * inner);
    const scale = src.discrete || fan === 0 ? 1 : Math.sqrt(src.fan / fan);
    for (let ch = 0; ch < c; ch++) {
      const row = src.rows[rng.int(src.rows.length)]!;
      for (let o = 0; o < outer; o++) {
        const base = o * c * inner + ch * inner;
        for (let i = 0; i < inner; i++) out[base + i] = quantise(draw(row, src, rng) * scale, src.zeroBits);
      }
    }
    return out;
  }
}

/** Sorted rows, fan-in, discreteness and bit grid of a real tensor. */
function prepare(d: Float32Array, dims: readonly number[], axis: number, fan: number): Source {
  const rows: Float32Array[] = [];
  if (axis < 0) rows.push(Float32Array.from(d));
  else {
    const c = dims[axis]!;
    const inner = dims.slice(axis + 1).reduce((p, q) => p * q, 1);
    const outer = d.length / (c * inner);
    for (let ch = 0; ch < c; ch++) {
      const r = new Float32Array(outer * inner);
      for (let o = 0; o < outer; o++) r.set(d.subarray(o * c * inner + ch * inner, o * c * inner + (ch + 1) * inner), o * inner);
      rows.push(r);
    }
  }
  for (const r of rows) r.sort();
  const sorted = rows.length === 1 ? rows[0]! : Float32Array.from(d).sort();
  let distinct = 1;
  for (let i = 1; i < sorted.length; i++) if (sorted[i] !== sorted[i - 1]) distinct++;
  const bits = new Uint32Array(d.buffer, d.byteOffset, d.length);
  let zeroBits = 23;
  for (let i = 0; i < bits.length && zeroBits > 0; i++) {
    const m = bits[i]! & 0x7fffff;
    if (bits[i]! << 1 === 0) continue; // ±0 says nothing about the grid
    zeroBits = Math.min(zeroBits, m === 0 ? 23 : 31 - Math.clz32(m & -m));
  }
  // Exact resampling for tensors with many repeats (constants, a few levels, quantised grids).
  return { rows, fan: axis < 0 ? 0 : fan, discrete: distinct < 0.5 * d.length, zeroBits };
}

/** All rows of a source, sorted together (a channel-split source read as one vector). */
function merged(src: Source): Float32Array {
  const n = src.rows.reduce((p, r) => p + r.length, 0);
  const out = new Float32Array(n);
  let at = 0;
  for (const r of src.rows) {
    out.set(r, at);
    at += r.length;
  }
  return out.sort();
}

const U32 = 2 ** 32;

/** One draw from the smoothed empirical distribution of sorted values `s`. */
function draw(s: Float32Array, src: Source, rng: Rng): number {
  const n = s.length;
  if (src.discrete || n < 2) return s[rng.nextU32() % n]!;
  // Past the extremes with the probability a new sample would land there (1/(n+1) each side).
  const t = rng.nextU32() / U32;
  if (t < 1 / (n + 1) || t >= n / (n + 1)) {
    const hi = t >= 0.5;
    const m = Math.min(n - 1, 5);
    const gap = hi ? (s[n - 1]! - s[n - 1 - m]!) / m : (s[m]! - s[0]!) / m;
    const e = -Math.log(1 - rng.nextU32() / U32) * gap;
    return hi ? s[n - 1]! + e : s[0]! - e;
  }
  const u = (rng.nextU32() / U32) * (n - 1);
  const i = Math.floor(u);
  const a = s[i]!;
  // Zero stays zero when both neighbours are zero (sparse weights keep their exact zeros).
  return a + (u - i) * (s[i + 1]! - a);
}

const F = new Float32Array(1);
const B = new Uint32Array(F.buffer);

/** Round `v` to a float32 whose low `bits` mantissa bits are zero (the source's grid). */
function quantise(v: number, bits: number): number {
  if (bits === 0 || bits >= 23) return v;
  F[0] = v;
  const half = 1 << (bits - 1);
  B[0] = ((B[0]! + half) >>> bits) << bits;
  return F[0]!;
}
