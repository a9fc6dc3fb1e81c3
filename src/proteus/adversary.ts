/**
 * The adversary: how well can the optimizer party tell real subgraphs from sentinels? Features are
 * op-frequency unigrams and dataflow bigrams (hashed), parameter counts, shape regularity, degree
 * and depth statistics, weight statistics; the learned models are L2 logistic regression (our own
 * gradient descent, no ML library) and gradient-boosted trees (`boost.ts`), evaluated
 * leave-one-model-family-out, next to single-feature heuristics. Reports AUC, specificity at 99 %
 * sensitivity and the search space (1 + (1 − s)·K)^N.
 */
import type { Model } from '../onnx/ir.js';
import { encodeModel } from '../onnx/proto.js';
import { anonymize } from './anonymize.js';
import type { StatisticAttack } from './battery.js';
import { BUNDLE_FEATURES, batteryReport, multiplicities, VALUE_FEATURES, valueStats } from './battery.js';
import { Boosted } from './boost.js';
import { extractParts } from './extract.js';
import { nodeGraph } from './graph.js';
import { nearTwinScores, type TwinSketch, twinSketches } from './near-twin.js';
import { partitionModel } from './partition.js';
import { poolKey, secretRng } from './rng.js';
import { architectureOf, generateSentinels, structureOf } from './sentinel.js';
import type { OpStats } from './stats.js';
import { ortLoads } from './validity.js';
import { WeightPool } from './weights.js';

const UNI = 48;
const BI = 96;

function hash(s: string, m: number): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h % m;
}

/** Names of the scalar (non-hashed) features, in order. */
export const SCALAR_FEATURES = [
  'nodes',
  'log10 params',
  'initializers/node',
  'mean fan-out',
  'max fan-out',
  'two-activation-input nodes',
  'depth/nodes',
  'distinct weight dims',
  'pow2 weight dims',
  'strided convs',
  '1x1 convs',
  'reshape+transpose',
  'mean |weight std|',
  'inputs',
  'outputs',
] as const;

/** Names of every column of an example's `x` (hashed op n-grams by bucket), in order. */
export function featureNames(): string[] {
  const uni = Array.from({ length: UNI }, (_, i) => `op unigram bucket ${i}`);
  const bi = Array.from({ length: BI }, (_, i) => `op bigram bucket ${i}`);
  return [...SCALAR_FEATURES, ...uni, ...bi, ...VALUE_FEATURES];
}

/** Feature vector of one subgraph model. */
export function features(m: Model): number[] {
  const g = m.graph;
  const n = Math.max(1, g.nodes.length);
  const ng = nodeGraph(g);
  const uni = new Array<number>(UNI).fill(0);
  const bi = new Array<number>(BI).fill(0);
  g.nodes.forEach((node, i) => {
    uni[hash(node.opType, UNI)]! += 1 / n;
    for (const s of ng.succ[i]!) bi[hash(`${node.opType}>${g.nodes[s]!.opType}`, BI)]! += 1 / n;
  });
  let params = 0;
  const dims: number[] = [];
  let stdSum = 0;
  let stdN = 0;
  for (const t of g.initializers.values()) {
    params += t.data.length;
    dims.push(...t.dims);
    if (t.dtype === 'float32' && t.data.length > 1) {
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < t.data.length; i++) {
        const v = t.data[i] as number;
        s += v;
        s2 += v * v;
      }
      stdSum += Math.sqrt(Math.max(0, s2 / t.data.length - (s / t.data.length) ** 2));
      stdN++;
    }
  }
  const fan = [...ng.succ].map((s) => s.length);
  let twoAct = 0;
  let strided = 0;
  let oneByOne = 0;
  let convs = 0;
  let rt = 0;
  for (const node of g.nodes) {
    if (node.inputs.filter((t) => t && !g.initializers.has(t)).length >= 2) twoAct++;
    if (node.opType === 'Conv') {
      convs++;
      const s = node.attrs.strides;
      if (s?.kind === 'ints' && s.value.some((v) => v > 1)) strided++;
      const k = node.attrs.kernel_shape;
      if (k?.kind === 'ints' && k.value.every((v) => v === 1)) oneByOne++;
    }
    if (node.opType === 'Reshape' || node.opType === 'Transpose') rt++;
  }
  const depth = new Array<number>(ng.n).fill(1);
  for (const v of ng.order) for (const s of ng.succ[v]!) depth[s] = Math.max(depth[s]!, depth[v]! + 1);
  const scal = [
    n,
    Math.log10(1 + params),
    g.initializers.size / n,
    fan.reduce((a, b) => a + b, 0) / n,
    Math.max(0, ...fan),
    twoAct / n,
    Math.max(1, ...depth) / n,
    new Set(dims).size,
    dims.length ? dims.filter((d) => d > 0 && (d & (d - 1)) === 0).length / dims.length : 0,
    convs ? strided / convs : 0,
    convs ? oneByOne / convs : 0,
    rt / n,
    stdN ? stdSum / stdN : 0,
    g.inputs.length,
    g.outputs.length,
  ];
  return [...scal, ...uni, ...bi];
}

