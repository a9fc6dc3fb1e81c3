/**
 * Sentinel weight values, resampled from the model's own weights of the same kind (op and input
 * slot): the optimizer sees the real weights anyway, so drawing from them gives sentinels the real
 * value distribution, tails, sparsity, per-channel norm spread, BatchNorm running-statistic ranges
 * and float bit patterns.
 *
 * Attacked with the battery (`battery.ts`), a sentinel must look like a *fresh sample* of the real
 * distribution: a sentinel statistic must vary around the real one as much as two real tensors'
 * statistics vary. Stratified quantiles of a real tensor remove that variation (the real member was
 * the most extreme one: its kurtosis the largest of 21 for a quarter of vgg16's tensors,
 * `scripts/proteus-sampler-check.ts`), and a subset of its values or a bootstrap of them stays near
 * a copy of it: the real tensor is then the centre of its sentinels, which the battery's near-twin
 * statistic saw (`near-twin.ts`). So each sentinel tensor takes one real tensor of its kind (every
 * real tensor in turn, the stem conv included) and draws its standardised values as an i.i.d.
 * sample of that tensor's *parent* (`resample.ts`): the kind's values pooled, as a hidden fresh
 * sample of them shared by the bundle's generators and never written, moved towards the tensor's
 * own values as far as they differ by more than sampling noise. Real and sentinel tensors are then
 * each one sampling step from what the parent estimates. Shuffled into channels,
 * they bring the per-channel norm noise of the sentinel's own fan-in; the channels are scaled by the
 * source's channel scales (a subset again), shrunk to their spread net of sampling noise when that
 * spread is significant, or pulled towards their mean when it is significantly below the noise.
 * Tensors with few distinct values (LayerNorm's constant 1 and 0, quantised weights) are resampled
 * exactly, level by level.
 */
import { secretBytes } from '../crypto/index.js';
import type { Model } from '../onnx/ir.js';
import { channelAxis, exponentEntropy } from './battery.js';
import { duplicateCount } from './duplicates.js';
import { type ByteDraw, byteDraw, inheritLowBits, lowByteCounts } from './low-bytes.js';
import { freshSample, hiddenPool, shrinkToPool } from './resample.js';
import { type Rng, words } from './rng.js';
import { shuffle } from './shuffle.js';
import { sortedCopy, sortFloat32 } from './sort.js';
import { fanIn, meanSd, weightKey } from './stats.js';

/** One real weight tensor, prepared for sampling. */
interface Source {
  data: Float32Array;
  /** Its kind (`weightKey`): its parent is shrunk towards the kind's pooled values. */
  key: string;
  /** Elements per output channel (= fan-in) for matrices, 0 for vectors and tables. */
  fan: number;
  /** Few distinct values: resample exactly instead of smoothing. */
  discrete: boolean;
  /** A single value repeated. */
  constant: boolean;
  /** Trailing mantissa bits that are zero in every value (quantised sources keep their grid). */
  zeroBits: number;
  /** Vectors: location and spread; matrices: root mean square (not centred, so zeros stay zeros). */
  mean: number;
  scale: number;
  /** Matrices: per-channel scale relative to `scale`, shrunk to the spread that is not sampling noise. */
  channels: Float32Array;
  /** Matrices: variance of the observed per-channel RMS ratios, and the part sampling noise alone gives at this fan-in. */
  rhoVar: number;
  rhoNoise: number;
  /** Matrices: E v⁴ / (E v²)² of the values (sets the sampling noise at another fan-in). */
  kurtZ: number;
  /** Values divided by their scale (and channel scale), the shape a sentinel drawn from this tensor takes. */
  z: Float32Array;
  /** Sorted values sampled from, built on first use: the parent (`shrinkToPool`) of z for matrices and of the raw data for vectors (the data themselves when discrete). */
  sorted?: Float32Array;
  /** A vector's parent of its standardised values, when a larger sentinel vector or matrix of the kind draws from them. */
  zSorted?: Float32Array;
  /** Sampler of the nonzero values' low mantissa bytes, built on first use (see `inheritLowBits`). */
  lowBytes?: ByteDraw;
}

/** The real tensors of one kind in one subgraph, sampled one after another. */
interface Kind {
  sources: Source[];
  /** Index of the source last sampled (see `WeightPool.next`). */
  cursor?: number;
}

