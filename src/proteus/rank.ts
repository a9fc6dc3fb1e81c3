/**
 * The real member's secret rank in two composition statistics of its group: duplicate fraction and
 * float exponent entropy (as `battery.ts` computes them, over a member's values).
 *
 * Both are means over every value of a member, so they rank members by which tensors they hold as
 * much as by the values: float32 collisions in a continuous tensor grow with the square of its size,
 * an all-zero bias repeats all but one value, a small tensor's plug-in exponent entropy falls short,
 * BatchNorm scales and variances (≈ 1) carry about one bit against a convolution's 2.5. On zoo
 * resnet20 bundles the real member had the largest duplicate fraction of its group in 14–26 % of
 * groups and the largest exponent entropy in 17–30 % (chance 1 in 21). And a model's real pieces are
 * one fixed draw: a real piece whose weights happen to repeat one value more than expected stays
 * first in every bundle of that model unless the sentinels are placed around its actual value.
 *
 * So, as for sizes (`SentinelOptions.position`), each group draws a secret standard-normal place per
 * statistic, each sentinel a normal draw, and the sentinel must land above the real member's
 * *observed* value when its draw is above the place, else below: the number of sentinels above the
 * real member is then uniform over 0…K, whatever the sentinel generator's own distribution. A
 * sentinel's duplicates are moved to its side directly (a value copied onto another random
 * position: a resample from the tensor's own values; or a colliding value moved by one ulp), which
 * changes nothing else measurably. For exponent entropy the generator draws the sentinel's values
 * again, a bounded number of times (`sentinel.ts`); that moves it only because sentinel tensors are
 * fresh subsets, not their source's values again (`weights.ts`, FRESH).
 */
import type { Model } from '../onnx/ir.js';
import { countedTensor as counted, exponentEntropy, initializerUses, tensorShape } from './battery.js';
import { duplicateCount, duplicateCountAfter, duplicateIndices } from './duplicates.js';
import type { Rng } from './rng.js';

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Bit patterns overwritten in a tensor and those written over them (for `duplicateCountAfter`). */
interface Edits {
  removed: number[];
  added: number[];
}

/** The float32 bit pattern at index i of `d`. */
function bitsAt(d: Float32Array, i: number): number {
  return new Uint32Array(d.buffer, d.byteOffset + 4 * i, 1)[0]!;
}

/** A member's value-weighted exponent entropy, exactly as the battery computes it (linear: no duplicate count). */
export function memberEntropy(m: Model): number {
  let n = 0;
  let ent = 0;
  for (const t of m.graph.initializers.values()) {
    if (!counted(t)) continue;
    n += t.data.length;
    ent += t.data.length * exponentEntropy(t.data);
  }
  return n ? ent / n : NaN;
}

/** A member's duplicate fraction and value-weighted exponent entropy, exactly as the battery computes them. */
export function compositionStats(m: Model): [number, number] {
  let n = 0;
  let dups = 0;
  let ent = 0;
  for (const t of m.graph.initializers.values()) {
    if (!counted(t)) continue;
    n += t.data.length;
    dups += duplicateCount(t.data);
    ent += t.data.length * exponentEntropy(t.data);
  }
  return n ? [dups / n, ent / n] : [NaN, NaN];
}

/**
 * A draw of Poisson(lam) restricted to [lo, hi] (inverse CDF over the restricted weights, in log
 * space from lo on); -1 when the range is empty.
 */
export function poissonWithin(lam: number, lo: number, hi: number, rng: Rng): number {
  lo = Math.max(0, lo);
  if (hi < lo) return -1;
  // The mass lies within a few standard deviations of λ clamped into [lo, hi].
  const w = Math.ceil(12 * Math.sqrt(lam) + 40);
  const from = Math.max(lo, Math.floor(Math.min(hi, lam)) - w);
  const to = Math.min(hi, Math.ceil(Math.max(lo, lam)) + w);
  const logw = new Float64Array(to - from + 1);
  let lw = from * Math.log(lam) - logFactorial(from);
  let mx = -Infinity;
  for (let k = from; k <= to; k++) {
    logw[k - from] = lw;
    if (lw > mx) mx = lw;
    lw += Math.log(lam) - Math.log(k + 1);
  }
  let sum = 0;
  for (let i = 0; i < logw.length; i++) sum += logw[i] = Math.exp(logw[i]! - mx);
  let u = rng.next() * sum;
  for (let i = 0; i < logw.length; i++) if ((u -= logw[i]!) <= 0) return from + i;
  return to;
}

/** log k! (Stirling past 64). */
function logFactorial(k: number): number {
  if (k > 64) return k * Math.log(k) - k + 0.5 * Math.log(2 * Math.PI * k) + 1 / (12 * k);
  let s = 0;
  for (let i = 2; i <= k; i++) s += Math.log(i);
  return s;
}
/**
 * Value-shape statistics of a member that move with its exponent entropy (heavier tails and more
 * spread channel scales spread the exponents): excess kurtosis, skew, tail mass, mean max |z|,
 * channel-norm cv, std·√fan-in (as the battery computes them) and mean min z. A redraw is kept
 * for the entropy side only if each of these stays on the side of the real value its first draw
 * was on: selecting on entropy alone dragged them (mobilenetv2: the real member had the largest
 * channel-norm cv in 24 % of groups, the largest kurtosis in 15 %).
 */
