/**
 * CKKS encrypted inference of PAF models (node-seal), split by role as in `privml fhe`: the client runs
 * `keygen`, `encrypt` and `decrypt` and keeps the secret key; the server runs `infer` with only the
 * public keys (it refuses a directory holding a secret key). Keys live in directories, ciphertexts in files.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, KeyError, ModelError, OptionError, ProtocolError } from '../errors.js';
import type { FheParams } from '../fhe/context.js';
import type { OutputMeta } from '../fhe/executor.js';
import type { Dataset } from '../nn/data/index.js';
import type { Model } from '../onnx/ir.js';
import { loadModel } from './core.js';
import { type PlanOptions, plannerOptions, program, wrap } from './fhe-common.js';
import { ensureWritable, ensureWritableDir } from './files.js';

export type { StepReport } from '../fhe/executor.js';
export { type BatchRunOptions, runBatch } from './fhe-batch.js';
export { type PlanOptions, plannerOptions } from './fhe-common.js';
export { type ImageResult, type RunOptions, type RunSummary, run } from './fhe-run.js';

/** Names an in-memory model in messages and file headers (default: the path, or the graph's name). */
export interface SourceOption {
  source?: string;
}

/**
 * A development PAF model from a plain ReLU model: every ReLU replaced by the PAF `paf` with static
 * scales profiled on `calib` (a few images suffice; `smartpaf.run` recovers the accuracy for real).
 */
export async function pafModel(model: Model | string, paf: string, calib: Dataset): Promise<Model> {
  const m = typeof model === 'string' ? await loadModel(model) : model;
  const { makePafModel } = await import('../fhe/pafmodel.js');
  try {
    return (await makePafModel(m, paf, calib.images, calib.n, calib.shape)).model;
  } catch (e) {
    return wrap(e, (msg) => new ModelError(msg));
  }
}

/** What {@link plan} returns (what `privml fhe plan --json` prints). */
export type PlanReport = ReturnType<typeof import('../fhe/planner.js').planSummary>;

/** Depth, ring degree, modulus chain, rotations and the alternatives the planner weighed for a PAF model. */
export async function plan(model: Model | string, opts: PlanOptions & SourceOption = {}): Promise<PlanReport> {
  const o = plannerOptions(opts);
  const { prog } = await program(model, opts.source);
  const { planFhe, planSummary, SPLIT_REFRESH_SECONDS } = await import('../fhe/planner.js');
  try {
    return planSummary(planFhe(prog, { ...o, refreshOverheadSeconds: opts.refreshOverheadSeconds ?? (opts.split ? SPLIT_REFRESH_SECONDS : 0) }), prog);
  } catch (e) {
    return wrap(e, (m) => new ModelError(m));
  }
}

/** What {@link keygen} returns. */
export interface KeygenReport {
  keyId: string;
  /** The server's part of the key directory (`dir/public`). */
  publicDir: string;
  params: FheParams;
  galoisSteps: number[];
  /** Files written and their total size; `serverBytes` of them in `publicDir`. */
  files: number;
  bytes: number;
  serverBytes: number;
  seconds: number;
}

/**
 * Generate keys for `model` into `dir` (secret key there, mode 0600; server keys in `dir/public`).
 * The plan's client-aided refresh points go into the key set's params.fhe: `infer` stops at each for
 * a `refresh` by the client; `opts.onNote` hears how many round trips an image takes.
 */
