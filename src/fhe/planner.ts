/**
 * Parameter planner: from a compiled program, the multiplicative depth per step and, over ring
 * degrees, scales and client-aided refresh placements whose chains hold it at 128-bit security
 * (SEAL's tc128 bounds), the candidate with the least predicted time (src/fhe/cost.ts).
 */
import { ModelError } from '../onnx/ir.js';
import { stagesCost } from '../smartpaf/poly.js';
import { interleave } from './batch.js';
import type { FheProgram } from './compile.js';
import { type FheParams, galoisKeyBytes, TC128_MAX_BITS } from './context.js';
import { DEFAULT_NETWORK, type NetworkProfile, predictCost } from './cost.js';
import { ctsOf, type Lowered, lowerProgram, sourcesOf } from './lower.js';

/** Options of `planFhe`. */
export interface PlanOptions {
  /** Ring degrees to consider, smallest first (default 8192, 16384, 32768). */
  degrees?: number[];
  /** Largest / smallest scale (and middle prime) size in bits (default 40 / 30). */
  maxScaleBits?: number;
  minScaleBits?: number;
  /** Client-aided refresh: true = wherever cheaper, undefined = only when nothing fits without, false = never. */
  refresh?: boolean;
  /** Network profile the refresh round trips are costed at (default `DEFAULT_NETWORK`). */
  network?: NetworkProfile;
  /** Statistical hiding of a refresh mask in bits above |x| ≤ 4 (default 40); its room is kept in the modulus. */
  maskBits?: number;
  /**
   * Seconds each refresh costs beyond its network round trip and crypto: in the split flow a refresh
   * ends one `fhe infer` process and starts a `fhe refresh` and another `fhe infer`, each building a
   * SEAL context and loading keys (`SPLIT_REFRESH_SECONDS`). Default 0 (client online: `fhe run`).
   */
  refreshOverheadSeconds?: number;
  /** The client encrypts the first linear layer's input rotations next to the input (`LowerOptions.clientRotations`). */
  clientRotations?: boolean;
  /** Rank by the time per image once the model plaintexts are cached (a server over many images) rather than the first image's. */
  cachedPlaintexts?: boolean;
  /**
   * Images per ciphertext (slot batching, a power of two): the program is lowered for N/2/batch slots
   * and interleaved (src/fhe/batch.ts), so one evaluation classifies `batch` images. Default 1.
   */
  batch?: number;
}

/**
 * Per-refresh overhead of the split flow at N = 16384 (measured, docs/benchmarks.md issue 17): two more
 * processes (`fhe refresh`, `fhe infer --resume`), each starting node, building a SEAL context and
 * loading keys, and the model compiled again.
 */
export const SPLIT_REFRESH_SECONDS = 6;

/** Largest |x| a refreshed slot is assumed to hold (log2): the mask is 2^(maskBits + MASK_VALUE_LOG2) wide. */
export const MASK_VALUE_LOG2 = 2;

/**
 * Levels a chain that ends in a refresh must keep unused: the masked value x + m (|m| ≤ 2^(b+2))
 * at scale 2^s must decode, i.e. the remaining modulus needs s + b + 2 bits plus 3 bits of headroom
 * (sign, decoding margin); level l holds first + l·s bits.
 */
export function maskReserve(s: number, maskBits: number): number {
  const first = Math.min(60, s + 20);
  return Math.max(0, Math.ceil((s + maskBits + MASK_VALUE_LOG2 + 3 - first) / s));
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
  /** Every candidate considered, cheapest predicted first. */
  candidates: PlanCandidate[];
  chosen: PlanCandidate;
  /** Why this candidate (and whether refresh was forced). */
  choice: string;
  network: NetworkProfile;
}

