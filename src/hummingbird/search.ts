/**
 * HummingBird's bit-range search on a calibration set (taken from the training data by the caller).
 *
 * Levels: Relu layers grouped by feature-map size (or one per layer) share a range [lsb, msb).
 * Budget: average kept bits b = msb − lsb per ReLU element, weighted by element counts.
 *
 * eco: msb from the profiled activation range plus a safety margin; per level (depth-first, in graph
 * order) the largest lsb whose predictions on the calibration set are identical to the exact model's,
 * both with fresh random shares and with adversarial shares that lose every carry they can, minus a
 * safety margin of `lsbMargin` bits.
 *
 * aggressive: maximise calibration accuracy under the budget. Phase 1 sweeps each level alone over
 * b ∈ widths and msb ∈ [h − window, h] (lsb = msb − b) and keeps the best lsb per b; phase 2 is a
 * depth-first branch and bound over levels choosing b (fair share of the remaining budget first), a
 * partial assignment being evaluated with later levels exact — an optimistic bound — and pruned when
 * it cannot beat the best complete assignment found; the last level tries the widest b that fits and
 * the b that scored best alone. Each pass resumes from activations cached at its level's cut.
 */
import { type Dataset, subset } from '../nn/data/dataset.js';
import type { Model } from '../onnx/ir.js';
import { bitsKept, type HbEval, type HbLevel, type HbMode, layersOf } from './config.js';
import { agreement, type CutCache, groupLevels, type LevelInfo, type LevelsBy, type ReluProfile, SimEvaluator } from './evaluator.js';
import type { CarryMode } from './simulate.js';

/** Default candidate widths b (the paper's powers of two plus cheap intermediate values). */
export const DEFAULT_WIDTHS = [64, 32, 24, 16, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1, 0];

/** Options of {@link searchRanges}. */
export interface SearchOptions {
  mode: HbMode;
  /** Average kept bits per ReLU element allowed (> 0). */
  budget: number;
  /** Level grouping (default 'size'). */
  levelsBy?: LevelsBy;
  /** Fixed-point fractional bits (default 16). */
  fracBits?: number;
  /** eco: bits of headroom above the profiled range (default 1). */
  margin?: number;
  /** eco: bits kept below the largest lsb that passed, as a safety margin for unseen inputs (default 3). */
  lsbMargin?: number;
  /** eco: random-share draws each candidate must pass besides the adversarial one (default 2). */
  draws?: number;
  /** aggressive: candidate widths (default {@link DEFAULT_WIDTHS}). */
  widths?: number[];
  /** aggressive: msb candidates span [h − window, h] below the profiled h (default 3). */
  window?: number;
  /** aggressive: calibration accuracy drop tolerated (fraction, default 0.01). */
  maxDrop?: number;
  /** aggressive: cap on phase-2 evaluations (default 200). */
  maxEvals?: number;
  /** aggressive: choices tried per level in phase 2, nearest the fair share of the budget first (default 4). */
  branch?: number;
  /** aggressive: calibration images the phase-1 sweep uses (default 500; phase 2 uses all). */
  sweepImages?: number;
  /** Base seed of the simulated shares (default 1). */
  seed?: number;
  /** Mini-batch of the simulated forward passes (default 250). */
  batchSize?: number;
  /** Progress callback: phase name, steps done and planned (an estimate in branch and bound). */
  onProgress?: (phase: string, done: number, total: number, note: string) => void;
}

/** Outcome of a search. */
export interface SearchResult {
  levels: HbLevel[];
  profiles: ReluProfile[];
  /** Average kept bits per ReLU element. */
  bitsKept: number;
  calibration: HbEval;
  /** Budget met (and for aggressive: drop ≤ maxDrop; for eco: identical predictions). */
  ok: boolean;
  note?: string;
  evals: number;
  seconds: number;
  /** aggressive: per level and width, the best single-level calibration accuracy and its lsb. */
  sweep?: { level: string; b: number; msb: number; lsb: number; accuracy: number }[];
}