export async function keygen(
  model: Model | string,
  dir: string,
  opts: PlanOptions & SourceOption & { onNote?: (m: string) => void } = {},
): Promise<KeygenReport> {
  const o = plannerOptions(opts);
  ensureWritableDir(dir);
  const { prog } = await program(model, opts.source);
  const { planFhe, splitFlowNote, SPLIT_REFRESH_SECONDS } = await import('../fhe/planner.js');
  const { FheContext, generateKeys, saveKeys, KEY_FILES } = await import('../fhe/context.js');
  let p;
  try {
    // Each refresh of the split flow costs two more processes (context, keys): fewer round trips win ties.
    p = planFhe(prog, { ...o, refreshOverheadSeconds: opts.refreshOverheadSeconds ?? SPLIT_REFRESH_SECONDS });
  } catch (e) {
    return wrap(e, (m) => new ModelError(m));
  }
  const note = splitFlowNote(p, prog.source);
  if (note) opts.onNote?.(note);
  const ctx = await FheContext.create(p.params);
  const t = performance.now();
  const keys = generateKeys(ctx, p.lowered.rotationSteps, 1);
  try {
    const refresh = p.refreshes ? { before: p.chosen.refreshBefore, maskBits: o.maskBits ?? 40 } : undefined;
    const r = saveKeys(ctx, keys, dir, { batch: opts.batch, refresh });
    return {
      keyId: keys.keyId,
      publicDir: join(dir, KEY_FILES.publicDir),
      params: p.params,
      galoisSteps: keys.galois.steps,
      files: r.files.length,
      bytes: r.bytes,
      serverBytes: r.serverBytes,
      seconds: (performance.now() - t) / 1000,
    };
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  } finally {
    keys.dispose();
    ctx.dispose();
  }
}

/**
 * Encrypt one image (`dims` = [C, H, W]) under the public key in `keysDir` and write the ciphertext to
 * `out` (seeded: about half the size; the secret key in `keysDir` makes the seed). `meta.label` is kept
 * in the file's header; `meta.name` names the image in messages (default `out`).
 */
export async function encrypt(
  keysDir: string,
  image: ArrayLike<number>,
  dims: number[],
  out: string,
  meta: { label?: number; name?: string } = {},
): Promise<{ bytes: number }> {
  const n = dims.reduce((a, b) => a * b, 1);
  if (image.length !== n) throw new DataError(`image of shape [${dims}] needs ${n} values, got ${image.length}`);
  ensureWritable(out);
  const { FheContext, readKeyParams, loadClientKeys, encodeCiphertextPayload } = await import('../fhe/context.js');
  const { encryptInputSeeded } = await import('../fhe/executor.js');
  const { inputLayout } = await import('../fhe/lower.js');
  let params, batch: number;
  try {
    ({ params, batch } = readKeyParams(keysDir));
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  }
  // Keys made for slot batching want the interleaved layout, even for one image.
  if (batch > 1) return encryptImages(keysDir, [image], dims, out, { labels: meta.label === undefined ? undefined : [meta.label] });
  const ctx = await FheContext.create(params);
  try {
    const keys = loadClientKeys(ctx, keysDir);
    try {
      const layout = inputLayout(dims, ctx.slots, meta.name ?? out);
      const { payload, meta: m } = encryptInputSeeded(ctx, keys.publicKey, keys.secretKey, layout, image);
      const bytes = encodeCiphertextPayload(ctx, keys.keyId, payload, { ...m, label: meta.label });
      writeFileSync(out, bytes);
      return { bytes: bytes.length };
    } finally {
      keys.dispose();
    }
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  } finally {
    ctx.dispose();
  }
}

/**
 * Encrypt up to the key set's batch of images (`fhe keygen --batch B`: B images per ciphertext, slot
 * batching) into one ciphertext file `out`; `labels` go into its header.
 */
