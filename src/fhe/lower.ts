/**
 * Lowering an FHE program to slots: where every tensor element lives in the ciphertext (layout),
 * which diagonals each linear map needs, the baby-step/giant-step split that minimises rotations,
 * the rotation steps (hence Galois keys) the model uses, and the gain bookkeeping that folds
 * constant factors (1/s of a PAF, ½ of ReLU, 1/k² of average pooling) into plaintext weights.
 *
 * Packing: one image per ciphertext. A [C,H,W] tensor puts channel c in block c mod nb (block size
 * B = next power of two ≥ H·W of the input image, nb = slots / B) at lattice positions
 * (h·t)·W0 + w·t; pooling multiplies the lattice stride t, and channels beyond nb share a block at
 * the free sub-positions of the lattice. The client replicates the input image into every block,
 * so the first convolution needs only spatial rotations. A tensor with more channels than one
 * ciphertext holds is spread over several ciphertexts (`Layout.cts`): slot indices are then global,
 * ciphertext c holding slots c·n … c·n + n − 1, and a linear map sums per-input-ciphertext diagonal
 * products before its shared giant-step rotations.
 */
import { ModelError } from '../onnx/ir.js';
import { stagesCost } from '../smartpaf/poly.js';
import { babyChain, bsgsJoint } from './bsgs.js';
import type { AffineMap, FheProgram, FheStep } from './compile.js';
import { stepDepth } from './compile.js';

export { bsgs, bsgsJoint } from './bsgs.js';

/** Where each element (flat index) of a per-image tensor lives; element e is also at slotOf[e] + r·period for r < copies. */
export interface Layout {
  dims: number[];
  slotOf: Int32Array;
  period: number;
  copies: number;
  /** Spatial lattice (for [C,H,W] tensors). */
  grid?: { B: number; W0: number; t: number; nb: number };
  /** Ciphertexts the tensor is spread over (default 1); slotOf is then global (ciphertext · slots + slot). */
  cts?: number;
}

/** Number of ciphertexts of a layout. */
export function ctsOf(L: Layout): number {
  return L.cts ?? 1;
}

/** Diagonals and baby steps of one input ciphertext of a linear map. */
export interface LinearSource {
  /** Index of the input ciphertext. */
  input: number;
  diags: Map<number, Float64Array>;
  babies: { step: number; from: number; via: number }[];
}

/** How a linear step is evaluated: diagonals, their BSGS split, and an optional final rotate-and-sum. */
export interface LinearPlan {
  /** Diagonal k (rotation amount) → slot weights. */
  diags: Map<number, Float64Array>;
  bias: Float64Array;
  n1: number;
  /** Baby steps: computed as rot(babies[from], via). */
  babies: { step: number; from: number; via: number }[];
  /** Distinct giant steps (multiples of n1), 0 included when used. */
  giants: number[];
  /** When set, giants are evaluated by Horner with this single step. */
  horner?: number;
  /**
   * When set, the giants are the residues k mod n1 and the babies the multiples of n1 (roles swapped,
   * so the many small offsets are rotated once per output after the rescale, one level lower, instead
   * of once per input ciphertext): giant g's partial sum is rotated by `via` into giant `from`'s,
   * children before parents, so every giant costs one rotation and the keys are the chain's few steps.
   */
  giantChain?: { step: number; from: number; via: number }[];
  /** Rotate-and-sum steps after the diagonals (reduce mode), else empty. */
  reduce: number[];
  /** Input ciphertext that `diags`/`babies` read (default 0). */
  input?: number;
  /** Further input ciphertexts (multi-ciphertext tensors), summed before the shared giant rotations. */
  more?: LinearSource[];
}

/** Every input source of a linear plan (the main one first). */
export function sourcesOf(p: LinearPlan): LinearSource[] {
  return [{ input: p.input ?? 0, diags: p.diags, babies: p.babies }, ...(p.more ?? [])];
}