/** Search bit ranges for `model`'s Relu layers on the calibration set `calib`. */
export async function searchRanges(model: Model, calib: Dataset, opts: SearchOptions): Promise<SearchResult> {
  if (!(opts.budget > 0)) throw new Error(`search: budget must be > 0 bits per ReLU element, got ${opts.budget}`);
  if (opts.mode !== 'eco' && opts.mode !== 'aggressive') throw new Error(`search: mode must be eco or aggressive, got '${String(opts.mode)}'`);
  const t0 = performance.now();
  const ev = await SimEvaluator.create(model, calib, { fracBits: opts.fracBits, batchSize: opts.batchSize });
  try {
    const { profiles, predictions: ref } = ev.profile();
    const levels = groupLevels(profiles, opts.levelsBy ?? 'size');
    const res = opts.mode === 'eco' ? await eco(ev, levels, ref, opts) : await aggressive(ev, levels, ref, opts, model, calib);
    const ranges = layersOf(res.levels);
    const acc64 = ev.accuracy(ref);
    const preds = ev.predict(ranges, 'random', (opts.seed ?? 1) + 1000)!;
    const calibration: HbEval = { dataset: calib.name, n: calib.n, accuracy64: acc64, accuracy: ev.accuracy(preds), agreement: agreement(preds, ref) };
    if (opts.mode === 'eco') calibration.agreementWorst = agreement(ev.predict(ranges, 'worst', 0)!, ref);
    const kept = bitsKept(res.levels);
    const notes = [res.note];
    let ok = res.ok;
    if (opts.mode === 'eco' && (calibration.agreement < 1 || (calibration.agreementWorst ?? 1) < 1)) {
      ok = false;
      notes.push('calibration predictions differ with all levels reduced');
    }
    if (kept > opts.budget + 1e-9) {
      ok = false;
      notes.push(`budget ${opts.budget} not met: ${kept.toFixed(2)} bits kept per ReLU element`);
    }
    return {
      levels: res.levels,
      profiles,
      bitsKept: kept,
      calibration,
      ok,
      note: notes.filter(Boolean).join('; ') || undefined,
      evals: ev.passes + (res.extraPasses ?? 0),
      seconds: (performance.now() - t0) / 1000,
      sweep: res.sweep,
    };
  } finally {
    ev.dispose();
  }
}

interface Partial {
  levels: HbLevel[];
  ok: boolean;
  /** Passes made by helper evaluators (the sweep subset). */
  extraPasses?: number;
  note?: string;
  sweep?: SearchResult['sweep'];
}

const level = (l: LevelInfo, msb: number, lsb: number): HbLevel => ({ name: l.name, nodes: [...l.nodes], elements: l.elements, msb, lsb });

/**
 * Cut k: the graph split right before the first node of any level ≥ k, so a pass that changes only
 * levels ≥ k can resume from activations recorded there (depth-first search reuses its prefix).
 */
async function prepareCuts(ev: SimEvaluator, levels: LevelInfo[]): Promise<number[]> {
  const first = levels.map((l) => Math.min(...l.nodes.map((n) => ev.nodeIndex(n))));
  const cuts = first.map((_, k) => Math.min(...first.slice(k)));
  for (const c of new Set(cuts)) await ev.prepareCut(c);
  return cuts;
}

/** Exact activations at every cut (one chained pass per cut, each resuming from the previous). */
function exactCaches(ev: SimEvaluator, cuts: number[]): CutCache[] {
  const out: CutCache[] = [];
  for (let k = 0; k < cuts.length; k++) {
    const prev = out[k - 1];
    out.push(ev.run({}, 'none', 0, { from: prev && prev.index > 0 ? prev : undefined, capture: cuts[k] }).captured!);
  }
  return out;
}

/** `from` if it is a real cut (index > 0), else undefined (start at the input). */
const resume = (c: CutCache | undefined): CutCache | undefined => (c && c.index > 0 ? c : undefined);

