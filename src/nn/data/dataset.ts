/**
 * The in-memory image-classification data set every loader returns, and the deterministic
 * helpers (subset, split, batches, normalisation) the training and evaluation code uses.
 */

import { seededUniform } from '../../seeded-rng.js';

/** An image-classification data set held in memory, images in NCHW order. */
export interface Dataset {
  /** Human-readable name, e.g. "fashion-mnist/test". */
  name: string;
  /** N×C×H×W floats in [0,1] (or mean/std-normalised when `normalization` is set). */
  images: Float32Array;
  /** One class index per image. */
  labels: Uint8Array;
  /** Number of examples. */
  n: number;
  /** Shape of one image: [channels, height, width]. */
  shape: [number, number, number];
  /** Class names, indexed by label. */
  classes: string[];
  /** The per-channel normalisation already applied to `images`, if any. */
  normalization?: Normalization;
}

/** Per-channel normalisation x' = (x - mean[c]) / std[c], applied after scaling to [0,1]. */
export interface Normalization {
  mean: number[];
  std: number[];
}

/** Options shared by the loaders of on-disk data sets (Fashion-MNIST, CIFAR-10). */
export interface LoadSplitOptions<S extends string> {
  split: S;
  /** Load from exactly this directory (takes precedence over `searchDirs`). */
  dir?: string;
  /** Directories to search, in order, when `dir` is not given. */
  searchDirs?: string[];
  /** Keep only the first `limit` examples. */
  limit?: number;
  /** Optional per-channel normalisation applied after scaling to [0,1]; recorded in `Dataset.normalization`. */
  normalize?: Normalization;
}

/** `opts.dir`, or the first of `opts.searchDirs` that `find` accepts; throws naming where it looked and `hint`. */
export function resolveSplitDir<S extends string>(
  label: string,
  opts: LoadSplitOptions<S>,
  find: (searchDirs: string[], split: S) => string | undefined,
  hint: string,
): string {
  if (opts.dir !== undefined) return opts.dir;
  const dirs = opts.searchDirs ?? [];
  const dir = find(dirs, opts.split);
  if (dir !== undefined) return dir;
  const where = dirs.length > 0 ? `looked in: ${dirs.join(', ')}` : 'no search directories given';
  throw new Error(`${label} ${opts.split} split not found (${where}); ${hint}`);
}

/** One mini-batch: `x` is n×C×H×W, `y` the n labels. */
export interface Batch {
  x: Float32Array;
  y: Uint8Array;
  n: number;
}

/** Options of {@link batches}. */
export interface BatchOptions {
  /** Visit examples in a seeded random order (default false: data-set order). */
  shuffle?: boolean;
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** Drop a last batch smaller than `batchSize` (default false). */
  dropLast?: boolean;
}

/** Number of floats in one image of `ds`. */
export function imageSize(ds: Pick<Dataset, 'shape'>): number {
  return ds.shape[0] * ds.shape[1] * ds.shape[2];
}

/** Build a Dataset from unsigned-byte pixels (already NCHW), scaling them to [0,1]. */
export function datasetFromBytes(
  name: string,
  pixels: Uint8Array,
  labels: Uint8Array,
  shape: [number, number, number],
  classes: string[],
  normalization?: Normalization,
): Dataset {
  const size = shape[0] * shape[1] * shape[2];
  const n = labels.length;
  if (pixels.length !== n * size) {
    throw new Error(`${name}: ${pixels.length} pixel bytes do not match ${n} labels of shape [${shape.join(', ')}]`);
  }
  for (let i = 0; i < n; i++) {
    if (labels[i]! >= classes.length) {
      throw new Error(`${name}: label ${labels[i]} of example ${i} is out of range (${classes.length} classes)`);
    }
  }
  const images = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) images[i] = pixels[i]! / 255;
  const ds: Dataset = { name, images, labels, n, shape, classes };
  return normalization ? normalize(ds, normalization) : ds;
}

/** A copy of `ds` with per-channel (x - mean) / std applied; throws if `ds` is already normalised. */
export function normalize(ds: Dataset, norm: Normalization): Dataset {
  const c = ds.shape[0];
  if (ds.normalization) throw new Error(`${ds.name}: data set is already normalised`);
  if (norm.mean.length !== c || norm.std.length !== c) {
    throw new Error(`${ds.name}: normalisation needs ${c} mean/std values, got ${norm.mean.length}/${norm.std.length}`);
  }
  if (norm.std.some((s) => !(s > 0))) throw new Error(`${ds.name}: normalisation std must be > 0`);
  const plane = ds.shape[1] * ds.shape[2];
  const images = new Float32Array(ds.images.length);
  for (let i = 0; i < ds.n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const m = norm.mean[ch]!;
      const inv = 1 / norm.std[ch]!;
      const off = (i * c + ch) * plane;
      for (let k = off; k < off + plane; k++) images[k] = (ds.images[k]! - m) * inv;
    }
  }
  return { ...ds, images, normalization: { mean: [...norm.mean], std: [...norm.std] } };
}

