/**
 * The single-statistic attack battery: value-level statistics an optimizer party can compute on one
 * bundle member (duplicates, distinct ratio, moments, tails, float bit patterns, BatchNorm running
 * statistics, per-channel norm spread, file size, whether onnxruntime loads it) and two of a member
 * among its bundle (how near its tensors' nearest twins are, `near-twin.ts`), each used alone to
 * pick "the real member" of a group. A statistic leaks when the real member ranks first in more
 * than chance 1/(K+1) of the groups. The same statistics feed the learned adversary.
 */
import type { Model, Tensor } from '../onnx/ir.js';
import { duplicateCount } from './duplicates.js';
import type { TwinScore } from './near-twin.js';

/** Names of the value statistics, in the order `valueStats` returns them. */
export const VALUE_FEATURES = [
  'duplicate fraction',
  'distinct ratio',
  'excess kurtosis',
  'skew',
  'tail mass |z|>3',
  'max |z|',
  'zero fraction',
  'low mantissa byte zero',
  'mantissa lsb set',
  'exponent entropy',
  'bn running var min (log10)',
  'bn running var max (log10)',
  'bn running var log range',
  'bn running mean max |.|',
  'channel norm cv',
  'std·√fan-in',
  'tensor size (mean log2)',
  'file size (log2)',
  'loads in onnxruntime',
  'nearest twin distance',
  'nearest twin rank',
  'architecture multiplicity',
  'wiring multiplicity',
] as const;

/** The last this many VALUE_FEATURES compare a member with the rest of its bundle (near twins, architecture and wiring repeats); the others are the member's own. */
export const BUNDLE_FEATURES = 4;

/**
 * How many members of the bundle share each member's architecture (`architectureOf` keys in, counts
 * out). The real piece is never copied, so it is a singleton: where sentinels repeat a few designs,
 * the singletons are few and the real member is one of them.
 */
export function multiplicities(architectures: readonly string[]): number[] {
  const count = new Map<string, number>();
  for (const a of architectures) count.set(a, (count.get(a) ?? 0) + 1);
  return architectures.map((a) => count.get(a)!);
}

/** Whether an initializer is an additive mask (−1e4 / −inf entries), a constant and not a weight. */
function isMask(t: Tensor): boolean {
  // (A plain loop: `some` with a callback cost a call a value on every sentinel tensor checked.)
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) if (d[i]! <= -1e3) return true;
  return false;
}