/** One labelled example. */
export interface Example {
  model: string;
  family: string;
  real: boolean;
  x: number[];
  /** Group id: the real subgraph and its sentinels share one (the optimizer sees it as a shared I/O signature). */
  group?: number;
  /** Value statistics (VALUE_FEATURES order, NaN where undefined); `x` ends with them (NaN as 0). */
  v?: number[];
}

/**
 * A stronger, group-aware view of the examples: each feature vector is extended by its deviation
 * from the group mean and the absolute deviation, so the classifier can also learn "the member that
 * is (a)typical of its group" (members of a group share an interface, so the optimizer can group them).
 */
export function groupRelative(examples: readonly Example[]): Example[] {
  const sum = new Map<number, { s: number[]; n: number }>();
  for (const e of examples) {
    if (e.group === undefined) throw new Error('groupRelative: examples carry no group ids');
    const a = sum.get(e.group) ?? { s: new Array<number>(e.x.length).fill(0), n: 0 };
    e.x.forEach((v, j) => (a.s[j]! += v));
    a.n++;
    sum.set(e.group, a);
  }
  return examples.map((e) => {
    const a = sum.get(e.group!)!;
    const dev = e.x.map((v, j) => v - a.s[j]! / a.n);
    return { ...e, x: [...e.x, ...dev, ...dev.map(Math.abs)] };
  });
}

/** L2-regularised logistic regression on standardised features. */
export class Logistic {
  private mu: number[] = [];
  private sd: number[] = [];
  private w: number[] = [];
  private b = 0;

  /** Fit by full-batch gradient descent; classes are re-weighted to equal total weight. */
  fit(xs: number[][], ys: boolean[], opts: { iters?: number; lr?: number; l2?: number } = {}): this {
    const d = xs[0]!.length;
    this.mu = new Array<number>(d).fill(0);
    this.sd = new Array<number>(d).fill(0);
    for (const x of xs) x.forEach((v, j) => (this.mu[j]! += v / xs.length));
    for (const x of xs) x.forEach((v, j) => (this.sd[j]! += (v - this.mu[j]!) ** 2 / xs.length));
    this.sd = this.sd.map((v) => Math.sqrt(v) || 1);
    const z = xs.map((x) => this.norm(x));
    const pos = ys.filter((y) => y).length;
    const wt = ys.map((y) => (y ? 0.5 / Math.max(1, pos) : 0.5 / Math.max(1, ys.length - pos)));
    this.w = new Array<number>(d).fill(0);
    this.b = 0;
    const iters = opts.iters ?? 400;
    const lr = opts.lr ?? 0.5;
    const l2 = opts.l2 ?? 1e-3;
    for (let it = 0; it < iters; it++) {
      const gw = this.w.map((v) => l2 * v);
      let gb = 0;
      z.forEach((x, i) => {
        const p = sigmoid(dot(this.w, x) + this.b);
        const e = (p - (ys[i] ? 1 : 0)) * wt[i]!;
        for (let j = 0; j < d; j++) gw[j]! += e * x[j]!;
        gb += e;
      });
      for (let j = 0; j < d; j++) this.w[j]! -= lr * gw[j]!;
      this.b -= lr * gb;
    }
    return this;
  }
  /** Probability of "real". */
  score(x: number[]): number {
    return sigmoid(dot(this.w, this.norm(x)) + this.b);
  }
  private norm(x: number[]): number[] {
    return x.map((v, j) => (v - this.mu[j]!) / this.sd[j]!);
  }
}

