/**
 * The submitting side: put a batch of jobs on a kind's queue, follow the queue's events for progress,
 * and gather the results in submission order. Events can be missed while Redis restarts, so job states
 * are also polled; a result counts once however many times its events arrive. A job that fails for good
 * (bad input, or retries exhausted) ends the batch with a one-line error naming the job and its reason.
 */

import { type ConnectionOptions, Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { randomId } from '../crypto/index.js';
import { ProtocolError } from '../errors.js';
import { durableOptions, probe, type QueueTarget } from './connection.js';
import { type JobKind, type JobPayload, type JobResult, PAYLOAD_VERSION, queueName } from './jobs.js';

/** Options of {@link submitJobs}. */
export interface SubmitOptions {
  /** Called after each newly gathered result. */
  onProgress?: (done: number, total: number) => void;
  /** One line per notable event (reconnects, retries). */
  log?: (line: string) => void;
  /** Attempts per job for errors that are not the job's own fault (default 3). */
  attempts?: number;
  /** How often to poll job states besides the events (default 1000 ms). */
  pollMs?: number;
  /** Jobs in flight at most (their input blobs sit in Redis meanwhile; default 16). */
  window?: number;
}

/** Gathered results, in submission order, with the queue's accounting. */
export interface Gathered<R> {
  results: JobResult<R>[];
  /** Wall seconds from the first job added to the last result gathered. */
  seconds: number;
  /** Attempts each job took (1 unless a worker died or a transient error was retried). */
  attempts: number[];
}

/** A fresh run id (groups one batch's job ids and blobs). */
export function newRunId(): string {
  return randomId().slice(0, 16);
}

/** A long-lived blob connection for a submitter (reconnects forever; one-line error if Redis is unreachable now). */
export async function blobConnection(target: QueueTarget): Promise<Redis> {
  await probe(target);
  const r = new Redis(durableOptions(target));
  r.on('error', () => {});
  return r;
}

/** The payload without its envelope; {@link submitJobs} adds version, kind, run and index. */
export type Body<P extends JobPayload> = Omit<P, 'v' | 'kind' | 'run' | 'index'>;

/**
 * Submit `n` jobs of `kind` (job i's payload made by `make(i)` just before it is added, at most
 * `opts.window` in flight) and return their results in order; `onResult` sees each result as it arrives
 * (e.g. to fetch and drop its blob). The run's jobs are removed afterwards.
 */
export async function submitJobs<P extends JobPayload, R>(
  target: QueueTarget,
  kind: P['kind'],
  run: string,
  n: number,
  make: (i: number) => Promise<Body<P>>,
  opts: SubmitOptions & { onResult?: (i: number, r: JobResult<R>) => Promise<void> } = {},
): Promise<Gathered<R>> {
  await probe(target);
  const log = opts.log ?? (() => {});
  let down = false;
  const conn = durableOptions(target, (n) => {
    if (!down) log(`lost Redis at ${target.display}; reconnecting (attempt ${n})`);
    down = true;
  });
  const name = queueName(kind as JobKind);
  const queue = new Queue(name, { connection: conn as ConnectionOptions });
  const events = new QueueEvents(name, { connection: conn as ConnectionOptions });
  queue.on('error', () => {});
  events.on('error', () => {});
  const ids = Array.from({ length: n }, (_, i) => `${run}-${i}`);
  const index = new Map(ids.map((id, i) => [id, i]));
  const results: (JobResult<R> | undefined)[] = new Array(n);
  const attempts: number[] = new Array(n).fill(0);
  let done = 0;
  let failure: ProtocolError | undefined;
  let wake: () => void = () => {};
  const pending: Promise<void>[] = [];
  const settle = (i: number, r: JobResult<R>, tries: number) => {
    if (results[i]) return;
    results[i] = r;
    attempts[i] = tries;
    if (opts.onResult)
      pending.push(opts.onResult(i, r).catch((e: unknown) => void (failure ??= new ProtocolError(`${kind} job ${i}: ${(e as Error).message.split('\n')[0]}`))));
    done++;
    opts.onProgress?.(done, n);
    wake();
  };
  const check = async (id: string): Promise<void> => {
    const i = index.get(id);
    if (i === undefined || results[i]) return;
    // By state, not by failedReason (a job that succeeded on a retry keeps its earlier attempt's reason);
    // the state first, so the job read after it holds the final return value.
    const state = await queue.getJobState(id);
    if (state !== 'completed' && state !== 'failed') return;
    const job = await Job.fromId(queue, id);
    if (!job) return;
    if (state === 'completed') settle(i, job.returnvalue as JobResult<R>, job.attemptsMade);
    else {
      failure ??= new ProtocolError(`${kind} job ${i} failed: ${job.failedReason}`);
      wake();
    }
  };
  events.on('completed', ({ jobId }) => void check(jobId).catch(() => {}));
  events.on('failed', ({ jobId }) => void check(jobId).catch(() => {}));
  try {
    await events.waitUntilReady();
    const t0 = performance.now();
    const window = opts.window ?? 16;
    let added = 0;
    let lastPoll = performance.now();
    // Events drive progress; the poll catches whatever was missed while Redis was away.
    while (done < n && !failure) {
      while (added < n && added - done < window && !failure) {
        const i = added++;
        const body = await make(i);
        const data = { ...body, v: PAYLOAD_VERSION, kind, run, index: i } as P;
        await queue.add(kind, data, {
          jobId: ids[i],
          attempts: opts.attempts ?? 3,
          backoff: { type: 'fixed', delay: 1000 },
          removeOnComplete: { age: 3600 },
          removeOnFail: { age: 24 * 3600 },
        });
      }
      if (done >= n || failure) break;
      // The poll timer is cleared on wake-up: a pending one would keep the process alive up to pollMs after the last result.
      await new Promise<void>((res) => {
        const timer = setTimeout(res, opts.pollMs ?? 1000);
        wake = () => {
          clearTimeout(timer);
          res();
        };
      });
      if (performance.now() - lastPoll >= (opts.pollMs ?? 1000)) {
        lastPoll = performance.now();
        for (let i = 0; i < added && !failure; i++) if (!results[i]) await check(ids[i]!).catch(() => {});
      }
    }
    await Promise.all(pending);
    const seconds = (performance.now() - t0) / 1000;
    if (failure) throw failure;
    return { results: results as JobResult<R>[], seconds, attempts };
  } finally {
    // Remove the run's jobs (finished or not): results are gathered, and a failed batch should not keep running.
    await Promise.all(ids.map((id) => queue.remove(id).catch(() => 0)));
    await events.close().catch(() => {});
    await queue.close().catch(() => {});
  }
}