export function shapeStats(m: Model): number[] {
  const use = initializerUses(m);
  let n = 0;
  let tensors = 0;
  let kurt = 0;
  let skew = 0;
  let tail = 0;
  let maxZ = 0;
  let cv = 0;
  let cvN = 0;
  let he = 0;
  let heN = 0;
  let minZ = 0;
  let minN = 0;
  for (const [name, t] of m.graph.initializers) {
    if (!counted(t)) continue;
    const d = t.data;
    const u = use.get(name) ?? { op: '', slot: -1 };
    const sh = tensorShape(d, t.dims, u.op, u.slot);
    n += d.length;
    tensors++;
    if (sh.sd > 0) {
      kurt += d.length * sh.kurt;
      skew += d.length * sh.skew;
      if (d.length >= 16) {
        minZ += sh.minZ;
        minN++;
      }
    }
    tail += sh.tail;
    maxZ += sh.maxZ;
    if (sh.channels > 0) {
      if (sh.cv !== undefined) {
        cv += sh.cv;
        cvN++;
      }
      he += sh.sd * Math.sqrt(d.length / sh.channels);
      heN++;
    }
  }
  return [kurt / n, skew / n, tail / n, maxZ / tensors, cvN ? cv / cvN : 0, heN ? he / heN : 0, minN ? minZ / minN : 0];
}

/** Whether `x` is on the side of `real` a draw asked for (a tie is on both sides: it shares the rank). */
export function onSide(x: number, real: number, above: boolean): boolean {
  return x === real || x > real === above;
}

/**
 * Move a filled sentinel's duplicate fraction to its side of the real member's (`above` or not),
 * touching only continuous weight tensors (no constants, no few-level tensors such as zero biases:
 * those are structure, the real member has its own). Returns whether it got there (it cannot go
 * below a real member without duplicates, or below its own structural repeats).
 */
export function steerDuplicates(m: Model, real: number, above: boolean, rng: Rng): boolean {
  const ts = [...m.graph.initializers.values()].filter(counted);
  const n = ts.reduce((s, t) => s + t.data.length, 0);
  if (!n) return true;
  // Counts first (no index arrays): most sentinels are on their side already.
  const per = ts.map((t) => duplicateCount(t.data));
  let dups = per.reduce((s, d) => s + d, 0);
  if (onSide(dups / n, real, above)) return true;
  // Continuous tensors only: at least half their values distinct.
  const smooth = ts.map((_t, i) => i).filter((i) => per[i]! < ts[i]!.data.length / 2 && ts[i]!.data.length >= 16);
  if (!smooth.length) return false;
  // The count to move to: a Poisson draw around the sentinel's own count, restricted to the side
  // (collisions are rare independent events). The nearest count on the side instead put every
  // moved sentinel right next to the real member, which then sat at its group's median (9 % of
  // zoo resnet20 groups, chance 4.8 %).
  // Only the continuous tensors' collisions move; the rest (zero biases, constants) are structure.
  const free = smooth.reduce((s, i) => s + per[i]!, 0);
  const fixed = dups - free;
  const lam = Math.max(1, free);
  const got = above ? poissonWithin(lam, Math.floor(real * n) + 1 - fixed, Infinity, rng) : poissonWithin(lam, 0, Math.ceil(real * n) - 1 - fixed, rng);
  if (got < 0) return false;
  const target = fixed + got;
  if (above) {
    // Each copy is a value resampled from its own tensor, in a tensor drawn in proportion to its
    // values (collisions fall where the values are); counted again once per round.
    const total = smooth.reduce((s, i) => s + ts[i]!.data.length, 0);
    for (let round = 0; round < 4 && dups < target; round++) {
      // Per touched tensor, the bit patterns overwritten and written (the recount needs only those).
      const touched = new Map<number, Edits>();
      for (let k = dups; k < target; k++) {
        let u = rng.int(total);
        let i = smooth[0]!;
        for (const j of smooth) {
          i = j;
          if ((u -= ts[j]!.data.length) < 0) break;
        }
        const d = ts[i]!.data;
        const a = rng.int(d.length);
        const b = rng.int(d.length);
        if (a === b || d[a] === d[b]) continue;
        const e = touched.get(i) ?? touched.set(i, { removed: [], added: [] }).get(i)!;
        e.removed.push(bitsAt(d, b));
        d[b] = d[a]!;
        e.added.push(bitsAt(d, b));
      }
      for (const [i, e] of touched) {
        const again = duplicateCountAfter(ts[i]!.data, per[i]!, e.removed, e.added);
        dups += again - per[i]!;
        per[i] = again;
      }
    }
    return onSide(dups / n, real, above);
  }
  // Below: move colliding values of continuous tensors by one ulp until the fraction is under the real one.
  for (let pass = 0; pass < 4; pass++) {
    for (const i of smooth) {
      const remove = dups - target;
      if (remove <= 0) break;
      const d = ts[i]!.data;
      const e: Edits = { removed: [], added: [] };
      for (const j of duplicateIndices(d).slice(0, remove)) {
        if (d[j] === 0) continue; // a zero among zeros is sparsity, not a collision
        e.removed.push(bitsAt(d, j));
        F32[0] = d[j]!;
        U32[0] = U32[0]! + 1;
        d[j] = F32[0];
        e.added.push(bitsAt(d, j));
      }
      // Recount: a moved value can land on another.
      const again = duplicateCountAfter(d, per[i]!, e.removed, e.added);
      dups += again - per[i]!;
      per[i] = again;
    }
  }
  return onSide(dups / n, real, above);
}