/** Column where the value statistics start in an example's x (after the structural and hashed features). */
const VALUE_AT = SCALAR_FEATURES.length + UNI + BI;

const sigmoid = (t: number): number => 1 / (1 + Math.exp(-t));
const dot = (a: number[], b: number[]): number => a.reduce((s, v, i) => s + v * b[i]!, 0);

/** ROC AUC of scores (higher = more likely real), ties counted half. */
export function auc(scores: number[], labels: boolean[]): number {
  const pos = scores.filter((_, i) => labels[i]);
  const neg = scores.filter((_, i) => !labels[i]);
  if (!pos.length || !neg.length) return NaN;
  let s = 0;
  for (const p of pos) for (const q of neg) s += p > q ? 1 : p === q ? 0.5 : 0;
  return s / (pos.length * neg.length);
}

/**
 * P(AUC ≥ `a` | the real members' ranks are uniformly random among `pos` reals and `neg` sentinels):
 * how often a sampler whose sentinels are exchangeable with the real member would still score this
 * high (the exact Mann–Whitney null distribution; a normal approximation past `exactLimit` steps). With 2
 * real subgraphs among 42 members, an AUC above 0.60 happens by chance about one time in three.
 */
export function aucChanceP(a: number, pos: number, neg: number, exactLimit = 1e8): number {
  if (!(pos > 0 && neg > 0) || Number.isNaN(a)) return NaN;
  const uMax = pos * neg;
  const u0 = Math.ceil(a * uMax - 1e-9);
  if (pos * neg * uMax > exactLimit) {
    const mu = uMax / 2;
    const sd = Math.sqrt((pos * neg * (pos + neg + 1)) / 12);
    return 0.5 * erfc((u0 - 0.5 - mu) / (sd * Math.SQRT2));
  }
  // f[m][u] = P(U = u) for m reals and the negatives seen so far; U counts sentinels ranked below a real.
  const f = Array.from({ length: pos + 1 }, () => new Float64Array(uMax + 1));
  for (let m = 0; m <= pos; m++) f[m]![0] = 1;
  for (let n = 1; n <= neg; n++) {
    for (let m = 1; m <= pos; m++) {
      const cur = f[m]!;
      const prev = f[m - 1]!;
      const wNeg = n / (m + n);
      const wPos = m / (m + n);
      // The largest member is a real one (weight m/(m+n)): it beats all n sentinels; a sentinel: U unchanged.
      for (let u = m * n; u >= 0; u--) cur[u] = wNeg * cur[u]! + (u >= n ? wPos * prev[u - n]! : 0);
    }
  }
  let p = 0;
  for (let u = Math.max(0, u0); u <= uMax; u++) p += f[pos]![u]!;
  return Math.min(1, p);
}

/** Complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851973 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Specificity at ≥ `sens` sensitivity: the threshold keeps that share of reals; s = sentinels below it. */
export function specificityAt(scores: number[], labels: boolean[], sens = 0.99): number {
  const pos = scores.filter((_, i) => labels[i]).sort((a, b) => a - b);
  const neg = scores.filter((_, i) => !labels[i]);
  if (!pos.length || !neg.length) return NaN;
  const thr = pos[Math.floor((1 - sens) * pos.length)]!;
  return neg.filter((v) => v < thr).length / neg.length;
}

