/**
 * `privml fhe run --batch B`: encrypt, infer and decrypt test images B per ciphertext (slot batching,
 * src/fhe/batch.ts) in one process — the client (keys, encryption, refresh, decryption) and the
 * server (inference with the public keys only) side by side, as the single-image `fhe run` does.
 * Every image is compared with the plaintext PAF model on onnxruntime and with the float64 reference
 * of the same FHE program; the time of a batch is reported per batch and per image (amortized).
 */
import { DataError, firstLine, ModelError, OptionError } from '../errors.js';
import type { StepReport } from '../fhe/executor.js';
import type { PlanOptions } from '../fhe/planner.js';
import { floatTensor, type Model } from '../onnx/ir.js';
import type { ImageResult } from './fhe-run.js';

/** Options of {@link runBatched}. */
export interface BatchRunOptions extends PlanOptions {
  /** Images per ciphertext (a power of two ≥ 2). */
  batch: number;
  /** WASM memory for model plaintexts reused across batches (0: encode per use). */
  cacheMb?: number;
  /** Per-step reports of every batch (default: the first batch only). */
  allSteps?: boolean;
  /** Index of the first image (reported in the results). */
  start?: number;
  /** Called after every batch (progress). */
  onBatch?: (done: number, total: number, line: Record<string, unknown>) => void;
}

/** One image's outcome: the classes and errors of a single-image run's result (timings are per batch). */
export type BatchImageResult = Pick<ImageResult, 'index' | 'label' | 'plainClass' | 'ortClass' | 'fheClass' | 'maxRelErr' | 'maxRelErrVsOrt'>;

/** One batch's timing. */
export interface BatchReport {
  first: number;
  images: number;
  seconds: number;
  computeSeconds: number;
  cpuSeconds: number;
  refreshes: number;
  rssMB: number;
  wasmHeapMB: number;
  steps?: StepReport[];
}

const argmax = (v: ArrayLike<number>) => {
  let k = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[k]!) k = i;
  return k;
};

/**
 * Run `model` (a PAF model) on `n` images of `shape` (NCHW float32, `images`) with `labels`, B per
 * ciphertext. `ortLogits`: the plaintext PAF model's outputs for the same images (the reference).
 */