/** A pool of real weights by kind, per subgraph of the model (a sentinel reads one subgraph's weights, like a real piece would). */
export class WeightPool {
  private readonly byPart: Map<string, Kind>[] = [];
  private readonly all = new Map<string, Kind>();
  private readonly slopes = new Map<string, number>();
  private readonly unions = new Map<string, Float32Array>();
  private readonly ranges = new Map<string, readonly [number, number]>();
  private readonly lows = new Map<string, ByteDraw>();
  private readonly entropies = new Map<string, number>();
  private readonly homogeneity = new Map<string, boolean>();

  /**
   * Index the float weights of `parts` (the real subgraphs of one model). Pools given the same
   * secret `key` (one bundle's generators) draw from the same hidden pools (`hiddenPool`).
   */
  constructor(
    parts: readonly Model[],
    private readonly key: Uint8Array = secretBytes(16),
  ) {
    for (const m of parts) {
      const own = new Map<string, Kind>();
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
          const src = prepare(d, w.dims, channelAxis(n.opType, slot, w.dims), fanIn(n.opType, slot, w.dims), key);
          (own.get(key) ?? own.set(key, { sources: [] }).get(key)!).sources.push(src);
          (this.all.get(key) ?? this.all.set(key, { sources: [] }).get(key)!).sources.push(src);
        });
      }
      this.byPart.push(own);
    }
  }

  /** Number of subgraphs indexed. */
  get parts(): number {
    return this.byPart.length;
  }

  /** Whether every real weight of this kind is one repeated value (zero biases, LayerNorm's 1): a sentinel's copy repeats it too. */
  constant(key: string): boolean {
    const kind = this.all.get(key);
    return !!kind && kind.sources.every((s) => s.constant);
  }

  /** Whether any real weight of this kind exists. */
  has(key: string): boolean {
    return this.all.has(key);
  }

  /** Value-weighted mean exponent entropy of the model's real weights of this kind (NaN: none): what a tensor of the kind adds to a member's entropy before its values are drawn. */
  kindEntropy(key: string): number {
    let h = this.entropies.get(key);
    if (h === undefined) {
      const srcs = this.all.get(key)?.sources ?? [];
      const n = srcs.reduce((p, s) => p + s.data.length, 0);
      h = n ? srcs.reduce((p, s) => p + s.data.length * exponentEntropy(s.data), 0) / n : NaN;
      this.entropies.set(key, h);
    }
    return h;
  }

  /**
   * Values for a sentinel weight of kind `key` and shape `dims` read by `op` at `slot`: shaped like
   * the real tensors of that kind in subgraph `part` (else anywhere in the model), scaled like one
   * of them; undefined when the model has no weight of this kind.
   */
  sample(key: string, op: string, slot: number, dims: readonly number[], part: number, rng: Rng): Float32Array | undefined {
    const kind = this.byPart[part]?.get(key) ?? this.all.get(key);
    if (!kind?.sources.length) return undefined;
    const n = dims.reduce((p, q) => p * q, 1);
    const axis = channelAxis(op, slot, dims);
    const fan = fanIn(op, slot, dims);
    const src = this.next(kind, n, rng);
    const out = new Float32Array(n);
    if (src.discrete) {
      // Constant and few-level tensors (LayerNorm gamma = 1, beta = 0, quantised grids): the source's
      // own values, each level in its own proportion (stratified, so a constant stays exactly constant).
      const sorted = (src.sorted ??= sortedCopy(src.data));
      const u = words(rng, n);
      for (let i = 0; i < n; i++) out[i] = sorted[Math.min(sorted.length - 1, Math.floor(((i + u[i]! / 2 ** 32) / n) * sorted.length))]!;
      return shuffle(out, rng);
    }
    if (axis < 0 || src.fan === 0 || fan === 0) {
      // Vectors (biases, BatchNorm and LayerNorm parameters, tables): real values of the kind, not
      // standardised ones at another vector's location and scale: a fresh sample of its source's
      // parent, or for a vector longer than its source, of a real vector of the kind long enough
      // (else of the union of all of them). Standardised draws at a short source's mean and
      // standard deviation overshot the real range whenever that source's sample spread ran high:
      // 54-60 % of resnet and mobilenetv2 sentinels held a BatchNorm running variance outside the
      // zoo's [0.9, 1.1], which no real member does, and boosted trees found them (AUC 0.83-0.87).
      const long = src.data.length < n ? this.rawValues(key, n, rng, src.data.length) : undefined;
      const from = long?.source ?? src;
      freshSample(long?.sorted ?? this.parent(src, false), out, rng);
      // A fresh sample may pass its source's extreme (a fitted tail), and the model's by the kind's
      // mean top spacing, no further: a bounded population (the zoo's uniform running variances)
      // has no values past its bound, and 19 % of jittered vectors went past the model's range by
      // up to half a source gap. (Without the spacing, the real piece holding the model's extreme
      // was its group's most extreme member whenever no sentinel drew that value: 25-55 % of
      // resnet groups.)
      inheritLowBits(out, this.lowBytes(key, from), rng);
      const [lo, hi] = this.range(key);
      for (let i = 0; i < n; i++) out[i] = quantise(reflect(out[i]!, lo, hi), from.zeroBits);
      return out;
    }
    // Matrices: one real tensor's standardised values (its own extremes: the stem conv's heavy tail
    // included), scaled by its scale (He-corrected for the fan-in) and per-channel scales.
    freshSample((src.z.length < FRESH * n ? this.values(key, n, rng, src.z.length) : undefined) ?? this.parent(src, true), out, rng);
    const scale = src.scale * (fan / src.fan) ** this.slope(key);
    const c = dims[axis]!;
    const inner = dims.slice(axis + 1).reduce((p, q) => p * q, 1);
    const outer = n / (c * inner);
    // Channel scales: the source's (shrunk to their spread net of sampling noise, a subset without
    // replacement); the shuffled values bring the per-channel noise of this fan-in. When the
    // source's spread is significantly below its sampling noise (weight-normalised layers), each
    // channel's norm is pulled part of the way (β) to the mean instead. Within two standard errors
    // of the noise neither happens: a chance excess or deficit is the real tensor's own sampling
    // noise, and acting on it moved every sentinel's kurtosis below the real one's (pulling norms
    // together, or dividing values by scales that track their own channel's noise, standardises
    // part of the way: lenet5's real member had the larger kurtosis of its largest tensor than
    // 72 % of its sentinels, 58 % without).
    const per = n / c;
    const net = src.rhoVar - src.rhoNoise;
    const noise = channelNoise(src.kurtZ, per);
    const beta = noise <= 0 || src.rhoVar >= src.rhoNoise * (1 - significant(src.channels.length)) ? 0 : 1 - Math.sqrt(Math.max(0, 1 + net / noise));
    // (Channel scales are not sorted; `draw` needs no order here: it takes all of them, or a uniform subset.)
    const g = shuffle(draw(src.channels, new Float32Array(c), rng), rng);
    let g2 = 0;
    for (let ch = 0; ch < c; ch++) g2 += g[ch]! * g[ch]!;
    const norm = Math.sqrt(g2 / c);
    for (let ch = 0; ch < c; ch++) {
      let pull = 1;
      if (beta > 0) {
        let sq = 0;
        for (let o = 0; o < outer; o++) {
          const base = o * c * inner + ch * inner;
          for (let i = 0; i < inner; i++) sq += out[base + i]! * out[base + i]!;
        }
        pull = sq > 0 ? (sq / per) ** (-beta / 2) : 1;
      }
      const f = (scale * g[ch]! * pull) / norm;
      for (let o = 0; o < outer; o++) {
        const base = o * c * inner + ch * inner;
        for (let i = 0; i < inner; i++) out[base + i] = quantise(f * out[base + i]!, src.zeroBits);
      }
    }
    return inheritLowBits(out, this.lowBytes(key, src), rng);
  }

  /**
   * The next source of a kind for a tensor of n values: every real tensor of the kind at least as
   * large in turn, from a secret starting point (else the largest), so across its tensors a sentinel
   * carries each real tensor's tail behaviour as often as the real member does. A smaller source
   * would cap the sentinel's extremes at those of fewer values (stratified draws cannot pass the
   * source's extremes), and random picks skipped rare tensors such as the stem conv.
   */
  private next(kind: Kind, n: number, rng: Rng): Source {
    let pick = kind.sources.filter((s) => s.data.length >= n);
    if (!pick.length) {
      const most = Math.max(...kind.sources.map((s) => s.data.length));
      pick = kind.sources.filter((s) => s.data.length === most);
    }
    kind.cursor = kind.cursor === undefined ? rng.int(1 << 30) : kind.cursor + 1;
    return pick[kind.cursor % pick.length]!;
  }

  /**
   * Sorted standardised values for a sentinel tensor of n values whose scale source has only `own`
   * (< FRESH·n): the parent of a real tensor of the kind anywhere in the model with at least FRESH·n values (a
   * secret pick among the three smallest such), else (when `own` < n) one with at least n, else the
   * union of every real tensor of the kind (standardised values of one kind share their shape, so
   * the union is a larger sample of it; its hidden pool) when it is larger than `own` — for a
   * sentinel as large as its source only up to UNION_CAP values; undefined: the source's parent.
   *
   * Drawing n values from a smaller source capped the sentinel's extremes at those of the source's
   * size: in resnet20 bundles 30 % of sentinel tensors (54 % of values) were larger than every
   * tensor of their kind in their piece, and the real member had the largest mean max |z| of its
   * group 2–5 times as often as chance. And n values out of a source of about n are that source's
   * values again: the sentinel's histogram statistics (exponent entropy) were the source's with
   * little of a fresh sample's variation, so a real member whose tensors happened to sit high had the
   * largest exponent entropy of its group in up to 30 % of groups (zoo resnet20).
   */
  private values(key: string, n: number, rng: Rng, own: number): Float32Array | undefined {
    const smooth = this.all.get(key)!.sources.filter((s) => !s.discrete && s.z.length > 0);
    // One of the (up to) three smallest that are large enough: a subset of a much larger tensor reads
    // a stream word per source value (subsetIndices' dense path) and keeps another sorted copy of it
    // per worker (resnet50 K = 20: 15-35 % more obfuscation CPU and peak RSS over the bound).
    const bySize = (m: number): Source[] => smooth.filter((s) => s.z.length >= m).sort((a, b) => a.z.length - b.z.length);
    let big = bySize(FRESH * n);
    if (!big.length && own < n) big = bySize(n);
    if (big.length) {
      const s = big[rng.int(Math.min(3, big.length))]!;
      return this.parent(s, true);
    }
    const total = smooth.reduce((p, s) => p + s.z.length, 0);
    if (total <= own || (own >= n && total > UNION_CAP)) return undefined;
    return this.union(
      key,
      smooth.map((s) => s.z),
    );
  }

  /** The hidden pool (`hiddenPool`) of the union of `parts` (every k-th value past UNION_CAP), built once per name. */
  private union(name: string, parts: readonly Float32Array[]): Float32Array {
    let u = this.unions.get(name);
    if (!u) this.unions.set(name, (u = hiddenPool(sortFloat32(strided(concat(parts), UNION_CAP)), this.key, name)));
    return u;
  }

  /** The kind's pooled standardised values: what a source's parent is shrunk towards. */
  private pooled(key: string): Float32Array {
    const smooth = this.all.get(key)!.sources.filter((s) => !s.discrete && s.z.length > 0);
    return this.union(
      key,
      smooth.map((s) => s.z),
    );
  }

  /**
   * A continuous source's parent (`shrinkToPool`): of its standardised values (`standardised`; a
   * matrix has no others) or of its raw ones, built once. A vector's raw parent is shrunk towards
   * the kind's raw values where its vectors share one location and scale (`homogeneous`), else its
   * own location and scale carry the shrunk shape: a location and scale estimated from one short
   * vector place a bounded population's ends less precisely than that vector's own extremes do (the
   * zoo's uniform running variances: sentinel minima 0.005 above the real ones, 0.2/65 apart).
   */
  private parent(s: Source, standardised: boolean): Float32Array {
    if (!s.sorted && (s.fan > 0 || !standardised)) {
      if (s.fan === 0 && this.homogeneous(s.key)) {
        s.sorted = shrinkToPool(sortedCopy(s.data), this.rawPool(s.key));
      } else {
        const z = shrinkToPool(sortedCopy(s.z), this.pooled(s.key));
        s.sorted = s.fan === 0 ? z.map((v) => s.mean + s.scale * v) : z;
      }
    }
    if (s.fan > 0 || !standardised) return s.sorted!;
    return (s.zSorted ??= shrinkToPool(sortedCopy(s.z), this.pooled(s.key)));
  }

  /** The sorted raw values of the kind's continuous vectors. */
  private rawPool(key: string): Float32Array {
    return this.union(
      `${key}:raw`,
      this.all
        .get(key)!
        .sources.filter((s) => !s.discrete && s.fan === 0)
        .map((s) => s.data),
    );
  }

  /**
   * Whether the kind's vectors look like draws of one distribution: their means and log standard
   * deviations spread no more than sampling noise allows (within `significant` of it). Built once.
   */
  private homogeneous(key: string): boolean {
    let h = this.homogeneity.get(key);
    if (h === undefined) {
      const v = this.all.get(key)!.sources.filter((s) => !s.discrete && s.fan === 0 && s.scale > 0);
      h = v.length >= 2;
      if (h) {
        // Sampling variance of a mean (σ²/n) and of a log standard deviation ((κ − 1)/(4n), κ the kurtosis).
        const spread = (xs: number[]): number => {
          const mu = xs.reduce((p, q) => p + q, 0) / xs.length;
          return xs.reduce((p, q) => p + (q - mu) ** 2, 0) / (xs.length - 1);
        };
        const kurt = v.map((s) => s.z.reduce((p, z) => p + z ** 4, 0) / s.z.length);
        const meanNoise = v.reduce((p, s) => p + (s.scale * s.scale) / s.data.length, 0) / v.length;
        const sdNoise = v.reduce((p, s, i) => p + Math.max(0, kurt[i]! - 1) / (4 * s.data.length), 0) / v.length;
        const tol = 1 + significant(v.length);
        h = spread(v.map((s) => s.mean)) <= meanNoise * tol && spread(v.map((s) => Math.log(s.scale))) <= sdNoise * tol;
      }
      this.homogeneity.set(key, h);
    }
    return h;
  }

  /**
   * Sorted raw values for a sentinel vector of n values longer than its source (`own` values): a
   * real vector of the kind anywhere in the model with at least n values (a secret pick among the
   * three smallest such), else the union of all of them when larger than `own` (the bit grid then
   * stays the part's source's); undefined: stratified draws from the source itself.
   */
  private rawValues(key: string, n: number, rng: Rng, own: number): { sorted: Float32Array; source?: Source } | undefined {
    const smooth = this.all.get(key)!.sources.filter((s) => !s.discrete && s.fan === 0);
    const big = smooth.filter((s) => s.data.length >= n).sort((a, b) => a.data.length - b.data.length);
    if (big.length) {
      const s = big[rng.int(Math.min(3, big.length))]!;
      return { sorted: this.parent(s, false), source: s };
    }
    const total = smooth.reduce((p, s) => p + s.data.length, 0);
    if (total <= own) return undefined;
    return { sorted: this.rawPool(key) };
  }

  /**
   * Real low mantissa bytes for a sentinel tensor drawn from `src`: those of every real tensor of
   * the kind in the model on the same bit grid (a quantised source keeps its own zero bytes). One
   * source's bytes made a large sentinel tensor carry a small source's rate: resnet20 sentinels'
   * share of zero low bytes spread 0.003-0.005 where real members' sat at 1/256 ± 0.0003.
   */
  private lowBytes(key: string, src: Source): ByteDraw {
    if (src.zeroBits > 0) return (src.lowBytes ??= byteDraw(lowByteCounts(src.data)));
    let u = this.lows.get(key);
    if (!u) {
      const counts = new Float64Array(256);
      for (const s of this.all.get(key)!.sources) if (s.zeroBits === 0) lowByteCounts(s.data, counts);
      u = byteDraw(counts);
      this.lows.set(key, u);
    }
    return u;
  }

  /**
   * Where a kind's sentinel values may reach: the model's smallest and largest real value, each
   * moved out by the mean of the (up to) 5 spacings next to it (one expected spacing past the
   * sample's extreme, the distance a new value of a uniform population may go; more in a long tail).
   */
  private range(key: string): readonly [number, number] {
    let r = this.ranges.get(key);
    if (!r) {
      const u = sortFloat32(concat(this.all.get(key)!.sources.map((s) => s.data)));
      const last = u.length - 1;
      const k = Math.max(1, Math.min(5, last));
      r = [u[0]! - (u[k]! - u[0]!) / k, u[last]! + (u[last]! - u[last - k]!) / k] as const;
      this.ranges.set(key, r);
    }
    return r;
  }

  /** Least-squares slope of log scale on log fan-in over the kind's matrices (−½ when every fan-in is equal). */
  private slope(key: string): number {
    let b = this.slopes.get(key);
    if (b !== undefined) return b;
    const pts = (this.all.get(key)?.sources ?? []).filter((s) => !s.discrete && s.fan > 0).map((s) => [Math.log(s.fan), Math.log(s.scale)] as const);
    const mx = pts.reduce((p, q) => p + q[0], 0) / Math.max(1, pts.length);
    const my = pts.reduce((p, q) => p + q[1], 0) / Math.max(1, pts.length);
    const sxx = pts.reduce((p, q) => p + (q[0] - mx) ** 2, 0);
    const sxy = pts.reduce((p, q) => p + (q[0] - mx) * (q[1] - my), 0);
    b = sxx > 1e-9 ? Math.min(0.5, Math.max(-1, sxy / sxx)) : -0.5;
    this.slopes.set(key, b);
    return b;
  }
}