/** eco: lossless ranges, level by level. */
async function eco(ev: SimEvaluator, levels: LevelInfo[], ref: Uint8Array, opts: SearchOptions): Promise<Partial> {
  const margin = opts.margin ?? 1;
  const draws = opts.draws ?? 2;
  const seed = opts.seed ?? 1;
  const cuts = await prepareCuts(ev, levels);
  const chosen: HbLevel[] = [];
  const same = (preds: Uint8Array, start: number, n: number): boolean => {
    for (let i = start; i < start + n; i++) if (preds[i] !== ref[i]) return false;
    return true;
  };
  // Every candidate must keep all predictions with adversarial shares and with `draws` random draws.
  const modes: { mode: CarryMode; seed: number }[] = [
    { mode: 'worst', seed: 0 },
    ...Array.from({ length: draws }, (_, d) => ({ mode: 'random' as const, seed: seed + d })),
  ];
  const exact0 = exactCaches(ev, cuts.slice(0, 1))[0]!;
  let caches: CutCache[] = modes.map(() => exact0);
  const maxSteps = levels.reduce((a, l) => a + Math.ceil(Math.log2(Math.min(64, l.bitsNeeded + margin) + 1)), 0);
  let step = 0;
  for (const [k, l] of levels.entries()) {
    if (k > 0) {
      // Activations at this level's cut under the levels chosen so far, one per share model.
      const prefix = layersOf(chosen);
      caches = modes.map((m, i) => ev.run(prefix, m.mode, m.seed, { from: resume(caches[i]), capture: cuts[k] }).captured!);
    }
    const msb = Math.min(64, l.bitsNeeded + margin);
    const lossless = (lsb: number): boolean => {
      const ranges = layersOf([...chosen, level(l, msb, lsb)]);
      return modes.every((m, i) => ev.run(ranges, m.mode, m.seed, { from: resume(caches[i]), until: same }).preds !== undefined);
    };
    // Largest lsb in [0, msb − 1] that keeps every prediction (assumed monotone: more dropped bits, more error).
    let lo = 0,
      hi = msb - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const pass = lossless(mid);
      opts.onProgress?.('eco', ++step, maxSteps, `${l.name}: lsb ${mid} ${pass ? 'ok' : 'changes predictions'}`);
      if (pass) lo = mid;
      else hi = mid - 1;
    }
    // Back off from the edge: calibration images are only a sample of the inputs to come.
    chosen.push(level(l, msb, Math.max(0, lo - (opts.lsbMargin ?? 3))));
  }
  return { levels: chosen, ok: true };
}