/** log10 of the search space (1 + (1 − s)·K)^N. */
export function log10SearchSpace(s: number, k: number, n: number): number {
  return n * Math.log10(1 + (1 - s) * k);
}

/** Options of `buildExamples`. */
export interface ExampleOptions {
  k: number;
  size: number;
  stats: OpStats;
  seed?: number;
  /** Check that every member loads in onnxruntime (a statistic of the battery; default true). */
  load?: boolean;
  /**
   * Obfuscate each model again (a fresh partition and fresh sentinels) until it has at least this many
   * groups (default 1: one bundle). A one-piece model gives one group per bundle, and its AUC is then the
   * real member's rank among its K sentinels: uniform on [0, 1] for a perfect sampler, so no per-model
   * bound can be checked on it. With 20 groups of 20 different real members the AUC's null spread is
   * ±0.066 (one sd at K = 20); with one fixed real member it stays uniform (see `ModelAttack.reals`).
   */
  minGroups?: number;
  /** Called after each bundle: model name, its bundle index and how many bundles it gets. */
  onBundle?: (model: string, bundle: number, bundles: number) => void;
}

/** Structural features followed by the value statistics of an anonymised member (its bundle statistics left NaN: see `setBundleScores`), its twin sketches, architecture and wiring. */
async function memberFeatures(m: Model, load: boolean): Promise<{ x: number[]; v: number[]; sketches: TwinSketch[]; architecture: string; wiring: string }> {
  const bytes = encodeModel(m);
  const v = valueStats(m, bytes.length, load ? await ortLoads(bytes) : true);
  return {
    x: [...features(m), ...v.map((t) => (Number.isFinite(t) ? t : 0))],
    v,
    sketches: twinSketches(m),
    architecture: architectureOf(m),
    wiring: structureOf(m),
  };
}

/** Fill in the bundle statistics (the last BUNDLE_FEATURES value statistics) of one bundle's examples, given their sketches, architectures and wirings. */
function setBundleScores(bundle: readonly Example[], sketches: readonly TwinSketch[][], architectures: readonly string[], wirings: readonly string[]): void {
  const scores = nearTwinScores(sketches);
  const counts = multiplicities(architectures);
  const wired = multiplicities(wirings);
  bundle.forEach((e, i) => {
    const { distance, rank } = scores[i]!;
    [distance, rank, counts[i]!, wired[i]!].forEach((t, j) => {
      if (e.v) e.v[e.v.length - BUNDLE_FEATURES + j] = t;
      e.x[e.x.length - BUNDLE_FEATURES + j] = Number.isFinite(t) ? t : 0;
    });
  });
}

/** Real subgraphs (anonymised like bundle members) and their sentinels, as labelled examples. */
export async function buildExamples(
  models: readonly { name: string; family: string; model: Model; rebuild?: (bundle: number) => Model }[],
  opts: ExampleOptions,
): Promise<{ examples: Example[]; parts: Record<string, number> }> {
  const rng = secretRng(opts.seed);
  const examples: Example[] = [];
  const parts: Record<string, number> = {};
  const load = opts.load !== false;
  let group = 0;
  for (const { name, family, model: model0, rebuild } of models) {
    const modelOps = new Set(model0.graph.nodes.map((n) => n.opType));
    const header = { irVersion: model0.irVersion, opsetImports: model0.opsetImports };
    // Bundles until the model has `minGroups` groups (partitions of later bundles may have fewer pieces).
    const first = group;
    let bundles: number;
    for (let b = 0; b === 0 || group - first < (opts.minGroups ?? 1); b++) {
      // Bundle 0 keeps the partition the seed always gave; later bundles draw their own (a seeded
      // measurement stays reproducible; without a seed every partition is a fresh secret one).
      const seed = opts.seed === undefined ? undefined : b === 0 ? opts.seed : opts.seed + 7919 * b;
      // A model that can be rebuilt (a zoo architecture) gets fresh weights per bundle: with one
      // fixed weight draw, a one-piece model's real member is the same file in every group.
      const model = b > 0 && rebuild ? rebuild(b) : model0;
      const { models: subs } = extractParts(model, partitionModel(model, { size: opts.size, seed }));
      if (b === 0) parts[name] = subs.length;
      if (!subs.length) break;
      const pool = new WeightPool(subs, poolKey(seed));
      const start = examples.length;
      const sketches: TwinSketch[][] = [];
      const architectures: string[] = [];
      const wirings: string[] = [];
      const add = async (m: Model, real: boolean): Promise<void> => {
        const { sketches: sk, architecture, wiring, ...f } = await memberFeatures(anonymize(m, header), load);
        examples.push({ model: name, family, real, group, ...f });
        sketches.push(sk);
        architectures.push(architecture);
        wirings.push(wiring);
      };
      for (const sub of subs) {
        await add(sub, true);
        for (const f of generateSentinels(sub, opts.k, { stats: opts.stats, rng, modelOps, pool })) await add(f, false);
        group++;
      }
      // The bundle's members side by side: the attacker holds every file of the bundle.
      setBundleScores(examples.slice(start), sketches, architectures, wirings);
      bundles = b + 1 + Math.max(0, Math.ceil(((opts.minGroups ?? 1) - (group - first)) / subs.length));
      opts.onBundle?.(name, b + 1, bundles);
    }
  }
  return { examples, parts };
}

