/**
 * The `--queue URL` variants of `privml proteus optimize`, `privml fhe run` and `privml mpc infer`: each
 * splits the work into jobs for `privml worker`s and prints what the local command prints. Kept out of
 * the pillar CLI files so their hooks stay one line each.
 */
import { OptionError } from '../errors.js';
import { parseQueueUrl } from '../queue/connection.js';
import { Progress, printJson } from './common.js';

/** Progress bar + retry notes on stderr while a batch runs. */
function progress(label: string, json: boolean | undefined) {
  const bar = new Progress(!json);
  let started = false;
  return {
    onProgress: (d: number, t: number) => {
      if (!started) bar.start(label, t);
      started = true;
      bar.update(d);
    },
    log: (line: string) => process.stderr.write(`${line}\n`),
    stop: () => bar.stop(),
  };
}

/** `privml proteus optimize BUNDLE -o OUT --queue URL`. */
export async function proteusOptimizeQueued(dir: string, o: { output: string; level: string; json?: boolean; queue: string }): Promise<void> {
  const target = parseQueueUrl(o.queue);
  const { optimizeOverQueue } = await import('../queue/proteus.js');
  const p = progress('optimizing', o.json);
  try {
    const r = await optimizeOverQueue(target, dir, o.output, { level: o.level as 'extended', onProgress: p.onProgress, log: p.log });
    p.stop();
    const summary = { bundle: dir, output: o.output, level: o.level, members: r.members, seconds: Math.round(r.seconds * 100) / 100, queue: target.display, workers: r.workers.length, computeSeconds: Math.round(r.computeSeconds * 100) / 100, optimizeSeconds: Math.round(r.optimizeSeconds * 100) / 100, retried: r.attempts.filter((a) => a > 1).length };
    if (o.json) return printJson(summary);
    process.stdout.write(`optimized ${r.members} members (level ${o.level}) into ${o.output} in ${summary.seconds} s (${summary.workers} workers via ${target.display})\n`);
  } finally {
    p.stop();
  }
}

/** `privml mpc infer MODEL --queue URL`: a data owner's offline batch, jobs of `--per-job` images. */
export async function mpcInferQueued(ref: string, o: { queue: string; perJob?: number; dataset?: string; dataDir?: string; input?: string; limit?: number; batch: number; weights: string; reluProtocol: string; fracBits: number; architecture?: string; json?: boolean }): Promise<void> {
  if (!o.dataset) throw new OptionError('give --dataset (with --limit): over --queue every worker reads the images from its own copy');
  if (o.input || o.architecture) throw new OptionError('--queue takes inputs from a data set every worker holds (--dataset, --limit), not --input or --architecture');
  if (o.weights !== 'public' && o.weights !== 'secret') throw new OptionError(`--weights must be public or secret, got '${o.weights}'`);
  if (o.reluProtocol !== 'signonly' && o.reluProtocol !== 'crypten') throw new OptionError(`--relu-protocol over --queue: signonly or crypten, got '${o.reluProtocol}'`);
  const target = parseQueueUrl(o.queue);
  const { inferOverQueue } = await import('../queue/mpc.js');
  const p = progress('mpc jobs', o.json);
  try {
    const r = await inferOverQueue(target, ref, { dataset: o.dataset, dataDir: o.dataDir, limit: o.limit, perJob: o.perJob, batch: o.batch, weights: o.weights, reluProtocol: o.reluProtocol, fracBits: o.fracBits, onProgress: p.onProgress, log: p.log });
    p.stop();
    const summary = { model: ref, queue: target.display, ...r, retried: r.attempts.filter((a) => a > 1).length, attempts: undefined };
    if (o.json) return printJson(summary);
    process.stdout.write(`predictions: ${r.predictions.slice(0, 40).join(' ')}${r.predictions.length > 40 ? ' …' : ''}\n`);
    process.stdout.write(`accuracy ${(100 * r.accuracy!).toFixed(1)}%; agreement with plaintext (onnxruntime) ${(100 * r.agreement).toFixed(1)}% (${Math.round(r.agreement * r.count)}/${r.count}), max |logit difference| ${r.maxLogitDiff.toExponential(2)}; ${r.seconds.toFixed(1)} s over ${r.workers.length} workers via ${target.display}\n`);
  } finally {
    p.stop();
  }
}
