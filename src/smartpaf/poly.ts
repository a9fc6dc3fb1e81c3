/**
 * Odd polynomials c[0]·x + c[1]·x³ + c[2]·x⁵ + … and the one evaluation strategy every privml
 * runtime uses for them (float64 here, tfjs in the trainable op, ONNX Mul/Add in the expanded
 * model, CKKS ciphertexts in the FHE runtime), so degree, depth and multiplication counts are the
 * same numbers everywhere.
 *
 * Evaluation strategy (minimal multiplicative depth, power basis):
 * 1. Powers of two by repeated squaring: x², x⁴, …, x^(2^J) with J = ⌊log2(d − 1)⌋ for degree d ≥ 3
 *    (J ciphertext×ciphertext multiplications; x^(2^j) sits at depth j).
 * 2. Recursive split of the odd terms at the largest power of two below the degree:
 *      p(x) = low(x) + x^(2^J) · high(x),  low = terms of degree < 2^J,
 *      high(x) = Σ c_k x^(k − 2^J) over the terms of degree > 2^J (again odd, degree ≤ 2^J − 1),
 *    recursing into low and high with the same shared powers; one multiplication per split with a
 *    non-empty high part.
 * 3. Leaves are single terms c·x: one plaintext-scalar multiplication, counted as one level (CKKS
 *    rescales after it). Folding the coefficient into this degree-1 factor is what keeps the depth
 *    minimal: a degree-d odd polynomial has depth ⌈log2(d + 1)⌉ (3 → 2, 5/7 → 3, 9…15 → 4, 27 → 5).
 * Additions are free in depth. Counts for degree 3/5/7/13: mults 2/4/5/9 (squarings included),
 * depth 2/3/3/4. The rule is fixed, not a search: for some degrees (e.g. 9: 7 mults) a different
 * split would save a multiplication at the same depth.
 * The structure depends only on how many coefficients a stage has,
 * never on their values, so tuned (trained) coefficients keep the plan. A composite of stages has
 * the sum of the stages' depths and multiplication counts.
 */

/** One step of an evaluation plan over numbered registers; register 0 holds the input x. */
export type PlanStep =
  | { op: 'mul'; dst: number; a: number; b: number }
  | { op: 'mulConst'; dst: number; src: number; coef: number }
  | { op: 'add'; dst: number; a: number; b: number };

/** Operation counts of evaluating a polynomial (or composite) with the strategy above. */
export interface EvalCost {
  /** Multiplicative depth (levels consumed), scalar multiplications included. */
  depth: number;
  /** Ciphertext × ciphertext multiplications (each: relinearize + rescale in CKKS), squarings included. */
  mults: number;
  /** Plaintext-scalar multiplications (one per coefficient). */
  scalarMults: number;
  /** Additions. */
  adds: number;
}

/** A straight-line program evaluating one odd polynomial with `terms` coefficients. */
export interface OddPlan {
  terms: number;
  steps: PlanStep[];
  /** Register holding the result. */
  out: number;
  /** Number of registers used (register 0 = input). */
  registers: number;
  cost: EvalCost;
}

/** Arithmetic a plan runs on: numbers, tfjs tensors, ONNX value names, ciphertexts. */
export interface PlanArith<T, C> {
  mul(a: T, b: T): T;
  mulConst(a: T, c: C): T;
  add(a: T, b: T): T;
}

/** Degree of an odd polynomial given by its coefficients (x, x³, …): 2·length − 1. */
export function oddDegree(coeffs: readonly number[]): number {
  return 2 * coeffs.length - 1;
}

/** Evaluate an odd polynomial in float64 (Horner in x²). */
export function evalOdd(coeffs: readonly number[], x: number): number {
  const y = x * x;
  let acc = 0;
  for (let i = coeffs.length - 1; i >= 0; i--) acc = acc * y + coeffs[i]!;
  return acc * x;
}

/** Evaluate stages applied in order (stages[0] first) in float64. */
export function evalStages(stages: readonly (readonly number[])[], x: number): number {
  let v = x;
  for (const s of stages) v = evalOdd(s, v);
  return v;
}

/** Dense power-basis coefficients (index = exponent) of an odd polynomial. */
export function oddToDense(coeffs: readonly number[]): number[] {
  const d = new Array<number>(oddDegree(coeffs) + 1).fill(0);
  coeffs.forEach((c, i) => (d[2 * i + 1] = c));
  return d;
}

function denseMul(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(a.length + b.length - 1).fill(0);
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) for (let j = 0; j < b.length; j++) out[i + j]! += a[i]! * b[j]!;
  return out;
}

/**
 * Coefficients of `second(first(x))` (first runs first). The result is odd again; its degree is the
 * product of the degrees. Used to check composites against a single polynomial, not to evaluate them.
 */
