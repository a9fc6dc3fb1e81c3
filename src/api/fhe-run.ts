/**
 * `fhe.run`: client and server in one process over test images — keys, encryption, encrypted inference
 * (client-aided refresh allowed wherever predicted faster), decryption — checked image by image against
 * onnxruntime on the same PAF graph and against the float64 program, with per-step timing and memory.
 */
import { DataError, ModelError, OptionError } from '../errors.js';
import type { StepReport } from '../fhe/executor.js';
import type { Dataset } from '../nn/data/index.js';
import type { Model } from '../onnx/ir.js';
import { type PlanOptions, plannerOptions, program, wrap } from './fhe-common.js';

/** Options of {@link run}. */
export interface RunOptions extends PlanOptions {
  /** Names the model in messages and the summary (default: the path, or the graph's name). */
  source?: string;
  /** Index of the first image of `data` to run (default 0). */
  start?: number;
  /** Number of images from `start` (default: all the rest). */
  limit?: number;
  /** WASM memory in MB for model plaintexts reused across images (default 1000; 0 encodes per use). */
  cacheMb?: number;
  /** Per-step reports for every image (default: the first image only). */
  steps?: boolean;
  /**
   * The client encrypts the first linear layer's input rotations next to the image (default true): the
   * server then makes no rotation at the top level; the client makes that many more encryptions.
   */
  clientRotations?: boolean;
  /**
   * A file of the server's encoded model plaintexts (src/fhe/plainfile.ts): loaded before the first
   * image when it was made for this model, parameters and plan, (re)written after the run otherwise.
   * A function names the file from the plan's digest (the CLI's default: beside the model file, see
   * `plainFileBeside`); a file it names that cannot be written is reported, not an error.
   */
  plainCacheFile?: string | ((digest: string) => string) | false;
  /**
   * The model's file: unless `plainCacheFile` is given (false: none), the encoded model is kept beside
   * it (`<model>.<digest>.fheplain`), made by the first run of a plan and loaded by every later one.
   */
  modelFile?: string;
  /** Called with (0, total) before the first image, then after each image with its result. */
  onProgress?: (done: number, total: number, result?: ImageResult) => void;
}

/** One image of {@link run}: classes of the three evaluations, errors, time, memory. */
export interface ImageResult {
  index: number;
  label: number;
  /** Class of the float64 program (no encryption), of onnxruntime on the PAF graph, and under CKKS. */
  plainClass: number;
  ortClass: number;
  fheClass: number;
  /** Largest error of the decrypted logits relative to the largest reference logit (float64, onnxruntime). */
  maxRelErr: number;
  maxRelErrVsOrt: number;
  seconds: number;
  computeSeconds: number;
  cpuSeconds: number;
  refreshes: number;
  rssMB: number;
  wasmHeapMB: number;
  steps?: (StepReport & { predictedSeconds: number })[];
}

const argmax = (v: ArrayLike<number>) => {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[b]!) b = i;
  return b;
};

const mem = () => {
  const u = process.memoryUsage();
  // WebAssembly memory is counted in `external` (not in `arrayBuffers`); it grows and never shrinks.
  return { rssMB: Math.round(u.rss / 1e6), wasmHeapMB: Math.round((u.external - u.arrayBuffers) / 1e6) };
};

/** What {@link run} returns (what `privml fhe run --json` prints). */
export type RunSummary = Awaited<ReturnType<typeof run>>;

