/**
 * Baby-step/giant-step splits of a diagonal linear map (used by src/fhe/lower.ts): which n1, which
 * baby rotations of each input ciphertext, which giant rotations per output, and the chains that
 * compute rotations from few Galois keys.
 */

const mod = (a: number, n: number) => ((a % n) + n) % n;

/** Giant steps of one plan for split n1, and their rotation cost (Horner with one key when that is cheaper). */
function giantsFor(ks: Iterable<number>, n1: number): { giants: number[]; horner?: number; cost: number } {
  const gs = new Set<number>();
  for (const k of ks) gs.add(k - (k % n1));
  const giants = [...gs].sort((a, b) => a - b);
  const nzG = giants.filter((g) => g !== 0).length;
  const G = giants.find((g) => g !== 0);
  if (G !== undefined && nzG > 2 && giants.every((g) => g % G === 0)) {
    const m = giants[giants.length - 1]! / G;
    // Horner uses one key for all giants at the price of m rotations.
    if (m <= 1.25 * nzG) return { giants, horner: G, cost: m };
  }
  return { giants, cost: nzG };
}

/**
 * One n1 for a whole linear step: baby steps are rotations of the input ciphertexts, computed once
 * per (input, step) and shared by every output ciphertext's plan; giants are per plan. `inputs` maps
 * each input ciphertext to the diagonals any plan reads from it, `plans` lists each plan's diagonals.
 * Minimises the rotations: Σ over inputs of their distinct non-zero residues k mod n1, plus each
 * plan's giant rotations — or, with the roles swapped (`swap`), Σ over inputs of the distinct
 * non-zero multiples of n1 plus each plan's residues (chained giants), whichever scores lower.
 */
export function bsgsJoint(
  inputs: readonly (readonly number[])[],
  plans: readonly (readonly number[])[],
  n: number,
  freeBabies = false,
  swap = true,
): { n1: number; babies: number[][]; giants: { giants: number[]; horner?: number; chain?: boolean }[]; cost: number } {
  let best: { n1: number; babies: number[][]; giants: { giants: number[]; horner?: number; chain?: boolean }[]; cost: number; score: number } | undefined;
  const cands = new Set<number>();
  // Babies the client supplies cost the server nothing: every diagonal a baby, no giant (n1 = n).
  if (freeBabies) cands.add(n);
  else {
    for (let c = 1; c <= Math.min(n, 2048); c++) cands.add(c);
    for (let c = 1; c <= n; c *= 2) cands.add(c);
  }
  for (const n1 of cands) {
    const babies = inputs.map((ks) => [...new Set(ks.map((k) => k % n1))].sort((a, b) => a - b));
    let cost = freeBabies ? 0 : babies.reduce((a, bs) => a + bs.filter((b) => b !== 0).length, 0);
    if (best && cost >= best.score) continue;
    const giants = plans.map((ks) => giantsFor(ks, n1));
    cost += giants.reduce((a, g) => a + g.cost, 0);
    // Each distinct giant step is a Galois key (≈ 29 MB at N=16384 with 11 primes, more at 32768):
    // a key weighs like one rotation, so a split that saves two rotations with twenty keys loses.
    const keys = new Set<number>();
    for (const g of giants) for (const k of g.horner !== undefined ? [g.horner] : g.giants.filter((x) => x !== 0)) keys.add(k);
    const score = cost + keys.size;
    if (!best || score < best.score) best = { n1, babies, giants: giants.map(({ giants, horner }) => ({ giants, horner })), cost, score };
  }
  // Roles swapped: babies are the multiples of n1 (few rotations per input ciphertext), giants the
  // residues, rotated once per output plan after the rescale (one level lower, so cheaper) and chained
  // through few keys (LinearPlan.giantChain). Pays when several input ciphertexts share the small offsets.
  if (!freeBabies && swap)
    for (const n1 of cands) {
      if (n1 >= n) continue;
      const babies = inputs.map((ks) => [...new Set(ks.map((k) => k - (k % n1)))].sort((a, b) => a - b));
      let cost = babies.reduce((a, bs) => a + bs.filter((b) => b !== 0).length, 0);
      if (best && cost >= best.score) continue;
      const giants = plans.map((ks) => [...new Set(ks.map((k) => k % n1))].sort((a, b) => a - b));
      cost += giants.reduce((a, g) => a + g.filter((x) => x !== 0).length, 0);
      if (best && cost >= best.score) continue;
      const keys = new Set<number>();
      for (const g of giants) for (const e of babyChain(g, n)) keys.add(e.via);
      for (const bs of babies) for (const e of babyChain(bs, n)) keys.add(e.via);
      const score = cost + keys.size;
      if (score < best!.score) best = { n1, babies, giants: giants.map((g) => ({ giants: g, chain: true })), cost, score };
    }
  const { score: _s, ...b } = best!;
  return b;
}

/** Choose n1 and the baby/giant sets for diagonal set `ks` (mod n) of one input and one output ciphertext. */
export function bsgs(ks: number[], n: number): { n1: number; babies: number[]; giants: number[]; horner?: number; cost: number } {
  // One input and one output: swapping roles saves nothing, and callers read plain giants.
  const b = bsgsJoint([ks], [ks], n, false, false);
  return { n1: b.n1, babies: b.babies[0]!, giants: b.giants[0]!.giants, horner: b.giants[0]!.horner, cost: b.cost };
}

/** Baby steps computed from few keys: each baby is rot(previous baby, key). */
export function babyChain(babies: number[], n: number): { step: number; from: number; via: number }[] {
  const centered = (k: number) => (k > n / 2 ? k - n : k);
  // Multiples G, 2G, …, mG (swapped BSGS babies): one key, each from the previous (same rotations,
  // where the centred order below would also make a key for −G).
  const nz = [...new Set(babies)].filter((b) => b !== 0).sort((a, b) => a - b);
  const G = nz[0];
  if (G !== undefined && nz.length > 1 && nz.length <= 16 && nz.every((b, i) => b === (i + 1) * G)) return nz.map((b) => ({ step: b, from: b - G, via: G }));
  const done = new Set<number>([0]);
  const keys: number[] = [];
  const out: { step: number; from: number; via: number }[] = [];
  for (const b of [...babies].filter((b) => b !== 0).sort((a, b) => Math.abs(centered(a)) - Math.abs(centered(b)))) {
    let found: { from: number; via: number } | undefined;
    for (const c of done) for (const k of keys) if (!found && mod(c + k, n) === b) found = { from: c, via: k };
    if (!found) {
      let bestC = 0;
      for (const c of done) if (Math.abs(centered(mod(b - c, n))) < Math.abs(centered(mod(b - bestC, n)))) bestC = c;
      const via = mod(b - bestC, n);
      keys.push(via);
      found = { from: bestC, via };
    }
    done.add(b);
    out.push({ step: b, ...found });
  }
  return out;
}
