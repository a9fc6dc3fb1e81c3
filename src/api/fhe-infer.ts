/**
 * The server's `infer` and the client's `refresh` of the split FHE flow (`privml fhe infer`, `fhe refresh`).
 * A key set whose plan has client-aided refreshes (params.fhe names them) makes `infer` stop at the
 * first: it writes the masked, re-randomised ciphertexts as a request file for the client and keeps
 * the masks in a state file (mode 0600, never sent); the client's `refresh` decrypts x + m and
 * encrypts it afresh (seeded, at the level the rest of the chain needs); `infer` with `resume` takes
 * the client's reply and the state, removes the masks and runs on (to the output or the next refresh).
 */
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataError, KeyError, ModelError, ProtocolError } from '../errors.js';
import type { Ciphertext } from '../fhe/context.js';
import type { StepReport } from '../fhe/executor.js';
import type { Model } from '../onnx/ir.js';
import type { SourceOption } from './fhe.js';
import { program, wrap } from './fhe-common.js';
import { ensureWritable } from './files.js';

/** Options of {@link infer}. */
export interface InferOptions extends SourceOption {
  /** Where to keep the masks when the plan stops for a refresh (default `<out>.state`); server-only, mode 0600. */
  state?: string;
  /** Continue from this state file; `input` is then the client's `refresh` reply. */
  resume?: string;
  /**
   * The server's encoded model plaintexts (src/fhe/plainfile.ts), loaded when made for this model and
   * plan, (re)written after the run when this run encoded more; false: none. Default: beside
   * `modelFile` when given (`<model>.<digest>.fheplain`, one per segment), else none. A resumed
   * segment uses `<file>.from<step>`.
   */
  plainCacheFile?: string | false;
  /** The model's file (for the default plaintext file). */
  modelFile?: string;
}

/** What `infer` reports (what `privml fhe infer --json` prints). */
export interface InferReport {
  out: string;
  seconds: number;
  /** Seconds spent loading Galois keys (inside `seconds`). */
  keySeconds: number;
  computeSeconds: number;
  /** CPU seconds of this process during the steps. */
  cpuSeconds: number;
  stats: { rotations: number; mults: number; plainMults: number; rescales: number };
  /** The encoded-model file: plaintexts loaded from it, bytes written to it (0: not rewritten), why not written. */
  plainFile?: { file: string; loaded: number; savedBytes: number; saveError?: string };
  steps: StepReport[];
  /** Set when the run stopped for a client-aided refresh: `out` is then the request for the client. */
  refresh?: { step: string; state: string; remaining: number };
}

/** Write a server-only file with mode 0600 (an old one at the same path is replaced, never reused). */
function writeSecret(path: string, data: Uint8Array): void {
  if (existsSync(path)) unlinkSync(path);
  writeFileSync(path, data, { mode: 0o600, flag: 'wx' });
}

/**
 * Server side: run `model` on the ciphertext file `input` with the keys in `publicDir` and write the
 * output ciphertext to `out` — or, when the keys' plan has a client-aided refresh ahead, the refresh
 * request (with the masks in `opts.state`). `opts.resume` continues from such a state with the
 * client's reply as `input`. `opts.source` names an in-memory model in messages and the output header.
 */