export async function encryptImages(
  keysDir: string,
  images: readonly ArrayLike<number>[],
  dims: number[],
  out: string,
  meta: { labels?: number[] } = {},
): Promise<{ bytes: number; images: number; batch: number }> {
  const n = dims.reduce((a, b) => a * b, 1);
  images.forEach((x, i) => {
    if (x.length !== n) throw new DataError(`image ${i} of shape [${dims}] needs ${n} values, got ${x.length}`);
  });
  ensureWritable(out);
  const { FheContext, readKeyParams, loadClientKeys, encodeCiphertextPayload } = await import('../fhe/context.js');
  const { encryptBatchSeeded } = await import('../fhe/executor.js');
  const { inputLayout } = await import('../fhe/lower.js');
  const { interleaveLayout } = await import('../fhe/batch.js');
  let params, batch: number;
  try {
    ({ params, batch } = readKeyParams(keysDir));
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  }
  if (images.length < 1 || images.length > batch)
    throw new OptionError(
      `${keysDir}: these keys take ${batch} image${batch > 1 ? 's' : ''} per ciphertext, got ${images.length}` +
        (batch === 1 ? ' (make keys with fhe keygen --batch)' : ''),
    );
  const ctx = await FheContext.create(params);
  try {
    const keys = loadClientKeys(ctx, keysDir);
    try {
      let layout;
      try {
        layout = interleaveLayout(inputLayout(dims, ctx.slots / batch, out), batch);
      } catch (e) {
        return wrap(e, (m) => new ModelError(m));
      }
      const { payload, meta: m } = encryptBatchSeeded(ctx, keys.publicKey, keys.secretKey, layout, batch, images);
      const bytes = encodeCiphertextPayload(ctx, keys.keyId, payload, { ...m, labels: meta.labels });
      writeFileSync(out, bytes);
      return { bytes: bytes.length, images: images.length, batch };
    } finally {
      keys.dispose();
    }
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  } finally {
    ctx.dispose();
  }
}

export { type InferOptions, type InferReport, infer, refresh } from './fhe-infer.js';

/** Client side: decrypt an output ciphertext file with the secret key in `keysDir`; returns the logits (of the first image of a batch). */
export async function decrypt(input: string, keysDir: string): Promise<Float64Array> {
  return (await decryptAll(input, keysDir))[0]!;
}

/** Client side: the logits of every image of an output ciphertext file (one unless slot-batched). */
export async function decryptAll(input: string, keysDir: string): Promise<Float64Array[]> {
  const { FheContext, readKeyParams, loadClientKeys, decodeCiphertext, peekHeader, KEY_FILES } = await import('../fhe/context.js');
  const { decryptBatch } = await import('../fhe/executor.js');
  if (!existsSync(join(keysDir, KEY_FILES.secret))) throw new KeyError(`${keysDir}: no secret key (${KEY_FILES.secret}) here`);
  if (!existsSync(input)) throw new DataError(`${input}: no such ciphertext file`);
  // A refresh request or an input is no output: say so before SEAL reads a payload of another shape.
  let role: unknown;
  try {
    role = peekHeader(input).meta['role'];
  } catch (e) {
    return wrap(e, (m) => new DataError(m));
  }
  if (role !== 'output')
    throw new DataError(
      `${input}: not a model output ciphertext (${role === 'refresh-request' ? "a refresh request: answer it with 'fhe refresh'" : `role ${role}`})`,
    );
  const ctx = await FheContext.create(readKeyParams(keysDir).params);
  try {
    const keys = loadClientKeys(ctx, keysDir);
    try {
      const { ct, meta } = decodeCiphertext(ctx, keys.keyId, readFileSync(input), input);
      try {
        if (meta['role'] !== 'output') throw new DataError(`${input}: not a model output ciphertext`);
        return decryptBatch(ctx, keys.secretKey, ct, meta as OutputMeta);
      } finally {
        ct.delete();
      }
    } finally {
      keys.dispose();
    }
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  } finally {
    ctx.dispose();
  }
}

/** Planner options of a batch client (the CLI's `--refresh`, `--network`, `--mask-bits`, scale bits). */
export type ClientPlanOptions = import('../fhe/planner.js').PlanOptions;

/**
 * Client side of a batch run whose inferences happen elsewhere (`privml fhe run --queue`): the keys live
 * in this process only; {@link FheClient.serverKeyFiles} exports what a server may hold (the `public/`
 * part of a key directory: parameters, public, relinearization and Galois keys; never the secret key).
 */
