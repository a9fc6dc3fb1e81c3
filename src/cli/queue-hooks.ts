/**
 * The `--queue URL` variants of `privml proteus optimize`, `privml fhe run` and `privml mpc infer`: each
 * splits the work into jobs for `privml worker`s and prints what the local command prints. Kept out of
 * the pillar CLI files so their hooks stay one line each.
 */

import type { Model } from '../api/core.js';
import type { ClientPlanOptions } from '../api/fhe.js';
import { OptionError } from '../errors.js';
import { parseQueueUrl } from '../queue/connection.js';
import { CliError, loadDataset, Progress, printJson } from './common.js';

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
export async function proteusOptimizeQueued(
  dir: string,
  o: { output: string; level: string; json?: boolean; queue: string; sharedDir?: string; perJob?: number; memberCheck?: string },
): Promise<void> {
  const target = parseQueueUrl(o.queue);
  const { optimizeOverQueue } = await import('../queue/proteus.js');
  const p = progress('optimizing', o.json);
  try {
    const r = await optimizeOverQueue(target, dir, o.output, {
      level: o.level as 'extended',
      sharedDir: o.sharedDir,
      perJob: o.perJob,
      memberCheck: o.memberCheck as 'mac' | undefined,
      onProgress: p.onProgress,
      log: p.log,
    });
    p.stop();
    const summary = {
      bundle: dir,
      output: o.output,
      level: o.level,
      members: r.members,
      seconds: Math.round(r.seconds * 100) / 100,
      queue: target.display,
      mode: r.mode,
      workers: r.workers.length,
      jobs: r.attempts.length,
      computeSeconds: Math.round(r.computeSeconds * 100) / 100,
      optimizeSeconds: Math.round(r.optimizeSeconds * 100) / 100,
      retried: r.attempts.filter((a) => a > 1).length,
    };
    if (o.json) return printJson(summary);
    process.stdout.write(
      `optimized ${r.members} members (level ${o.level}) into ${o.output} in ${summary.seconds} s ` +
        `(${summary.workers} workers via ${target.display}, members ${r.mode === 'shared' ? `by path under ${o.sharedDir}` : 'through Redis'})\n`,
    );
  } finally {
    p.stop();
  }
}

/** `privml mpc infer MODEL --queue URL`: a data owner's offline batch, jobs of `--per-job` images. */
export async function mpcInferQueued(
  ref: string,
  o: {
    queue: string;
    perJob?: number;
    dataset?: string;
    dataDir?: string;
    input?: string;
    limit?: number;
    batch: number;
    weights: string;
    reluProtocol: string;
    fracBits: number;
    architecture?: string;
    json?: boolean;
  },
): Promise<void> {
  if (!o.dataset) throw new OptionError('give --dataset (with --limit): over --queue every worker reads the images from its own copy');
  if (o.input || o.architecture)
    throw new OptionError('--queue takes inputs from a data set every worker holds (--dataset, --limit), not --input or --architecture');
  if (o.weights !== 'public' && o.weights !== 'secret') throw new OptionError(`--weights must be public or secret, got '${o.weights}'`);
  if (o.reluProtocol !== 'signonly' && o.reluProtocol !== 'crypten')
    throw new OptionError(`--relu-protocol over --queue: signonly or crypten, got '${o.reluProtocol}'`);
  const target = parseQueueUrl(o.queue);
  const { inferOverQueue } = await import('../queue/mpc.js');
  const p = progress('mpc jobs', o.json);
  try {
    const r = await inferOverQueue(target, ref, {
      dataset: o.dataset,
      dataDir: o.dataDir,
      limit: o.limit,
      perJob: o.perJob,
      batch: o.batch,
      weights: o.weights,
      reluProtocol: o.reluProtocol,
      fracBits: o.fracBits,
      onProgress: p.onProgress,
      log: p.log,
    });
    p.stop();
    const summary = { model: ref, queue: target.display, ...r, retried: r.attempts.filter((a) => a > 1).length, attempts: undefined };
    if (o.json) return printJson(summary);
    process.stdout.write(`predictions: ${r.predictions.slice(0, 40).join(' ')}${r.predictions.length > 40 ? ' …' : ''}\n`);
    process.stdout.write(
      `accuracy ${(100 * r.accuracy!).toFixed(1)}%; agreement with plaintext (onnxruntime) ` +
        `${(100 * r.agreement).toFixed(1)}% (${Math.round(r.agreement * r.count)}/${r.count}), max |logit ` +
        `difference| ${r.maxLogitDiff.toExponential(2)}; ${r.seconds.toFixed(1)} s over ${r.workers.length} ` +
        `workers via ${target.display}\n`,
    );
  } finally {
    p.stop();
  }
}

