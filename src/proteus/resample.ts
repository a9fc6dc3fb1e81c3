/**
 * Fresh samples of a sorted sample's distribution, for sentinel weights.
 *
 * A sentinel tensor drawn from one real tensor's values (a subset, or every value once, jittered)
 * is close to a copy of it, and one drawn as a fresh sample of them is a second sampling step away
 * from the population the real tensor came from: either way the real tensors sat nearer the
 * middle of the bundle's cloud of equal-length tensors than the sentinels (sorted standardised
 * values; the real member had the smallest distance to another member's tensor in 40-79 % of zoo
 * groups, `scripts/proteus-near-copy.ts`). So a sentinel draws from a *parent* that estimates the
 * real tensor's population rather than repeating its sample: the quantiles of every real tensor of
 * the kind pooled, moved towards the tensor's own quantiles by the share of their difference that
 * is more than sampling noise (an empirical-Bayes shrinkage: a zoo model's tensors, drawn from one
 * distribution, get the pooled shape; a trained stem conv's heavy tail stays its own). A sentinel
 * tensor is then one sampling step from the population, like a real one.
 *
 * A fresh sample is i.i.d. from the sample's quantile function: linear between order statistics
 * at Filliben's median plotting positions (so a fresh sample as large as the source passes its
 * extreme about half the time, as a second real sample would), a generalised Pareto tail past the
 * extremes fitted to the most extreme values, its order statistics first smoothed by a moving
 * average so the density is not lumpy (no value copied; exact zeros amid zeros stay zeros).
 */
import { CryptoRng, hmacSha256, SEED_BYTES } from '../crypto/index.js';
import { type Rng, words } from './rng.js';
import { sortFloat32 } from './sort.js';

/** Filliben's offset: order statistic i of m sits at probability (i + 1 − A)/(m + 1 − 2A). */
const A = 0.3175;
/** Neighbours on each side a sorted sample's values are averaged over (`smoothed`). */
const H = 32;
/** Smoothed order statistics kept of a sorted sample at most (1 MB as float32; see `smoothed`). */
const DENSE = 1 << 18;
/** Strides at each end of a downsampled sample read from its raw order statistics instead. */
const EXACT = 256;
/** Most extreme values a tail's fit reads (Pickands' k). */
const TAIL_MAX = 32;
/**
 * Pseudo-count shrinking a tail's ξ towards 0 (exponential), and its cap: no heavier than
 * exponential. At ξ = 0.25 one draw of a 4 M-value normal pool's hidden pool landed 0.69 σ past
 * the pool's extreme, and every sentinel of the bundle drew from it (max |z| up to 6.8 against 5.0).
 */
const XI_PRIOR = 8;
const XI_MAX = 0;

/** Fill `out` with i.i.d. draws from the smoothed quantile function of sorted values `s` (in random order). */
export function freshSample(s: Float32Array, out: Float32Array, rng: Rng): Float32Array {
  const m = s.length;
  const n = out.length;
  if (m < 2) return out.fill(s[0] ?? 0);
  const { q, stride } = smoothed(s);
  const below = tailOf(s, false);
  const above = tailOf(s, true);
  const span = m + 1 - 2 * A;
  const edge = (1 - A) / span; // probability below s[0] (and above s[m − 1])
  const last = q.length - 1;
  // (Read rarely: the first and last EXACT strides hold a few thousandths of the draws.)
  const exact = stride > 1 ? EXACT * stride : 0;
  const r = words(rng, n);
  for (let i = 0; i < n; i++) {
    const u = (r[i]! + 0.5) / 2 ** 32;
    const t = u * span - (1 - A);
    if (t <= 0) out[i] = s[0]! - excess(below, edge / u);
    else if (t >= m - 1) out[i] = s[m - 1]! + excess(above, edge / (1 - u));
    else if (t < exact || t >= m - 1 - exact) {
      // The outer order statistics at full resolution: a chord over `stride` of them lies outside
      // a convex tail (a 1 M-value sentinel of a 4 M-value pool: max |z| +0.69 against a fresh sample).
      const j = Math.floor(t);
      out[i] = s[j]! + (t - j) * (s[j + 1]! - s[j]!);
    } else {
      const x = t / stride;
      const j = Math.min(last - 1, Math.floor(x));
      out[i] = q[j]! + (x - j) * (q[j + 1]! - q[j]!);
    }
  }
  return out;
}

/** A sorted sample's smoothed quantile function: every `stride`-th smoothed order statistic (the last one included). */
interface Smoothed {
  q: Float32Array;
  stride: number;
}