/** A slot-level step. */
export type HeStep =
  /** `plans[c]` computes output ciphertext c. */
  | {
      kind: 'linear';
      name: string;
      src: FheStep;
      plans: LinearPlan[];
      out: Layout;
      gain: number;
      rotations: number;
      plainMults: number;
      /** The baby rotations of the input come from the client (`Lowered.inputRotations`), not from key switches. */
      clientBabies?: boolean;
    }
  | { kind: 'sumpool'; name: string; src: FheStep; shifts: number[]; out: Layout; gain: number; rotations: number }
  | { kind: 'paf'; name: string; src: FheStep & { kind: 'paf' }; out: Layout; gain: number }
  | { kind: 'scale'; name: string; factor: number; out: Layout; gain: number }
  /**
   * One level of a PAF MaxPool tree: y = (x + rot(x, shift)) + d·sign(f·d) with d = x − rot(x, shift),
   * i.e. 2·gain·max of the pairs `shift` slots apart. `stages` are the PAF's with f (= 1/(gain·s))
   * folded into the first stage; `mask` is 1 at the slots whose pair is a real window pair (0
   * elsewhere) and multiplies the first stage's coefficient leaves, so slots that hold no pair
   * (other windows' members, padding between blocks) evaluate sign to exactly 0 and can never leave
   * the polynomial's range. No extra level: the leaves are plaintext multiplications anyway.
   */
  | {
      kind: 'maxlevel';
      name: string;
      src: FheStep & { kind: 'maxpool' };
      level: number;
      final: boolean;
      shift: number;
      stages: number[][];
      mask: Float64Array;
      out: Layout;
      gain: number;
      rotations: number;
    }
  /** Client-aided refresh; the server's additive mask is uniform in ±2^maskLog2 per slot. */
  | {
      kind: 'refresh';
      name: string;
      out: Layout;
      gain: number;
      maskLog2?: number;
      /**
       * Level the refreshed ciphertext is mod-switched down to: what the rest of its chain needs (its
       * steps' depth, plus the mask's room when it ends in another refresh). Every later operation
       * then works on fewer primes. Undefined: stay at the top level.
       */
      resumeLevel?: number;
    };

/** A lowered program for a slot count. */
export interface Lowered {
  slots: number;
  input: Layout;
  steps: HeStep[];
  /** Output layout; the decrypted value divided by `outputGain` is the model output. */
  output: Layout;
  outputGain: number;
  /** Every rotation step used (normalised to (0, slots)), i.e. the Galois keys needed. */
  rotationSteps: number[];
  rotations: number;
  depth: number;
  /** Depth per step (same order as `steps`). */
  depths: number[];
  /** Images per ciphertext (slot batching, src/fhe/batch.ts): image b in the slots ≡ b (mod batch); default 1. */
  batch?: number;
  /**
   * Rotations of the input the client encrypts next to it (`LowerOptions.clientRotations`): the first
   * linear layer's baby steps, so the server makes none of its most expensive (top-level) rotations.
   */
  inputRotations?: number[];
}

const mod = (a: number, n: number) => ((a % n) + n) % n;
const nextPow2 = (x: number) => 2 ** Math.ceil(Math.log2(Math.max(1, x)));

/** Layout of the program input (replicated as often as the slots allow). */
export function inputLayout(dims: number[], slots: number, where: string): Layout {
  if (dims.length === 3) {
    const [C, H, W] = dims as [number, number, number];
    const B = nextPow2(H * W);
    const nb = Math.floor(slots / B);
    if (nb < C) throw new ModelError(`${where}: input [${dims}] needs ${C} blocks of ${B} slots, only ${slots} slots`);
    const slotOf = new Int32Array(C * H * W);
    for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) slotOf[(c * H + h) * W + w] = c * B + h * W + w;
    const period = B * nextPow2(C);
    return { dims, slotOf, period, copies: Math.max(1, Math.floor(slots / period)), grid: { B, W0: W, t: 1, nb } };
  }
  const F = dims.reduce((a, b) => a * b, 1);
  if (F > slots) throw new ModelError(`${where}: input of ${F} values exceeds ${slots} slots`);
  const period = nextPow2(F);
  return { dims, slotOf: Int32Array.from({ length: F }, (_, i) => i), period, copies: Math.floor(slots / period) };
}