/** `privml fhe run MODEL --queue URL`: this process is the client (keys, encryption, decryption); workers run the model. */
export async function fheRunQueued(
  model: Model,
  source: string,
  plan: ClientPlanOptions,
  o: { queue: string; perJob?: number; dataset: string; limit: number; start: number; json?: boolean },
): Promise<void> {
  const target = parseQueueUrl(o.queue);
  const { openClient } = await import('../api/fhe.js');
  const { runOverQueue } = await import('../queue/fhe.js');
  const { encodeModel, InferenceSession, tensor } = await import('../api/core.js');
  const all = loadDataset({ dataset: o.dataset, limit: o.start + o.limit }, 'test');
  if (o.start >= all.n) throw new CliError(`--start ${o.start} out of range (${all.n} images)`, 2);
  const sz = all.shape[0] * all.shape[1] * all.shape[2];
  const n = all.n - o.start;
  const images = all.images.subarray(o.start * sz, all.n * sz);
  const labels = all.labels.subarray(o.start, all.n);
  const client = await openClient(model, source, { ...plan, remote: true });
  const p = progress('fhe jobs', o.json);
  try {
    if (all.shape.join(',') !== client.inputDims.join(','))
      throw new CliError(`${source}: expects images [${client.inputDims}], ${o.dataset} has [${all.shape}]`);
    // The same references as the local run: onnxruntime on the PAF ONNX, and the float64 program.
    const inputName = model.graph.inputs[0]!.name;
    const ort = await InferenceSession.create(model);
    const ortOut = await ort.run({ [inputName]: tensor([n, ...all.shape], images) }).finally(() => ort.release());
    const ortLogits = Object.values(ortOut)[0]!.data as Float32Array;
    const outSize = ortLogits.length / n;
    const r = await runOverQueue(target, client, await encodeModel(model), images, n, { perJob: o.perJob, labels, onProgress: p.onProgress, log: p.log });
    p.stop();
    const results = r.logits.map((y, i) => {
      const x = images.subarray(i * sz, (i + 1) * sz);
      const ref = client.simulate(x);
      const ortY = ortLogits.subarray(i * outSize, (i + 1) * outSize);
      const relErr = (want: ArrayLike<number>) => {
        const scale = Math.max(...Array.from(want, Math.abs));
        let rel = 0;
        for (let j = 0; j < y.length; j++) rel = Math.max(rel, Math.abs(y[j]! - want[j]!) / scale);
        return rel;
      };
      return {
        index: o.start + i,
        label: labels[i]!,
        plainClass: argmax(ref),
        ortClass: argmax(ortY),
        fheClass: argmax(y),
        maxRelErr: relErr(ref),
        maxRelErrVsOrt: relErr(ortY),
        seconds: r.serverSeconds[i]!,
        computeSeconds: r.serverComputeSeconds[i]!,
      };
    });
    const frac = (f: (x: (typeof results)[number]) => boolean) => results.filter(f).length / n;
    const inferSeconds = results.reduce((a, x) => a + x.seconds, 0);
    const summary = {
      model: source,
      form: client.form,
      params: client.params,
      depth: client.depth,
      levelsPerChain: client.levelsPerChain,
      refreshRoundTripsPerImage: 0,
      galoisKeys: client.galoisKeys,
      images: n,
      agreementWithPlaintextPaf: frac((x) => x.ortClass === x.fheClass),
      agreementWithFloat64Reference: frac((x) => x.plainClass === x.fheClass),
      accuracy: frac((x) => x.label === x.fheClass),
      plaintextPafAccuracy: frac((x) => x.label === x.ortClass),
      maxRelErr: Math.max(...results.map((x) => x.maxRelErrVsOrt)),
      maxRelErrVsFloat64: Math.max(...results.map((x) => x.maxRelErr)),
      meanSecondsPerImage: inferSeconds / n,
      meanComputeSecondsPerImage: results.reduce((a, x) => a + x.computeSeconds, 0) / n,
      // Queue accounting: handler seconds beyond the inferences (blob transfer, key set load once per worker).
      queue: {
        url: target.display,
        workers: r.workers.length,
        jobs: r.attempts.length,
        retried: r.attempts.filter((a) => a > 1).length,
        wallSeconds: r.seconds,
        uploadSeconds: r.uploadSeconds,
        jobSeconds: r.computeSeconds,
        inferSeconds,
        handlerOverhead: r.computeSeconds / inferSeconds - 1,
        // The per-worker one-off (model and key set fetched and loaded) apart from what every job pays (ciphertext blobs).
        setupSeconds: r.setupSeconds,
        perJobOverhead: (r.computeSeconds - r.setupSeconds) / inferSeconds - 1,
      },
      results,
    };
    if (o.json) return printJson(summary);
    process.stdout.write(
      `${source}: N=${client.params.polyModulusDegree}, depth ${client.depth}; ${n} images over ` +
        `${r.workers.length} workers via ${target.display}, agreement with the plaintext PAF model (onnxruntime) ` +
        `${(100 * summary.agreementWithPlaintextPaf).toFixed(1)}%, accuracy ` +
        `${(100 * summary.accuracy).toFixed(1)}% (plaintext ` +
        `${(100 * summary.plaintextPafAccuracy).toFixed(1)}%), max rel err vs onnxruntime ` +
        `${summary.maxRelErr.toExponential(2)}, ${summary.meanSecondsPerImage.toFixed(2)} s/image on a worker, ` +
        `${r.seconds.toFixed(1)} s wall\n`,
    );
    process.stdout.write(
      `predictions: ${results
        .slice(0, 40)
        .map((x) => x.fheClass)
        .join(' ')}${n > 40 ? ' …' : ''}\n`,
    );
  } finally {
    p.stop();
    client.dispose();
  }
}

const argmax = (v: ArrayLike<number>) => {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[b]!) b = i;
  return b;
};