/** Per-channel mean and (population) standard deviation of `ds`'s images. */
export function channelStats(ds: Dataset): Normalization {
  const c = ds.shape[0];
  const plane = ds.shape[1] * ds.shape[2];
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  for (let i = 0; i < ds.n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const off = (i * c + ch) * plane;
      let s = 0;
      let q = 0;
      for (let k = off; k < off + plane; k++) {
        const v = ds.images[k]!;
        s += v;
        q += v * v;
      }
      sum[ch]! += s;
      sq[ch]! += q;
    }
  }
  const count = ds.n * plane;
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (q, ch) => Math.sqrt(Math.max(0, q / count - mean[ch]! ** 2)));
  return { mean, std };
}

/** Examples [start, start+count) of `ds`; the arrays are views sharing memory with `ds`. */
export function subset(ds: Dataset, start: number, count: number): Dataset {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > ds.n) {
    throw new Error(`${ds.name}: subset [${start}, ${start + count}) is outside 0..${ds.n}`);
  }
  const size = imageSize(ds);
  return {
    ...ds,
    images: ds.images.subarray(start * size, (start + count) * size),
    labels: ds.labels.subarray(start, start + count),
    n: count,
  };
}

/** The examples of `ds` at `indices`, copied, in that order. */
export function gather(ds: Dataset, indices: ArrayLike<number>, name = ds.name): Dataset {
  const size = imageSize(ds);
  const n = indices.length;
  const images = new Float32Array(n * size);
  const labels = new Uint8Array(n);
  for (let j = 0; j < n; j++) {
    const i = indices[j]!;
    if (!(i >= 0 && i < ds.n)) throw new Error(`${ds.name}: example index ${i} is outside 0..${ds.n - 1}`);
    images.set(ds.images.subarray(i * size, (i + 1) * size), j * size);
    labels[j] = ds.labels[i]!;
  }
  return { ...ds, name, images, labels, n };
}

/**
 * Deterministic random partition of `ds`: `a` gets round(fraction·n) examples, `b` the rest.
 * Each part keeps the original example order; the same seed always gives the same partition.
 */
export function split(ds: Dataset, fraction: number, seed: number): { a: Dataset; b: Dataset } {
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`${ds.name}: split fraction ${fraction} is not in [0,1]`);
  const perm = shuffledIndices(ds.n, seed);
  const k = Math.round(fraction * ds.n);
  const ia = perm.subarray(0, k).sort();
  const ib = perm.subarray(k).sort();
  return { a: gather(ds, ia, `${ds.name}[a]`), b: gather(ds, ib, `${ds.name}[b]`) };
}

/** Yield mini-batches of `ds` covering every example exactly once (unless `dropLast`). */
export function* batches(ds: Dataset, batchSize: number, opts: BatchOptions = {}): Generator<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`${ds.name}: batch size must be a positive integer, got ${batchSize}`);
  }
  const size = imageSize(ds);
  const order = opts.shuffle ? shuffledIndices(ds.n, opts.seed ?? 0) : undefined;
  for (let start = 0; start < ds.n; start += batchSize) {
    const n = Math.min(batchSize, ds.n - start);
    if (n < batchSize && opts.dropLast) return;
    if (!order) {
      // In-order batches are copies too, so a consumer may reuse or mutate them freely.
      yield {
        x: ds.images.slice(start * size, (start + n) * size),
        y: ds.labels.slice(start, start + n),
        n,
      };
      continue;
    }
    const x = new Float32Array(n * size);
    const y = new Uint8Array(n);
    for (let j = 0; j < n; j++) {
      const i = order[start + j]!;
      x.set(ds.images.subarray(i * size, (i + 1) * size), j * size);
      y[j] = ds.labels[i]!;
    }
    yield { x, y, n };
  }
}

/** Number of examples of each class in `ds` (index = label). */
export function classCounts(ds: Pick<Dataset, 'labels' | 'classes'>): number[] {
  const counts = new Array<number>(ds.classes.length).fill(0);
  for (const l of ds.labels) counts[l] = (counts[l] ?? 0) + 1;
  return counts;
}

/** A seeded random permutation of 0..n-1 (Fisher–Yates over a `SeededRng` stream; not cryptographic). */
export function shuffledIndices(n: number, seed: number): Uint32Array {
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const rand = seededUniform(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}
