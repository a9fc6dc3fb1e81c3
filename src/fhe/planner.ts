/**
 * Parameter planner: from a compiled program, the multiplicative depth per step and the smallest
 * CKKS ring (N) and modulus chain that hold it at 128-bit security (SEAL's tc128 bounds), or —
 * when allowed — client-aided refresh points that split the depth into chains that fit.
 */
import { ModelError } from '../onnx/ir.js';
import { stagesCost } from '../smartpaf/poly.js';
import type { FheProgram } from './compile.js';
import { TC128_MAX_BITS, type FheParams } from './context.js';
import { lowerProgram, type Lowered } from './lower.js';

/** Options of `planFhe`. */
export interface PlanOptions {
  /** Ring degrees to consider, smallest first (default 8192, 16384, 32768). */
  degrees?: number[];
  /** Largest / smallest scale (and middle prime) size in bits (default 40 / 30). */
  maxScaleBits?: number;
  minScaleBits?: number;
  /** Allow client-aided refresh points when the depth does not fit. */
  refresh?: boolean;
}

/** Explanation of one step's cost. */
export interface StepPlan {
  name: string;
  kind: string;
  depth: number;
  rotations: number;
  plainMults: number;
  ctMults: number;
  note: string;
}

/** A parameter plan. */
export interface FhePlan {
  params: FheParams;
  lowered: Lowered;
  depth: number;
  levels: number;
  refreshes: number;
  steps: StepPlan[];
  totalBits: number;
  maxBits: number;
  rejected: string[];
}

/** Modulus chain for `levels` rescalings at `s`-bit scale: [s+20 (≤60), s × levels, special = first]. */
export function chainFor(levels: number, s: number): number[] {
  const first = Math.min(60, s + 20);
  return [first, ...new Array<number>(levels).fill(s), first];
}

function fitScale(levels: number, N: number, maxS: number, minS: number): number | undefined {
  for (let s = maxS; s >= minS; s--) if (chainFor(levels, s).reduce((a, b) => a + b, 0) <= TC128_MAX_BITS[N]!) return s;
  return undefined;
}

/** Levels a ring holds at the smallest allowed scale. */
export function maxLevels(N: number, minS: number): number {
  const first = Math.min(60, minS + 20);
  return Math.floor((TC128_MAX_BITS[N]! - 2 * first) / minS);
}

function explain(l: Lowered): StepPlan[] {
  return l.steps.map((s, i) => {
    const depth = l.depths[i]!;
    if (s.kind === 'linear') {
      const m = s.plan;
      return { name: s.name, kind: 'linear', depth, rotations: s.rotations, plainMults: s.plainMults, ctMults: 0, note: `${m.diags.size} diagonals, n1=${m.n1}, ${m.babies.length} baby + ${m.horner !== undefined ? `Horner(step ${m.horner})` : `${m.giants.filter((g) => g).length} giant`} rotations${m.reduce.length ? ` + ${m.reduce.length} rotate-and-sum` : ''}` };
    }
    if (s.kind === 'sumpool') return { name: s.name, kind: 'avgpool', depth, rotations: s.rotations, plainMults: 0, ctMults: 0, note: 'rotate-and-sum, 1/k² folded into the next linear layer' };
    if (s.kind === 'paf') {
      const c = stagesCost(s.src.stages);
      return { name: s.name, kind: `paf ${s.src.paf}`, depth, rotations: 0, plainMults: c.scalarMults, ctMults: c.mults + 1, note: `sign depth ${c.depth} + 1 for x·sign; 1/s folded into the previous layer` };
    }
    if (s.kind === 'scale') return { name: s.name, kind: 'scale', depth, rotations: 0, plainMults: 1, ctMults: 0, note: 'gain correction (no linear layer to fold into)' };
    if (s.kind === 'maxlevel') {
      const c = stagesCost(s.stages);
      const pairs = s.mask.reduce((a, b) => a + b, 0);
      return { name: s.name, kind: `maxpool ${s.src.paf}`, depth, rotations: 1, plainMults: c.scalarMults, ctMults: c.mults + 1, note: `max tree level ${s.level + 1}: rotate by ${s.shift}, ${pairs} pairs; sign depth ${c.depth} + 1 for (a−b)·sign; 1/(gain·s) folded into the first stage, window mask on its leaves` };
    }
    return { name: s.name, kind: 'refresh', depth: 0, rotations: 0, plainMults: 0, ctMults: 0, note: 'client-aided: masked decrypt + re-encrypt at the top level (1 round trip)' };
  });
}

