/**
 * CKKS encrypted inference of PAF models (node-seal), split by role as in `privml fhe`: the client runs
 * `keygen`, `encrypt` and `decrypt` and keeps the secret key; the server runs `infer` with only the
 * public keys (it refuses a directory holding a secret key). Keys live in directories, ciphertexts in files.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../onnx/ir.js';
import type { Dataset } from '../nn/data/index.js';
import type { StepReport, OutputMeta } from '../fhe/executor.js';
import { DataError, KeyError, ModelError, PrivmlError, ProtocolError, firstLine } from '../errors.js';
import { ensureWritable, ensureWritableDir } from './files.js';
import { loadModel } from './core.js';

export type { StepReport } from '../fhe/executor.js';

/** Options of the planner (see `privml fhe plan --help`). */
export interface PlanOptions {
  /** Allow client-aided refresh points when the depth does not fit. */
  refresh?: boolean;
  /** Smallest CKKS scale in bits the planner may choose. */
  minScaleBits?: number;
  /** Largest CKKS scale in bits. */
  maxScaleBits?: number;
}

async function program(model: Model | string) {
  const m = typeof model === 'string' ? await loadModel(model) : model;
  const source = typeof model === 'string' ? model : m.graph.name;
  const { compileModel } = await import('../fhe/compile.js');
  try {
    return { prog: compileModel(m, source), source };
  } catch (e) {
    throw new ModelError(firstLine(e));
  }
}