/** Scales, channel scales, standardised values, discreteness and bit grid of a real tensor. */
function prepare(d: Float32Array, dims: readonly number[], axis: number, fan: number, key: string): Source {
  const n = d.length;
  const distinct = n - duplicateCount(d);
  const bits = new Uint32Array(d.buffer, d.byteOffset, n);
  let zeroBits = 23;
  for (let i = 0; i < n && zeroBits > 0; i++) {
    const m = bits[i]! & 0x7fffff;
    if (bits[i]! << 1 === 0) continue; // ±0 says nothing about the grid
    zeroBits = Math.min(zeroBits, m === 0 ? 23 : 31 - Math.clz32(m & -m));
  }
  const { mean, sd, meanSquare } = meanSd(d);
  const rms = Math.sqrt(meanSquare);
  const matrix = axis >= 0 && fan > 0;
  // Exact resampling for tensors with many repeats (constants, a few levels, quantised grids).
  const discrete = distinct < 0.5 * n || (matrix ? rms : sd) === 0;
  const base = { data: d, key, fan: matrix ? fan : 0, discrete, constant: distinct === 1, zeroBits };
  const none = { channels: new Float32Array(0), rhoVar: 0, rhoNoise: 0, kurtZ: 0 };
  if (discrete) return { ...base, ...none, mean, scale: 0, z: new Float32Array(0) };
  if (!matrix) {
    const z = new Float32Array(n);
    for (let i = 0; i < n; i++) z[i] = (d[i]! - mean) / sd;
    return { ...base, ...none, mean, scale: sd, z };
  }
  const c = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((p, q) => p * q, 1);
  const per = n / c;
  const sq = new Float64Array(c);
  let s4 = 0;
  for (let i = 0; i < n; i++) {
    const v2 = d[i]! * d[i]!;
    sq[Math.floor(i / inner) % c]! += v2;
    s4 += v2 * v2;
  }
  const rho = Array.from(sq, (q) => Math.sqrt(q / per) / rms);
  const rhoMean = rho.reduce((p, q) => p + q, 0) / c;
  const rhoVar = rho.reduce((p, q) => p + (q - rhoMean) ** 2, 0) / c;
  const kurtZ = s4 / n / meanSquare ** 2;
  const rhoNoise = channelNoise(kurtZ, per);
  // Channel scales shrunk to the spread that is not sampling noise, and only when that spread is
  // significant: dividing by the observed norms would standardise every channel exactly (a normal
  // tensor's excess kurtosis then drops by 6/(fan-in + 2), −0.55 for a depthwise 3×3), and the
  // shuffled sentinel would keep that deficit; shrunk scales on a chance excess still took part of
  // it (−0.013 on lenet5's fc2, fan-in 120).
  const keep = rhoVar > rhoNoise * (1 + significant(c)) ? Math.sqrt((rhoVar - rhoNoise) / rhoVar) : 0;
  const shrunk = rho.map((r) => rhoMean + keep * (r - rhoMean));
  const norm = Math.sqrt(shrunk.reduce((p, q) => p + q * q, 0) / c);
  const channels = Float32Array.from(shrunk, (r) => r / norm);
  const z = new Float32Array(n);
  for (let i = 0; i < n; i++) z[i] = d[i]! / (rms * channels[Math.floor(i / inner) % c]!);
  return { ...base, mean: 0, scale: rms, channels, rhoVar, rhoNoise, kurtZ, z };
}