/** Output layout of a linear map onto a spatial lattice (conv-like) or a vector. */
function gridOutLayout(inL: Layout, outDims: number[], slots: number, where: string): Layout | undefined {
  if (!inL.grid || outDims.length !== 3 || inL.dims.length !== 3) return undefined;
  const { B, W0, nb } = inL.grid;
  const [M, OH, OW] = outDims as [number, number, number];
  const H = inL.dims[1]!;
  const ratio = H % OH === 0 ? H / OH : 1;
  const t = inL.grid.t * ratio;
  const cap = nb * t * t;
  // Channels beyond one ciphertext's capacity go to further ciphertexts (same lattice in each).
  const cts = Math.ceil(M / cap);
  if (cts > 64)
    throw new ModelError(
      `${where}: ${M} output channels need ${cts} ciphertexts (${nb} blocks × ${t * t} lattice sub-positions at ${slots} slots); at most 64`,
    );
  const slotOf = new Int32Array(M * OH * OW);
  for (let m0 = 0; m0 < M; m0++) {
    const c = Math.floor(m0 / cap);
    const m = m0 % cap;
    const j = Math.floor(m / nb);
    const sub = Math.floor(j / t) * W0 + (j % t);
    for (let h = 0; h < OH; h++) for (let w = 0; w < OW; w++) slotOf[(m0 * OH + h) * OW + w] = c * slots + (m % nb) * B + sub + h * t * W0 + w * t;
  }
  return { dims: outDims, slotOf, period: slots, copies: 1, grid: { B, W0, t, nb }, cts };
}

/**
 * Diagonals of map `m` (diag mode), weights scaled by `wScale`: `[outCt][inCt]` → diagonal k → slot
 * weights (global slots split into ciphertext and local slot).
 */
function diagonals(
  m: AffineMap,
  outSlot: (o: number) => number,
  inSlotFor: (e: number, o: number) => number,
  n: number,
  wScale: number,
): Map<number, Map<number, Float64Array>>[] {
  const out: Map<number, Map<number, Float64Array>>[] = [];
  m.rows.forEach((r, o) => {
    const g = outSlot(o);
    const oc = Math.floor(g / n);
    const so = g % n;
    const byIn = (out[oc] ??= new Map());
    for (let j = 0; j < r.idx.length; j++) {
      const gi = inSlotFor(r.idx[j]!, so);
      const ic = Math.floor(gi / n);
      const k = mod((gi % n) - so, n);
      let diags = byIn.get(ic);
      if (!diags) byIn.set(ic, (diags = new Map()));
      let d = diags.get(k);
      if (!d) diags.set(k, (d = new Float64Array(n)));
      d[so]! += r.w[j]! * wScale;
    }
  });
  return out;
}

/** Pick the replica of element e closest to output slot so (fewest distinct diagonals). */
function nearestReplica(inL: Layout, n: number): (e: number, so: number) => number {
  return (e, so) => {
    const base = inL.slotOf[e]!;
    if (inL.copies <= 1) return base;
    const r = Math.floor(mod(so - base + inL.period / 2, n) / inL.period);
    return mod(base + Math.min(r, inL.copies - 1) * inL.period, n);
  };
}