/** Rethrow anything that is not already typed as `make(message)`. */
function wrap(e: unknown, make: (m: string) => PrivmlError): never {
  if (e instanceof PrivmlError) throw e;
  throw make(firstLine(e));
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

/** Depth, ring degree, modulus chain and rotations of a PAF model (what `privml fhe plan --json` prints). */
export async function plan(model: Model | string, opts: PlanOptions = {}): Promise<Record<string, unknown>> {
  const { prog } = await program(model);
  const { planFhe, planSummary } = await import('../fhe/planner.js');
  try {
    return planSummary(planFhe(prog, opts), prog);
  } catch (e) {
    return wrap(e, (m) => new ModelError(m));
  }
}

/** Generate keys for `model` into `dir` (secret key there, server keys in `dir/public`). */
export async function keygen(model: Model | string, dir: string, opts: PlanOptions = {}): Promise<{ keyId: string; publicDir: string; galoisSteps: number[]; bytes: number }> {
  ensureWritableDir(dir);
  const { prog } = await program(model);
  const { planFhe, splitFlowProblem } = await import('../fhe/planner.js');
  const { FheContext, generateKeys, saveKeys, KEY_FILES } = await import('../fhe/context.js');
  let p;
  try {
    p = planFhe(prog, opts);
  } catch (e) {
    return wrap(e, (m) => new ModelError(m));
  }
  // Keys for a plan that needs refresh are useless to `infer` unless the caller asked for them.
  const problem = splitFlowProblem(p, prog.source);
  if (problem && opts.refresh !== true) throw new ModelError(problem);
  const ctx = await FheContext.create(p.params);
  const keys = generateKeys(ctx, p.lowered.rotationSteps, 1);
  try {
    const r = saveKeys(ctx, keys, dir);
    return { keyId: keys.keyId, publicDir: join(dir, KEY_FILES.publicDir), galoisSteps: keys.galois.steps, bytes: r.bytes };
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  } finally {
    keys.dispose();
    ctx.dispose();
  }
}

/** Encrypt one image (`dims` = [C, H, W]) under the public key in `keysDir`; writes the ciphertext to `out`. */
export async function encrypt(keysDir: string, image: ArrayLike<number>, dims: number[], out: string, meta: { label?: number } = {}): Promise<{ bytes: number }> {
  const n = dims.reduce((a, b) => a * b, 1);
  if (image.length !== n) throw new DataError(`image of shape [${dims}] needs ${n} values, got ${image.length}`);
  ensureWritable(out);
  const { FheContext, readKeyParams, loadClientKeys, encodeCiphertext } = await import('../fhe/context.js');
  const { encryptInput } = await import('../fhe/executor.js');
  const { inputLayout } = await import('../fhe/lower.js');
  let params;
  try {
    params = readKeyParams(keysDir).params;
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  }
  const ctx = await FheContext.create(params);
  try {
    const keys = loadClientKeys(ctx, keysDir);
    try {
      const { ct, meta: m } = encryptInput(ctx, keys.publicKey, inputLayout(dims, ctx.slots, out), image);
      const bytes = encodeCiphertext(ctx, keys.keyId, ct, { ...m, label: meta.label });
      ct.delete();
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

/** What `infer` reports (what `privml fhe infer --json` prints). */
export interface InferReport {
  out: string;
  seconds: number;
  /** Seconds spent loading Galois keys (inside `seconds`). */
  keySeconds: number;
  computeSeconds: number;
  stats: { rotations: number; mults: number; plainMults: number; rescales: number };
  steps: StepReport[];
}

/**
 * Server side: run `model` on the ciphertext file `input` with the keys in `publicDir`; writes the
 * output ciphertext to `out`. `opts.source` names an in-memory model in messages and the output header.
 */
export async function infer(model: Model | string, input: string, publicDir: string, out: string, opts: { source?: string } = {}): Promise<InferReport> {
  const { FheContext, readKeyParams, hasSecretKey, loadServerKeys, peekHeader, decodeCiphertext, encodeCiphertext, KEY_FILES } = await import('../fhe/context.js');
  if (hasSecretKey(publicDir)) throw new KeyError(`${publicDir}: holds a secret key; the server must only get the public keys (pass ${join(publicDir, KEY_FILES.publicDir)})`);
  ensureWritable(out);
  const prog0 = await program(model);
  const source = opts.source ?? prog0.source;
  const prog = opts.source ? { ...prog0.prog, source } : prog0.prog;
  const { lowerProgram } = await import('../fhe/lower.js');
  const { inferEncrypted, outputMeta } = await import('../fhe/executor.js');
  let params, keyId: string;
  try {
    ({ params, keyId } = readKeyParams(publicDir));
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  }
  let lowered;
  try {
    lowered = lowerProgram(prog, params.polyModulusDegree / 2);
  } catch (e) {
    return wrap(e, (m) => new ModelError(m));
  }
  const levels = params.primeBits.length - 2;
  if (lowered.depth > levels) throw new ModelError(`${source}: needs ${lowered.depth} levels, the keys' parameters hold ${levels} (${lowered.depth - levels} missing; client-aided refresh needs 'privml fhe run')`);
  if (!existsSync(input)) throw new DataError(`${input}: no such ciphertext file`);
  let head;
  try {
    head = peekHeader(input);
  } catch (e) {
    return wrap(e, (m) => new DataError(m));
  }
  if (head.keyId !== keyId) throw new KeyError(`${input}: encrypted under another key pair (key id ${head.keyId}, server keys ${keyId})`);
  const ctx = await FheContext.create(params);
  let keys;
  try {
    keys = loadServerKeys(ctx, publicDir, 4);
  } catch (e) {
    ctx.dispose();
    return wrap(e, (m) => new KeyError(m));
  }
  try {
    const { ct, meta } = decodeCiphertext(ctx, keyId, readFileSync(input), input);
    const dims = meta['dims'] as number[] | undefined;
    if (!dims || dims.join(',') !== prog.inputDims.join(',')) {
      ct.delete();
      throw new DataError(`${input}: encrypted image has shape [${dims}], the model expects [${prog.inputDims}]`);
    }
    let res;
    try {
      res = await inferEncrypted(ctx, keys, lowered, ct);
    } finally {
      ct.delete();
    }
    try {
      writeFileSync(out, encodeCiphertext(ctx, keyId, res.ct, outputMeta(lowered, source)));
    } finally {
      res.ct.delete();
    }
    return { out, seconds: res.seconds, keySeconds: res.keySeconds, computeSeconds: res.computeSeconds, stats: res.stats, steps: res.steps };
  } catch (e) {
    return wrap(e, (m) => new ProtocolError(m));
  } finally {
    keys.dispose();
    ctx.dispose();
  }
}

/** Client side: decrypt an output ciphertext file with the secret key in `keysDir`; returns the logits. */
export async function decrypt(input: string, keysDir: string): Promise<Float64Array> {
  const { FheContext, readKeyParams, loadClientKeys, decodeCiphertext, KEY_FILES } = await import('../fhe/context.js');
  const { decryptOutput } = await import('../fhe/executor.js');
  if (!existsSync(join(keysDir, KEY_FILES.secret))) throw new KeyError(`${keysDir}: no secret key (${KEY_FILES.secret}) here`);
  if (!existsSync(input)) throw new DataError(`${input}: no such ciphertext file`);
  const ctx = await FheContext.create(readKeyParams(keysDir).params);
  try {
    const keys = loadClientKeys(ctx, keysDir);
    try {
      const { ct, meta } = decodeCiphertext(ctx, keys.keyId, readFileSync(input), input);
      try {
        if (meta['role'] !== 'output') throw new DataError(`${input}: not a model output ciphertext`);
        return decryptOutput(ctx, keys.secretKey, ct, meta as OutputMeta);
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
