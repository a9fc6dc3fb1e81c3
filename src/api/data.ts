/** Data-set loading shared by the API and the CLI: names, splits, the search path. */
import { homedir } from 'node:os';
import { DataError, firstLine, OptionError, PrivmlError } from '../errors.js';
import {
  type Dataset,
  type DownloadProgress,
  type DownloadResult,
  defaultCacheDir,
  defaultDataSearchDirs,
  downloadFashionMnist,
  findFashionMnist,
  loadCifar10,
  loadFashionMnist,
  loadFashionMnistSample,
  subset,
} from '../nn/data/index.js';

/** Data sets privml reads. */
export const DATASETS = ['fashion-mnist', 'fashion-mnist-sample', 'cifar10'] as const;

/** Name of a data set privml reads. */
export type DatasetName = (typeof DATASETS)[number];

/** Options of {@link loadDatasetSync}. */
export interface LoadDatasetOptions {
  /** Split (default 'test'); fashion-mnist-sample has only a test split. */
  split?: 'train' | 'test';
  /** Read from this directory instead of the search path ($PRIVML_DATA, Debian package, ~/.cache/privml). */
  dataDir?: string;
  /** Keep only the first N examples. */
  limit?: number;
}

/** Load a split of a named data set (NCHW float32 images in [0, 1], uint8 labels); OptionError/DataError on bad input. */
export function loadDatasetSync(name: string, opts: LoadDatasetOptions = {}): Dataset {
  const { dataDir, limit } = opts;
  const split = opts.split ?? 'test';
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new OptionError(`limit must be a positive integer, got ${limit}`);
  try {
    switch (name) {
      case 'fashion-mnist':
        return loadFashionMnist({ split, dir: dataDir, searchDirs: defaultDataSearchDirs(process.env, homedir(), 'fashion-mnist'), limit });
      case 'fashion-mnist-sample':
        if (split === 'train') throw new DataError('fashion-mnist-sample holds only 1,000 test images; train on fashion-mnist');
        return loadFashionMnistSample({ limit });
      case 'cifar10':
        return loadCifar10({ split, dir: dataDir, searchDirs: defaultDataSearchDirs(process.env, homedir(), 'cifar10'), limit });
      default:
        throw new OptionError(`unknown dataset '${name}' (known: ${DATASETS.join(', ')})`);
    }
  } catch (e) {
    if (e instanceof PrivmlError) throw e;
    throw new DataError(firstLine(e));
  }
}

/** Examples [start, start + n) of a data set (a view: images are shared, not copied). */
export function subsetDataset(ds: Dataset, start: number, n: number): Dataset {
  if (!(Number.isInteger(start) && Number.isInteger(n) && start >= 0 && n >= 1 && start + n <= ds.n))
    throw new OptionError(`subset [${start}, ${start + n}) is outside the ${ds.n} examples of ${ds.name}`);
  return subset(ds, start, n);
}

/** Where privml looks for Fashion-MNIST, in order, and the directory it would use (`privml data where`). */
export function whereDataset(): { dataset: 'fashion-mnist'; searchDirs: string[]; found: string | null } {
  const searchDirs = defaultDataSearchDirs(process.env, homedir(), 'fashion-mnist');
  return { dataset: 'fashion-mnist', searchDirs, found: findFashionMnist({ searchDirs }) ?? null };
}

/** Download a data set into `dir` (default ~/.cache/privml/NAME; needs internet): `privml data download`. Only fashion-mnist. */
export async function downloadDataset(name: string, opts: { dir?: string; onProgress?: (p: DownloadProgress) => void } = {}): Promise<DownloadResult> {
  if (name !== 'fashion-mnist') throw new OptionError(`cannot download '${name}' (only fashion-mnist; CIFAR-10 must be placed by hand)`);
  try {
    return await downloadFashionMnist(opts.dir ?? defaultCacheDir(homedir(), 'fashion-mnist'), { onProgress: opts.onProgress });
  } catch (e) {
    if (e instanceof PrivmlError) throw e;
    throw new DataError(firstLine(e));
  }
}
