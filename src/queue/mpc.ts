/**
 * A data owner's offline MPC batch over the queue: each job names a slice of a data set that the worker
 * holds itself, and the worker runs the dealer and both parties (`mpc.infer`, the code `privml mpc infer`
 * runs) on it over loopback. The payload carries no input, only indices. The worker, running both
 * parties, does see the inputs and the model: this mode scales out a data owner's own machines (or
 * machines it trusts with the data); it is not two-party privacy against the worker's operator.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDatasetSync } from '../api/data.js';
import { infer } from '../api/mpc.js';
import { DataError, OptionError, ProtocolError } from '../errors.js';
import type { QueueTarget } from './connection.js';
import type { JobPayload, MpcJob } from './jobs.js';
import { newRunId, type SubmitOptions, submitJobs } from './submit.js';
import type { HandlerContext } from './worker.js';

/** One job's outcome (per-image predictions and the plaintext comparison made on the worker). */
export interface MpcJobResult {
  predictions: number[];
  agreement: number;
  maxLogitDiff: number;
  seconds: number;
}

/** Worker side: private inference of images [start, start + count) of the worker's copy of the data set. */
export async function mpcHandler(payload: JobPayload, _ctx: HandlerContext): Promise<MpcJobResult> {
  const p = payload as MpcJob;
  if (!(Number.isInteger(p.start) && p.start >= 0 && Number.isInteger(p.count) && p.count >= 1))
    throw new DataError(`bad image range start ${p.start} count ${p.count}`);
  const ds = loadDatasetSync(p.dataset, { dataDir: p.dataDir, limit: p.start + p.count });
  if (ds.n < p.start + p.count) throw new DataError(`${p.dataset} on this worker has ${ds.n} images, the job needs [${p.start}, ${p.start + p.count})`);
  const per = ds.images.length / ds.n;
  // The slice goes to party 0 as a JSON input file, owner-only and removed right after the run.
  const dir = mkdtempSync(join(tmpdir(), 'privml-qm-'));
  try {
    const file = join(dir, 'inputs.json');
    writeFileSync(file, JSON.stringify(Array.from(ds.images.subarray(p.start * per, (p.start + p.count) * per))), { mode: 0o600 });
    const t0 = performance.now();
    let r;
    try {
      r = await infer(p.model, { inputFile: file, batch: p.batch, weights: p.weights, reluProtocol: p.reluProtocol, fracBits: p.fracBits });
    } catch (e) {
      // A session that broke (a party not connecting in time on a loaded machine, a crashed process) is
      // not the job's fault: a plain Error lets BullMQ retry it (bounded attempts). Bad input stays typed.
      if (e instanceof ProtocolError) throw new Error(e.message);
      throw e;
    }
    return { predictions: r.predictions, agreement: r.agreement, maxLogitDiff: r.maxLogitDiff, seconds: (performance.now() - t0) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Options of {@link inferOverQueue}. */
export interface MpcQueueOptions extends SubmitOptions {
  dataset?: string;
  dataDir?: string;
  limit?: number;
  /** Images per job (default 10). */
  perJob?: number;
  batch?: number;
  weights?: 'public' | 'secret';
  reluProtocol?: 'signonly' | 'crypten';
  fracBits?: number;
}

/** Submitter side of `privml mpc infer MODEL --queue URL`: predictions in data-set order. */
export async function inferOverQueue(
  target: QueueTarget,
  model: string,
  o: MpcQueueOptions = {},
): Promise<{
  count: number;
  predictions: number[];
  agreement: number;
  maxLogitDiff: number;
  accuracy?: number;
  seconds: number;
  computeSeconds: number;
  attempts: number[];
  workers: string[];
}> {
  const dataset = o.dataset ?? 'fashion-mnist-sample';
  const ds = loadDatasetSync(dataset, { dataDir: o.dataDir, limit: o.limit });
  const per = o.perJob ?? 10;
  if (!(Number.isInteger(per) && per >= 1)) throw new OptionError(`--per-job must be a positive integer, got ${per}`);
  const jobs = Math.ceil(ds.n / per);
  const g = await submitJobs<MpcJob, MpcJobResult>(
    target,
    'mpc',
    newRunId(),
    jobs,
    async (i) => ({
      model,
      dataset,
      dataDir: o.dataDir,
      start: i * per,
      count: Math.min(per, ds.n - i * per),
      batch: o.batch ?? 1,
      weights: o.weights ?? 'public',
      reluProtocol: o.reluProtocol ?? 'signonly',
      fracBits: o.fracBits ?? 16,
    }),
    o,
  );
  const predictions = g.results.flatMap((r) => r.result.predictions);
  if (predictions.length !== ds.n) throw new DataError(`workers returned ${predictions.length} predictions for ${ds.n} images`);
  const agreement = g.results.reduce((a, r) => a + r.result.agreement * r.result.predictions.length, 0) / ds.n;
  const accuracy = predictions.filter((c, i) => c === ds.labels[i]).length / ds.n;
  return {
    count: ds.n,
    predictions,
    agreement,
    maxLogitDiff: Math.max(...g.results.map((r) => r.result.maxLogitDiff)),
    accuracy,
    seconds: g.seconds,
    computeSeconds: g.results.reduce((a, r) => a + r.computeSeconds, 0),
    attempts: g.attempts,
    workers: [...new Set(g.results.map((r) => r.worker))],
  };
}