/** Modulus chain for `levels` rescalings at `s`-bit scale: [s+20 (≤60), s × levels, special = first]. */
export function chainFor(levels: number, s: number): number[] {
  const first = Math.min(60, s + 20);
  return [first, ...new Array<number>(levels).fill(s), first];
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
      const note = s.plans
        .map((m) => {
          const src = sourcesOf(m);
          const babies = src.reduce((a, x) => a + x.babies.length, 0);
          const diags = src.reduce((a, x) => a + x.diags.size, 0);
          const giants =
            m.horner !== undefined
              ? `Horner(step ${m.horner})`
              : m.giantChain
                ? `${m.giantChain.length} chained giant`
                : `${m.giants.filter((g) => g).length} giant`;
          const from = src.length > 1 ? ` from ${src.length} input ciphertexts` : '';
          return `${diags} diagonals${from}, n1=${m.n1}, ${babies} baby + ${giants} rotations${m.reduce.length ? ` + ${m.reduce.length} rotate-and-sum` : ''}`;
        })
        .join('; ');
      return {
        name: s.name,
        kind: 'linear',
        depth,
        rotations: s.rotations,
        plainMults: s.plainMults,
        ctMults: 0,
        note: s.plans.length > 1 ? `${s.plans.length} output ciphertexts: ${note}` : note,
      };
    }
    if (s.kind === 'sumpool')
      return {
        name: s.name,
        kind: 'avgpool',
        depth,
        rotations: s.rotations,
        plainMults: 0,
        ctMults: 0,
        note: 'rotate-and-sum, 1/k² folded into the next linear layer',
      };
    if (s.kind === 'paf') {
      const c = stagesCost(s.src.stages);
      const k = ctsOf(s.out);
      return {
        name: s.name,
        kind: `paf ${s.src.paf}`,
        depth,
        rotations: 0,
        plainMults: k * c.scalarMults,
        ctMults: k * (c.mults + 1),
        note: `sign depth ${c.depth} + 1 for x·sign; 1/s folded into the previous layer${k > 1 ? `; on each of ${k} ciphertexts` : ''}`,
      };
    }
    if (s.kind === 'scale')
      return { name: s.name, kind: 'scale', depth, rotations: 0, plainMults: 1, ctMults: 0, note: 'gain correction (no linear layer to fold into)' };
    if (s.kind === 'maxlevel') {
      const c = stagesCost(s.stages);
      const pairs = s.mask.reduce((a, b) => a + b, 0);
      return {
        name: s.name,
        kind: `maxpool ${s.src.paf}`,
        depth,
        rotations: 1,
        plainMults: c.scalarMults,
        ctMults: c.mults + 1,
        note:
          `max tree level ${s.level + 1}: rotate by ${s.shift}, ${pairs} pairs; sign depth ${c.depth} + 1 for ` +
          `(a−b)·sign; 1/(gain·s) folded into the first stage, window mask on its leaves`,
      };
    }
    return {
      name: s.name,
      kind: 'refresh',
      depth: 0,
      rotations: 0,
      plainMults: 0,
      ctMults: 0,
      note:
        `client-aided: re-randomised, masked (uniform ±2^${s.kind === 'refresh' ? s.maskLog2 : '?'} per slot) ` +
        `decrypt + re-encrypt at the top level (1 round trip)`,
    };
  });
}

/** One parameter choice the planner considered. */
export interface PlanCandidate {
  polyModulusDegree: number;
  scaleBits: number;
  primes: number;
  levelsPerChain: number;
  refreshes: number;
  /** Step indices (of the refresh-free lowering) before which a refresh is inserted. */
  refreshBefore: number[];
  /** Predicted CPU/round-trip seconds for one image; `cached*`: with the model plaintexts already encoded (every image after a server's first). */
  predicted: { serverSeconds: number; refreshSeconds: number; totalSeconds: number; cachedServerSeconds: number; cachedTotalSeconds: number };
  /** Server key material in bytes (seeded serialization: about half of the in-memory size). */
  predictedServerKeyBytes: number;
}

