/**
 * Remez exchange for odd minimax approximations of sign(x) on [−b, −a] ∪ [a, b] (0 < a < b), and
 * Lee et al.'s composite construction on top of it (each component fitted on the previous
 * component's output range). By oddness it suffices to fit p(x) ≈ 1 on [a, b] with the odd basis
 * x, x³, x⁵, …; internally p(x) = x·q(x²) with q in the Chebyshev basis of [a², b²], because the
 * power basis is badly conditioned on the narrow intervals of the later components.
 */
import { evalOdd, evalStages } from './poly.js';

/** Options of one Remez fit. */
export interface RemezOptions {
  /** Odd degree of the polynomial (1, 3, 5, …). */
  degree: number;
  /** Interval [lo, hi] with 0 < lo < hi on which p(x) ≈ 1 (and p(−x) ≈ −1 by oddness). */
  lo: number;
  hi: number;
  /** Iteration cap (default 60). */
  maxIter?: number;
  /** Stop when (max|e| − min over the reference of |e|) / max|e| falls below this (default 1e-9; or an absolute gap below 1e-14, the float64 noise floor). */
  tol?: number;
}

/** Result of a Remez fit. */
export interface RemezResult {
  /** Power-basis odd coefficients (x, x³, …). */
  coeffs: number[];
  /** Minimax error max |p(x) − 1| on [lo, hi]. */
  error: number;
  /** Final alternation (reference) points, ascending. */
  refPoints: number[];
  /** p(x) − 1 at the reference points: alternating signs, equal magnitudes at convergence. */
  refErrors: number[];
  iterations: number;
  converged: boolean;
  /** min and max of p over [lo, hi] (the next component's domain). */
  range: [number, number];
}

/** Solve a dense linear system by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    if (m[p]![c] === 0) throw new Error('remez: singular reference system (degenerate alternation points)');
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / m[c]![c]!;
      if (f !== 0) for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= m[r]![k]! * x[k]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}

/** The odd Chebyshev-in-x² representation used while iterating. */
class OddCheb {
  readonly u: number;
  readonly v: number;
  constructor(
    lo: number,
    hi: number,
    readonly n: number,
  ) {
    // t = u·y + v maps y = x² ∈ [lo², hi²] to [−1, 1].
    this.u = 2 / (hi * hi - lo * lo);
    this.v = -(hi * hi + lo * lo) / (hi * hi - lo * lo);
  }
  /** x·T_i(t(x²)) for i < n. */
  basis(x: number): number[] {
    const t = this.u * x * x + this.v;
    const out = [x];
    if (this.n > 1) out.push(x * t);
    for (let i = 2; i < this.n; i++) out.push(2 * t * out[i - 1]! - out[i - 2]!);
    return out;
  }
  value(beta: readonly number[], x: number): number {
    const b = this.basis(x);
    let s = 0;
    for (let i = 0; i < this.n; i++) s += beta[i]! * b[i]!;
    return s;
  }
  /** Power-basis odd coefficients of x·Σ β_i T_i(u·x² + v). */
  toPower(beta: readonly number[]): number[] {
    const lin = [this.v, this.u]; // t as a polynomial in y
    const T: number[][] = [[1], lin];
    const mulLin = (p: number[]): number[] => {
      const out = new Array<number>(p.length + 1).fill(0);
      p.forEach((c, k) => {
        out[k]! += c * lin[0]!;
        out[k + 1]! += c * lin[1]!;
      });
      return out;
    };
    for (let i = 2; i < this.n; i++) {
      const a = mulLin(T[i - 1]!).map((c) => 2 * c);
      T[i - 2]!.forEach((c, k) => (a[k]! -= c));
      T.push(a);
    }
    const out = new Array<number>(this.n).fill(0);
    for (let i = 0; i < this.n; i++) T[i]!.forEach((c, k) => (out[k]! += beta[i]! * c));
    return out;
  }
}