export async function runBatched(
  model: Model,
  source: string,
  data: { images: Float32Array; labels: ArrayLike<number>; n: number; shape: number[] },
  ortLogits: Float32Array,
  opts: BatchRunOptions,
): Promise<Record<string, unknown>> {
  const { compileModel, simulateProgram } = await import('../fhe/compile.js');
  const { planFhe } = await import('../fhe/planner.js');
  const ctxMod = await import('../fhe/context.js');
  const exec = await import('../fhe/executor.js');
  const { PlainCache } = await import('../fhe/ops.js');
  const { predictCost } = await import('../fhe/cost.js');
  let prog, plan;
  try {
    prog = compileModel(model, source);
    plan = planFhe(prog, { ...opts, refresh: opts.refresh ?? true, cachedPlaintexts: (opts.cacheMb ?? 1000) > 0 });
  } catch (e) {
    throw new ModelError(firstLine(e));
  }
  const B = plan.lowered.batch ?? 1;
  const sz = data.shape.reduce((a, b) => a * b, 1);
  const outSize = ortLogits.length / data.n;
  const ctx = await ctxMod.FheContext.create(plan.params);
  // WASM memory split as in the single-image run: Galois keys (+ SEAL's pools) first, plaintexts in the rest.
  const keyBytes = ctxMod.galoisKeyBytes(plan.params);
  const cacheBytes = Math.max(0, Math.min((opts.cacheMb ?? 1000) * 1e6, ctxMod.WASM_MEMORY_BYTES - (plan.lowered.rotationSteps.length + 10) * keyBytes));
  const cache = new PlainCache(cacheBytes);
  const keys = ctxMod.generateKeys(ctx, plan.lowered.rotationSteps, ctxMod.galoisCacheSize(plan.params, ctxMod.WASM_MEMORY_BYTES - cacheBytes));
  const { secretKey, ...server } = keys;
  const mem = () => {
    const u = process.memoryUsage();
    return { rssMB: Math.round(u.rss / 1e6), wasmHeapMB: Math.round((u.external - u.arrayBuffers) / 1e6) };
  };
  const results: BatchImageResult[] = [];
  const batches: BatchReport[] = [];
  const total = Math.ceil(data.n / B);
  const cacheStats = { mb: 0, hits: 0, misses: 0 };
  try {
    for (let first = 0; first < data.n; first += B) {
      const xs = Array.from({ length: Math.min(B, data.n - first) }, (_, b) => data.images.subarray((first + b) * sz, (first + b + 1) * sz));
      const { ct } = exec.encryptBatch(ctx, keys.publicKey, plan.lowered, xs);
      let res;
      try {
        res = await exec.inferEncrypted(ctx, server, plan.lowered, ct, {
          onStep: batches.length === 0 || opts.allSteps ? exec.precisionProbe(ctx, secretKey, prog, plan.lowered, xs) : undefined,
          refresh: exec.localRefresh(ctx, secretKey, keys.publicKey),
          cache,
        });
      } finally {
        ct.delete();
      }
      let ys: Float64Array[];
      try {
        ys = exec.decryptBatch(ctx, secretKey, res.ct, exec.outputMeta(plan.lowered, source, xs.length));
      } finally {
        res.ct.delete();
      }
      ys.forEach((y, b) => {
        const i = first + b;
        const ref = simulateProgram(prog, xs[b]!).at(-1)!;
        const ortY = ortLogits.subarray(i * outSize, (i + 1) * outSize);
        const relErr = (want: ArrayLike<number>) => {
          const scale = Math.max(...Array.from(want, Math.abs));
          let rel = 0;
          for (let j = 0; j < y.length; j++) rel = Math.max(rel, Math.abs(y[j]! - want[j]!) / scale);
          return rel;
        };
        results.push({
          index: (opts.start ?? 0) + i,
          label: data.labels[i]!,
          plainClass: argmax(ref),
          ortClass: argmax(ortY),
          fheClass: argmax(y),
          maxRelErr: relErr(ref),
          maxRelErrVsOrt: relErr(ortY),
        });
      });
      const rep: BatchReport = {
        first: (opts.start ?? 0) + first,
        images: xs.length,
        seconds: res.seconds,
        computeSeconds: res.computeSeconds,
        cpuSeconds: res.cpuSeconds,
        refreshes: res.refreshes,
        ...mem(),
        steps: batches.length === 0 || opts.allSteps ? res.steps : undefined,
      };
      batches.push(rep);
      const { steps: _s, ...line } = rep;
      opts.onBatch?.(batches.length, total, line);
    }
  } finally {
    Object.assign(cacheStats, { mb: Math.round(cache.bytes / 1e6), hits: cache.hits, misses: cache.misses });
    cache.dispose();
    keys.dispose();
    ctx.dispose();
  }
  const n = results.length;
  const frac = (f: (r: BatchImageResult) => boolean) => results.filter(f).length / n;
  const warm = batches.slice(1);
  const sum = (xs: BatchReport[], f: (b: BatchReport) => number) => xs.reduce((a, b) => a + f(b), 0);
  const warmImages = sum(warm, (b) => b.images);
  const predicted = predictCost(plan.lowered, plan.params.polyModulusDegree, plan.levels, plan.network, { cachedPlaintexts: true });
  return {
    model: source,
    form: prog.form,
    params: plan.params,
    imagesPerCiphertext: B,
    depth: plan.depth,
    levelsPerChain: plan.levels,
    refreshRoundTripsPerBatch: plan.refreshes,
    galoisKeys: plan.lowered.rotationSteps.length,
    images: n,
    batches: batches.length,
    agreementWithPlaintextPaf: frac((r) => r.ortClass === r.fheClass),
    agreementWithFloat64Reference: frac((r) => r.plainClass === r.fheClass),
    accuracy: frac((r) => r.label === r.fheClass),
    plaintextPafAccuracy: frac((r) => r.label === r.ortClass),
    maxRelErr: Math.max(...results.map((r) => r.maxRelErrVsOrt)),
    maxRelErrVsFloat64: Math.max(...results.map((r) => r.maxRelErr)),
    firstBatch: { seconds: batches[0]!.seconds, cpuSeconds: batches[0]!.cpuSeconds, computeSeconds: batches[0]!.computeSeconds },
    // After the first batch (keys generated, model plaintexts cached): what a server pays per image.
    amortizedSecondsPerImage: warmImages ? sum(warm, (b) => b.seconds) / warmImages : undefined,
    amortizedCpuSecondsPerImage: warmImages ? sum(warm, (b) => b.cpuSeconds) / warmImages : undefined,
    meanSecondsPerBatchAfterFirst: warm.length ? sum(warm, (b) => b.seconds) / warm.length : undefined,
    meanCpuSecondsPerBatchAfterFirst: warm.length ? sum(warm, (b) => b.cpuSeconds) / warm.length : undefined,
    predictedSecondsPerBatchCached: predicted.totalSeconds,
    predictedSecondsPerImageCached: predicted.totalSeconds / B,
    plaintextCache: cacheStats,
    choice: plan.choice,
    peakRssMB: Math.max(...batches.map((b) => b.rssMB)),
    results,
    batchReports: batches,
  };
}

/**
 * `privml fhe run --batch B`: the test images from `start` of `data` classified B per ciphertext, with
 * the plaintext PAF model on onnxruntime (the same ONNX graph) as the agreement reference.
 */
export async function runBatch(
  model: Model,
  source: string,
  data: { images: Float32Array; labels: ArrayLike<number>; n: number; shape: number[] },
  opts: BatchRunOptions & { start?: number },
): Promise<Record<string, unknown>> {
  const start = opts.start ?? 0;
  if (start >= data.n) throw new OptionError(`--start ${start} out of range (${data.n} images)`);
  const { compileModel } = await import('../fhe/compile.js');
  const { runOrt } = await import('../onnx/ort.js');
  let prog;
  try {
    prog = compileModel(model, source);
  } catch (e) {
    throw new ModelError(firstLine(e));
  }
  if (data.shape.join(',') !== prog.inputDims.join(',')) throw new DataError(`${source}: expects images [${prog.inputDims}], the data set has [${data.shape}]`);
  const sz = data.shape.reduce((a, b) => a * b, 1);
  const ds = { ...data, n: data.n - start, images: data.images.subarray(start * sz, data.n * sz), labels: Array.from(data.labels).slice(start, data.n) };
  const ort = await runOrt(model, { [prog.inputName]: floatTensor([ds.n, ...ds.shape], ds.images) });
  return runBatched(model, source, ds, ort[prog.outputName]!.data as Float32Array, { ...opts, start });
}