/** Every ⌈n/cap⌉-th value of `a` when it holds more than `cap` (a systematic sample across its parts), else `a`. */
function strided(a: Float32Array, cap: number): Float32Array {
  if (a.length <= cap) return a;
  const k = Math.ceil(a.length / cap);
  const out = new Float32Array(Math.ceil(a.length / k));
  for (let i = 0; i < out.length; i++) out[i] = a[i * k]!;
  return out;
}

/** The arrays one after another in one new array. */
function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((p, q) => p + q.length, 0));
  let at = 0;
  for (const q of parts) {
    out.set(q, at);
    at += q.length;
  }
  return out;
}

/** Relative margin by which c channels' RMS-ratio variance must pass its sampling noise to count as real spread (two standard errors of a variance). */
function significant(c: number): number {
  return 2 * Math.sqrt(2 / c);
}

/** Variance of a channel's RMS ratio from sampling alone, over `per` values of fourth moment `kurtZ` (delta method). */
function channelNoise(kurtZ: number, per: number): number {
  return Math.max(0, kurtZ - 1) / (4 * per);
}

/**
 * Fill `out` with n of the values `s` (m of them): a uniformly random subset without replacement
 * when n < m (in index order; callers shuffle), every value once when n = m, and stratified (each
 * value about n/m times) when n > m. (Channel scales: their set, not a fresh sample of them.)
 */