/** Local extrema of e on [lo, hi]: endpoints plus refined interior extrema, ascending. */
function extrema(err: (x: number) => number, lo: number, hi: number, samples: number): { x: number; e: number }[] {
  // Chebyshev-clustered grid: the error oscillates fastest near the ends.
  const xs: number[] = [];
  for (let k = 0; k <= samples; k++) xs.push(lo + ((hi - lo) * (1 - Math.cos((Math.PI * k) / samples))) / 2);
  const es = xs.map(err);
  const out = [{ x: lo, e: es[0]! }];
  for (let k = 1; k < samples; k++) {
    const a = es[k - 1]!;
    const b = es[k]!;
    const c = es[k + 1]!;
    const isMax = b >= a && b >= c;
    const isMin = b <= a && b <= c;
    if (!isMax && !isMin) continue;
    // Golden-section refinement of the extremum inside [x_{k−1}, x_{k+1}].
    const sgn = isMax ? 1 : -1;
    let l = xs[k - 1]!;
    let r = xs[k + 1]!;
    const g = (Math.sqrt(5) - 1) / 2;
    let m1 = r - g * (r - l);
    let m2 = l + g * (r - l);
    let f1 = sgn * err(m1);
    let f2 = sgn * err(m2);
    for (let it = 0; it < 60 && r - l > 1e-15 * Math.max(1, Math.abs(r)); it++) {
      if (f1 > f2) {
        r = m2;
        m2 = m1;
        f2 = f1;
        m1 = r - g * (r - l);
        f1 = sgn * err(m1);
      } else {
        l = m1;
        m1 = m2;
        f1 = f2;
        m2 = l + g * (r - l);
        f2 = sgn * err(m2);
      }
    }
    const x = (l + r) / 2;
    const e = err(x);
    out.push(sgn * e >= sgn * b ? { x, e } : { x: xs[k]!, e: b });
  }
  out.push({ x: hi, e: es[samples]! });
  return out;
}

/** Choose n+1 alternating extrema with the largest errors (standard single-exchange-free rule). */
function alternationSet(cands: { x: number; e: number }[], count: number): { x: number; e: number }[] | undefined {
  const merged: { x: number; e: number }[] = [];
  for (const c of cands) {
    if (c.e === 0) continue;
    const last = merged[merged.length - 1];
    if (last && Math.sign(last.e) === Math.sign(c.e)) {
      if (Math.abs(c.e) > Math.abs(last.e)) merged[merged.length - 1] = c;
    } else merged.push(c);
  }
  while (merged.length > count) {
    if (Math.abs(merged[0]!.e) < Math.abs(merged[merged.length - 1]!.e)) merged.shift();
    else merged.pop();
  }
  return merged.length === count ? merged : undefined;
}

/** Minimax odd approximation of sign on [−hi, −lo] ∪ [lo, hi] by Remez exchange. */
export function remezOddSign(opts: RemezOptions): RemezResult {
  const { degree, lo, hi } = opts;
  if (!Number.isInteger(degree) || degree < 1 || degree % 2 === 0) throw new Error(`remez: degree must be an odd positive integer, got ${degree}`);
  if (!(lo > 0 && hi > lo && Number.isFinite(hi))) throw new Error(`remez: need 0 < lo < hi, got [${lo}, ${hi}]`);
  const n = (degree + 1) / 2;
  const maxIter = opts.maxIter ?? 60;
  const tol = opts.tol ?? 1e-9;
  const cheb = new OddCheb(lo, hi, n);
  const samples = Math.max(2000, 400 * n);
  let ref = Array.from({ length: n + 1 }, (_, j) => (lo + hi) / 2 - ((hi - lo) / 2) * Math.cos((Math.PI * j) / n));
  let beta = new Array<number>(n).fill(0);
  let converged = false;
  let iterations = 0;
  let worst = Infinity;
  for (; iterations < maxIter && !converged; iterations++) {
    const rows = ref.map((x, j) => [...cheb.basis(x), j % 2 === 0 ? 1 : -1]);
    const sol = solve(
      rows,
      ref.map(() => 1),
    );
    beta = sol.slice(0, n);
    const level = Math.abs(sol[n]!);
    const err = (x: number) => cheb.value(beta, x) - 1;
    const cands = extrema(err, lo, hi, samples);
    worst = Math.max(...cands.map((c) => Math.abs(c.e)));
    if (worst - level <= tol * worst || worst - level < 1e-14) {
      converged = true;
      break;
    }
    const next = alternationSet(cands, n + 1);
    if (!next) break; // cannot exchange: keep the current (best) reference
    ref = next.map((c) => c.x);
  }
  const coeffs = cheb.toPower(beta);
  // Report everything from the power-basis coefficients the runtimes will actually use.
  const err = (x: number) => evalOdd(coeffs, x) - 1;
  const cands = extrema(err, lo, hi, samples);
  const error = Math.max(...cands.map((c) => Math.abs(c.e)));
  const values = cands.map((c) => c.e + 1);
  return {
    coeffs,
    error,
    refPoints: ref,
    refErrors: ref.map(err),
    iterations: iterations + (converged ? 1 : 0),
    converged,
    range: [Math.min(...values), Math.max(...values)],
  };
}

