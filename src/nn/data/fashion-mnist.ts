/**
 * Fashion-MNIST (Zalando, MIT licence): 28×28 grey-scale clothing images in 10 classes,
 * 60,000 train + 10,000 test, stored as four IDX files (gzipped or raw).
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Dataset, datasetFromBytes, type LoadSplitOptions, type Normalization, resolveSplitDir } from './dataset.js';
import { readIdx } from './idx.js';
import { packageRoot } from './paths.js';

export { defaultCacheDir, defaultDataSearchDirs } from './paths.js';

/** Fashion-MNIST split. */
export type FashionMnistSplit = 'train' | 'test';

/** Class names, indexed by label. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Canonical file names (as distributed, gzipped) of each split. */
export const FASHION_MNIST_FILES: Record<FashionMnistSplit, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
  test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
};

/** Per-channel mean/std of the Fashion-MNIST training images (pixels scaled to [0,1]). */
export const FASHION_MNIST_NORMALIZATION: Normalization = { mean: [0.286], std: [0.353] };

/** Where to get the data, appended to every not-found error. */
export const FASHION_MNIST_HINT = 'apt-get install dataset-fashion-mnist, set PRIVML_DATA, or run `privml data download fashion-mnist`';

/** Relative path of the committed 1,000-image test sample inside the package. */
export const FASHION_MNIST_SAMPLE_SUBDIR = join('data', 'fashion-mnist-sample');

/** Paths of a split's image and label files in `dir` (gzipped name preferred, raw accepted), or undefined. */
export function fashionMnistSplitFiles(dir: string, split: FashionMnistSplit): { images: string; labels: string } | undefined {
  const images = existing(dir, FASHION_MNIST_FILES[split].images);
  const labels = existing(dir, FASHION_MNIST_FILES[split].labels);
  return images && labels ? { images, labels } : undefined;
}

/** Options of {@link findFashionMnist}. */
export interface FindFashionMnistOptions {
  /** Directories to try, in priority order (see `defaultDataSearchDirs`). */
  searchDirs: string[];
  /** Require only this split's files; default: both splits. */
  split?: FashionMnistSplit;
}

/** The first directory of `searchDirs` holding the requested Fashion-MNIST files, or undefined. */
export function findFashionMnist(opts: FindFashionMnistOptions): string | undefined {
  const splits: FashionMnistSplit[] = opts.split ? [opts.split] : ['train', 'test'];
  return opts.searchDirs.find((dir) => splits.every((s) => fashionMnistSplitFiles(dir, s) !== undefined));
}

/** Options of {@link loadFashionMnist}. */
export type LoadFashionMnistOptions = LoadSplitOptions<FashionMnistSplit>;

/** Load a Fashion-MNIST split as a Dataset of shape [1,28,28] with pixels in [0,1]. */
export function loadFashionMnist(opts: LoadFashionMnistOptions): Dataset {
  const { split } = opts;
  const dir = resolveSplitDir('Fashion-MNIST', opts, (searchDirs, s) => findFashionMnist({ searchDirs, split: s }), FASHION_MNIST_HINT);
  const files = fashionMnistSplitFiles(dir, split);
  if (!files) {
    const f = FASHION_MNIST_FILES[split];
    throw new Error(`${dir}: Fashion-MNIST ${split} files ${f.images} and ${f.labels} not found; ${FASHION_MNIST_HINT}`);
  }
  return loadIdxPair(`fashion-mnist/${split}`, files.images, files.labels, opts.limit, opts.normalize);
}

/** Directory of the committed sample (first 1,000 test images), resolved from the package root. */
export function fashionMnistSampleDir(): string {
  return join(packageRoot(), FASHION_MNIST_SAMPLE_SUBDIR);
}

/** Load the committed Fashion-MNIST sample: the first 1,000 images of the official test split. */
export function loadFashionMnistSample(opts: { limit?: number; normalize?: Normalization } = {}): Dataset {
  const dir = fashionMnistSampleDir();
  const files = fashionMnistSplitFiles(dir, 'test');
  if (!files) throw new Error(`${dir}: committed Fashion-MNIST sample is missing (run scripts/make-sample.ts)`);
  return loadIdxPair('fashion-mnist/sample', files.images, files.labels, opts.limit, opts.normalize);
}

/** Read and check an (images, labels) IDX pair, then build the Dataset. */
function loadIdxPair(name: string, imagesPath: string, labelsPath: string, limit: number | undefined, norm: Normalization | undefined): Dataset {
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  if (images.dims.length !== 3 || images.dims[1] !== 28 || images.dims[2] !== 28) {
    throw new Error(`${imagesPath}: expected images of dims [N, 28, 28], got [${images.dims.join(', ')}]`);
  }
  if (labels.dims.length !== 1) {
    throw new Error(`${labelsPath}: expected labels of dims [N], got [${labels.dims.join(', ')}]`);
  }
  const total = images.dims[0]!;
  if (labels.dims[0] !== total) {
    throw new Error(`${labelsPath}: ${labels.dims[0]} labels but ${imagesPath} has ${total} images`);
  }
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new Error(`${name}: limit must be a non-negative integer, got ${limit}`);
  }
  const n = Math.min(total, limit ?? total);
  for (let i = 0; i < n; i++) {
    if (labels.data[i]! >= FASHION_MNIST_CLASSES.length) {
      throw new Error(`${labelsPath}: label ${labels.data[i]} of example ${i} is not a class 0..9`);
    }
  }
  return datasetFromBytes(name, images.data.subarray(0, n * 784), labels.data.slice(0, n), [1, 28, 28], [...FASHION_MNIST_CLASSES], norm);
}

/** `dir/name` if it exists, else `dir/name-without-.gz` if that exists. */
function existing(dir: string, gzName: string): string | undefined {
  for (const name of [gzName, gzName.replace(/\.gz$/, '')]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}