/** aggressive: best calibration accuracy under the budget. */
async function aggressive(ev: SimEvaluator, levels: LevelInfo[], ref: Uint8Array, opts: SearchOptions, model: Model, calib: Dataset): Promise<Partial> {
  const seed = opts.seed ?? 1;
  const widths = [...new Set(opts.widths ?? DEFAULT_WIDTHS)].filter((b) => Number.isInteger(b) && b >= 0 && b <= 64).sort((a, b) => b - a);
  if (widths.length === 0) throw new Error('search: no valid candidate widths');
  const window = opts.window ?? 3;
  const maxDrop = opts.maxDrop ?? 0.01;
  const maxEvals = opts.maxEvals ?? 200;
  const branch = Math.max(1, opts.branch ?? 4);
  const acc64 = ev.accuracy(ref);
  const total = levels.reduce((a, l) => a + l.elements, 0);
  const w = levels.map((l) => l.elements / total);
  const cuts = await prepareCuts(ev, levels);
  const exact = exactCaches(ev, cuts);

  // Phase 1: each level alone on (a subset of) the calibration set, resuming from the exact
  // activations at its cut. Entries record the accuracy lost against the exact model.
  const nSweep = Math.min(calib.n, opts.sweepImages ?? 500);
  const sev = nSweep < calib.n ? await SimEvaluator.create(model, subset(calib, 0, nSweep), { fracBits: ev.state.fracBits }) : ev;
  const table: Map<number, { msb: number; lsb: number; loss: number }>[] = [];
  const sweep: NonNullable<SearchResult['sweep']> = [];
  let extraPasses = 0;
  try {
    const sCuts = sev === ev ? cuts : await prepareCuts(sev, levels);
    const sExact = sev === ev ? exact : exactCaches(sev, sCuts);
    const sAcc64 = sev === ev ? acc64 : sev.accuracy(sev.predict({}, 'none', 0)!);
    const plan = levels.length * widths.length;
    let step = 0;
    levels.forEach((l, k) => {
      const best = new Map<number, { msb: number; lsb: number; loss: number }>();
      const h = Math.min(64, l.bitsNeeded);
      const accOf = (msb: number, lsb: number): number =>
        sev.accuracy(sev.run(layersOf([level(l, msb, lsb)]), 'random', seed, { from: resume(sExact[k]) }).preds!);
      for (const b of widths) {
        // A width this level cannot afford even with every other level at 0 bits is never chosen.
        if (w[k]! * b > opts.budget + 1e-9) continue;
        let top = { msb: 64, lsb: 0, acc: -1 };
        if (b > h) {
          // [0, b) holds every profiled value exactly: the calibration predictions are the exact ones.
          top = { msb: Math.min(64, b), lsb: 0, acc: sAcc64 };
        } else if (b === 0) {
          top = { msb: 0, lsb: 0, acc: accOf(0, 0) };
        } else {
          // Slide the window down from the profiled top while accuracy improves (ties keep the higher, wrap-safer msb).
          for (let m = Math.min(64, h + (b === h ? 1 : 0)); m >= Math.max(b, h - window); m--) {
            const acc = accOf(m, m - b);
            if (acc > top.acc) top = { msb: m, lsb: m - b, acc };
            else break;
          }
        }
        best.set(b, { msb: top.msb, lsb: top.lsb, loss: sAcc64 - top.acc });
        sweep.push({ level: l.name, b, msb: top.msb, lsb: top.lsb, accuracy: top.acc });
        opts.onProgress?.('sweep', ++step, plan, `${l.name} b=${b}: ${(100 * top.acc).toFixed(1)}%`);
        // Narrower widths only get worse once a level alone has lost most of its accuracy.
        if (sAcc64 - top.acc > Math.max(0.2, 10 * maxDrop)) break;
      }
      step = (k + 1) * widths.length;
      table.push(best);
    });
  } finally {
    if (sev !== ev) {
      extraPasses = sev.passes;
      sev.dispose();
    }
  }

  // Phase 2: depth-first branch and bound over levels; each node resumes from its parent's activations.
  const minW = table.map((t) => Math.min(...t.keys()));
  let bestAcc = -1;
  let bestLevels: HbLevel[] | undefined;
  let bestBits = Infinity;
  let evals = 0;
  const pick = (k: number, b: number): HbLevel => level(levels[k]!, table[k]!.get(b)!.msb, table[k]!.get(b)!.lsb);
  const dfs = (k: number, used: number, prefix: HbLevel[], parent: CutCache | undefined): void => {
    if (evals >= maxEvals) return;
    const restMin = w.slice(k + 1).reduce((a, wi, i) => a + wi * minW[k + 1 + i]!, 0);
    const room = opts.budget - used - restMin;
    // A level's loss alone is an optimistic estimate of the loss with it in the mix (0.5-point slack for the sweep's sampling).
    const fits = [...table[k]!.keys()].filter((b) => w[k]! * b <= room + 1e-9 && acc64 - table[k]!.get(b)!.loss > bestAcc - 0.005);
    if (fits.length === 0) return;
    const last = k === levels.length - 1;
    if (last) {
      // The last level tries the widest width that fits and the best-scoring one alone (cheap: a suffix pass each).
      const widest = Math.max(...fits);
      const scored = fits.reduce((x, y) =>
        table[k]!.get(y)!.loss < table[k]!.get(x)!.loss || (table[k]!.get(y)!.loss === table[k]!.get(x)!.loss && y > x) ? y : x,
      );
      fits.splice(0, fits.length, ...new Set([widest, scored]));
    } else {
      const restW = w.slice(k).reduce((a, x) => a + x, 0);
      const fair = (opts.budget - used) / restW;
      fits.sort((x, y) => Math.abs(x - fair) - Math.abs(y - fair) || y - x);
      fits.splice(branch);
    }
    for (const b of fits) {
      if (evals >= maxEvals) return;
      const lv = [...prefix, pick(k, b)];
      // Later levels exact: an optimistic bound for every completion of this prefix.
      const r = ev.run(layersOf(lv), 'random', seed, { from: resume(parent), capture: last ? undefined : cuts[k + 1] });
      evals++;
      const acc = ev.accuracy(r.preds!);
      if (last) {
        const bits = bitsKept(lv);
        if (acc > bestAcc || (acc === bestAcc && bits < bestBits)) {
          bestAcc = acc;
          bestLevels = lv;
          bestBits = bits;
        }
      }
      opts.onProgress?.('search', evals, maxEvals, bestLevels ? `best ${(100 * bestAcc).toFixed(1)}% at ${bestBits.toFixed(2)} bits` : '');
      if (!last && acc > bestAcc) dfs(k + 1, used + w[k]! * b, lv, r.captured);
    }
  };
  dfs(0, 0, [], exact[0]);
  if (!bestLevels) {
    return { levels: levels.map((l) => level(l, 64, 0)), ok: false, note: `no assignment fits budget ${opts.budget}`, sweep, extraPasses };
  }
  const drop = acc64 - bestAcc;
  const ok = drop <= maxDrop + 1e-12;
  return {
    levels: bestLevels,
    ok,
    note: ok ? undefined : `calibration accuracy drops ${(100 * drop).toFixed(2)} points (> ${(100 * maxDrop).toFixed(2)}); raise the budget or fine-tune`,
    sweep,
    extraPasses,
  };
}