/** Every (ring degree, scale) the chain fits: greedy refresh segmentation (fewest round trips at that cap). */
function candidatesFor(
  flat: Lowered,
  N: number,
  maxS: number,
  minS: number,
  net: NetworkProfile,
  maskBits: number,
  overhead = 0,
): { cands: PlanCandidate[]; tooDeep?: string } {
  const seen = new Map<string, PlanCandidate>();
  let tooDeep: string | undefined;
  for (let s = maxS; s >= minS; s--) {
    // Every cap up to what the ring holds: shorter chains (more refreshes) make each operation cheaper.
    const reserve = maskReserve(s, maskBits);
    for (let cap = levelsAt(N, s); cap >= 1; cap--) {
      const before: number[] = [];
      // Depth still to come from step i on (the last chain needs no mask room).
      const rest = flat.depths.map((_, i) => flat.depths.slice(i).reduce((a, b) => a + b, 0));
      let used = 0;
      let deepest = 0;
      let ok = true;
      flat.steps.forEach((st, i) => {
        const d = flat.depths[i]!;
        if (d > cap) {
          ok = false;
          if (cap === levelsAt(N, s) && s === minS) tooDeep ??= `step '${st.name}' alone needs ${d} levels, more than N=${N} holds (${cap} at ${s}-bit scale)`;
          return;
        }
        // Take the step if the chain keeps room for a refresh mask, or if everything left fits.
        if (used + d > cap - reserve && used + rest[i]! > cap) {
          if (used === 0 || used > cap - reserve) {
            if (cap === levelsAt(N, s) && s === minS)
              tooDeep ??=
                `a chain of ${used || d} levels ${used ? `before step '${st.name}'` : `at step '${st.name}'`} ` +
                `must end in a refresh, whose ${maskBits}-bit mask needs ${reserve} level(s) left free; N=${N} ` +
                `holds ${cap} at ${s}-bit scale (use a larger ring or --mask-bits)`;
            ok = false;
            return;
          }
          before.push(i);
          // The chain is sized to its deepest segment; one ending in a refresh needs the mask's room on top.
          deepest = Math.max(deepest, used + reserve);
          used = 0;
        }
        used += d;
        deepest = Math.max(deepest, used);
      });
      if (!ok) continue;
      // Largest scale first: the first scale reaching a segmentation keeps it (best precision).
      const key = `${before.join(',')}|${deepest}`;
      if (seen.has(key)) continue;
      const primeBits = chainFor(deepest, s);
      const lowered = before.length ? insertRefreshes(flat, before, maskBits, reserve) : flat;
      const extra = overhead * before.length;
      const c = ((p) => ({ ...p, refreshSeconds: p.refreshSeconds + extra, totalSeconds: p.totalSeconds + extra }))(predictCost(lowered, N, deepest, net));
      const cw = ((p) => ({ ...p, totalSeconds: p.totalSeconds + extra }))(predictCost(lowered, N, deepest, net, { cachedPlaintexts: true }));
      const keyBytes = (galoisKeyBytes({ polyModulusDegree: N, primeBits, scaleBits: s }) * (flat.rotationSteps.length + 1)) / 2;
      seen.set(key, {
        polyModulusDegree: N,
        scaleBits: s,
        primes: primeBits.length,
        levelsPerChain: deepest,
        refreshes: before.length,
        refreshBefore: before,
        predicted: {
          serverSeconds: c.serverSeconds,
          refreshSeconds: c.refreshSeconds,
          totalSeconds: c.totalSeconds,
          cachedServerSeconds: cw.serverSeconds,
          cachedTotalSeconds: cw.totalSeconds,
        },
        predictedServerKeyBytes: Math.round(keyBytes),
      });
    }
  }
  return { cands: [...seen.values()], tooDeep };
}

