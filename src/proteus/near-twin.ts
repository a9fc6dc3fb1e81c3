/**
 * The near-twin statistic: a cross-member attack the per-member battery cannot see. A sentinel
 * tensor resampled from one real tensor stays close to it, so the real member's tensors had a near
 * twin (an equal-length tensor of another member with almost the same sorted values) more often
 * than any sentinel's: the real member had the smallest mean twin distance of its group in 40-79 %
 * of zoo groups before sentinels drew from pooled parents (`resample.ts`). Per member: the mean over
 * its float tensors of the distance to the nearest equal-length tensor of any other member of the
 * bundle (mean |difference| of sorted standardised values, read at up to SKETCH order statistics),
 * and the mean rank of those distances among the bundle's tensors of the same length.
 */
import type { Model } from '../onnx/ir.js';
import { countedTensor } from './battery.js';
import { meanSd } from './stats.js';

/** Order statistics a tensor's sorted values are compared at (all of them up to this many). */
const SKETCH = 256;
/** Shortest tensor compared: a few values say nothing about a shape. */
const MIN_VALUES = 8;

/** One tensor's sorted standardised values (at up to SKETCH evenly spaced ranks) and its length. */
export interface TwinSketch {
  n: number;
  q: Float32Array;
}

/** Sketches of a member's float weight tensors of at least MIN_VALUES values with spread (constants and masks have no shape to compare). */
export function twinSketches(m: Model): TwinSketch[] {
  const out: TwinSketch[] = [];
  for (const t of m.graph.initializers.values()) {
    if (!countedTensor(t) || t.data.length < MIN_VALUES) continue;
    const n = t.data.length;
    const s = Float32Array.from(t.data).sort();
    const { mean, sd } = meanSd(s);
    if (!(sd > 0)) continue;
    const k = Math.min(n, SKETCH);
    const q = new Float32Array(k);
    for (let i = 0; i < k; i++) q[i] = (s[k === n ? i : Math.floor(((i + 0.5) * n) / k)]! - mean) / sd;
    out.push({ n, q });
  }
  return out;
}

/** A member's near-twin statistics: the mean distance of its tensors to their nearest twins, and the mean rank of those distances among the bundle's tensors of the same length (NaN: no tensor with a twin candidate). */
export interface TwinScore {
  distance: number;
  rank: number;
}

/**
 * Per member: mean over its sketches of the distance to the nearest equal-length sketch of another
 * member, and mean over them of that distance's rank (0 nearest, 1 farthest) among all the
 * bundle's tensors of that length. The distance mixes in the member's composition (a vector's
 * nearest twin is ~10 times as far as a large matrix's); the rank compares like with like.
 */
export function nearTwinScores(members: readonly (readonly TwinSketch[])[]): TwinScore[] {
  const byLen = new Map<number, { m: number; q: Float32Array }[]>();
  members.forEach((sk, m) => {
    for (const s of sk) (byLen.get(s.n) ?? byLen.set(s.n, []).get(s.n)!).push({ m, q: s.q });
  });
  const near = members.map((sk, m) =>
    sk.map((s) => {
      let best = Number.POSITIVE_INFINITY;
      for (const o of byLen.get(s.n)!) {
        if (o.m === m) continue;
        let d = 0;
        for (let i = 0; i < s.q.length && d < best * s.q.length; i++) d += Math.abs(s.q[i]! - o.q[i]!);
        best = Math.min(best, d / s.q.length);
      }
      return best;
    }),
  );
  // Every finite nearest distance per length, sorted: a distance's rank is its place among them.
  const sorted = new Map<number, number[]>();
  members.forEach((sk, m) => {
    sk.forEach((s, i) => {
      if (Number.isFinite(near[m]![i]!)) (sorted.get(s.n) ?? sorted.set(s.n, []).get(s.n)!).push(near[m]![i]!);
    });
  });
  for (const d of sorted.values()) d.sort((a, b) => a - b);
  return members.map((sk, m) => {
    let sum = 0;
    let rank = 0;
    let count = 0;
    sk.forEach((s, i) => {
      const d = near[m]![i]!;
      if (!Number.isFinite(d)) return;
      const all = sorted.get(s.n)!;
      sum += d;
      // Mid-rank among ties, scaled to [0, 1].
      rank += all.length > 1 ? (lowerBound(all, d) + upperBound(all, d) - 1) / 2 / (all.length - 1) : 0.5;
      count++;
    });
    return count ? { distance: sum / count, rank: rank / count } : { distance: Number.NaN, rank: Number.NaN };
  });
}

/** First index of sorted `a` whose value is ≥ x. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index of sorted `a` whose value is > x. */
function upperBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