export async function infer(model: Model | string, input: string, publicDir: string, out: string, opts: InferOptions = {}): Promise<InferReport> {
  const ctxMod = await import('../fhe/context.js');
  const { FheContext, readKeyParams, hasSecretKey, loadServerKeys, peekHeader, decodeFheFile, encodeFheFile, checkHeader, KEY_FILES, FILE_VERSION } = ctxMod;
  if (hasSecretKey(publicDir))
    throw new KeyError(`${publicDir}: holds a secret key; the server must only get the public keys (pass ${join(publicDir, KEY_FILES.publicDir)})`);
  ensureWritable(out);
  const statePath = opts.state ?? `${out}.state`;
  if (!opts.resume) ensureWritable(statePath);
  const { prog, source } = await program(model, opts.source);
  const { lowerProgram } = await import('../fhe/lower.js');
  const { interleave } = await import('../fhe/batch.js');
  const { insertRefreshes, maskReserve } = await import('../fhe/planner.js');
  const { inferSplit, outputMeta } = await import('../fhe/executor.js');
  const rf = await import('../fhe/refresh.js');
  let params, keyId: string, batch: number, steps: number[], refresh;
  try {
    ({ params, keyId, batch, steps, refresh } = readKeyParams(publicDir));
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  }
  let lowered;
  try {
    // Slot batching: the keys say how many images a ciphertext holds (their rotation steps are for that packing);
    // refresh points: where the keys' plan stops for the client (the chain is sized to the segments between).
    const flat = lowerProgram(prog, params.polyModulusDegree / 2 / batch);
    if (refresh && refresh.before.at(-1)! >= flat.steps.length)
      throw new Error(`${publicDir}: refresh points past the end of ${source} (keys for another model?)`);
    const withRefresh = refresh ? insertRefreshes(flat, refresh.before, refresh.maskBits, maskReserve(params.scaleBits, refresh.maskBits)) : flat;
    lowered = interleave(withRefresh, batch);
  } catch (e) {
    return wrap(e, (m) => new ModelError(m));
  }
  const missing = lowered.rotationSteps.map((r) => r % (params.polyModulusDegree / 2)).filter((r) => r !== 0 && !steps.includes(r));
  if (missing.length)
    throw new KeyError(`${publicDir}: no Galois keys for rotation steps ${missing.slice(0, 5).join(', ')} that ${source} needs (keys made for another model?)`);
  // Every segment between refreshes must fit the chain (one ending in a refresh keeps its mask's room).
  const levels = params.primeBits.length - 2;
  const reserve = refresh ? maskReserve(params.scaleBits, refresh.maskBits) : 0;
  let seg = 0;
  for (let i = 0; i <= lowered.steps.length; i++) {
    const s = lowered.steps[i];
    const need = s?.kind === 'refresh' ? seg + reserve : seg;
    if (need > levels)
      throw new ModelError(
        `${source}: a segment needs ${need} levels, the keys' parameters hold ${levels} ` +
          `(${need - levels} missing; make keys with 'fhe keygen --refresh' for client-aided refresh)`,
      );
    if (!s) break;
    seg = s.kind === 'refresh' ? 0 : seg + lowered.depths[i]!;
  }
  if (!existsSync(input)) throw new DataError(`${input}: no such ciphertext file`);
  let head;
  try {
    head = peekHeader(input);
  } catch (e) {
    return wrap(e, (m) => new DataError(m));
  }
  if (head.keyId !== keyId) throw new KeyError(`${input}: encrypted under another key pair (key id ${head.keyId}, server keys ${keyId})`);
  // What the state file says (resume), checked against this model's plan and the client's reply.
  let state: { step: number; requestId: string; images?: number; masks: Float64Array[] } | undefined;
  const ctx = await FheContext.create(params);
  try {
    if (opts.resume) {
      try {
        if (!existsSync(opts.resume)) throw new Error(`${opts.resume}: no such state file`);
        const f = decodeFheFile(readFileSync(opts.resume), opts.resume, 'refresh-state');
        checkHeader(f.header, opts.resume, ctx, keyId);
        const m = f.header.meta as { step: number; stepName: string; requestId: string; images?: number };
        const st = lowered.steps[m.step];
        if (st?.kind !== 'refresh' || st.name !== m.stepName) throw new Error(`${opts.resume}: made for another model or plan (step '${m.stepName}')`);
        if (head.meta['role'] !== 'refresh-reply' || head.meta['requestId'] !== m.requestId)
          throw new Error(`${input}: not the client's reply to this state's request (${head.meta['role']}, request ${head.meta['requestId']})`);
        state = { step: m.step, requestId: m.requestId, images: m.images, masks: rf.unpackMasks(f.payload, opts.resume, ctx.slots) };
      } catch (e) {
        return wrap(e, (m) => new DataError(m));
      }
    } else {
      if (head.meta['role'] === 'refresh-reply') throw new DataError(`${input}: a refresh reply; continue with --resume STATE`);
      if (((head.meta['batch'] as number | undefined) ?? 1) !== batch)
        throw new DataError(`${input}: holds a batch of ${head.meta['batch'] ?? 1} image(s) per ciphertext, the keys are for ${batch}`);
    }
  } catch (e) {
    ctx.dispose();
    throw e;
  }
  let keys;
  try {
    keys = loadServerKeys(ctx, publicDir, 4);
  } catch (e) {
    ctx.dispose();
    return wrap(e, (m) => new KeyError(m));
  }
  // The encoded model (public plaintexts of the model's weights, no client key in them) from an earlier
  // server run, in the WASM memory the Galois keys (4 cached) and SEAL's pools leave free. Without a
  // file for this plan, the plaintexts are written to one as they are encoded and not kept (holding
  // them all while encoding more would take this process past 1.5 GB).
  const { PlainCache } = await import('../fhe/ops.js');
  const pf = opts.plainCacheFile || (opts.modelFile && opts.plainCacheFile === undefined) ? await import('../fhe/plainfile.js') : undefined;
  // One file per segment (the process from the input, each resume): a process loads only what it uses.
  const digest = pf ? pf.programDigest(ctx, lowered, state?.step ?? 0) : '';
  const segFile = state?.step ? `.from${state.step}` : '';
  const pfile = pf ? (opts.plainCacheFile ? opts.plainCacheFile + segFile : pf.plainFileBeside(opts.modelFile!, digest)) : undefined;
  let plainFile: InferReport['plainFile'];
  let cache: InstanceType<typeof PlainCache> | undefined;
  let recorder: InstanceType<NonNullable<typeof pf>['PlainRecorder']> | undefined;
  const failedSave = (e: unknown) => {
    if (typeof opts.plainCacheFile === 'string') throw e;
    plainFile!.saveError = String((e as Error).message ?? e).slice(0, 200);
  };
  if (pf && pfile) {
    const loaded = new PlainCache(Math.max(0, Math.min(1e9, ctxMod.WASM_MEMORY_BYTES - 14 * ctxMod.galoisKeyBytes(params))));
    try {
      const r = pf.loadPlainCache(ctx, loaded, digest, pfile);
      plainFile = { file: pfile, loaded: 'loaded' in r ? r.loaded : 0, savedBytes: 0 };
    } catch (e) {
      loaded.dispose();
      keys.dispose();
      ctx.dispose();
      return wrap(e, (m) => new DataError(m));
    }
    if (plainFile.loaded > 0) cache = loaded;
    else {
      loaded.dispose();
      try {
        recorder = new pf.PlainRecorder(ctx, pfile);
        cache = new PlainCache(0, recorder.add);
      } catch (e) {
        try {
          failedSave(e);
        } catch (e2) {
          keys.dispose();
          ctx.dispose();
          throw e2;
        }
      }
    }
  }
  // Save what this run encoded (the other segment of a refresh plan has its own file).
  const savePlain = () => {
    if (!pf || !plainFile) return;
    try {
      if (recorder) plainFile.savedBytes = recorder.finish(digest);
      else if (cache && cache.misses > 0) plainFile.savedBytes = pf.savePlainCache(ctx, cache, digest, plainFile.file);
    } catch (e) {
      failedSave(e);
    } finally {
      recorder = undefined;
    }
  };
  const cts: Ciphertext[] = [];
  try {
    const { header, payload } = decodeFheFile(readFileSync(input), input, 'ciphertext');
    checkHeader(header, input, ctx, keyId);
    const parts = state ? rf.unpackPayloads(payload, input) : [payload];
    for (const p of parts) {
      const ct = ctx.seal.CipherText();
      cts.push(ct);
      try {
        ct.loadArray(ctx.context, p);
      } catch (e) {
        throw new DataError(`${input}: SEAL could not load the ciphertext (${String(e).slice(0, 80)})`);
      }
    }
    if (!state) {
      const dims = header.meta['dims'] as number[] | undefined;
      if (!dims || dims.join(',') !== prog.inputDims.join(','))
        throw new DataError(`${input}: encrypted image has shape [${dims}], the model expects [${prog.inputDims}]`);
    }
    const images = state ? state.images : (header.meta['images'] as number | undefined);
    const res = await inferSplit(ctx, keys, lowered, cts, state ? { resume: { step: state.step, masks: state.masks }, cache } : { cache });
    savePlain();
    const report = {
      out,
      seconds: res.seconds,
      keySeconds: res.keySeconds,
      computeSeconds: res.computeSeconds,
      cpuSeconds: res.cpuSeconds,
      stats: res.stats,
      steps: res.steps,
      ...(plainFile ? { plainFile } : {}),
    };
    if (res.suspended) {
      const sp = res.suspended;
      try {
        const { randomId } = await import('../crypto/index.js');
        const requestId = randomId(8);
        const payloads = sp.masked.map((c) => c.saveArray(ctx.seal.ComprModeType.zstd));
        const meta = { role: 'refresh-request', requestId, step: sp.name, resumeLevel: sp.resumeLevel, count: sp.masked.length };
        const head = (kind: 'ciphertext' | 'refresh-state', m: Record<string, unknown>) => ({
          version: FILE_VERSION,
          kind,
          paramsHash: ctx.hash,
          keyId,
          meta: m,
        });
        // The masks first: a request whose masks were lost could never be finished.
        writeSecret(statePath, encodeFheFile(head('refresh-state', { step: sp.step, stepName: sp.name, requestId, images }), rf.packMasks(sp.masks)));
        writeFileSync(out, encodeFheFile(head('ciphertext', meta), rf.packPayloads(payloads)));
        if (opts.resume && resolve(opts.resume) !== resolve(statePath)) unlinkSync(opts.resume);
      } finally {
        for (const c of sp.masked) c.delete();
      }
      const remaining = lowered.steps.filter((s, i) => i >= sp.step && s.kind === 'refresh').length;
      return { ...report, refresh: { step: sp.name, state: statePath, remaining } };
    }
    try {
      writeFileSync(out, ctxMod.encodeCiphertext(ctx, keyId, res.ct!, outputMeta(lowered, source, images)));
    } finally {
      res.ct!.delete();
    }
    // The masks were used once; a state file left behind could only be misused.
    if (opts.resume) unlinkSync(opts.resume);
    return report;
  } catch (e) {
    return wrap(e, (m) => new ProtocolError(m));
  } finally {
    for (const c of cts) c.delete();
    recorder?.abort();
    cache?.dispose();
    keys.dispose();
    ctx.dispose();
  }
}