/**
 * Choose N, modulus chain and refresh points for a program, minimising predicted time (server
 * compute + refresh round trips at `opts.network`) over N = 8192/16384/32768 and every scale.
 * `refresh`: true = refresh wherever it is cheaper; undefined = only when nothing fits without
 * (the plan's `choice` says so); false = never (a one-line error names the missing levels).
 */
export function planFhe(p: FheProgram, opts: PlanOptions = {}): FhePlan {
  const degrees = opts.degrees ?? [8192, 16384, 32768];
  const maxS = opts.maxScaleBits ?? 40;
  const minS = opts.minScaleBits ?? 30;
  if (minS > maxS) throw new ModelError(`smallest scale ${minS} bits is larger than the largest ${maxS} bits`);
  const net = opts.network ?? DEFAULT_NETWORK;
  const batch = opts.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1 || (batch & (batch - 1)) !== 0) throw new ModelError(`batch ${batch} is not a power of two`);
  const rejected: string[] = [];
  const all: { c: PlanCandidate; flat: Lowered }[] = [];
  let last: { N: number; lowered: Lowered } | undefined;
  let tooDeep: string | undefined;
  for (const N of degrees) {
    if (TC128_MAX_BITS[N] === undefined) throw new ModelError(`unsupported ring degree ${N}`);
    let lowered: Lowered;
    try {
      if (N / 2 / batch < 1) throw new ModelError(`${batch} images per ciphertext leave no slots`);
      lowered = lowerProgram(p, N / 2 / batch, { clientRotations: opts.clientRotations });
    } catch (e) {
      rejected.push(`N=${N}: ${(e as Error).message}`);
      continue;
    }
    last = { N, lowered };
    const r = candidatesFor(lowered, N, maxS, minS, net, opts.maskBits ?? 40, opts.refreshOverheadSeconds ?? 0);
    tooDeep ??= r.tooDeep;
    for (const c of r.cands) all.push({ c, flat: lowered });
    if (!r.cands.some((c) => c.refreshes === 0))
      rejected.push(`N=${N}: depth ${lowered.depth} > ${maxLevels(N, minS)} levels at ${minS}-bit scale without refresh`);
  }
  if (!last)
    throw new ModelError(
      `${p.source}: the model does not fit one ciphertext at any ring degree` +
        `${batch > 1 ? ` with ${batch} images per ciphertext` : ''} (${rejected.join('; ')})`,
    );
  const cost = (c: PlanCandidate) => (opts.cachedPlaintexts ? c.predicted.cachedTotalSeconds : c.predicted.totalSeconds);
  const cheapest = (xs: typeof all) => xs.reduce((a, b) => (cost(b.c) < cost(a.c) ? b : a));
  const noRefresh = all.filter((x) => x.c.refreshes === 0);
  let pick: (typeof all)[number];
  let choice: string;
  if (opts.refresh === true && all.length) {
    pick = cheapest(all);
    choice =
      `fastest predicted of ${all.length} candidates (client-aided refresh ` +
      `allowed${opts.cachedPlaintexts ? '; time per image with model plaintexts cached' : ''})`;
  } else if (noRefresh.length) {
    pick = cheapest(noRefresh);
    choice =
      `fastest predicted of ${noRefresh.length} candidates without ` +
      `refresh${opts.cachedPlaintexts ? ' (time per image with model plaintexts cached)' : ''}`;
  } else {
    const cap = maxLevels(last.N, minS);
    const missing = `needs ${last.lowered.depth} levels, N=${last.N} holds ${cap} at ${minS}-bit scale: ${last.lowered.depth - cap} levels missing`;
    if (opts.refresh === false) throw new ModelError(`${p.source}: ${missing} (client-aided refresh would split it; it was disabled)`);
    if (!all.length) throw new ModelError(`${p.source}: ${tooDeep ?? `no refresh plan fits N=${last.N}`}`);
    pick = cheapest(all);
    choice =
      `client-aided refresh is the only way: the model ${missing}; chose ${pick.c.refreshes} round trip(s) per ` +
      `image (the client must stay online: 'privml fhe run')`;
  }
  const { c, flat } = pick;
  const lowered = interleave(
    c.refreshes ? insertRefreshes(flat, c.refreshBefore, opts.maskBits ?? 40, maskReserve(c.scaleBits, opts.maskBits ?? 40)) : flat,
    batch,
  );
  const primeBits = chainFor(c.levelsPerChain, c.scaleBits);
  const N = c.polyModulusDegree;
  return {
    params: { polyModulusDegree: N, primeBits, scaleBits: c.scaleBits },
    lowered,
    depth: lowered.depth,
    levels: c.levelsPerChain,
    refreshes: c.refreshes,
    steps: explain(lowered),
    totalBits: primeBits.reduce((a, b) => a + b, 0),
    maxBits: TC128_MAX_BITS[N]!,
    rejected,
    candidates: all.map((x) => x.c).sort((a, b) => cost(a) - cost(b)),
    chosen: c,
    choice,
    network: net,
  };
}