/** Per-model attack outcome. */
export interface ModelAttack {
  model: string;
  family: string;
  /** Pieces of one bundle (the first partition). */
  subgraphs: number;
  /** Groups the AUC and battery are measured on (all bundles of this model, see `minGroups`). */
  groups: number;
  /**
   * Distinct real members among them (equal feature vectors count once). A one-piece model with one
   * fixed weight draw has one: its AUC is then that member's quantile among the sentinels, uniform
   * on [0, 1] for a perfect sampler however many groups there are; `aucChanceP` counts these.
   */
  reals: number;
  auc: number;
  /** P(AUC ≥ this) if real members were indistinguishable from sentinels (few subgraphs: large). */
  aucChanceP: number;
  specificity: number;
  /** The second learned adversary (gradient-boosted trees, same features and folds) on this model. */
  boosted: LearnedOutcome;
  /** From the stronger adversary's specificity (the larger of the two). */
  log10SearchSpace: number;
  /** Single-statistic rankers on this model's groups. */
  battery: StatisticAttack[];
}

/** What one learned adversary achieved on a set of examples. */
export interface LearnedOutcome {
  auc: number;
  /** P(AUC ≥ this) for indistinguishable sentinels (see `ModelAttack.aucChanceP`). */
  aucChanceP: number;
  specificity: number;
}

/** Overall attack outcome. */
export interface AttackReport {
  k: number;
  size: number;
  classifier:
    | 'logistic regression (hashed op unigrams+bigrams, 15 structural features, 21 value statistics)'
    | 'group-aware logistic regression (features, their deviation from the group mean and its magnitude)';
  /** Pooled over the held-out folds. */
  auc: number;
  specificity: number;
  /** The second learned adversary, pooled over the same folds. */
  boosted: LearnedOutcome & { classifier: typeof BOOSTED };
  /** Best single-feature heuristic (direction chosen on training folds), its AUC on held-out data. */
  bestHeuristic: { feature: string; auc: number };
  /** Single-statistic rankers over all groups (chance = 1/(K+1)). */
  battery: StatisticAttack[];
  models: ModelAttack[];
}

/** The second learned adversary's description in the report. */
const BOOSTED = 'gradient-boosted trees (100 trees of depth 3 on the same features)';

/** AUC, its chance p over `reals` distinct real members, and specificity at 99 % sensitivity. */
function outcome(scores: number[], labels: boolean[], reals: number): LearnedOutcome {
  const a = auc(scores, labels);
  return { auc: a, aucChanceP: aucChanceP(a, reals, labels.filter((r) => !r).length), specificity: specificityAt(scores, labels) };
}