function planLinear(
  step: FheStep & { kind: 'linear' },
  inL: Layout,
  inGain: number,
  outGain: number,
  n: number,
  where: string,
  freeBabies = false,
): { plans: LinearPlan[]; out: Layout; rotations: number } {
  const wScale = outGain / inGain;
  const m = step.map;
  const pick = nearestReplica(inL, n);
  // One plan per output ciphertext, one BSGS split (n1) for the whole step: each input ciphertext's
  // baby rotations are computed once and shared by every output plan (HeEval.linear's baby cache),
  // the giant rotations (of that plan's partial sums) are per plan, shared over its inputs.
  const finish = (perOut: Map<number, Map<number, Float64Array>>[], bias: Float64Array[], reduce: number[], out: Layout) => {
    for (let c = 0; c < ctsOf(out); c++) if (!perOut[c] || perOut[c]!.size === 0) throw new ModelError(`${where}: output ciphertext ${c} has no weights`);
    const byOut = perOut.slice(0, ctsOf(out));
    const inKs = new Map<number, Set<number>>();
    for (const byIn of byOut) for (const [i, d] of byIn) for (const k of d.keys()) (inKs.get(i) ?? inKs.set(i, new Set()).get(i)!).add(k);
    const ins = [...inKs.keys()].sort((a, b) => a - b);
    const b = bsgsJoint(
      ins.map((i) => [...inKs.get(i)!]),
      byOut.map((byIn) => [...new Set([...byIn.values()].flatMap((d) => [...d.keys()]))]),
      n,
      freeBabies,
    );
    const chains = new Map(ins.map((i, j) => [i, babyChain(b.babies[j]!, n)]));
    const plans = byOut.map((byIn, c): LinearPlan => {
      const srcs = [...byIn.keys()].sort((x, y) => x - y).map((i) => ({ input: i, diags: byIn.get(i)!, babies: chains.get(i)! }));
      const [main, ...more] = srcs;
      const g = b.giants[c]!;
      return {
        diags: main!.diags,
        babies: main!.babies,
        input: main!.input,
        more: more.length ? more : undefined,
        bias: bias[c]!,
        n1: b.n1,
        giants: g.giants,
        horner: g.horner,
        giantChain: g.chain ? babyChain(g.giants, n) : undefined,
        reduce,
      };
    });
    return { plans, out, rotations: b.cost + reduce.length * plans.length };
  };
  const grid = gridOutLayout(inL, step.outDims, n, where);
  const vecOut = (): Layout => {
    const N = m.outSize;
    const period = nextPow2(N);
    return { dims: step.outDims, slotOf: Int32Array.from({ length: N }, (_, i) => i), period, copies: 1 };
  };
  const out = grid ?? vecOut();
  const bias = Array.from({ length: ctsOf(out) }, () => new Float64Array(n));
  m.bias.forEach((v, o) => (bias[Math.floor(out.slotOf[o]! / n)]![out.slotOf[o]! % n] = v * outGain));
  const direct = diagonals(m, (o) => out.slotOf[o]!, pick, n, wScale);
  const directPlan = finish(direct, bias, [], out);
  if (grid || m.outSize > n / 2) return directPlan;
  // Reduce mode (few outputs, many inputs): T diagonals, then rotate-and-sum by T, 2T, …
  const T = nextPow2(m.outSize);
  const rByIn = new Map<number, Map<number, Float64Array>>();
  m.rows.forEach((r, j) => {
    for (let q = 0; q < r.idx.length; q++) {
      const gs = pick(r.idx[q]!, j);
      const ic = Math.floor(gs / n);
      const s = gs % n;
      const k = mod(s - j, T);
      const i = mod(s - k, n);
      let rdiags = rByIn.get(ic);
      if (!rdiags) rByIn.set(ic, (rdiags = new Map()));
      let d = rdiags.get(k);
      if (!d) rdiags.set(k, (d = new Float64Array(n)));
      d[i]! += r.w[q]! * wScale;
    }
  });
  const reduce: number[] = [];
  for (let st = T; st < n; st *= 2) reduce.push(st);
  const rbias = new Float64Array(n);
  for (let r = 0; r < n / T; r++) m.bias.forEach((v, j) => (rbias[r * T + j] = v * outGain));
  const rout: Layout = { dims: step.outDims, slotOf: Int32Array.from({ length: m.outSize }, (_, i) => i), period: T, copies: n / T };
  if (freeBabies) return directPlan;
  const reducePlan = finish([rByIn], [rbias], reduce, rout);
  return reducePlan.rotations < directPlan.rotations ? reducePlan : directPlan;
}

/** Options of `lowerProgram`. */
export interface LowerOptions {
  /** Indices (into program.steps) before which a client-aided refresh is inserted. */
  refreshBefore?: number[];
  /**
   * The client encrypts the first linear layer's input rotations next to the input (it knows the
   * plaintext, so a rotation costs it one more encryption instead of the server a top-level key switch).
   */
  clientRotations?: boolean;
}

