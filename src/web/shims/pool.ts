/**
 * The page's stand-in for src/mpc/threads/pool.ts (esbuild redirects imports of that file here):
 * the thread pool needs SharedArrayBuffer and node:worker_threads, which a page without
 * cross-origin isolation does not have, so party 0 in the page always runs single-threaded.
 */
import type { RingPool } from '../../mpc/threads/pool.js';

export type { PoolTask, RingPool } from '../../mpc/threads/pool.js';

/** One thread: the page's Web Worker. */
export const availableThreads = (): number => 1;

/** Only 1 is valid in the page. */
export function threadsProblem(threads: number): string | undefined {
  return threads === 1 ? undefined : `--threads ${threads}: the page runs party 0 in one Web Worker (no SharedArrayBuffer without cross-origin isolation)`;
}

/** Never constructed in the page (roles.ts only makes one for threads > 1); fails loudly if it is. */
export class LazyPool {
  constructor(readonly threads: number) {
    throw new Error(threadsProblem(threads) ?? 'no thread pool in the page');
  }

  get(): RingPool {
    throw new Error('no thread pool in the page');
  }

  async close(): Promise<void> {}
}