/**
 * Leave-one-family-out evaluation of the learned adversary and of single-feature heuristics;
 * `groupAware` gives the classifier the group-relative features of `groupRelative` as well.
 */
export function attack(input: readonly Example[], parts: Record<string, number>, k: number, size: number, opts: { groupAware?: boolean } = {}): AttackReport {
  const examples = opts.groupAware ? groupRelative(input) : input;
  const families = [...new Set(examples.map((e) => e.family))];
  const score = new Map<Example, number>();
  const boostScore = new Map<Example, number>();
  const names = [...SCALAR_FEATURES, ...VALUE_FEATURES];
  const heur = names.map(() => new Map<Example, number>());
  for (const fam of families) {
    const train = examples.filter((e) => e.family !== fam);
    const test = examples.filter((e) => e.family === fam);
    if (!train.some((e) => e.real) || !train.some((e) => !e.real)) {
      for (const e of test) score.set(e, 0.5);
      for (const e of test) boostScore.set(e, 0.5);
    } else {
      const xs = train.map((e) => e.x);
      const ys = train.map((e) => e.real);
      const clf = new Logistic().fit(xs, ys);
      for (const e of test) score.set(e, clf.score(e.x));
      const trees = new Boosted().fit(xs, ys);
      for (const e of test) boostScore.set(e, trees.score(e.x));
    }
    names.forEach((_, j) => {
      const col = j < SCALAR_FEATURES.length ? j : VALUE_AT + j - SCALAR_FEATURES.length;
      const a = auc(
        train.map((e) => e.x[col]!),
        train.map((e) => e.real),
      );
      const sign = a >= 0.5 || Number.isNaN(a) ? 1 : -1;
      for (const e of test) heur[j]!.set(e, sign * e.x[col]!);
    });
  }
  const all = [...examples];
  const rows = input.filter((e) => e.v && e.group !== undefined).map((e) => ({ model: e.model, family: e.family, group: e.group!, real: e.real, v: e.v! }));
  const labels = all.map((e) => e.real);
  const scores = all.map((e) => score.get(e)!);
  let best = { feature: '', auc: 0 };
  names.forEach((f, j) => {
    const a = auc(
      all.map((e) => heur[j]!.get(e)!),
      labels,
    );
    if (a > best.auc) best = { feature: f, auc: a };
  });
  const models: ModelAttack[] = Object.keys(parts).map((name) => {
    const ex = all.filter((e) => e.model === name);
    const sc = ex.map((e) => score.get(e)!);
    const lb = ex.map((e) => e.real);
    // (A member's own features: its near-twin statistics change with the bundle's other members.)
    const reals = new Set(ex.filter((e) => e.real).map((e) => e.x.slice(0, -BUNDLE_FEATURES).join(','))).size;
    const logistic = outcome(sc, lb, reals);
    const boosted = outcome(
      ex.map((e) => boostScore.get(e)!),
      lb,
      reals,
    );
    return {
      model: name,
      family: ex[0]?.family ?? name,
      subgraphs: parts[name]!,
      groups: lb.filter(Boolean).length,
      reals,
      ...logistic,
      boosted,
      log10SearchSpace: log10SearchSpace(Math.max(logistic.specificity, boosted.specificity), k, parts[name]!),
      battery: batteryReport(rows, name),
    };
  });
  return {
    k,
    size,
    classifier: opts.groupAware
      ? 'group-aware logistic regression (features, their deviation from the group mean and its magnitude)'
      : 'logistic regression (hashed op unigrams+bigrams, 15 structural features, 21 value statistics)',
    auc: auc(scores, labels),
    specificity: specificityAt(scores, labels),
    boosted: {
      classifier: BOOSTED,
      ...outcome(
        all.map((e) => boostScore.get(e)!),
        labels,
        new Set(all.filter((e) => e.real).map((e) => e.x.join(','))).size,
      ),
    },
    bestHeuristic: best,
    battery: batteryReport(rows),
    models,
  };
}
