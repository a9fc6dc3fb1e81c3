/**
 * A slot-level float emulator of a lowered program: the same rotations, baby chains, giant groups,
 * Horner and rotate-and-sum as src/fhe/ops.ts, on plain Float64Array slot vectors (tests only).
 */
import { type LinearPlan, type Lowered, sourcesOf } from '../../src/fhe/lower.js';
import { type PlanArith, planOdd, runPlan } from '../../src/smartpaf/poly.js';

const rot = (v: Float64Array, k: number) => Float64Array.from(v, (_, i) => v[(i + k) % v.length]!);
const addV = (a: Float64Array, b: Float64Array) => Float64Array.from(a, (x, i) => x + b[i]!);

/** The linear map exactly as HeEval.linear evaluates it, on float slot vectors. */
function linearF(xs: Float64Array[], p: LinearPlan, n: number): Float64Array {
  const srcs = sourcesOf(p).map((src) => {
    const baby = new Map<number, Float64Array>([[0, xs[src.input]!]]);
    for (const b of src.babies) baby.set(b.step, rot(baby.get(b.from)!, b.via));
    return { src, baby };
  });
  const inner = new Map<number, Float64Array>();
  for (const g of p.giants) {
    let acc: Float64Array | undefined;
    for (const { src, baby } of srcs)
      for (const [b, ct] of baby) {
        const d = g + b < n ? src.diags.get(g + b) : undefined;
        if (!d) continue;
        const prod = Float64Array.from(ct, (v, i) => v * d[(i - g + n) % n]!);
        acc = acc ? addV(acc, prod) : prod;
      }
    if (acc) inner.set(g, acc);
  }
  let y: Float64Array;
  if (p.giantChain) {
    for (let j = p.giantChain.length - 1; j >= 0; j--) {
      const e = p.giantChain[j]!;
      const c = inner.get(e.step);
      if (!c) continue;
      const r = rot(c, e.via);
      const q = inner.get(e.from);
      inner.set(e.from, q ? addV(q, r) : r);
    }
    y = inner.get(0)!;
  } else if (p.horner !== undefined) {
    const G = p.horner;
    const top = Math.max(...inner.keys()) / G;
    y = inner.get(top * G)!;
    for (let j = top - 1; j >= 0; j--) {
      y = rot(y, G);
      const q = inner.get(j * G);
      if (q) y = addV(y, q);
    }
  } else y = [...inner].map(([g, q]) => rot(q, g)).reduce(addV);
  for (const st of p.reduce) y = addV(y, rot(y, st));
  return addV(y, p.bias);
}

/** Run a lowered program on float slot vectors: the input slots in, the output ciphertexts' slots out. */
export function emulateSlots(l: Lowered, input: Float64Array): Float64Array[] {
  const n = l.slots;
  let cur = [input];
  const arith: PlanArith<Float64Array, number> = {
    mul: (a, b) => Float64Array.from(a, (v, i) => v * b[i]!),
    mulConst: (a, c) => a.map((v) => v * c),
    add: addV,
  };
  for (const s of l.steps) {
    if (s.kind === 'linear') cur = s.plans.map((p) => linearF(cur, p, n));
    else if (s.kind === 'sumpool') {
      const kw = s.src.kind === 'sumpool' ? s.src.kernel[1] : 1;
      cur = cur.map((c) => {
        for (const shifts of [s.shifts.slice(0, kw - 1), s.shifts.slice(kw - 1)]) c = shifts.reduce((acc, k) => addV(acc, rot(c, k)), c);
        return c;
      });
    } else if (s.kind === 'paf') {
      cur = cur.map((u) => {
        let v = u;
        for (const st of s.src.stages) v = runPlan(planOdd(st.length), v, (k) => st[k]!, arith);
        return addV(u, arith.mul(u, v));
      });
    } else if (s.kind === 'scale') cur = cur.map((c) => c.map((v) => v * s.factor));
    else if (s.kind === 'maxlevel') {
      // As HeEval.pafMaxLevel: (x + r) + d·sign(d), r = rot(x, shift), the first stage's leaves masked
      // by this ciphertext's part of the window mask.
      cur = cur.map((u, ci) => {
        const mask = s.mask.subarray(ci * n, (ci + 1) * n);
        const r = rot(u, ((s.shift % n) + n) % n);
        const d = Float64Array.from(u, (v, i) => v - r[i]!);
        let v: Float64Array = d;
        s.stages.forEach((st, si) => {
          const a = si === 0 ? { ...arith, mulConst: (q: Float64Array, c: number) => Float64Array.from(q, (w, i) => w * c * mask[i]!) } : arith;
          v = runPlan(planOdd(st.length), v, (k) => st[k]!, a);
        });
        return addV(addV(u, r), arith.mul(d, v));
      });
    } else throw new Error(`emulator: ${s.kind} not emulated`);
  }
  return cur;
}
