/**
 * The server side of CKKS inference for a client that keeps its keys in memory (the `privml serve
 * --fhe` page): the client uploads its public, relinearisation and Galois keys once (frames of
 * src/fhe/wire.ts), then sends encrypted images; each runs through the same executor as `privml fhe
 * infer` / `fhe run` (`inferEncrypted`), with client-aided refresh round trips to the connected
 * client where the plan has them. The secret key never reaches this side: a key frame of any other
 * kind than public/relin/galois is refused. Meant to run in its own process per client (SEAL aborts
 * its whole WASM module on some malformed inputs; one client must not take others down).
 */

import { firstLine, ModelError } from '../errors.js';
import type { Ciphertext, FheContext, FheFileKind, GaloisKeys, PublicKey, RelinKeys } from '../fhe/context.js';
import type { PlainCache } from '../fhe/ops.js';
import type { PlanOptions } from '../fhe/planner.js';
import { decodeWire, encodeWire, type ServedPlan, type WireHeader } from '../fhe/wire.js';
import type { Model } from '../onnx/ir.js';
import { loadModel } from './core.js';

export type { ServedPlan } from '../fhe/wire.js';

type Lowered = import('../fhe/lower.js').Lowered;

/** One client's evaluation session: keys in, encrypted images in, encrypted logits out. */
export class FheServerSession {
  private keyId?: string;
  private publicKey?: PublicKey;
  private relinKeys?: RelinKeys;
  private readonly galoisBytes = new Map<number, Uint8Array>();
  private galois?: import('../fhe/context.js').CachedGalois;
  private busy = false;
  private refreshId = 0;
  private pending?: { id: number; resolve: (payload: Uint8Array) => void; reject: (e: Error) => void };
  private sentReady = false;
  /** The encoded-model file beside the model (src/fhe/plainfile.ts): saved after an inference that encoded more. */
  private plainFile?: { path: string; save: () => void };
  private plainSaved = false;

  private constructor(
    readonly plan: ServedPlan,
    private readonly ctx: FheContext,
    private readonly lowered: Lowered,
    private readonly inputDims: number[],
    private readonly cache: PlainCache,
    private readonly galoisCached: number,
    private readonly send: (frame: Uint8Array) => void,
    private readonly ctxMod: typeof import('../fhe/context.js'),
    private readonly exec: typeof import('../fhe/executor.js'),
  ) {}

  /**
   * Plan `model` (a PAF model; refresh allowed, plaintext cache on, as `fhe run` does with its
   * defaults), build the SEAL context and wait for a client's keys. `send` carries frames to the client.
   */
  static async create(
    model: Model | string,
    opts: PlanOptions & { source?: string; modelFile?: string },
    send: (frame: Uint8Array) => void,
  ): Promise<FheServerSession> {
    const m = typeof model === 'string' ? await loadModel(model) : model;
    const source = opts.source ?? (typeof model === 'string' ? model : m.graph.name);
    const { compileModel } = await import('../fhe/compile.js');
    const { planFhe } = await import('../fhe/planner.js');
    const ctxMod = await import('../fhe/context.js');
    const exec = await import('../fhe/executor.js');
    const { PlainCache } = await import('../fhe/ops.js');
    let prog, plan;
    try {
      prog = compileModel(m, source);
      plan = planFhe(prog, { ...opts, cachedPlaintexts: true });
    } catch (e) {
      throw new ModelError(firstLine(e));
    }
    const ctx = await ctxMod.FheContext.create(plan.params);
    // WASM memory split as in `fhe run`: Galois keys (plus SEAL's pools) first, model plaintexts in what is left (≤ 1 GB).
    const keyBytes = ctxMod.galoisKeyBytes(plan.params);
    const cacheBytes = Math.max(0, Math.min(1e9, ctxMod.WASM_MEMORY_BYTES - (plan.lowered.rotationSteps.length + 10) * keyBytes));
    const L = plan.lowered.input;
    const served: ServedPlan = {
      model: source,
      params: plan.params,
      galoisSteps: [...new Set(plan.lowered.rotationSteps.map((s) => ctxMod.normStep(s, ctx.slots)))].filter((s) => s !== 0).sort((a, b) => a - b),
      input: { dims: L.dims, slotOf: Array.from(L.slotOf), period: L.period, copies: L.copies },
      refreshes: plan.refreshes,
      predictedServerKeyBytes: plan.chosen.predictedServerKeyBytes,
    };
    if ((L.cts ?? 1) !== 1) throw new ModelError(`${source}: the input spans ${L.cts} ciphertexts; the page client sends one`);
    const cache = new PlainCache(cacheBytes);
    const session = new FheServerSession(
      served,
      ctx,
      plan.lowered,
      prog.inputDims,
      cache,
      ctxMod.galoisCacheSize(plan.params, ctxMod.WASM_MEMORY_BYTES - cacheBytes),
      send,
      ctxMod,
      exec,
    );
    if (opts.modelFile && cacheBytes > 0) {
      // The server's encoded model from an earlier session or run (public plaintexts of the weights), before any client key.
      const pf = await import('../fhe/plainfile.js');
      const digest = pf.programDigest(ctx, plan.lowered);
      const path = pf.plainFileBeside(opts.modelFile, digest);
      try {
        pf.loadPlainCache(ctx, cache, digest, path);
      } catch {
        // A damaged file only costs the encodes; it is rewritten after the first inference.
      }
      session.plainFile = {
        path,
        save: () => {
          try {
            pf.savePlainCache(ctx, cache, digest, path);
          } catch {
            // A read-only model directory: the plaintexts stay in this session's memory only.
          }
        },
      };
    }
    return session;
  }