/** A composite minimax sign approximation and its measured quality. */
export interface CompositeFit {
  degrees: number[];
  /** sign is approximated on [−1, −eps] ∪ [eps, 1]. */
  eps: number;
  /** One Remez result per component, in application order. */
  components: RemezResult[];
  /** Stage coefficients in application order (components[i].coeffs). */
  stages: number[][];
  /** max |P(x) − sign(x)| over [eps, 1] (measured on a dense grid). */
  signError: number;
  /** max |x·(1 + P(x))/2 − ReLU(x)| over [−1, 1]. */
  reluError: number;
  /** max |P(x)| over [−1, 1] (bounded: no blow-up inside (−eps, eps)). */
  supAbs: number;
}

/**
 * Lee et al.'s composite: component 1 is the minimax odd sign approximation on [eps, 1]; component
 * k+1 is fitted on component k's output range over the previous domain, so the error shrinks stage
 * by stage. Throws when a stage's output range reaches 0 (eps too small for these degrees).
 */
export function fitMinimaxComposite(degrees: readonly number[], eps: number): CompositeFit {
  if (degrees.length === 0) throw new Error('fitMinimaxComposite: no degrees');
  if (!(eps > 0 && eps < 1)) throw new Error(`fitMinimaxComposite: eps must be in (0, 1), got ${eps}`);
  const components: RemezResult[] = [];
  let lo = eps;
  let hi = 1;
  for (const d of degrees) {
    const r = remezOddSign({ degree: d, lo, hi });
    components.push(r);
    [lo, hi] = r.range;
    if (!(lo > 0)) throw new Error(`fitMinimaxComposite: degrees [${degrees}] cannot separate the signs at eps=${eps} (stage output reaches ${lo})`);
  }
  const stages = components.map((c) => c.coeffs);
  return { degrees: [...degrees], eps, components, stages, ...measureSign(stages, eps) };
}

/** Sign/ReLU errors of stages on a dense grid (the numbers reported for every PAF). */
export function measureSign(stages: readonly (readonly number[])[], eps: number, samples = 20000): { signError: number; reluError: number; supAbs: number } {
  let signError = 0;
  let reluError = 0;
  let supAbs = 0;
  for (let i = 0; i <= samples; i++) {
    const x = -1 + (2 * i) / samples;
    const p = evalStages(stages, x);
    supAbs = Math.max(supAbs, Math.abs(p));
    reluError = Math.max(reluError, Math.abs((x + x * p) / 2 - Math.max(x, 0)));
    const xs = eps + ((1 - eps) * i) / samples;
    signError = Math.max(signError, Math.abs(evalStages(stages, xs) - 1));
  }
  return { signError, reluError, supAbs };
}

/**
 * The eps in [lo, hi] minimising the composite's ReLU error on [−1, 1] (golden-section search on
 * log eps): small eps sharpens the sign near 0, large eps lowers the error away from 0.
 */
export function bestEpsForRelu(degrees: readonly number[], lo: number, hi: number, iters = 40): CompositeFit {
  const cache = new Map<number, CompositeFit>();
  const fit = (l: number): CompositeFit => {
    let f = cache.get(l);
    if (!f) {
      f = fitMinimaxComposite(degrees, Math.exp(l));
      cache.set(l, f);
    }
    return f;
  };
  let a = Math.log(lo);
  let b = Math.log(hi);
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  for (let i = 0; i < iters; i++) {
    if (fit(c).reluError < fit(d).reluError) {
      b = d;
      d = c;
      c = b - g * (b - a);
    } else {
      a = c;
      c = d;
      d = a + g * (b - a);
    }
  }
  return fit((a + b) / 2);
}
