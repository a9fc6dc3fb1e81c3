/**
 * Gradient-boosted decision trees for the attack's second learned adversary. Logistic regression
 * sees each feature through one weight, so it misses a real member that is typical on every single
 * feature but atypical in a combination ("few nodes *and* many distinct dims"), or one that sits in
 * the middle of a feature's range; shallow trees on quantile bins see both. Logistic loss, Newton
 * leaf values, classes re-weighted to equal total weight (one real member per K sentinels), no
 * randomness (every fit of the same data gives the same trees). Our own code: no ML library.
 */

/** Settings of {@link Boosted}; the defaults are the attack's. */
export interface BoostOptions {
  /** Trees (boosting rounds). */
  rounds?: number;
  /** Depth of each tree (splits from root to leaf). */
  depth?: number;
  /** Shrinkage: each tree's leaf values are scaled by this. */
  rate?: number;
  /** Fewest training examples in a leaf. */
  minLeaf?: number;
  /** Bins per feature, NaN's included (3..256; bin 0 holds NaN, the rest are quantile bins). */
  bins?: number;
  /** L2 penalty on leaf values (in units of the re-weighted hessian). */
  lambda?: number;
}

/** One internal node (feature, bin threshold: bin ≤ threshold goes left) or leaf (feature −1). */
interface TreeNode {
  feature: number;
  threshold: number;
  /** Loss reduction of this split (0 at a leaf). */
  gain: number;
  left: number;
  right: number;
  value: number;
}

/** Gradient-boosted trees on binned features; `score` is the probability of the positive class. */
export class Boosted {
  private cuts: Float64Array[] = [];
  private trees: TreeNode[][] = [];
  private base = 0;

  constructor(private readonly opts: BoostOptions = {}) {}

  /** Fit on rows `xs` (equal length) with labels `ys`; NaN features are a bin of their own. */
  fit(xs: readonly (readonly number[])[], ys: readonly boolean[]): this {
    const { rounds = 100, depth = 3, rate = 0.1, minLeaf = 10, bins = 32, lambda = 1 } = this.opts;
    if (!(Number.isInteger(bins) && bins >= 3 && bins <= 256)) throw new Error(`boosted trees: bins must be an integer in 3..256, got ${bins}`);
    const n = xs.length;
    const d = n ? xs[0]!.length : 0;
    const pos = ys.filter(Boolean).length;
    this.trees = [];
    this.cuts = [];
    if (!n || !pos || pos === n) {
      this.base = pos === n ? 10 : -10;
      return this;
    }
    // Classes re-weighted to equal total weight, mean weight 1.
    const w = Float64Array.from(ys, (y) => (y ? n / (2 * pos) : n / (2 * (n - pos))));
    this.base = 0;
    const binned: Uint8Array[] = [];
    for (let j = 0; j < d; j++) {
      const col = Float64Array.from(xs, (x) => x[j]!);
      this.cuts.push(quantileCuts(col, bins - 2));
      binned.push(Uint8Array.from(col, (v) => binOf(this.cuts[j]!, v)));
    }
    const margin = new Float64Array(n);
    const g = new Float64Array(n);
    const h = new Float64Array(n);
    const all = Uint32Array.from({ length: n }, (_, i) => i);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < n; i++) {
        const p = sigmoid(margin[i]!);
        g[i] = w[i]! * (p - (ys[i] ? 1 : 0));
        h[i] = w[i]! * Math.max(p * (1 - p), 1e-6);
      }
      const tree: TreeNode[] = [];
      grow(tree, all, 0, { binned, g, h, bins, depth, minLeaf, lambda, rate });
      for (let i = 0; i < n; i++) margin[i]! += leafValue(tree, (j) => binned[j]![i]!);
      this.trees.push(tree);
    }
    return this;
  }

  /** Each feature's share of the total split gain of all trees (what the model relies on; sums to 1, or all 0). */
  importance(): number[] {
    const imp = new Array<number>(this.cuts.length).fill(0);
    for (const tree of this.trees) for (const node of tree) if (node.feature >= 0) imp[node.feature]! += node.gain;
    const total = imp.reduce((a, b) => a + b, 0);
    return total > 0 ? imp.map((v) => v / total) : imp;
  }

  /** Probability that row `x` is positive. */
  score(x: readonly number[]): number {
    let m = this.base;
    for (const tree of this.trees) m += leafValue(tree, (j) => binOf(this.cuts[j]!, x[j]!));
    return sigmoid(m);
  }
}

