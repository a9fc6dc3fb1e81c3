/**
 * Slot batching: B images per ciphertext, interleaved. A program lowered for n/B "virtual" slots is
 * run on n physical slots with virtual slot s of image b at physical slot s·B + b (a tensor spread
 * over several ciphertexts keeps its ciphertext index: global virtual slot c·(n/B) + s goes to
 * c·n + s·B + b). A cyclic rotation by k of the virtual slots is then exactly a rotation by k·B of
 * the physical ones, for every image at once ((s·B + b + k·B) mod n = ((s + k) mod n/B)·B + b), and
 * a plaintext vector (diagonal, bias, window mask) acts on every image when each of its entries is
 * repeated B times. So the interleaved program is the single-image program with every rotation
 * step multiplied by B and every plaintext vector expanded: the same levels, rotations and
 * multiplications classify B images. The executor needs no change.
 */
import type { HeStep, Layout, LinearPlan, LinearSource, Lowered } from './lower.js';

/** Each entry of `v` repeated `bt` times (a per-slot vector of the virtual program on physical slots). */
export function expandSlots(v: Float64Array, bt: number): Float64Array {
  if (bt === 1) return v;
  const out = new Float64Array(v.length * bt);
  for (let i = 0; i < v.length; i++) out.fill(v[i]!, i * bt, (i + 1) * bt);
  return out;
}

/** A layout of the program lowered for n/bt slots, as image 0 sees it in the interleaved program. */
export function interleaveLayout(L: Layout, bt: number): Layout {
  // Global virtual slot g → image 0's physical slot; the spatial lattice (`grid`) only served lowering.
  return { dims: L.dims, slotOf: Int32Array.from(L.slotOf, (g) => g * bt), period: L.period * bt, copies: L.copies, cts: L.cts };
}

function sourceOf(s: LinearSource, bt: number): LinearSource {
  return {
    input: s.input,
    diags: new Map([...s.diags].map(([k, d]) => [k * bt, expandSlots(d, bt)])),
    babies: s.babies.map((b) => ({ step: b.step * bt, from: b.from * bt, via: b.via * bt })),
  };
}

function planOf(p: LinearPlan, bt: number): LinearPlan {
  const main = sourceOf({ input: p.input ?? 0, diags: p.diags, babies: p.babies }, bt);
  return {
    diags: main.diags,
    babies: main.babies,
    input: p.input,
    more: p.more?.map((s) => sourceOf(s, bt)),
    bias: expandSlots(p.bias, bt),
    n1: p.n1 * bt,
    giants: p.giants.map((g) => g * bt),
    horner: p.horner === undefined ? undefined : p.horner * bt,
    giantChain: p.giantChain?.map((e) => ({ step: e.step * bt, from: e.from * bt, via: e.via * bt })),
    reduce: p.reduce.map((r) => r * bt),
  };
}

function stepOf(s: HeStep, bt: number): HeStep {
  const out = interleaveLayout(s.out, bt);
  switch (s.kind) {
    case 'linear':
      return { ...s, out, plans: s.plans.map((p) => planOf(p, bt)) };
    case 'sumpool':
      return { ...s, out, shifts: s.shifts.map((k) => k * bt) };
    case 'maxlevel':
      return { ...s, out, shift: s.shift * bt, mask: expandSlots(s.mask, bt) };
    default:
      return { ...s, out };
  }
}

/**
 * The program `l` (lowered for `l.slots` virtual slots) interleaved `bt` times: runs on
 * `l.slots · bt` physical slots and classifies `bt` images at once (image b in slots ≡ b mod bt).
 */
export function interleave(l: Lowered, bt: number): Lowered {
  if (!Number.isInteger(bt) || bt < 1 || (bt & (bt - 1)) !== 0) throw new Error(`batch interleave: ${bt} is not a power of two`);
  if (bt === 1) return l;
  return {
    ...l,
    slots: l.slots * bt,
    batch: bt * (l.batch ?? 1),
    input: interleaveLayout(l.input, bt),
    output: interleaveLayout(l.output, bt),
    steps: l.steps.map((s) => stepOf(s, bt)),
    rotationSteps: l.rotationSteps.map((r) => r * bt),
    ...(l.inputRotations ? { inputRotations: l.inputRotations.map((r) => r * bt) } : {}),
  };
}

/** Slot values of a batch: image b (per-image tensor xs[b]) at the lanes ≡ b (mod batch); missing images are zeros. */
export function packBatch(L: Layout, xs: readonly ArrayLike<number>[], slots: number, batch: number): Float64Array {
  if (xs.length > batch) throw new Error(`a batch holds at most ${batch} images, got ${xs.length}`);
  const v = new Float64Array(slots);
  xs.forEach((x, b) => {
    for (let e = 0; e < L.slotOf.length; e++) for (let r = 0; r < L.copies; r++) v[((L.slotOf[e]! + r * L.period) % slots) + b] = x[e]!;
  });
  return v;
}

/** Per-image tensors of the first `count` images of a batch out of slot values (the ciphertexts' slots one after another). */
export function unpackBatch(L: Layout, v: ArrayLike<number>, gain: number, count: number): Float64Array[] {
  return Array.from({ length: count }, (_, b) => Float64Array.from(L.slotOf, (s) => v[s + b]! / gain));
}
