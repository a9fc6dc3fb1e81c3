/**
 * The long-running worker: one BullMQ Worker per job kind it serves, each running jobs through the
 * library API (the code the CLI runs). Bad input (a privml error: wrong model, missing blob, unknown
 * version) fails the job once with its reason (UnrecoverableError: no retry); anything else is retried
 * by BullMQ, and a worker that dies mid-job has its job taken over by another once its lock lapses.
 */
import { hostname } from 'node:os';
import { type ConnectionOptions, type Job, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { firstLine, OptionError, PrivmlError } from '../errors.js';
import { BlobCache } from './blobs.js';
import { durableOptions, probe, type QueueTarget } from './connection.js';
import { envelopeProblem, type JobKind, type JobPayload, type JobResult, queueName } from './jobs.js';

/** What a handler gets besides its payload. */
export interface HandlerContext {
  /** A connection for blobs (shared by the worker's jobs). */
  redis: Redis;
  /** Blobs fetched once per worker (public key sets, models). */
  cache: BlobCache;
  /** Report progress (0..100) through the queue's events. */
  progress(pct: number): Promise<void>;
  /** This worker's mount point of the shared storage (`--shared-dir`), if it has one. */
  sharedDir?: string;
  /** ORT intra-op threads for Proteus jobs (`--ort-threads`; default 1, as the local command). */
  ortThreads?: number;
}

/** Runs one job of a kind and returns its (JSON) result. */
export type Handler = (payload: JobPayload, ctx: HandlerContext) => Promise<unknown>;

/** Options of {@link startWorker}. */
export interface WorkerOptions {
  kinds: JobKind[];
  /** Jobs run at the same time per kind (default 1; CPU-bound jobs gain nothing above the core count). */
  concurrency?: number;
  /** Seconds without a lock renewal after which a job counts as stalled and is retried elsewhere (default 30). */
  stallSeconds?: number;
  /** Mount point of the storage shared with submitters (Proteus jobs by path; default: the submitter's path). */
  sharedDir?: string;
  /** ORT intra-op threads for Proteus jobs (default: ORT's own, one per core). */
  ortThreads?: number;
  /** One line per event (job start/end, reconnects); never payload contents. */
  log?: (line: string) => void;
}

/** A running worker. */
export interface RunningWorker {
  /** Stop taking jobs, wait for the running ones, disconnect. */
  close(): Promise<void>;
  /** Jobs completed and failed by this process. */
  counts: { completed: number; failed: number };
}

/** Handlers by kind, loaded lazily so a proteus-only worker never loads node-seal. */
const HANDLERS: Partial<Record<JobKind, () => Promise<Handler>>> = {
  fhe: async () => (await import('./fhe.js')).fheHandler,
  proteus: async () => (await import('./proteus.js')).proteusHandler,
  mpc: async () => (await import('./mpc.js')).mpcHandler,
};

/** Name of this worker in results and logs. */
export const WORKER_NAME = `${hostname()}:${process.pid}`;

/** Connect (one-line error if Redis is unreachable or refuses the password) and start serving `opts.kinds`. */
export async function startWorker(target: QueueTarget, opts: WorkerOptions): Promise<RunningWorker> {
  await probe(target);
  const log = opts.log ?? (() => {});
  const stallMs = Math.round((opts.stallSeconds ?? 30) * 1000);
  let down = false;
  const conn = durableOptions(target, (n) => {
    if (!down) log(`lost Redis at ${target.display}; reconnecting (attempt ${n})`);
    down = true;
  });
  const redis = new Redis(conn);
  redis.on('error', () => {});
  redis.on('ready', () => {
    if (down) log(`reconnected to ${target.display}`);
    down = false;
  });
  const cache = new BlobCache();
  const counts = { completed: 0, failed: 0 };
  const workers: Worker[] = [];
  for (const kind of opts.kinds) {
    const load = HANDLERS[kind];
    if (!load) throw new OptionError(`this worker cannot run ${kind} jobs yet`);
    const handler = await load();
    const run = async (job: Job): Promise<JobResult> => {
      const problem = envelopeProblem(job.data, kind);
      if (problem) throw new UnrecoverableError(problem);
      const t0 = performance.now();
      try {
        const result = await handler(job.data as JobPayload, {
          redis,
          cache,
          progress: (p) => job.updateProgress(p),
          sharedDir: opts.sharedDir,
          ortThreads: opts.ortThreads,
        });
        return { computeSeconds: (performance.now() - t0) / 1000, worker: WORKER_NAME, result };
      } catch (e) {
        // A privml error is about this job's input: retrying cannot help, so it fails once with its reason.
        if (e instanceof PrivmlError || (e as Error)?.name === 'ModelError' || (e as Error)?.name === 'CliError') throw new UnrecoverableError(firstLine(e));
        throw e;
      }
    };
    const w = new Worker(queueName(kind), run, {
      connection: conn as ConnectionOptions,
      concurrency: opts.concurrency ?? 1,
      lockDuration: stallMs,
      stalledInterval: stallMs,
      maxStalledCount: 2,
    });
    w.on('error', () => {});
    w.on('active', (job) => log(`${kind} job ${job.id} started (attempt ${job.attemptsMade + 1})`));
    w.on('completed', (job) => {
      counts.completed++;
      log(`${kind} job ${job.id} done in ${(job.returnvalue as JobResult).computeSeconds.toFixed(3)} s`);
    });
    w.on('failed', (job, err) => {
      counts.failed++;
      log(`${kind} job ${job?.id} failed: ${firstLine(err)}`);
    });
    await w.waitUntilReady();
    workers.push(w);
  }
  log(`worker ${WORKER_NAME} serving ${opts.kinds.map(queueName).join(', ')} on ${target.display} (concurrency ${opts.concurrency ?? 1})`);
  return {
    counts,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      redis.disconnect();
    },
  };
}