export function composeOdd(first: readonly number[], second: readonly number[]): number[] {
  const inner = oddToDense(first);
  const inner2 = denseMul(inner, inner);
  let power = inner; // first(x)^(2i+1)
  let acc: number[] = [0];
  for (let i = 0; i < second.length; i++) {
    if (i > 0) power = denseMul(power, inner2);
    const next = new Array<number>(Math.max(acc.length, power.length)).fill(0);
    acc.forEach((v, k) => (next[k]! += v));
    power.forEach((v, k) => (next[k]! += second[i]! * v));
    acc = next;
  }
  const odd: number[] = [];
  for (let k = 1; k < acc.length; k += 2) odd.push(acc[k]!);
  while (odd.length > 1 && odd[odd.length - 1] === 0) odd.pop();
  return odd;
}

/** Collapse stages (stages[0] first) into one odd polynomial's coefficients. */
export function composeStages(stages: readonly (readonly number[])[]): number[] {
  if (stages.length === 0) throw new Error('composeStages: no stages');
  let acc = [...stages[0]!];
  for (let i = 1; i < stages.length; i++) acc = composeOdd(acc, stages[i]!);
  return acc;
}

/** The evaluation plan (see the module comment) of an odd polynomial with `terms` coefficients. */
export function planOdd(terms: number): OddPlan {
  if (!Number.isInteger(terms) || terms < 1) throw new Error(`planOdd: an odd polynomial needs at least one coefficient, got ${terms}`);
  const steps: PlanStep[] = [];
  const level: number[] = [0];
  let next = 1;
  const emit = (s: PlanStep, lvl: number): number => {
    steps.push(s);
    level[s.dst] = lvl;
    return s.dst;
  };
  const degree = 2 * terms - 1;
  // x^(2^j) for j = 1..J, by repeated squaring.
  const pow: number[] = [0];
  const J = degree >= 3 ? Math.floor(Math.log2(degree - 1)) : 0;
  for (let j = 1; j <= J; j++) {
    const src = pow[j - 1]!;
    pow.push(emit({ op: 'mul', dst: next++, a: src, b: src }, level[src]! + 1));
  }
  // terms: [relative exponent, coefficient index]
  const build = (ts: [number, number][]): number => {
    const top = Math.max(...ts.map((t) => t[0]));
    if (top === 1) {
      const [, k] = ts[0]!;
      return emit({ op: 'mulConst', dst: next++, src: 0, coef: k }, 1);
    }
    const j = Math.floor(Math.log2(top - 1));
    const half = 2 ** j;
    const low = ts.filter((t) => t[0] < half);
    const high = ts.filter((t) => t[0] > half).map(([e, k]): [number, number] => [e - half, k]);
    const h = build(high);
    const prod = emit({ op: 'mul', dst: next++, a: pow[j]!, b: h }, Math.max(level[pow[j]!]!, level[h]!) + 1);
    if (low.length === 0) return prod;
    const l = build(low);
    return emit({ op: 'add', dst: next++, a: l, b: prod }, Math.max(level[l]!, level[prod]!));
  };
  const out = build(Array.from({ length: terms }, (_, k): [number, number] => [2 * k + 1, k]));
  const count = (op: PlanStep['op']) => steps.filter((s) => s.op === op).length;
  return {
    terms,
    steps,
    out,
    registers: next,
    cost: { depth: level[out]!, mults: count('mul'), scalarMults: count('mulConst'), adds: count('add') },
  };
}

/** Run a plan on any arithmetic; `coef(k)` supplies coefficient k of the stage. */
export function runPlan<T, C>(plan: OddPlan, x: T, coef: (k: number) => C, arith: PlanArith<T, C>): T {
  const reg: T[] = [x];
  for (const s of plan.steps) {
    if (s.op === 'mul') reg[s.dst] = arith.mul(reg[s.a]!, reg[s.b]!);
    else if (s.op === 'mulConst') reg[s.dst] = arith.mulConst(reg[s.src]!, coef(s.coef));
    else reg[s.dst] = arith.add(reg[s.a]!, reg[s.b]!);
  }
  return reg[plan.out]!;
}

/** Float64 arithmetic for plans. */
export const NUMBER_ARITH: PlanArith<number, number> = {
  mul: (a, b) => a * b,
  mulConst: (a, c) => a * c,
  add: (a, b) => a + b,
};

/** Evaluate an odd polynomial through its plan (same operation order as the other runtimes). */
export function evalOddPlanned(coeffs: readonly number[], x: number): number {
  return runPlan(planOdd(coeffs.length), x, (k) => coeffs[k]!, NUMBER_ARITH);
}

/** Cost of an odd polynomial with these coefficients. */
export function oddCost(coeffs: readonly number[]): EvalCost {
  return planOdd(coeffs.length).cost;
}

/** Cost of stages evaluated one after the other: depths and counts add up. */
export function stagesCost(stages: readonly (readonly number[])[]): EvalCost {
  const total: EvalCost = { depth: 0, mults: 0, scalarMults: 0, adds: 0 };
  for (const s of stages) {
    const c = oddCost(s);
    total.depth += c.depth;
    total.mults += c.mults;
    total.scalarMults += c.scalarMults;
    total.adds += c.adds;
  }
  return total;
}