/**
 * Client side of a split-flow refresh: decrypt the server's request file `input` (masked values x + m)
 * with the secret key in `keysDir` and write fresh encryptions (seeded, at the level the server resumes
 * at) to `out` for `infer(…, { resume })`.
 */
export async function refresh(input: string, keysDir: string, out: string): Promise<{ bytes: number; ciphertexts: number }> {
  const { FheContext, readKeyParams, loadClientKeys, decodeFheFile, checkHeader, encodeCiphertextPayload, KEY_FILES } = await import('../fhe/context.js');
  const { decryptSlots } = await import('../fhe/executor.js');
  const rf = await import('../fhe/refresh.js');
  if (!existsSync(join(keysDir, KEY_FILES.secret))) throw new KeyError(`${keysDir}: no secret key (${KEY_FILES.secret}) here`);
  if (!existsSync(input)) throw new DataError(`${input}: no such refresh request file`);
  ensureWritable(out);
  const ctx = await FheContext.create(readKeyParams(keysDir).params);
  try {
    const keys = loadClientKeys(ctx, keysDir);
    try {
      const { header, payload } = decodeFheFile(readFileSync(input), input, 'ciphertext');
      checkHeader(header, input, ctx, keys.keyId);
      const m = header.meta as { role?: string; requestId?: string; resumeLevel?: number };
      if (m.role !== 'refresh-request' || typeof m.requestId !== 'string') throw new DataError(`${input}: not a refresh request (role ${m.role})`);
      const top = ctx.params.primeBits.length - 2;
      const level = m.resumeLevel;
      if (level !== undefined && !(Number.isInteger(level) && level >= 0 && level <= top))
        throw new DataError(`${input}: resume level ${level} outside the chain (0..${top})`);
      const fresh = rf.unpackPayloads(payload, input).map((p, i) => {
        const ct = ctx.seal.CipherText();
        try {
          ct.loadArray(ctx.context, p);
          return rf.encryptFreshSeeded(ctx, keys.publicKey, keys.secretKey, decryptSlots(ctx, keys.secretKey, ct), level);
        } catch (e) {
          throw new DataError(`${input}: ciphertext ${i}: ${String((e as Error).message ?? e).slice(0, 160)}`);
        } finally {
          ct.delete();
        }
      });
      const bytes = encodeCiphertextPayload(ctx, keys.keyId, rf.packPayloads(fresh), { role: 'refresh-reply', requestId: m.requestId, count: fresh.length });
      writeFileSync(out, bytes);
      return { bytes: bytes.length, ciphertexts: fresh.length };
    } finally {
      keys.dispose();
    }
  } catch (e) {
    return wrap(e, (m) => new KeyError(m));
  } finally {
    ctx.dispose();
  }
}
