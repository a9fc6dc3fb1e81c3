/**
 * CIFAR-10 "binary version" loader (cifar-10-batches-bin): each record is 1 label byte followed
 * by 3072 pixel bytes — the red, green and blue 32×32 planes, row-major — which is already CHW.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Dataset, datasetFromBytes, type LoadSplitOptions, type Normalization, resolveSplitDir } from './dataset.js';
import { oneLine } from './idx.js';
import { DATASET_DIR_NAME } from './paths.js';

/** CIFAR-10 split. */
export type Cifar10Split = 'train' | 'test';

/** Class names, indexed by label. */
export const CIFAR10_CLASSES: readonly string[] = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** Bytes of one record: label + 3×32×32 pixels. */
export const CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32;

/** Batch files of each split, in load order. */
export const CIFAR10_FILES: Record<Cifar10Split, string[]> = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: ['test_batch.bin'],
};

/** Commonly used per-channel mean/std of the CIFAR-10 training images (pixels scaled to [0,1]). */
export const CIFAR10_NORMALIZATION: Normalization = {
  mean: [0.4914, 0.4822, 0.4465],
  std: [0.247, 0.2435, 0.2616],
};

/** Where to get the data, appended to not-found errors. */
export const CIFAR10_HINT =
  'download the "CIFAR-10 binary version" from https://www.cs.toronto.edu/~kriz/cifar.html and set PRIVML_DATA to the directory holding cifar-10-batches-bin';

/** Options of {@link findCifar10}. */
export interface FindCifar10Options {
  /** Directories to try, in order; each is checked itself and its cifar-10-batches-bin subdirectory. */
  searchDirs: string[];
  /** Require only this split's files; default: both splits. */
  split?: Cifar10Split;
}

/** The first directory holding the requested CIFAR-10 batch files, or undefined. */
export function findCifar10(opts: FindCifar10Options): string | undefined {
  const files = opts.split ? CIFAR10_FILES[opts.split] : [...CIFAR10_FILES.train, ...CIFAR10_FILES.test];
  for (const dir of opts.searchDirs) {
    for (const d of [dir, join(dir, DATASET_DIR_NAME.cifar10)]) {
      if (files.every((f) => existsSync(join(d, f)))) return d;
    }
  }
  return undefined;
}

/** Options of {@link loadCifar10} (a `limit` stops before later batch files are read). */
export type LoadCifar10Options = LoadSplitOptions<Cifar10Split>;

/** Load a CIFAR-10 split as a Dataset of shape [3,32,32] with pixels in [0,1]. */
export function loadCifar10(opts: LoadCifar10Options): Dataset {
  const { split } = opts;
  const dir = resolveSplitDir('CIFAR-10', opts, (searchDirs, s) => findCifar10({ searchDirs, split: s }), CIFAR10_HINT);
  const limit = opts.limit ?? Infinity;
  if (limit !== Infinity && !(Number.isInteger(limit) && limit >= 0)) {
    throw new Error(`cifar10/${split}: limit must be a non-negative integer, got ${opts.limit}`);
  }
  const pixelChunks: Uint8Array[] = [];
  const labelChunks: Uint8Array[] = [];
  let n = 0;
  for (const name of CIFAR10_FILES[split]) {
    if (n >= limit) break;
    const { pixels, labels } = readCifarBatch(join(dir, name), limit - n);
    pixelChunks.push(pixels);
    labelChunks.push(labels);
    n += labels.length;
  }
  return datasetFromBytes(`cifar10/${split}`, concat(pixelChunks), concat(labelChunks), [3, 32, 32], [...CIFAR10_CLASSES], opts.normalize);
}

/** Read up to `max` records of one CIFAR-10 batch file, split into CHW pixels and labels. */
export function readCifarBatch(path: string, max = Infinity): { pixels: Uint8Array; labels: Uint8Array } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read CIFAR-10 batch (${oneLine(e)})`);
  }
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new Error(`${path}: bad CIFAR-10 batch size ${bytes.length} bytes (not a positive multiple of the ${CIFAR10_RECORD_BYTES}-byte record; truncated?)`);
  }
  const n = Math.min(bytes.length / CIFAR10_RECORD_BYTES, max);
  const px = CIFAR10_RECORD_BYTES - 1;
  const pixels = new Uint8Array(n * px);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const off = i * CIFAR10_RECORD_BYTES;
    const label = bytes[off]!;
    if (label >= CIFAR10_CLASSES.length) {
      throw new Error(`${path}: record ${i} has label ${label}, not a class 0..9 (not a CIFAR-10 file?)`);
    }
    labels[i] = label;
    pixels.set(bytes.subarray(off + 1, off + CIFAR10_RECORD_BYTES), i * px);
  }
  return { pixels, labels };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