const SMOOTHED = new WeakMap<Float32Array, Smoothed>();

/**
 * Sorted `s` smoothed by a moving average over ±H neighbours (fewer near the ends, so the
 * extremes stay the sample's own; none inside a run of equal values), built once per array.
 * Interpolated between raw order statistics, a sample of a few hundred values has a lumpy density
 * (its spacings are random), and fresh samples of it spread more than fresh samples of its
 * population: a 48-value sentinel's nearest twin was 5 % farther than a real vector's. The moving
 * average keeps the values sorted (a window that grows or slides over sorted values), and zeros
 * amid zeros stay zeros. Past DENSE values only every stride-th is kept: draws read it at random
 * places, and an 8 M-value pool missed the cache on every read (42 ns a value, a third of
 * resnet50's obfuscation CPU); at ±H neighbours a smoothed quantile function is straight between
 * them anyway.
 */
function smoothed(s: Float32Array): Smoothed {
  let sm = SMOOTHED.get(s);
  if (sm) return sm;
  const m = s.length;
  const stride = Math.max(1, Math.ceil(m / DENSE));
  const q = new Float32Array(Math.ceil((m - 1) / stride) + 1);
  // Window sums in float64 from a running total (one pass).
  const pre = new Float64Array(m + 1);
  for (let i = 0; i < m; i++) pre[i + 1] = pre[i]! + s[i]!;
  for (let k = 0; k < q.length; k++) {
    const j = Math.min(m - 1, k * stride);
    // A quarter of the distance to the nearer end at most: the average of a convex stretch of the
    // quantile function (a tail) lies outside it, and a full-width window moved the tails outwards
    // (Gaussian sentinels' excess kurtosis +0.03). Within a run of equal values, the value itself.
    const h = s[j] === s[j - 1] || s[j] === s[j + 1] ? 0 : Math.min(H, j >> 2, (m - 1 - j) >> 2);
    q[k] = h === 0 ? s[j]! : (pre[j + h + 1]! - pre[j - h]!) / (2 * h + 1);
  }
  sm = { q, stride };
  SMOOTHED.set(s, sm);
  return sm;
}

/** A generalised Pareto tail past a sample's extreme: shape ξ (−1 uniform, 0 exponential, > 0 heavy) and scale σ at the extreme. */
interface Tail {
  xi: number;
  sigma: number;
}

/**
 * The tail of sorted `s` past its top (`top`) or bottom extreme: ξ by Pickands' estimator on the
 * k-th, 2k-th and 4k-th most extreme values, k = m/16 up to TAIL_MAX (deeper levels read a normal
 * population's body as a bounded tail, ξ ≈ −½ at m = 64), shrunk and clamped to [−1, XI_MAX]; σ
 * from the k spacings nearest the extreme, each weighted to the mean excess. A bounded population
 * (the zoo's uniform running variances) then ends about one spacing past the sample, as a fresh
 * sample's extreme would; an exponential or heavier one reaches as far as its own shape says.
 */
function tailOf(s: Float32Array, top: boolean): Tail {
  const m = s.length;
  const at = (i: number): number => (top ? -s[m - 1 - i]! : s[i]!); // i-th most extreme, as a lower tail
  const k = Math.max(1, Math.min(TAIL_MAX, Math.floor(m / 16), Math.floor((m - 1) / 4)));
  const d1 = at(2 * k - 1) - at(k - 1);
  const d2 = at(4 * k - 1) - at(2 * k - 1);
  // Pickands' ξ has a standard error of about 1.8/√k at ξ = 0: shrunk towards 0 by k/(k + XI_PRIOR)
  // and capped at XI_MAX, since a ξ overestimated by chance sends the odd tail draw far out (a
  // heavy-tailed conv's sentinels had a 15 % larger max |z| and kurtosis +0.9 at a cap of ½).
  const xiHat = d1 > 0 && d2 > 0 ? Math.log(d1 / d2) / Math.LN2 : 0;
  const xi = Math.min(XI_MAX, Math.max(-1, (xiHat * k) / (k + XI_PRIOR)));
  // The i-th spacing from the extreme of a tail of shape ξ scales as i^−(1+ξ): weighted back, each
  // estimates the mean excess of a new extreme draw, σ/(1 − ξ) (Rényi's (i + 1)-weights at ξ = 0).
  let excess = 0;
  for (let i = 0; i < k; i++) excess += (i + 1) ** (1 + xi) * (at(i + 1) - at(i));
  const sigma = ((1 - xi) * excess) / k;
  return { xi, sigma };
}