export interface FheClient {
  keyId: string;
  source: string;
  form: string;
  params: import('../fhe/context.js').FheParams;
  depth: number;
  levelsPerChain: number;
  /** Client-aided refresh round trips per image the plan needs (a remote batch supports none). */
  refreshes: number;
  galoisKeys: number;
  inputDims: number[];
  /** The server key files by name (as `fhe keygen` writes them under `public/`). */
  serverKeyFiles(): Map<string, Uint8Array>;
  /** One image → a (seeded) ciphertext file's bytes. */
  encrypt(x: ArrayLike<number>, meta?: { label?: number }): Uint8Array;
  /** An output ciphertext file's bytes → logits. */
  decrypt(bytes: Uint8Array, name: string): Float64Array;
  /** The program in float64 without encryption (the local run's `plainClass` reference). */
  simulate(x: ArrayLike<number>): ArrayLike<number>;
  dispose(): void;
}

/** Plan `model` and generate a key pair in memory for a remote batch. */
export async function openClient(model: Model, source: string, opts: ClientPlanOptions & { remote?: boolean } = {}): Promise<FheClient> {
  const { prog } = await program(model);
  const { planFhe } = await import('../fhe/planner.js');
  const { simulateProgram } = await import('../fhe/compile.js');
  const ctxMod = await import('../fhe/context.js');
  const { encryptInputSeeded, decryptOutput } = await import('../fhe/executor.js');
  let p;
  try {
    p = planFhe(prog, opts);
  } catch (e) {
    return wrap(e, (m) => new ModelError(m));
  }
  // Checked before key generation (minutes at N = 32768): a remote server cannot call back for a refresh.
  if (opts.remote && p.refreshes > 0)
    throw new OptionError(
      `${source}: the plan needs ${p.refreshes} client-aided refresh round trip(s) per image, which a queued ` +
        `job cannot make; use --no-refresh or run without --queue`,
    );
  const ctx = await ctxMod.FheContext.create(p.params);
  const keys = ctxMod.generateKeys(ctx, p.lowered.rotationSteps, 1);
  const plan = p;
  return {
    keyId: keys.keyId,
    source,
    form: prog.form,
    params: plan.params,
    depth: plan.depth,
    levelsPerChain: plan.levels,
    refreshes: plan.refreshes,
    galoisKeys: plan.lowered.rotationSteps.length,
    inputDims: prog.inputDims,
    serverKeyFiles() {
      // The same files (seeded, zstd) that saveKeys writes under public/, made in memory.
      const { encodeFheFile, FILE_VERSION, KEY_FILES } = ctxMod;
      const head = (kind: import('../fhe/context.js').FheFileKind, meta: Record<string, unknown> = {}) => ({
        version: FILE_VERSION,
        kind,
        paramsHash: ctx.hash,
        keyId: keys.keyId,
        meta,
      });
      const sd = keys.seeded!;
      const files = new Map<string, Uint8Array>();
      files.set(KEY_FILES.params, encodeFheFile(head('params', { params: ctx.params, steps: keys.galois.steps }), new Uint8Array(0)));
      files.set(KEY_FILES.public, encodeFheFile(head('public'), sd.publicKey()));
      files.set(KEY_FILES.relin, encodeFheFile(head('relin'), sd.relinKeys()));
      for (const s of keys.galois.steps) files.set(`galois-${s}.key`, encodeFheFile(head('galois', { step: s }), sd.galois(s)));
      return files;
    },
    encrypt(x, meta = {}) {
      const { payload, meta: m } = encryptInputSeeded(ctx, keys.publicKey, keys.secretKey, plan.lowered.input, x);
      return ctxMod.encodeCiphertextPayload(ctx, keys.keyId, payload, { ...m, label: meta.label });
    },
    decrypt(bytes, name) {
      let dec;
      try {
        dec = ctxMod.decodeCiphertext(ctx, keys.keyId, bytes, name);
      } catch (e) {
        return wrap(e, (m) => new ProtocolError(m));
      }
      try {
        if (dec.meta['role'] !== 'output') throw new ProtocolError(`${name}: not a model output ciphertext`);
        return decryptOutput(ctx, keys.secretKey, dec.ct, dec.meta as OutputMeta);
      } finally {
        dec.ct.delete();
      }
    },
    simulate: (x) => simulateProgram(prog, x).at(-1)!,
    dispose() {
      keys.dispose();
      ctx.dispose();
    },
  };
}