  private error(message: string): void {
    this.send(encodeWire({ t: 'error', message }));
  }

  /** Check a key or ciphertext file's header (and SHA-256) before SEAL sees its bytes. */
  private file(payload: Uint8Array, what: string, kind: FheFileKind): { header: import('../fhe/context.js').FheFileHeader; payload: Uint8Array } {
    const f = this.ctxMod.decodeFheFile(payload, what, kind);
    this.ctxMod.checkHeader(f.header, what, this.ctx, this.keyId);
    return f;
  }

  private loadKey<T extends { loadArray(c: unknown, a: Uint8Array): void; delete(): void }>(obj: T, payload: Uint8Array, what: string): T {
    try {
      obj.loadArray(this.ctx.context, payload);
      return obj;
    } catch (e) {
      obj.delete();
      throw new Error(`${what}: SEAL could not load it (${String(e).slice(0, 80)})`);
    }
  }

  private onKey(h: WireHeader, payload: Uint8Array): void {
    const kind = h['kind'];
    // The one thing this side must never hold; refused by name, before any parsing.
    if (kind !== 'public' && kind !== 'relin' && kind !== 'galois')
      throw new Error(`key frame of kind '${String(kind)}' refused: the server takes only public, relin and galois keys`);
    if (this.busy) throw new Error('keys cannot change while an inference runs');
    const what = `${kind} key${kind === 'galois' ? ` (step ${String(h['step'])})` : ''}`;
    const f = this.ctxMod.decodeFheFile(payload, what, kind);
    this.keyId ??= f.header.keyId;
    this.ctxMod.checkHeader(f.header, what, this.ctx, this.keyId);
    const seal = this.ctx.seal;
    if (kind === 'public') {
      this.publicKey?.delete();
      this.publicKey = this.loadKey(seal.PublicKey(), f.payload, what);
    } else if (kind === 'relin') {
      this.relinKeys?.delete();
      this.relinKeys = this.loadKey(seal.RelinKeys(), f.payload, what);
    } else {
      const step = Number(f.header.meta['step']);
      if (!this.plan.galoisSteps.includes(step)) throw new Error(`${what}: the plan uses no rotation by ${f.header.meta['step']}`);
      // Kept serialized (seeded, about half the size); expanded on use, as many as fit (CachedGalois).
      this.galoisBytes.set(step, f.payload);
    }
    if (!this.sentReady && this.publicKey && this.relinKeys && this.plan.galoisSteps.every((s) => this.galoisBytes.has(s))) {
      this.sentReady = true;
      this.galois = new this.ctxMod.CachedGalois(
        this.plan.galoisSteps,
        (s) => this.loadKey(seal.GaloisKeys(), this.galoisBytes.get(s)!, `galois key (step ${s})`) as GaloisKeys,
        this.galoisCached,
      );
      this.send(encodeWire({ t: 'ready', keyId: this.keyId }));
    }
  }