function draw(s: Float32Array, out: Float32Array, rng: Rng): Float32Array {
  const n = out.length;
  const m = s.length;
  if (n >= m) {
    const r = words(rng, n);
    for (let i = 0; i < n; i++) out[i] = s[Math.min(m - 1, Math.floor(((i + r[i]! / 2 ** 32) / n) * m))]!;
    return out;
  }
  const idx = subsetIndices(n, m, rng);
  for (let k = 0; k < n; k++) out[k] = s[idx[k]!]!;
  return out;
}

/**
 * n distinct indices of [0, m), uniformly among all n-subsets, sorted. Sparse subsets (n ≤ m/8):
 * uniform indices one after another, each redrawn while it repeats an earlier one (so each is
 * uniform over the indices not yet taken); dense ones: selection sampling (Knuth's algorithm S),
 * one word per index scanned.
 */
export function subsetIndices(n: number, m: number, rng: Rng): Uint32Array {
  if (n > m) throw new Error(`cannot draw ${n} distinct indices of ${m}`);
  const at = (w: number): number => Math.floor((w / 2 ** 32) * m);
  if (n * 8 <= m) {
    // (Mapped in place: a typed array's `from` with a map function costs ~0.5 µs a value. Taken
    // indices in a bitmap of m bits: a Set of numbers took ~0.8 µs an index.)
    const idx = words(rng, n);
    const seen = new Uint32Array((m + 31) >>> 5);
    for (let k = 0; k < n; k++) {
      let v = at(idx[k]!);
      while (seen[v >>> 5]! & (1 << (v & 31))) v = at(rng.nextU32());
      seen[v >>> 5]! |= 1 << (v & 31);
    }
    // Read back in order: the sorted indices, without sorting.
    let k = 0;
    for (let w = 0; w < seen.length; w++) {
      for (let b = seen[w]!; b !== 0; b &= b - 1) idx[k++] = (w << 5) | (31 - Math.clz32(b & -b));
    }
    return idx;
  }
  const idx = new Uint32Array(n);
  const r = words(rng, m);
  let k = 0;
  for (let i = 0; i < m && k < n; i++) if ((m - i) * (r[i]! / 2 ** 32) < n - k) idx[k++] = i;
  return idx;
}

/** A sentinel tensor draws from a real tensor of at least this many times its values where the model has one (a larger sample: finer tails). */
const FRESH = 2;
/** Largest union of a kind's values pooled (every k-th value past it; 32 MB as float32). */
const UNION_CAP = 1 << 23;

/** `v` mirrored back into [lo, hi] at the end it passed (clamped when the mirror image passes the other). */
function reflect(v: number, lo: number, hi: number): number {
  if (v < lo) return Math.min(hi, 2 * lo - v);
  if (v > hi) return Math.max(lo, 2 * hi - v);
  return v;
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