/** Lower a program to `slots` slots. */
export function lowerProgram(p: FheProgram, slots: number, opts: LowerOptions = {}): Lowered {
  const n = slots;
  const input = inputLayout(p.inputDims, n, p.source);
  let L = input;
  let gain = 1;
  const steps: HeStep[] = [];
  const depths: number[] = [];
  const refresh = new Set(opts.refreshBefore ?? []);
  let inputRotations: number[] | undefined;
  p.steps.forEach((s, i) => {
    const where = `${p.source}: step '${s.name}'`;
    if (refresh.has(i)) {
      steps.push({ kind: 'refresh', name: `refresh before ${s.name}`, out: L, gain });
      depths.push(0);
    }
    const next = p.steps[i + 1];
    if (s.kind === 'linear') {
      const outGain = next?.kind === 'paf' || next?.kind === 'maxpool' ? 1 / next.scale : 1;
      // Client rotations: only for a first layer that reads the (one-ciphertext) input itself.
      const free = !!opts.clientRotations && i === 0 && ctsOf(L) === 1;
      const r = planLinear(s, L, gain, outGain, n, where, free);
      const pm = r.plans.reduce((a, p) => a + sourcesOf(p).reduce((b, src) => b + src.diags.size, 0), 0);
      const st: HeStep = { kind: 'linear', name: s.name, src: s, plans: r.plans, out: r.out, gain: outGain, rotations: r.rotations, plainMults: pm };
      if (free) {
        st.clientBabies = true;
        inputRotations = [...new Set(r.plans.flatMap((p) => sourcesOf(p).flatMap((src) => src.babies.map((b) => b.step))))].sort((a, b) => a - b);
      }
      steps.push(st);
      depths.push(1);
      L = r.out;
      gain = outGain;
    } else if (s.kind === 'sumpool') {
      if (!L.grid) throw new ModelError(`${where}: pooling needs a spatial layout`);
      const { W0, t } = L.grid;
      const [kh, kw] = s.kernel;
      const shifts: number[] = [];
      for (let a = 1; a < kw; a++) shifts.push(t * a);
      for (let a = 1; a < kh; a++) shifts.push(t * W0 * a);
      const [C, OH, OW] = s.outDims as [number, number, number];
      const slotOf = new Int32Array(C * OH * OW);
      for (let c = 0; c < C; c++)
        for (let h = 0; h < OH; h++)
          for (let w = 0; w < OW; w++) slotOf[(c * OH + h) * OW + w] = L.slotOf[(c * s.inDims[1]! + h * kh) * s.inDims[2]! + w * kw]!;
      const out: Layout = { dims: s.outDims, slotOf, period: n, copies: 1, grid: { ...L.grid, t: t * Math.max(kh, kw) }, cts: L.cts };
      if (kh !== kw) throw new ModelError(`${where}: only square pooling windows are supported under FHE`);
      gain *= kh * kw;
      // Separable sum: kw−1 + kh−1 rotations (each shift applied to the running sum would double count; see ops).
      steps.push({ kind: 'sumpool', name: s.name, src: s, shifts, out, gain, rotations: shifts.length });
      depths.push(0);
      L = out;
    } else if (s.kind === 'maxpool') {
      const r = lowerMaxPool(s, L, gain, n, where);
      r.steps.forEach((h) => {
        steps.push(h);
        depths.push(stagesCost(s.stages).depth + 1);
      });
      L = r.out;
      gain = r.gain;
    } else {
      const want = 1 / s.scale;
      if (Math.abs(gain / want - 1) > 1e-12) {
        steps.push({ kind: 'scale', name: `scale before ${s.name}`, factor: want / gain, out: L, gain: want });
        depths.push(1);
      }
      gain = 2 / s.scale;
      steps.push({ kind: 'paf', name: s.name, src: s, out: L, gain });
      depths.push(stepDepth(s));
    }
  });
  const rot = new Set<number>();
  let rotations = 0;
  for (const s of steps) {
    if (s.kind === 'linear') {
      for (const p of s.plans) {
        if (!s.clientBabies) for (const src of sourcesOf(p)) src.babies.forEach((b) => rot.add(b.via));
        if (p.horner !== undefined) rot.add(p.horner);
        else if (p.giantChain) p.giantChain.forEach((e) => rot.add(e.via));
        else p.giants.forEach((g) => g && rot.add(g));
        p.reduce.forEach((r) => rot.add(r));
      }
      rotations += s.rotations;
    } else if (s.kind === 'sumpool') {
      s.shifts.forEach((r) => rot.add(mod(r, n)));
      rotations += s.rotations;
    } else if (s.kind === 'maxlevel') {
      rot.add(mod(s.shift, n));
      rotations += s.rotations;
    }
  }
  return {
    slots: n,
    input,
    steps,
    output: L,
    outputGain: gain,
    rotationSteps: [...rot].sort((a, b) => a - b),
    rotations,
    depth: depths.reduce((a, b) => a + b, 0),
    depths,
    ...(inputRotations ? { inputRotations } : {}),
  };
}