  /** The refresh round trip: the masked ciphertext to the client, its fresh encryption back. */
  private refresh = async (masked: Ciphertext): Promise<Ciphertext> => {
    const id = ++this.refreshId;
    const payload = await new Promise<Uint8Array>((resolve, reject) => {
      this.pending = { id, resolve, reject };
      this.send(encodeWire({ t: 'refresh', id }, this.ctxMod.encodeCiphertext(this.ctx, this.keyId!, masked, { role: 'refresh' })));
    });
    const f = this.file(payload, 'refreshed ciphertext', 'ciphertext');
    const ct = this.ctx.seal.CipherText();
    return this.loadKey(ct, f.payload, 'refreshed ciphertext') as Ciphertext;
  };

  private async onInfer(h: WireHeader, payload: Uint8Array): Promise<void> {
    if (!this.sentReady || !this.galois) throw new Error('encrypted image before all keys arrived');
    if (this.busy) throw new Error('one inference at a time per session');
    this.busy = true;
    try {
      const f = this.file(payload, 'encrypted image', 'ciphertext');
      const dims = f.header.meta['dims'] as number[] | undefined;
      if (!Array.isArray(dims) || dims.join(',') !== this.inputDims.join(','))
        throw new Error(`encrypted image has shape [${dims}], the model expects [${this.inputDims}]`);
      const ct = this.loadKey(this.ctx.seal.CipherText(), f.payload, 'encrypted image') as Ciphertext;
      let res;
      try {
        res = await this.exec.inferEncrypted(
          this.ctx,
          { keyId: this.keyId!, publicKey: this.publicKey!, relinKeys: this.relinKeys!, galois: this.galois },
          this.lowered,
          ct,
          { cache: this.cache, refresh: this.refresh },
        );
      } finally {
        ct.delete();
      }
      try {
        const out = this.ctxMod.encodeCiphertext(this.ctx, this.keyId!, res.ct, this.exec.outputMeta(this.lowered, this.plan.model));
        this.send(
          encodeWire(
            {
              t: 'result',
              id: h['id'],
              seconds: res.seconds,
              computeSeconds: res.computeSeconds,
              cpuSeconds: res.cpuSeconds,
              keySeconds: res.keySeconds,
              refreshes: res.refreshes,
              stats: res.stats,
            },
            out,
          ),
        );
        // After the reply: keep what this inference encoded for the next session's first image.
        if (this.plainFile && this.cache.misses > 0 && !this.plainSaved) {
          this.plainSaved = true;
          this.plainFile.save();
        }
      } finally {
        res.ct.delete();
      }
    } finally {
      this.busy = false;
      this.pending = undefined;
    }
  }

  /** Handle one frame from the client; failures are sent back as an error frame (the session stays usable). */
  handle(frame: Uint8Array): void {
    let msg;
    try {
      msg = decodeWire(frame);
    } catch (e) {
      this.error(firstLine(e));
      return;
    }
    const { h, payload } = msg;
    const fail = (e: unknown) => {
      this.error(firstLine(e));
    };
    try {
      if (h.t === 'key') this.onKey(h, payload);
      else if (h.t === 'infer') this.onInfer(h, payload).catch(fail);
      else if (h.t === 'fresh') {
        const p = this.pending;
        if (!p || p.id !== h['id']) throw new Error(`unexpected refreshed ciphertext (id ${String(h['id'])})`);
        this.pending = undefined;
        p.resolve(payload);
      } else throw new Error(`unexpected message '${h.t}' from the client`);
    } catch (e) {
      fail(e);
    }
  }

  /** The client went away: fail a waiting refresh and free every SEAL object. */
  dispose(): void {
    this.pending?.reject(new Error('the client disconnected'));
    this.galois?.dispose();
    this.publicKey?.delete();
    this.relinKeys?.delete();
    this.cache.dispose();
    this.ctx.dispose();
  }
}