/** Encrypt, infer and decrypt images of `data` with `model` in this process; see {@link RunOptions}. */
export async function run(model: Model | string, data: Dataset, opts: RunOptions = {}) {
  const cacheMb = opts.cacheMb ?? 1000;
  const start = opts.start ?? 0;
  if (!(cacheMb >= 0)) throw new OptionError(`--cache-mb must be a number ≥ 0, got ${cacheMb}`);
  if (!Number.isInteger(start) || start < 0) throw new OptionError(`--start must be an integer ≥ 0, got ${start}`);
  if (start >= data.n) throw new OptionError(`--start ${start} out of range (${data.n} images)`);
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 1))
    throw new OptionError(`--limit must be a positive integer, got ${opts.limit}`);
  // The client is in this process, so client-aided refresh is allowed wherever it is predicted faster
  // (refresh: false forbids it). With the plaintext cache on, every image after the first skips the
  // model encodes: plans are ranked by that time.
  // The client also encrypts the first layer's input rotations (unless clientRotations is false).
  const po = { ...plannerOptions({ ...opts, refresh: opts.refresh ?? true }), cachedPlaintexts: cacheMb > 0, clientRotations: opts.clientRotations ?? true };
  const { prog, source, model: m } = await program(model, opts.source);
  const { planFhe } = await import('../fhe/planner.js');
  const { simulateProgram } = await import('../fhe/compile.js');
  const ctxMod = await import('../fhe/context.js');
  const { predictCost } = await import('../fhe/cost.js');
  const { decryptOutput, encryptInput, encryptInputRotations, inferEncrypted, localRefresh, outputMeta, precisionProbe } = await import('../fhe/executor.js');
  const { PlainCache } = await import('../fhe/ops.js');
  const { floatTensor } = await import('../onnx/ir.js');
  const { runOrt } = await import('../onnx/ort.js');
  let plan;
  try {
    plan = planFhe(prog, po);
  } catch (e) {
    return wrap(e, (msg) => new ModelError(msg));
  }
  const sz = data.shape[0] * data.shape[1] * data.shape[2];
  const n = Math.min(data.n - start, opts.limit ?? data.n);
  const images = data.images.subarray(start * sz, (start + n) * sz);
  if (data.shape.join(',') !== prog.inputDims.join(',')) throw new DataError(`${source}: expects images [${prog.inputDims}], ${data.name} has [${data.shape}]`);
  // Plaintext PAF model on onnxruntime (the same ONNX graph): the reference for agreement.
  const ortOut = await runOrt(m, { [prog.inputName]: floatTensor([n, ...data.shape], images) });
  const ortLogits = ortOut[prog.outputName]!.data as Float32Array;
  const outSize = ortLogits.length / n;
  const { FheContext, WASM_MEMORY_BYTES } = ctxMod;
  const ctx = await FheContext.create(plan.params);
  // Model plaintexts are encoded once and reused for every image, in the WASM memory that all
  // Galois keys (+ SEAL's pools) leave free, at most cacheMb; Galois keys keep priority.
  const keyBytes = ctxMod.galoisKeyBytes(plan.params);
  const cacheBytes = Math.max(0, Math.min(cacheMb * 1e6, WASM_MEMORY_BYTES - (plan.lowered.rotationSteps.length + 10) * keyBytes));
  const cache = new PlainCache(cacheBytes);
  const cacheStats = { mb: 0, hits: 0, misses: 0 };
  const cached = ctxMod.galoisCacheSize(plan.params, WASM_MEMORY_BYTES - cacheBytes);
  // Model plaintexts from an earlier server run (key-independent), before any client key exists.
  const pf = opts.plainCacheFile || (opts.modelFile && opts.plainCacheFile === undefined) ? await import('../fhe/plainfile.js') : undefined;
  const digest = pf ? pf.programDigest(ctx, plan.lowered) : '';
  const named = opts.plainCacheFile ?? (pf && opts.modelFile ? (d: string) => pf.plainFileBeside(opts.modelFile!, d) : undefined);
  const pfile = typeof named === 'function' ? named(digest) : named || undefined;
  const tl = performance.now();
  let loadedFile;
  try {
    loadedFile = pf && pfile && cacheBytes > 0 ? pf.loadPlainCache(ctx, cache, digest, pfile) : undefined;
  } catch (e) {
    cache.dispose();
    ctx.dispose();
    throw new DataError(`${(e as Error).message ?? e} (delete it to have it made again)`);
  }
  const plainFile: { file: string; loaded: number; loadSeconds: number; savedBytes: number; saveError?: string } | undefined = pfile
    ? {
        file: pfile,
        loaded: loadedFile && 'loaded' in loadedFile ? loadedFile.loaded : 0,
        loadSeconds: (performance.now() - tl) / 1000,
        savedBytes: 0,
      }
    : undefined;
  // A new client from here: key generation (Galois keys lazily, inside the first image), then the first image.
  const tk = performance.now();
  const keys = ctxMod.generateKeys(ctx, plan.lowered.rotationSteps, cached);
  const keygenSeconds = (performance.now() - tk) / 1000;
  let firstImageWall = 0;
  const { secretKey, ...server } = keys;
  const mem0 = mem();
  const predicted = predictCost(plan.lowered, plan.params.polyModulusDegree, plan.levels, plan.network);
  // After the first image the model plaintexts come from the cache (when it holds them).
  const predictedCached = predictCost(plan.lowered, plan.params.polyModulusDegree, plan.levels, plan.network, { cachedPlaintexts: true });
  const results: ImageResult[] = [];
  try {
    opts.onProgress?.(0, n);
    for (let i = 0; i < n; i++) {
      const x = images.subarray(i * sz, (i + 1) * sz);
      const t0 = performance.now();
      const { ct } = encryptInput(ctx, keys.publicKey, plan.lowered.input, x);
      const rots = encryptInputRotations(ctx, keys.publicKey, plan.lowered, x);
      let res;
      try {
        res = await inferEncrypted(ctx, server, plan.lowered, ct, {
          onStep: precisionProbe(ctx, secretKey, prog, plan.lowered, x),
          refresh: localRefresh(ctx, secretKey, keys.publicKey),
          cache,
          inputRotations: rots,
        });
      } finally {
        ct.delete();
        for (const r of rots) r.delete();
      }
      let y: Float64Array;
      try {
        y = decryptOutput(ctx, secretKey, res.ct, outputMeta(plan.lowered, source));
      } finally {
        res.ct.delete();
      }
      if (i === 0) firstImageWall = (performance.now() - t0) / 1000;
      const ref = simulateProgram(prog, x).at(-1)!;
      const ortY = ortLogits.subarray(i * outSize, (i + 1) * outSize);
      const relErr = (want: ArrayLike<number>) => {
        const scale = Math.max(...Array.from(want, Math.abs));
        let rel = 0;
        for (let j = 0; j < y.length; j++) rel = Math.max(rel, Math.abs(y[j]! - want[j]!) / scale);
        return rel;
      };
      const costs = (i > 0 && cacheBytes > 0 ? predictedCached : predicted).steps;
      results.push({
        index: start + i,
        label: data.labels[start + i]!,
        plainClass: argmax(ref),
        ortClass: argmax(ortY),
        fheClass: argmax(y),
        maxRelErr: relErr(ref),
        maxRelErrVsOrt: relErr(ortY),
        seconds: res.seconds,
        computeSeconds: res.computeSeconds,
        cpuSeconds: res.cpuSeconds,
        refreshes: res.refreshes,
        ...mem(),
        steps: i === 0 || opts.steps ? res.steps.map((st, k) => ({ ...st, predictedSeconds: +costs[k]!.toFixed(3) })) : undefined,
      });
      opts.onProgress?.(i + 1, n, results.at(-1));
    }
    // Save the encoded model for the next server run unless it came from that file already.
    if (pf && plainFile && cache.misses > 0) {
      try {
        plainFile.savedBytes = pf.savePlainCache(ctx, cache, digest, plainFile.file);
      } catch (e) {
        // A named file must be written; the default one beside the model is a cache (read-only directory: skip it).
        if (typeof opts.plainCacheFile === 'string') throw e;
        plainFile.saveError = String((e as Error).message ?? e).slice(0, 200);
      }
    }
  } finally {
    cacheStats.mb = Math.round(cache.bytes / 1e6);
    cacheStats.hits = cache.hits;
    cacheStats.misses = cache.misses;
    cache.dispose();
    keys.dispose();
    ctx.dispose();
  }
  const share = (ok: (r: ImageResult) => boolean) => results.filter(ok).length / n;
  const mean = (f: (r: ImageResult) => number, rs = results) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
  // Memory after the second image (keys generated, pools warm) against the last one.
  const warm = results[Math.min(1, n - 1)]!;
  const last = results[n - 1]!;
  return {
    model: source,
    form: prog.form,
    params: plan.params,
    depth: plan.depth,
    levelsPerChain: plan.levels,
    refreshRoundTripsPerImage: plan.refreshes,
    refreshRoundTripsTotal: results.reduce((a, r) => a + r.refreshes, 0),
    galoisKeys: plan.lowered.rotationSteps.length,
    galoisKeysCached: cached,
    images: n,
    agreementWithPlaintextPaf: share((r) => r.ortClass === r.fheClass),
    agreementWithFloat64Reference: share((r) => r.plainClass === r.fheClass),
    accuracy: share((r) => r.label === r.fheClass),
    plaintextPafAccuracy: share((r) => r.label === r.ortClass),
    maxRelErr: Math.max(...results.map((r) => r.maxRelErrVsOrt)),
    maxRelErrVsFloat64: Math.max(...results.map((r) => r.maxRelErr)),
    meanSecondsPerImage: mean((r) => r.seconds),
    meanComputeSecondsPerImage: mean((r) => r.computeSeconds),
    cpuSecondsFirstImage: results[0]!.cpuSeconds,
    meanCpuSecondsAfterFirst: n > 1 ? mean((r) => r.cpuSeconds, results.slice(1)) : undefined,
    plaintextCache: { ...cacheStats, ...(plainFile ? { fromFile: plainFile } : {}) },
    // Key generation to the first decrypted answer (wall): client keys, then encrypt, infer (lazy Galois keys), decrypt.
    newClient: { keygenSeconds, firstImageSeconds: firstImageWall, totalSeconds: keygenSeconds + firstImageWall },
    predictedSecondsPerImage: predicted.totalSeconds,
    predictedSecondsPerImageCached: predictedCached.totalSeconds,
    choice: plan.choice,
    memory: {
      beforeFirstImage: mem0,
      afterImage2: { rssMB: warm.rssMB, wasmHeapMB: warm.wasmHeapMB },
      afterLastImage: { rssMB: last.rssMB, wasmHeapMB: last.wasmHeapMB },
      wasmHeapGrowthAfterImage2MB: last.wasmHeapMB - warm.wasmHeapMB,
      rssGrowthAfterImage2MB: last.rssMB - warm.rssMB,
    },
    results,
  };
}