/**
 * What a plan with client-aided refreshes means for the split keygen/encrypt/infer flow, or undefined:
 * `fhe infer` stops at each refresh point with a request for the client (`fhe refresh`), then
 * continues with `fhe infer --resume`. Said at keygen, so the user knows before generating keys.
 */
export function splitFlowNote(plan: FhePlan, source: string): string | undefined {
  if (!plan.refreshes) return undefined;
  return (
    `${source}: ${plan.choice}; in the split flow 'fhe infer' stops ${plan.refreshes} time(s) per image for ` +
    `'fhe refresh' by the client and continues with 'fhe infer --resume'`
  );
}

/** Levels a ring holds at scale `s` (chain [s+20, s × levels, s+20]). */
function levelsAt(N: number, s: number): number {
  const first = Math.min(60, s + 20);
  return Math.floor((TC128_MAX_BITS[N]! - 2 * first) / s);
}

/**
 * A lowered program with client-aided refresh steps inserted before the given step indices. Each
 * refresh resumes at the level its segment needs (`reserve` levels more when the segment ends in
 * another refresh, for that one's mask); `reserve` undefined keeps the top level.
 */
export function insertRefreshes(l: Lowered, before: readonly number[], maskBits = 40, reserve?: number): Lowered {
  const at = new Set(before);
  const sorted = [...at].sort((a, b) => a - b);
  const resume = (i: number): number | undefined => {
    if (reserve === undefined) return undefined;
    const next = sorted.find((j) => j > i);
    let d = 0;
    for (let k = i; k < (next ?? l.steps.length); k++) d += l.depths[k]!;
    return d + (next !== undefined ? reserve : 0);
  };
  const steps: Lowered['steps'] = [];
  const depths: number[] = [];
  l.steps.forEach((s, i) => {
    if (at.has(i)) {
      const prev = i > 0 ? l.steps[i - 1]! : undefined;
      steps.push({
        kind: 'refresh',
        name: `refresh before ${s.name}`,
        out: prev ? prev.out : l.input,
        gain: prev ? prev.gain : 1,
        maskLog2: maskBits + MASK_VALUE_LOG2,
        resumeLevel: resume(i),
      });
      depths.push(0);
    }
    steps.push(s);
    depths.push(l.depths[i]!);
  });
  return { ...l, steps, depths };
}

/** JSON-friendly summary of a plan (for `privml fhe plan --json`). */
export function planSummary(plan: FhePlan, p: FheProgram) {
  return {
    model: p.source,
    form: p.form,
    polyModulusDegree: plan.params.polyModulusDegree,
    slots: plan.params.polyModulusDegree / 2,
    imagesPerCiphertext: plan.lowered.batch ?? 1,
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
    choice: plan.choice,
    network: plan.network,
    predicted: plan.chosen.predicted,
    predictedServerKeyBytes: plan.chosen.predictedServerKeyBytes,
    candidates: plan.candidates,
  };
}
