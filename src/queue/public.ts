/**
 * The job queue as a library (`import { queue } from 'privml'`): what `privml proteus optimize|mpc
 * infer|fhe run --queue URL` and `privml worker` do, with the queue given as its `redis://` URL.
 * BullMQ, Redis and the pillars load on first call, so importing privml stays light.
 */
import type { QueueTarget } from './connection.js';
import type { runOverQueue } from './fhe.js';
import type { inferOverQueue } from './mpc.js';
import type { optimizeOverQueue } from './proteus.js';
import type { startWorker } from './worker.js';

/** A queue function's arguments after its target, and its result. */
type After<F> = F extends (target: QueueTarget, ...rest: infer A) => infer R ? { args: A; result: R } : never;

/** Parse and check a `redis://[:password@]host:port[/db]` URL (OptionError when malformed). */
export async function target(url: string): Promise<QueueTarget> {
  return (await import('./connection.js')).parseQueueUrl(url);
}

/** Optimize every member of a Proteus bundle on the queue's workers into `outDir` (the optimizer party's batch). */
export async function optimizeBundle(url: string, ...rest: After<typeof optimizeOverQueue>['args']): After<typeof optimizeOverQueue>['result'] {
  const t = await target(url);
  return (await import('./proteus.js')).optimizeOverQueue(t, ...rest);
}

/** Two-party private inference of a data set, split into jobs for the queue's workers. */
export async function infer(url: string, ...rest: After<typeof inferOverQueue>['args']): After<typeof inferOverQueue>['result'] {
  const t = await target(url);
  return (await import('./mpc.js')).inferOverQueue(t, ...rest);
}

/** Encrypted inference of `n` images, one job per image (or batch) for the queue's FHE workers. */
export async function runFhe(url: string, ...rest: After<typeof runOverQueue>['args']): After<typeof runOverQueue>['result'] {
  const t = await target(url);
  return (await import('./fhe.js')).runOverQueue(t, ...rest);
}

/** Serve jobs of the given kinds until the returned worker is closed (what `privml worker` runs). */
export async function worker(url: string, ...rest: After<typeof startWorker>['args']): After<typeof startWorker>['result'] {
  const t = await target(url);
  return (await import('./worker.js')).startWorker(t, ...rest);
}