/**
 * Lower a PAF MaxPool: log2(kw) column levels (shifts t, 2t, …) then log2(kh) row levels (shifts
 * t·W0, 2t·W0, …) — for power-of-two windows exactly the row-major pairwise tree of src/smartpaf.
 * After a level with shift δ the slot of the window's first member holds the max of its group; the
 * gain doubles per level (y = 2·gain·max) and is folded downstream like the ReLU's.
 */
function lowerMaxPool(s: FheStep & { kind: 'maxpool' }, inL: Layout, gain: number, n: number, where: string): { steps: HeStep[]; out: Layout; gain: number } {
  if (!inL.grid) throw new ModelError(`${where}: MaxPool needs a spatial ([C,H,W]) layout`);
  const { W0, t } = inL.grid;
  const [C, H, W] = s.inDims as [number, number, number];
  const [kh, kw] = s.kernel;
  const [, OH, OW] = s.outDims as [number, number, number];
  if (kh !== kw) throw new ModelError(`${where}: only square MaxPool windows are supported under FHE (the lattice stride must stay uniform), got ${kh}×${kw}`);
  const levels: { shift: number; along: 'w' | 'h'; span: number }[] = [];
  for (let span = 1; span < kw; span *= 2) levels.push({ shift: t * span, along: 'w', span });
  for (let span = 1; span < kh; span *= 2) levels.push({ shift: t * W0 * span, along: 'h', span });
  const el = (c: number, h: number, w: number) => (c * H + h) * W + w;
  const steps: HeStep[] = [];
  let g = gain;
  levels.forEach((lv, li) => {
    // Slots holding the first member of a pair at this level, and a check that its partner is `shift` slots on.
    // One mask per ciphertext, one after another (global slots): window pairs never cross ciphertexts.
    const mask = new Float64Array(n * ctsOf(inL));
    for (let c = 0; c < C; c++)
      for (let h = 0; h < OH * kh; h++)
        for (let w = 0; w < OW * kw; w++) {
          const first = lv.along === 'w' ? w % (2 * lv.span) === 0 : w % kw === 0 && h % (2 * lv.span) === 0;
          if (!first) continue;
          const a = inL.slotOf[el(c, h, w)]!;
          const b = inL.slotOf[lv.along === 'w' ? el(c, h, w + lv.span) : el(c, h + lv.span, w)]!;
          if (Math.floor(a / n) !== Math.floor(b / n) || mod(b - a, n) !== mod(lv.shift, n))
            throw new Error(`${where}: internal: MaxPool pair (${a}, ${b}) is not ${lv.shift} slots apart`);
          mask[a] = 1;
        }
    const f = 1 / (g * s.scale);
    const stages = s.stages.map((st, si) => (si === 0 ? st.map((c, k) => c * f ** (2 * k + 1)) : [...st]));
    const last = li === levels.length - 1;
    let out: Layout;
    if (last) {
      const slotOf = new Int32Array(C * OH * OW);
      for (let c = 0; c < C; c++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) slotOf[(c * OH + i) * OW + j] = inL.slotOf[el(c, i * kh, j * kw)]!;
      out = { dims: s.outDims, slotOf, period: n, copies: 1, grid: { ...inL.grid!, t: t * Math.max(kh, kw) }, cts: inL.cts };
    } else out = { ...inL, copies: 1, period: n };
    g *= 2;
    steps.push({
      kind: 'maxlevel',
      name: `${s.name}[${li + 1}/${levels.length}]`,
      src: s,
      level: li,
      final: last,
      shift: lv.shift,
      stages,
      mask,
      out,
      gain: g,
      rotations: 1,
    });
  });
  if (levels.length === 0) throw new ModelError(`${where}: a 1×1 MaxPool is the identity; remove it`);
  return { steps, out: steps.at(-1)!.out, gain: g };
}

/** Place a per-image tensor into slot values according to a layout (replicas included). */
export function packValues(L: Layout, x: ArrayLike<number>, slots: number, gain = 1): Float64Array {
  const v = new Float64Array(slots);
  for (let e = 0; e < L.slotOf.length; e++) for (let r = 0; r < L.copies; r++) v[(L.slotOf[e]! + r * L.period) % slots] = x[e]! * gain;
  return v;
}

/** Read a per-image tensor out of slot values (dividing by the gain); `v` holds the ciphertexts' slots one after another. */
export function unpackValues(L: Layout, v: ArrayLike<number>, gain = 1): Float64Array {
  return Float64Array.from(L.slotOf, (s) => v[s]! / gain);
}