/** Choose N, modulus chain and (optionally) refresh points for a program. */
export function planFhe(p: FheProgram, opts: PlanOptions = {}): FhePlan {
  const degrees = opts.degrees ?? [8192, 16384, 32768];
  const maxS = opts.maxScaleBits ?? 40;
  const minS = opts.minScaleBits ?? 30;
  const rejected: string[] = [];
  let last: { N: number; lowered: Lowered } | undefined;
  for (const N of degrees) {
    if (TC128_MAX_BITS[N] === undefined) throw new ModelError(`unsupported ring degree ${N}`);
    let lowered: Lowered;
    try {
      lowered = lowerProgram(p, N / 2);
    } catch (e) {
      rejected.push(`N=${N}: ${(e as Error).message}`);
      continue;
    }
    last = { N, lowered };
    const s = fitScale(lowered.depth, N, maxS, minS);
    if (s === undefined) {
      rejected.push(`N=${N}: depth ${lowered.depth} > ${maxLevels(N, minS)} levels at ${minS}-bit scale`);
      continue;
    }
    const primeBits = chainFor(lowered.depth, s);
    return { params: { polyModulusDegree: N, primeBits, scaleBits: s }, lowered, depth: lowered.depth, levels: lowered.depth, refreshes: 0, steps: explain(lowered), totalBits: primeBits.reduce((a, b) => a + b, 0), maxBits: TC128_MAX_BITS[N]!, rejected };
  }
  if (!last) throw new ModelError(`${p.source}: the model does not fit one ciphertext at any ring degree (${rejected.join('; ')})`);
  const { N, lowered: flat } = last;
  const cap = maxLevels(N, minS);
  if (!opts.refresh) {
    throw new ModelError(`${p.source}: needs ${flat.depth} levels, N=${N} holds ${cap} at ${minS}-bit scale: ${flat.depth - cap} levels missing (allow client-aided refresh with --refresh)`);
  }
  // Refresh points between slot-level steps (a MaxPool tree may be cut between its levels). For
  // every scale from the largest down: greedy segmentation (optimal for a chain of atomic steps);
  // keep the fewest round trips, and among those the largest scale (best precision).
  let best: { s: number; before: number[]; deepest: number } | undefined;
  let tooDeep: string | undefined;
  for (let s = maxS; s >= minS; s--) {
    const capS = levelsAt(N, s);
    const before: number[] = [];
    let used = 0;
    let deepest = 0;
    let ok = true;
    flat.steps.forEach((st, i) => {
      const d = flat.depths[i]!;
      if (d > capS) {
        ok = false;
        if (s === minS) tooDeep = `step '${st.name}' alone needs ${d} levels, more than N=${N} holds (${capS})`;
        return;
      }
      if (used + d > capS) {
        before.push(i);
        used = 0;
      }
      used += d;
      deepest = Math.max(deepest, used);
    });
    if (!ok) continue;
    if (!best || before.length < best.before.length) best = { s, before, deepest };
  }
  if (!best) throw new ModelError(`${p.source}: ${tooDeep ?? `no refresh plan fits N=${N}`}`);
  const lowered = insertRefreshes(flat, best.before);
  const primeBits = chainFor(best.deepest, best.s);
  return { params: { polyModulusDegree: N, primeBits, scaleBits: best.s }, lowered, depth: lowered.depth, levels: best.deepest, refreshes: best.before.length, steps: explain(lowered), totalBits: primeBits.reduce((a, b) => a + b, 0), maxBits: TC128_MAX_BITS[N]!, rejected };
}

/** Levels a ring holds at scale `s` (chain [s+20, s × levels, s+20]). */
function levelsAt(N: number, s: number): number {
  const first = Math.min(60, s + 20);
  return Math.floor((TC128_MAX_BITS[N]! - 2 * first) / s);
}

/** A lowered program with client-aided refresh steps inserted before the given step indices. */
export function insertRefreshes(l: Lowered, before: readonly number[]): Lowered {
  const at = new Set(before);
  const steps: Lowered['steps'] = [];
  const depths: number[] = [];
  l.steps.forEach((s, i) => {
    if (at.has(i)) {
      const prev = i > 0 ? l.steps[i - 1]! : undefined;
      steps.push({ kind: 'refresh', name: `refresh before ${s.name}`, out: prev ? prev.out : l.input, gain: prev ? prev.gain : 1 });
      depths.push(0);
    }
    steps.push(s);
    depths.push(l.depths[i]!);
  });
  return { ...l, steps, depths };
}

/** JSON-friendly summary of a plan (for `privml fhe plan --json`). */
export function planSummary(plan: FhePlan, p: FheProgram): Record<string, unknown> {
  return {
    model: p.source,
    form: p.form,
    polyModulusDegree: plan.params.polyModulusDegree,
    slots: plan.params.polyModulusDegree / 2,
    scaleBits: plan.params.scaleBits,
    primeBits: plan.params.primeBits,
    totalModulusBits: plan.totalBits,
    maxModulusBits128: plan.maxBits,
    depth: plan.depth,
    levels: plan.levels,
    refreshRoundTrips: plan.refreshes,
    rotations: plan.lowered.rotations,
    galoisSteps: plan.lowered.rotationSteps,
    steps: plan.steps,
    rejected: plan.rejected,
  };
}