/** Output-channel axis of a weight read by `op` at `slot` (0 for Conv/Gemm, 1 for MatMul), or -1. */
export function channelAxis(op: string, slot: number, dims: readonly number[]): number {
  if (slot !== 1 || dims.length < 2) return -1;
  if (op === 'Conv' || op === 'Gemm') return 0;
  if (op === 'MatMul' && dims.length === 2) return 1;
  return -1;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Per-tensor sums the member statistics are aggregated from. */
interface Acc {
  n: number;
  dup: number;
  distinct: number;
  tensors: number;
  kurt: number;
  skew: number;
  tail: number;
  maxZ: number;
  zeros: number;
  nonzero: number;
  lowByte: number;
  lsb: number;
  expEnt: number;
  cv: number;
  cvN: number;
  he: number;
  heN: number;
  /** Σ log2 of the counted tensors' sizes (composition: more, thinner layers read lower). */
  logSize: number;
}

/**
 * Value statistics of one member (VALUE_FEATURES order); `bytes` is its file size, `loads` whether
 * ORT accepted it, `twin` its near-twin score among its bundle (`nearTwinScores`; NaN until known),
 * `multiplicity` how many bundle members share its architecture and `wiring` its wiring alone
 * (`structureOf`: a sentinel given a width of its own keeps its wiring), both `multiplicities`, NaN until known.
 */
export function valueStats(
  m: Model,
  bytes: number,
  loads: boolean,
  twin: TwinScore = { distance: Number.NaN, rank: Number.NaN },
  multiplicity = Number.NaN,
  wiring = Number.NaN,
): number[] {
  const g = m.graph;
  const use = initializerUses(m);
  const a: Acc = {
    n: 0,
    dup: 0,
    distinct: 0,
    tensors: 0,
    kurt: 0,
    skew: 0,
    tail: 0,
    maxZ: 0,
    zeros: 0,
    nonzero: 0,
    lowByte: 0,
    lsb: 0,
    expEnt: 0,
    cv: 0,
    cvN: 0,
    he: 0,
    heN: 0,
    logSize: 0,
  };
  let varMin = NaN;
  let varMax = NaN;
  let meanMax = NaN;
  for (const [name, t] of g.initializers) {
    if (!countedTensor(t)) continue;
    const d = t.data as Float32Array;
    const n = d.length;
    const u = use.get(name) ?? { op: '', slot: -1 };
    if (u.op === 'BatchNormalization' && u.slot === 4) {
      for (const v of d) {
        const l = Math.log10(Math.max(v, 1e-30));
        varMin = Number.isNaN(varMin) ? l : Math.min(varMin, l);
        varMax = Number.isNaN(varMax) ? l : Math.max(varMax, l);
      }
    }
    if (u.op === 'BatchNormalization' && u.slot === 3) for (const v of d) meanMax = Number.isNaN(meanMax) ? Math.abs(v) : Math.max(meanMax, Math.abs(v));
    const dup = duplicateCount(d);
    for (const v of d) {
      if (v === 0) {
        a.zeros++;
        continue;
      }
      a.nonzero++;
      F32[0] = v;
      const bits = U32[0]!;
      if ((bits & 0xff) === 0) a.lowByte++;
      if (bits & 1) a.lsb++;
    }
    const sh = tensorShape(d, t.dims, u.op, u.slot);
    a.n += n;
    a.dup += dup;
    a.distinct += (n - dup) / n;
    a.tensors++;
    a.logSize += Math.log2(n);
    if (sh.sd > 0) {
      a.kurt += n * sh.kurt;
      a.skew += n * sh.skew;
    }
    a.tail += sh.tail;
    a.maxZ += sh.maxZ;
    a.expEnt += n * exponentEntropy(d);
    if (sh.channels > 0) {
      if (sh.cv !== undefined) {
        a.cv += sh.cv;
        a.cvN++;
      }
      a.he += sh.sd * Math.sqrt(n / sh.channels);
      a.heN++;
    }
  }
  const per = (x: number): number => (a.n ? x / a.n : NaN);
  return [
    per(a.dup),
    a.tensors ? a.distinct / a.tensors : NaN,
    per(a.kurt),
    per(a.skew),
    per(a.tail),
    a.tensors ? a.maxZ / a.tensors : NaN,
    per(a.zeros),
    a.nonzero ? a.lowByte / a.nonzero : NaN,
    a.nonzero ? a.lsb / a.nonzero : NaN,
    per(a.expEnt),
    varMin,
    varMax,
    varMax - varMin,
    meanMax,
    a.cvN ? a.cv / a.cvN : NaN,
    a.heN ? a.he / a.heN : NaN,
    a.tensors ? a.logSize / a.tensors : NaN,
    Math.log2(Math.max(1, bytes)),
    loads ? 1 : 0,
    twin.distance,
    twin.rank,
    multiplicity,
    wiring,
  ];
}

/** The first node input that reads each initializer: its op and input slot (channel axes and BatchNorm slots depend on them). */
export function initializerUses(m: Model): Map<string, { op: string; slot: number }> {
  const g = m.graph;
  const use = new Map<string, { op: string; slot: number }>();
  for (const n of g.nodes) n.inputs.forEach((t, slot) => t && g.initializers.has(t) && !use.has(t) && use.set(t, { op: n.opType, slot }));
  return use;
}

/** Tensors the value statistics read: float32, at least 2 values, not an additive attention mask. */
export function countedTensor(t: Tensor): t is Tensor & { data: Float32Array } {
  return t.dtype === 'float32' && t.data.length >= 2 && !isMask(t);
}

/** Plug-in entropy (bits) of the float32 exponents of the non-zero values of `d`. */
export function exponentEntropy(d: Float32Array): number {
  const c = new Float64Array(256);
  let nz = 0;
  for (const v of d) {
    if (v === 0) continue;
    nz++;
    F32[0] = v;
    c[(U32[0]! >>> 23) & 0xff]!++;
  }
  let h = 0;
  for (let e = 0; e < 256; e++) if (c[e]! > 0) h -= (c[e]! / nz) * Math.log2(c[e]! / nz);
  return h;
}

/** Value-shape statistics of one weight tensor read by input `slot` of an `op`. */
export interface TensorShape {
  /** Standard deviation (population); kurtosis and skew are 0 when it is 0. */
  sd: number;
  /** Excess kurtosis and skew. */
  kurt: number;
  skew: number;
  /** Values with |z| > 3, the largest |z| and the smallest (signed) z. */
  tail: number;
  maxZ: number;
  minZ: number;
  /** Coefficient of variation of the channel norms (undefined when all are 0) and the channel count (0: no channel axis). */
  cv: number | undefined;
  channels: number;
}

/** {@link TensorShape} of `d` (dims `dims`), one pass for the z statistics. */
export function tensorShape(d: Float32Array, dims: readonly number[], op: string, slot: number): TensorShape {
  const { mean, m2, m3, m4 } = centralMoments(d);
  const sd = Math.sqrt(m2);
  let tail = 0;
  let maxZ = 0;
  let minZ = Infinity;
  for (const v of d) {
    const z = sd > 0 ? (v - mean) / sd : 0;
    if (Math.abs(z) > 3) tail++;
    if (Math.abs(z) > maxZ) maxZ = Math.abs(z);
    if (z < minZ) minZ = z;
  }
  const ax = channelAxis(op, slot, dims);
  const spread = ax >= 0 ? channelNormSpread(d, dims, ax) : { cv: undefined, channels: 0 };
  return {
    sd,
    kurt: sd > 0 ? m4 / (m2 * m2) - 3 : 0,
    skew: sd > 0 ? m3 / (sd * sd * sd) : 0,
    tail,
    maxZ,
    minZ,
    cv: spread.cv,
    channels: spread.channels,
  };
}

/** Mean and second to fourth central moments of `d` (population, not bias-corrected). */
export function centralMoments(d: Float32Array): { mean: number; m2: number; m3: number; m4: number } {
  const n = d.length;
  let mean = 0;
  for (const v of d) mean += v;
  mean /= n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (const v of d) {
    const e = v - mean;
    m2 += e * e;
    m3 += e * e * e;
    m4 += e * e * e * e;
  }
  return { mean, m2: m2 / n, m3: m3 / n, m4: m4 / n };
}

/** L2 norms of a weight's slices along `axis` (its output channels). */
export function channelNorms(d: Float32Array, dims: readonly number[], axis: number): number[] {
  const c = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((p, q) => p * q, 1);
  const out = new Array<number>(c).fill(0);
  for (let i = 0; i < d.length; i++) {
    const ch = Math.floor(i / inner) % c;
    out[ch]! += d[i]! * d[i]!;
  }
  return out.map(Math.sqrt);
}

/** Spread of a weight's channel norms along `axis`: their coefficient of variation (undefined when all are 0) and how many channels. */
export function channelNormSpread(d: Float32Array, dims: readonly number[], axis: number): { cv: number | undefined; channels: number } {
  const norms = channelNorms(d, dims, axis);
  const mu = norms.reduce((p, c) => p + c, 0) / norms.length;
  const v = norms.reduce((p, c) => p + (c - mu) ** 2, 0) / norms.length;
  return { cv: mu > 0 ? Math.sqrt(v) / mu : undefined, channels: norms.length };
}

/** One member as the battery sees it: its group, whether it is real, its statistics. */
export interface BatteryRow {
  model: string;
  family: string;
  group: number;
  real: boolean;
  v: number[];
}

/**
 * Share of groups whose real member ranks first by statistic `j` (direction `sign`: +1 largest,
 * −1 smallest); ties at the top share the credit, NaN never ranks first unless all are NaN.
 */
export function firstRate(rows: readonly BatteryRow[], j: number, sign: number): number {
  const groups = new Map<number, BatteryRow[]>();
  for (const r of rows) (groups.get(r.group) ?? groups.set(r.group, []).get(r.group)!).push(r);
  let hit = 0;
  for (const ms of groups.values()) {
    const val = (r: BatteryRow): number => (Number.isNaN(r.v[j]!) ? -Infinity : sign * r.v[j]!);
    const top = Math.max(...ms.map(val));
    const at = ms.filter((r) => val(r) === top);
    if (at.some((r) => r.real)) hit += 1 / at.length;
  }
  return groups.size ? hit / groups.size : NaN;
}

/** Per statistic: the real-first rate with the direction learned on the other families, and the best of both directions (an oracle). */
export interface StatisticAttack {
  statistic: string;
  /** Leave-one-family-out: direction chosen on the other families, evaluated on the held-out one. */
  firstRate: number;
  /** max over both directions, in-sample (an upper bound on what the statistic gives away). */
  oracleFirstRate: number;
}

/** Run every single-statistic ranker on `rows` (all models); `only` restricts the evaluation to one model. */
export function batteryReport(rows: readonly BatteryRow[], only?: string): StatisticAttack[] {
  const families = [...new Set(rows.map((r) => r.family))];
  return VALUE_FEATURES.map((statistic, j) => {
    let hits = 0;
    let groups = 0;
    for (const fam of families) {
      const test = rows.filter((r) => r.family === fam && (only === undefined || r.model === only));
      if (!test.length) continue;
      const train = rows.filter((r) => r.family !== fam);
      const sign = train.length && firstRate(train, j, -1) > firstRate(train, j, 1) ? -1 : 1;
      const n = new Set(test.map((r) => r.group)).size;
      hits += firstRate(test, j, sign) * n;
      groups += n;
    }
    const mine = rows.filter((r) => only === undefined || r.model === only);
    return { statistic, firstRate: groups ? hits / groups : NaN, oracleFirstRate: Math.max(firstRate(mine, j, 1), firstRate(mine, j, -1)) };
  });
}