/** A long-lived server for one model and one client's public keys (a queue worker keeps it across jobs). */
export interface FheServer {
  keyId: string;
  /** Run the model on one input ciphertext file's bytes; `name` labels errors. */
  infer(input: Uint8Array, name: string): Promise<{ bytes: Uint8Array; seconds: number; keySeconds: number; computeSeconds: number }>;
  dispose(): void;
}

/**
 * Load `publicDir`'s server keys for `model` once; Galois keys are loaded per step on demand and cached
 * in the WASM memory that `cacheMb` of model plaintexts (reused across inferences) leave free.
 */
export async function openServer(model: Model, source: string, publicDir: string, opts: { cacheMb?: number } = {}): Promise<FheServer> {
  const ctxMod = await import('../fhe/context.js');
  if (ctxMod.hasSecretKey(publicDir)) throw new KeyError(`${publicDir}: holds a secret key; a server must only get the public keys`);
  const { prog } = await program(model);
  const { lowerProgram } = await import('../fhe/lower.js');
  const { inferEncrypted, outputMeta } = await import('../fhe/executor.js');
  const { PlainCache } = await import('../fhe/ops.js');
  let params, keyId: string, steps: number[];
  try {
    ({ params, keyId, steps } = ctxMod.readKeyParams(publicDir));
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  }
  const lowered = lowerProgram(prog, params.polyModulusDegree / 2);
  const levels = params.primeBits.length - 2;
  if (lowered.depth > levels)
    throw new ModelError(
      `${source}: needs ${lowered.depth} levels, the keys' parameters hold ${levels} (client-aided refresh ` +
        `needs a client in the loop: 'privml fhe run' without --queue)`,
    );
  const ctx = await ctxMod.FheContext.create(params);
  const keyBytes = ctxMod.galoisKeyBytes(params);
  const cacheBytes = Math.max(0, Math.min((opts.cacheMb ?? 1000) * 1e6, ctxMod.WASM_MEMORY_BYTES - (steps.length + 10) * keyBytes));
  const cache = new PlainCache(cacheBytes);
  let keys;
  try {
    keys = ctxMod.loadServerKeys(ctx, publicDir, ctxMod.galoisCacheSize(params, ctxMod.WASM_MEMORY_BYTES - cacheBytes));
  } catch (e) {
    cache.dispose();
    ctx.dispose();
    return wrap(e, (m) => new KeyError(m));
  }
  const k = keys;
  return {
    keyId,
    async infer(input, name) {
      let dec;
      try {
        dec = ctxMod.decodeCiphertext(ctx, keyId, input, name);
      } catch (e) {
        return wrap(e, (m) => new KeyError(m));
      }
      const dims = dec.meta['dims'] as number[] | undefined;
      if (!dims || dims.join(',') !== prog.inputDims.join(',')) {
        dec.ct.delete();
        throw new DataError(`${name}: encrypted image has shape [${dims}], the model expects [${prog.inputDims}]`);
      }
      if (((dec.meta['batch'] as number | undefined) ?? 1) !== 1) {
        dec.ct.delete();
        throw new DataError(`${name}: a slot-batched ciphertext (${dec.meta['batch']} images); queued jobs take one image per ciphertext`);
      }
      let res;
      try {
        res = await inferEncrypted(ctx, k, lowered, dec.ct, { cache });
      } catch (e) {
        return wrap(e, (m) => new ProtocolError(m));
      } finally {
        dec.ct.delete();
      }
      try {
        return {
          bytes: ctxMod.encodeCiphertext(ctx, keyId, res.ct, outputMeta(lowered, source)),
          seconds: res.seconds,
          keySeconds: res.keySeconds,
          computeSeconds: res.computeSeconds,
        };
      } finally {
        res.ct.delete();
      }
    },
    dispose() {
      cache.dispose();
      k.dispose();
      ctx.dispose();
    },
  };
}
