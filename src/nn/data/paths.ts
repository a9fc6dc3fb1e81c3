/**
 * Where data sets are looked for. Library code never reads `process.env`: the CLI passes its
 * environment and home directory to {@link defaultDataSearchDirs} and hands the list to a loader.
 */

import { existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Data sets privml knows how to find, with their conventional directory names. */
export type DatasetId = 'fashion-mnist' | 'cifar10';

/** Directory name of each data set under $PRIVML_DATA and the user cache. */
export const DATASET_DIR_NAME: Record<DatasetId, string> = {
  'fashion-mnist': 'fashion-mnist',
  cifar10: 'cifar-10-batches-bin',
};

/** Debian's system-wide install location of each data set, if Debian packages it. */
const SYSTEM_DIRS: Record<DatasetId, string[]> = {
  'fashion-mnist': ['/usr/share/datasets/fashion-mnist'],
  cifar10: [],
};

/** The user cache directory of a data set (where `privml data download` writes): ~/.cache/privml/<name>. */
export function defaultCacheDir(home: string, dataset: DatasetId = 'fashion-mnist'): string {
  return join(home, '.cache', 'privml', DATASET_DIR_NAME[dataset]);
}

/**
 * Search directories, in priority order: each entry of $PRIVML_DATA (a path list) and its
 * `<name>` subdirectory, Debian's /usr/share/datasets location, then ~/.cache/privml/<name>.
 */
export function defaultDataSearchDirs(env: NodeJS.ProcessEnv, home: string, dataset: DatasetId = 'fashion-mnist'): string[] {
  const dirs: string[] = [];
  for (const root of (env.PRIVML_DATA ?? '').split(delimiter)) {
    if (root === '') continue;
    dirs.push(resolve(root), join(resolve(root), DATASET_DIR_NAME[dataset]));
  }
  dirs.push(...SYSTEM_DIRS[dataset], defaultCacheDir(home, dataset));
  return [...new Set(dirs)];
}

/** Root of the privml package (the nearest ancestor with privml's package.json), from src/ or dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'privml') return dir;
      } catch {
        // An unreadable package.json is not ours; keep walking up.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the privml package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}