/** How far past the extreme a tail draw of conditional exceedance odds t (≥ 1) lands: σ·(t^ξ − 1)/ξ. */
function excess(tail: Tail, t: number): number {
  return Math.abs(tail.xi) < 1e-6 ? tail.sigma * Math.log(t) : (tail.sigma * (t ** tail.xi - 1)) / tail.xi;
}

/** Value of sorted `s` at probability p: linear between order statistics at their plotting positions, clamped to the extremes. */
export function quantileAt(s: Float32Array, p: number): number {
  const m = s.length;
  const t = Math.min(m - 1, Math.max(0, p * (m + 1 - 2 * A) - (1 - A)));
  const j = Math.min(m - 2, Math.floor(t));
  return m < 2 ? (s[0] ?? 0) : s[j]! + (t - j) * (s[j + 1]! - s[j]!);
}

/** Order statistics compared when measuring a sample's departure from its pool (evenly spaced). */
const PROBES = 512;
/**
 * A departure counts from this many times its noise: the statistic is dominated by a few smooth
 * components, so an m-sample of the pool exceeds its expected departure half the time, and even a
 * small λ then moved sentinels towards the real tensor (its conv's nearest twin 13 % nearer).
 */
const SIGNIFICANT = 2;

/**
 * The parent of sorted sample `own` (m values) within sorted pool `pool` (its kind's values,
 * `own` among them): the pool's quantiles at own's plotting positions, moved towards own's values
 * by λ = 1 − SIGNIFICANT·noise/departure (at least 0), where departure is own's mean squared
 * difference from the pool's quantiles and noise its expectation for an m-sample of the pool
 * (order-statistic variance p(1 − p)/((m + 2) f²), f the pool's density). At λ = 0 it returns
 * `pool` itself (shared: callers must not write to it).
 */
export function shrinkToPool(own: Float32Array, pool: Float32Array): Float32Array {
  const m = own.length;
  const span = m + 1 - 2 * A;
  let departure = 0;
  let noise = 0;
  // Not the k most extreme on each side (k as in `tailOf`): the delta method's order-statistic
  // variance is orders of magnitude too small there, and a 1.28 M-value classifier's own extreme
  // made it "depart" from a fresh sample of itself by 12 times its noise (λ = 0.84: no hidden step).
  const edge = Math.max(1, Math.min(TAIL_MAX, Math.floor(m / 16)));
  const step = Math.max(1, Math.floor((m - 2 * edge) / PROBES));
  // (Finite differences over ±e in probability: wide enough to smooth the pool's spacings.)
  const e = Math.max(4 / pool.length, 0.002);
  for (let j = edge; j < m - edge; j += step) {
    const p = (j + 1 - A) / span;
    const lo = Math.max(0, p - e);
    const hi = Math.min(1, p + e);
    const slope = (quantileAt(pool, hi) - quantileAt(pool, lo)) / (hi - lo);
    departure += (own[j]! - quantileAt(pool, p)) ** 2;
    noise += ((p * (1 - p)) / (m + 2)) * slope * slope;
  }
  // (The pool's own noise adds to own's: as large for a pool of one tensor.)
  noise *= 1 + m / pool.length;
  const lambda = Math.max(0, 1 - (SIGNIFICANT * noise) / departure);
  // (λ = 0: the pool itself — its own quantile function, finer than its quantiles at m places, whose
  // interpolation and m-point tails made sentinels 6 % more dispersed than fresh real vectors.)
  if (lambda === 0) return pool;
  const out = new Float32Array(m);
  for (let j = 0; j < m; j++) {
    const q = quantileAt(pool, (j + 1 - A) / span);
    out[j] = q + lambda * (own[j]! - q);
  }
  return out;
}

/**
 * A hidden pool: a sorted fresh sample of sorted pool `s`, as large, its randomness derived from
 * `key` and `label` (every generator holding the key derives the same one). Sentinels drawn from the
 * pool itself were nearer its real tensors than a fresh sample would be (a real tensor is part of
 * the pool); drawn from a fresh sample of it, a real tensor and a sentinel differ by two sampling
 * steps, as two sentinels do.
 */
export function hiddenPool(s: Float32Array, key: Uint8Array, label: string): Float32Array {
  const seed = hmacSha256(key, new TextEncoder().encode(`privml-proteus-pool:${label}`)).subarray(0, SEED_BYTES);
  return sortFloat32(freshSample(s, new Float32Array(s.length), new CryptoRng(seed)));
}