/** What `grow` needs besides the node's examples. */
interface GrowContext {
  binned: Uint8Array[];
  g: Float64Array;
  h: Float64Array;
  bins: number;
  depth: number;
  minLeaf: number;
  lambda: number;
  rate: number;
}

/** Append the subtree over examples `idx` at `level` to `tree`; returns its index. */
function grow(tree: TreeNode[], idx: Uint32Array, level: number, c: GrowContext): number {
  // This node's gradients and hessians, gathered once (the feature loop below reads them d times).
  const m = idx.length;
  const gs = new Float64Array(m);
  const hs = new Float64Array(m);
  let G = 0;
  let H = 0;
  for (let k = 0; k < m; k++) {
    gs[k] = c.g[idx[k]!]!;
    hs[k] = c.h[idx[k]!]!;
    G += gs[k]!;
    H += hs[k]!;
  }
  const at = tree.length;
  tree.push({ feature: -1, threshold: 0, gain: 0, left: -1, right: -1, value: (-c.rate * G) / (H + c.lambda) });
  if (level >= c.depth || idx.length < 2 * c.minLeaf) return at;
  const parent = (G * G) / (H + c.lambda);
  let best = { gain: 1e-9, feature: -1, threshold: 0 };
  const hg = new Float64Array(c.bins);
  const hh = new Float64Array(c.bins);
  const hn = new Uint32Array(c.bins);
  for (let j = 0; j < c.binned.length; j++) {
    const col = c.binned[j]!;
    hg.fill(0);
    hh.fill(0);
    hn.fill(0);
    for (let k = 0; k < m; k++) {
      const b = col[idx[k]!]!;
      hg[b]! += gs[k]!;
      hh[b]! += hs[k]!;
      hn[b]!++;
    }
    let gl = 0;
    let hl = 0;
    let nl = 0;
    for (let t = 0; t < c.bins - 1; t++) {
      gl += hg[t]!;
      hl += hh[t]!;
      nl += hn[t]!;
      const nr = m - nl;
      if (nl < c.minLeaf) continue;
      if (nr < c.minLeaf) break;
      const gain = (gl * gl) / (hl + c.lambda) + ((G - gl) * (G - gl)) / (H - hl + c.lambda) - parent;
      if (gain > best.gain) best = { gain, feature: j, threshold: t };
    }
  }
  if (best.feature < 0) return at;
  const col = c.binned[best.feature]!;
  const left = idx.filter((i) => col[i]! <= best.threshold);
  const right = idx.filter((i) => col[i]! > best.threshold);
  const node = tree[at]!;
  node.feature = best.feature;
  node.threshold = best.threshold;
  node.gain = best.gain;
  node.left = grow(tree, left, level + 1, c);
  node.right = grow(tree, right, level + 1, c);
  return at;
}

/** The leaf value `tree` gives an example whose bin of feature j is `bin(j)`. */
function leafValue(tree: readonly TreeNode[], bin: (j: number) => number): number {
  let k = 0;
  for (;;) {
    const node = tree[k]!;
    if (node.feature < 0) return node.value;
    k = bin(node.feature) <= node.threshold ? node.left : node.right;
  }
}

/**
 * At most `m` cut points between the non-NaN values of `col`: midpoints between distinct values
 * when there are few, else between the values at evenly spaced ranks (so each bin holds about the
 * same number of examples; equal values never straddle a cut).
 */
export function quantileCuts(col: Float64Array, m: number): Float64Array {
  const v = col.filter((x) => !Number.isNaN(x)).sort();
  const distinct: number[] = [];
  for (let i = 0; i < v.length; i++) if (i === 0 || v[i] !== v[i - 1]) distinct.push(v[i]!);
  if (distinct.length <= m + 1) return Float64Array.from(distinct.slice(1), (x, i) => (distinct[i]! + x) / 2);
  const cuts: number[] = [];
  for (let q = 1; q <= m; q++) {
    const r = Math.floor((q * v.length) / (m + 1));
    const hi = v[r]!;
    // The largest value below `hi` (a cut between equal values would split a tie).
    let lo = r - 1;
    while (lo >= 0 && v[lo] === hi) lo--;
    if (lo < 0) continue;
    const cut = (v[lo]! + hi) / 2;
    if (!cuts.length || cut > cuts[cuts.length - 1]!) cuts.push(cut);
  }
  return Float64Array.from(cuts);
}

/** Bin of value `v` among `cuts` (sorted): 0 for NaN, else 1 + the number of cuts below `v`. */
export function binOf(cuts: Float64Array, v: number): number {
  if (Number.isNaN(v)) return 0;
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cuts[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return 1 + lo;
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}
