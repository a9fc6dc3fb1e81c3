/**
 * Running a lowered program: the server side (`inferEncrypted`: public, relinearisation and
 * Galois keys only) and the client side (`encryptInput`, `decryptOutput`, the refresh helper).
 * Per-step timing, level and — when the caller can decrypt (`fhe run`) — precision against the
 * float64 reference of the same program.
 */
import { packBatch, unpackBatch } from './batch.js';
import type { FheProgram } from './compile.js';
import { simulateProgram } from './compile.js';
import type { Ciphertext, FheContext, PublicKey, SecretKey, ServerKeys } from './context.js';
import type { Layout, Lowered } from './lower.js';
import { packValues } from './lower.js';
import { HeEval, type HeStats, type PlainCache } from './ops.js';
import { maskForRefresh, REFRESH_MASK_LOG2, unmaskRefreshed } from './refresh.js';

/** Per-step report. */
export interface StepReport {
  name: string;
  kind: string;
  seconds: number;
  /** CPU seconds of this process during the step (robust to other load on a shared machine). */
  cpuSeconds: number;
  /** Level left after the step. */
  level: number;
  rotations: number;
  mults: number;
  plainMults: number;
  /** Max |decrypted − reference| over the step's elements (true units), when measured. */
  maxAbsError?: number;
  /** Max |reference| of the step (for relative reading). */
  maxAbsRef?: number;
}

/** Client-aided refresh: the client decrypts the masked ciphertext and returns a fresh top-level encryption. */
export type RefreshClient = (masked: Ciphertext) => Ciphertext | Promise<Ciphertext>;

/** Options of `inferEncrypted`. */
export interface InferOptions {
  /** Needed when the plan has refresh steps. */
  refresh?: RefreshClient;
  /** Model plaintexts kept across inferences (owned by the caller). */
  cache?: PlainCache;
  /** The client's encryptions of the input's rotations `lowered.inputRotations` (same order; not consumed). */
  inputRotations?: readonly Ciphertext[];
  /** Called after every step (progress, precision probes) with the step's output ciphertexts. */
  onStep?: (index: number, report: StepReport, cts: readonly Ciphertext[]) => void;
}

/** Result of an encrypted inference. */
export interface InferResult {
  ct: Ciphertext;
  steps: StepReport[];
  seconds: number;
  /** Seconds spent generating/loading Galois keys inside the run (excluded from `computeSeconds`). */
  keySeconds: number;
  computeSeconds: number;
  /** CPU seconds of this process (Galois key generation included). */
  cpuSeconds: number;
  refreshes: number;
  stats: HeStats;
}

/** Header metadata of an input ciphertext. */
export interface InputMeta extends Record<string, unknown> {
  role: 'input';
  packing: 'grid-v1';
  dims: number[];
  slots: number;
}

/** Header metadata of an output ciphertext. */
export interface OutputMeta extends Record<string, unknown> {
  role: 'output';
  dims: number[];
  slotOf: number[];
  gain: number;
  model: string;
  /** Slot batching: image b's output is at slotOf + b, for b < images (absent: one image). */
  batch?: number;
  images?: number;
}

/**
 * Encrypt up to `lowered.batch` images into one ciphertext (slot batching, src/fhe/batch.ts: image b
 * in the lanes ≡ b mod batch; lanes of missing images hold zeros).
 */
export function encryptBatch(ctx: FheContext, pk: PublicKey, lowered: Lowered, xs: readonly ArrayLike<number>[]): { ct: Ciphertext; meta: InputMeta } {
  const batch = lowered.batch ?? 1;
  const enc = ctx.seal.Encryptor(ctx.context, pk);
  const pt = ctx.encode(packBatch(lowered.input, xs, ctx.slots, batch), ctx.scale);
  try {
    const ct = enc.encrypt(pt) as Ciphertext;
    return { ct, meta: { role: 'input', packing: 'grid-v1', dims: lowered.input.dims, slots: ctx.slots, batch, images: xs.length } };
  } finally {
    pt.delete();
    enc.delete();
  }
}

/** Decrypt a batch output ciphertext into one model output per image. */
export function decryptBatch(ctx: FheContext, sk: SecretKey, ct: Ciphertext, meta: Pick<OutputMeta, 'slotOf' | 'gain' | 'batch' | 'images'>): Float64Array[] {
  const v = decryptSlots(ctx, sk, ct);
  const images = meta.images ?? 1;
  if (!Number.isInteger(images) || images < 1 || images > (meta.batch ?? 1))
    throw new Error(`output header: ${images} images in a batch of ${meta.batch ?? 1}`);
  return Array.from({ length: images }, (_, b) => Float64Array.from(meta.slotOf, (s) => v[s + b]! / meta.gain));
}

/** Encrypt one image (per-image tensor, flat) with the program's input packing. */
export function encryptInput(ctx: FheContext, pk: PublicKey, layout: Layout, x: ArrayLike<number>): { ct: Ciphertext; meta: InputMeta } {
  const enc = ctx.seal.Encryptor(ctx.context, pk);
  const pt = ctx.encode(packValues(layout, x, ctx.slots), ctx.scale);
  try {
    const ct = enc.encrypt(pt) as Ciphertext;
    return { ct, meta: { role: 'input', packing: 'grid-v1', dims: layout.dims, slots: ctx.slots } };
  } finally {
    pt.delete();
    enc.delete();
  }
}

/** rot(v, k)[i] = v[(i + k) mod n]: what a rotation by k does to the slots. */
function rotated(v: Float64Array, k: number): Float64Array {
  const n = v.length;
  return Float64Array.from({ length: n }, (_, i) => v[(i + k) % n]!);
}

/**
 * The client's encryptions of its input's rotations that the plan asks for (`lowered.inputRotations`:
 * the first linear layer's baby steps): it knows the slots, so each costs one encryption, not a
 * top-level key switch on the server.
 */
export function encryptInputRotations(ctx: FheContext, pk: PublicKey, lowered: Lowered, x: ArrayLike<number>): Ciphertext[] {
  const ks = lowered.inputRotations ?? [];
  if (!ks.length) return [];
  const v = new Float64Array(ctx.slots);
  v.set(packValues(lowered.input, x, ctx.slots).subarray(0, ctx.slots));
  const enc = ctx.seal.Encryptor(ctx.context, pk);
  const out: Ciphertext[] = [];
  try {
    for (const k of ks) {
      const pt = ctx.encode(rotated(v, k), ctx.scale);
      try {
        out.push(enc.encrypt(pt) as Ciphertext);
      } finally {
        pt.delete();
      }
    }
    return out;
  } catch (e) {
    for (const c of out) c.delete();
    throw e;
  } finally {
    enc.delete();
  }
}

/**
 * Encrypt one image with the secret key (symmetric), serialized in SEAL's seeded form: the uniform
 * half of the ciphertext is a seed, so the file is about half the size of a public-key encryption.
 */
export function encryptInputSeeded(
  ctx: FheContext,
  pk: PublicKey,
  sk: SecretKey,
  layout: Layout,
  x: ArrayLike<number>,
): { payload: Uint8Array; meta: InputMeta } {
  const enc = ctx.seal.Encryptor(ctx.context, pk, sk);
  const pt = ctx.encode(packValues(layout, x, ctx.slots), ctx.scale);
  try {
    const ser = enc.encryptSymmetricSerializable(pt);
    try {
      return { payload: ser.saveArray(ctx.seal.ComprModeType.zstd), meta: { role: 'input', packing: 'grid-v1', dims: layout.dims, slots: ctx.slots } };
    } finally {
      ser.delete();
    }
  } finally {
    pt.delete();
    enc.delete();
  }
}

/**
 * Encrypt up to `batch` images (slot batching; `layout` is the interleaved input layout) with the
 * secret key, serialized seeded as `encryptInputSeeded` does.
 */
export function encryptBatchSeeded(
  ctx: FheContext,
  pk: PublicKey,
  sk: SecretKey,
  layout: Layout,
  batch: number,
  xs: readonly ArrayLike<number>[],
): { payload: Uint8Array; meta: InputMeta } {
  const enc = ctx.seal.Encryptor(ctx.context, pk, sk);
  const pt = ctx.encode(packBatch(layout, xs, ctx.slots, batch), ctx.scale);
  try {
    const ser = enc.encryptSymmetricSerializable(pt);
    try {
      const meta: InputMeta = { role: 'input', packing: 'grid-v1', dims: layout.dims, slots: ctx.slots, batch, images: xs.length };
      return { payload: ser.saveArray(ctx.seal.ComprModeType.zstd), meta };
    } finally {
      ser.delete();
    }
  } finally {
    pt.delete();
    enc.delete();
  }
}

/** Decrypt all slots; refuses a ciphertext whose remaining modulus cannot hold its scale (levels ran out). */
export function decryptSlots(ctx: FheContext, sk: SecretKey, ct: Ciphertext): Float64Array {
  const bits = ctx.modulusBits(ct);
  const scaleBits = Math.log2(ct.scale);
  // Values need headroom above the scale; without it decoding returns garbage, never numbers to trust.
  if (!(scaleBits + 4 <= bits) || ct.size !== 2) {
    throw new Error(
      `refusing to decode: ciphertext has ${bits} modulus bits left for a ${scaleBits.toFixed(1)}-bit ` +
        `scale${ct.size !== 2 ? ` and size ${ct.size}` : ''} (levels ran out)`,
    );
  }
  const dec = ctx.seal.Decryptor(ctx.context, sk);
  const pt = dec.decrypt(ct)!;
  try {
    const v = ctx.encoder.decode(pt) as Float64Array;
    const out = Float64Array.from(v);
    if (out.some((x) => !Number.isFinite(x))) throw new Error('refusing to decode: non-finite values (levels ran out or wrong key)');
    // A correctly decrypted CKKS value v needs |v|·scale < q/2 for the remaining modulus q ≥ 2^(bits−1).
    // Values at or past that bound mean the plaintext wrapped modulo q — the headroom of the
    // remaining levels ran out (or the key is wrong): whatever decodes is noise, not a result.
    const bound = 2 ** (bits - 2 - scaleBits);
    let peak = 0;
    for (const x of out) peak = Math.max(peak, Math.abs(x));
    if (peak >= bound)
      throw new Error(
        `refusing to decode: a slot holds ${peak.toExponential(2)}, past the ${bound.toExponential(2)} the ` +
          `remaining ${bits} modulus bits can hold at a ${scaleBits.toFixed(1)}-bit scale (headroom of the ` +
          `levels ran out, or wrong key)`,
      );
    return out;
  } finally {
    pt.delete();
    dec.delete();
  }
}

/** Decrypt an output ciphertext into the model output. */
export function decryptOutput(ctx: FheContext, sk: SecretKey, ct: Ciphertext, meta: Pick<OutputMeta, 'slotOf' | 'gain'>): Float64Array {
  const v = decryptSlots(ctx, sk, ct);
  return Float64Array.from(meta.slotOf, (s) => v[s]! / meta.gain);
}

/** A client refresh function: decrypt (the server's mask hides the value) and encrypt afresh at the top level. */
export function localRefresh(ctx: FheContext, sk: SecretKey, pk: PublicKey): RefreshClient {
  return (masked) => {
    const v = decryptSlots(ctx, sk, masked);
    const enc = ctx.seal.Encryptor(ctx.context, pk);
    const pt = ctx.encode(v, ctx.scale);
    try {
      return enc.encrypt(pt) as Ciphertext;
    } finally {
      pt.delete();
      enc.delete();
    }
  };
}

export { REFRESH_MASK_LOG2 } from './refresh.js';

/**
 * One ciphertext through a client-aided refresh: mask and re-randomise (src/fhe/refresh.ts), let the
 * client decrypt and re-encrypt, remove the mask and drop to the level the rest of the chain needs.
 */
async function refreshOne(
  ctx: FheContext,
  keys: ServerKeys,
  cur: Ciphertext,
  maskLog2: number,
  client: RefreshClient,
  resumeLevel?: number,
): Promise<Ciphertext> {
  const { masked, mask } = maskForRefresh(ctx, keys.publicKey, cur, maskLog2);
  let fresh: Ciphertext;
  try {
    fresh = await client(masked);
  } finally {
    masked.delete();
  }
  return unmaskRefreshed(ctx, fresh, mask, resumeLevel);
}

/** Where a split-flow inference stopped: the masked ciphertexts for the client, the masks the server keeps. */
export interface Suspended {
  /** Index of the refresh step in `lowered.steps` (the resume continues there). */
  step: number;
  name: string;
  masked: Ciphertext[];
  masks: Float64Array[];
  /** Level the client's fresh encryption may be made at (the server drops the rest at once). */
  resumeLevel?: number;
}

/** Options of `inferSplit`: stop at the next refresh instead of calling a client; resume from one. */
export interface SplitOptions extends Omit<InferOptions, 'refresh'> {
  /** Resume: the refresh step the inputs answer, and the masks the server put on them. */
  resume?: { step: number; masks: Float64Array[] };
}

/** The loop over lowered steps shared by `inferEncrypted` and `inferSplit`; `cur` is owned (freed or returned). */
async function runSteps(
  ctx: FheContext,
  keys: ServerKeys,
  lowered: Lowered,
  start: Ciphertext[],
  opts: InferOptions & { resume?: { step: number; masks: Float64Array[] }; suspend?: boolean },
): Promise<{ cur: Ciphertext[]; suspended?: Suspended; reports: StepReport[]; refreshes: number; stats: HeStats }> {
  if ('secretKey' in keys && (keys as { secretKey?: unknown }).secretKey) throw new Error('inferEncrypted: the server must not hold the secret key');
  const he = new HeEval(ctx, keys.relinKeys, keys.galois, opts.cache);
  // Cache keys name plans by number: number them in program order, not in order of use, so a process
  // that resumes after a refresh (split flow) names the gemm as the one that ran conv_1 did.
  if (opts.cache) for (const s of lowered.steps) if (s.kind === 'linear') for (const p of s.plans) opts.cache.id(p);
  const first = opts.resume?.step ?? 0;
  if (opts.resume) {
    const s = lowered.steps[first];
    if (s?.kind !== 'refresh') throw new Error(`resume at step ${first}: not a refresh step of this model's plan`);
    if (opts.resume.masks.length !== start.length) throw new Error(`resume at '${s.name}': ${start.length} ciphertexts for ${opts.resume.masks.length} masks`);
  }
  let cur: Ciphertext[] = start;
  const reports: StepReport[] = [];
  let refreshes = 0;
  const free = (cts: Ciphertext[]) => cts.forEach((c) => c.delete());
  // Apply a one-ciphertext operation to each ciphertext; on error, free what was made.
  const each = async (f: (c: Ciphertext) => Ciphertext | Promise<Ciphertext>): Promise<Ciphertext[]> => {
    const out: Ciphertext[] = [];
    try {
      for (const c of cur) out.push(await f(c));
    } catch (e) {
      free(out);
      throw e;
    }
    return out;
  };
  try {
    for (let i = first; i < lowered.steps.length; i++) {
      // Let timers run between steps (SEAL is synchronous): a queue worker renews its job lock here.
      await new Promise<void>((r) => setImmediate(r));
      const s = lowered.steps[i]!;
      const before = { ...he.stats };
      const ts = performance.now();
      const cs = process.cpuUsage();
      let next: Ciphertext[];
      switch (s.kind) {
        case 'linear': {
          const ins = cur;
          next = [];
          // Baby rotations of the inputs, shared by the output ciphertexts' plans (same n1 per step).
          const shared = new Map<string, Ciphertext>();
          if (s.clientBabies) {
            // The client encrypted these rotations of its input: no key switch at the top level.
            const ks = lowered.inputRotations ?? [];
            const given = opts.inputRotations ?? [];
            if (given.length !== ks.length)
              throw new Error(`'${s.name}' takes ${ks.length} client rotations of the input, got ${given.length} (input encrypted for another plan?)`);
            ks.forEach((k, j) => shared.set(`0:${k}`, given[j]!.clone()));
          }
          try {
            for (const p of s.plans) next.push(he.linear(ins, p, s.name, shared));
          } catch (e) {
            free(next);
            throw e;
          } finally {
            free([...shared.values()]);
          }
          break;
        }
        case 'sumpool': {
          const kw = s.src.kind === 'sumpool' ? s.src.kernel[1] : 1;
          next = await each((c) => he.sumPool(c, s.shifts.slice(0, kw - 1), s.shifts.slice(kw - 1)));
          break;
        }
        case 'paf':
          next = await each((c) => he.pafRelu(c, s.src.stages, s.name));
          break;
        case 'scale':
          next = await each((c) => he.mulScalar(c, s.factor, s.name));
          break;
        case 'maxlevel': {
          const n = ctx.slots;
          let c = 0;
          next = await each((x) => he.pafMaxLevel(x, s.shift, s.stages, s.mask.subarray(n * c, n * ++c), s.name));
          break;
        }
        case 'refresh': {
          const maskLog2 = s.maskLog2 ?? REFRESH_MASK_LOG2;
          if (opts.resume && i === first) {
            // The client's fresh encryptions of x + m (split flow): take the masks off.
            const masks = opts.resume.masks;
            cur.forEach((f, c) => unmaskRefreshed(ctx, f, masks[c]!, s.resumeLevel));
            next = cur;
            cur = [];
          } else if (opts.suspend) {
            // Split flow: stop here; the masked ciphertexts go to the client, the masks stay with the server.
            const masked: Ciphertext[] = [];
            const masks: Float64Array[] = [];
            try {
              for (const c of cur) {
                const m = maskForRefresh(ctx, keys.publicKey, c, maskLog2);
                masked.push(m.masked);
                masks.push(m.mask);
              }
            } catch (e) {
              free(masked);
              throw e;
            }
            free(cur);
            cur = [];
            return { cur: [], suspended: { step: i, name: s.name, masked, masks, resumeLevel: s.resumeLevel }, reports, refreshes, stats: { ...he.stats } };
          } else {
            const client = opts.refresh;
            if (!client) throw new Error(`plan needs a client-aided refresh at '${s.name}' but no client is connected (use 'privml fhe run')`);
            // One round trip carries every ciphertext of the tensor, each with its own mask.
            next = await each((c) => refreshOne(ctx, keys, c, maskLog2, client, s.resumeLevel));
          }
          refreshes++;
          break;
        }
      }
      free(cur);
      cur = next;
      const r: StepReport = {
        name: s.name,
        kind: s.kind === 'paf' ? `paf:${s.src.paf}` : s.kind === 'maxlevel' ? `maxpool:${s.src.paf}` : s.kind,
        seconds: (performance.now() - ts) / 1000,
        cpuSeconds: ((u) => (u.user + u.system) / 1e6)(process.cpuUsage(cs)),
        level: he.level(cur[0]!),
        rotations: he.stats.rotations - before.rotations,
        mults: he.stats.mults - before.mults,
        plainMults: he.stats.plainMults - before.plainMults,
      };
      reports.push(r);
      opts.onStep?.(i, r, cur);
    }
  } catch (e) {
    free(cur);
    throw e;
  }
  return { cur, reports, refreshes, stats: { ...he.stats } };
}

/** Timing of a run (wall, Galois key, CPU seconds) measured around `f`. */
async function timed<T>(keys: ServerKeys, f: () => Promise<T>): Promise<{ r: T; seconds: number; keySeconds: number; cpuSeconds: number }> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const k0 = keys.galois.seconds;
  const r = await f();
  const cu = process.cpuUsage(c0);
  return { r, seconds: (performance.now() - t0) / 1000, keySeconds: keys.galois.seconds - k0, cpuSeconds: (cu.user + cu.system) / 1e6 };
}

function oneOutput(cur: Ciphertext[]): Ciphertext {
  if (cur.length === 1) return cur[0]!;
  for (const c of cur) c.delete();
  throw new Error(`the model output is spread over ${cur.length} ciphertexts; only one is supported`);
}

/** Server side: run the lowered program on an input ciphertext (not consumed). */
export async function inferEncrypted(ctx: FheContext, keys: ServerKeys, lowered: Lowered, input: Ciphertext, opts: InferOptions = {}): Promise<InferResult> {
  const { r, seconds, keySeconds, cpuSeconds } = await timed(keys, () => runSteps(ctx, keys, lowered, [input.clone()], opts));
  return {
    ct: oneOutput(r.cur),
    steps: r.reports,
    seconds,
    keySeconds,
    computeSeconds: seconds - keySeconds,
    cpuSeconds,
    refreshes: r.refreshes,
    stats: r.stats,
  };
}

/**
 * Server side of the split flow (no client online): run from the input (or from the client's answer
 * to a refresh, `opts.resume`) until the output — or until the next refresh step, where it stops with
 * the masked ciphertexts for the client (`suspended`). The inputs are not consumed.
 */
export async function inferSplit(
  ctx: FheContext,
  keys: ServerKeys,
  lowered: Lowered,
  inputs: readonly Ciphertext[],
  opts: SplitOptions = {},
): Promise<Omit<InferResult, 'ct'> & { ct?: Ciphertext; suspended?: Suspended }> {
  const { r, seconds, keySeconds, cpuSeconds } = await timed(keys, () => {
    return runSteps(
      ctx,
      keys,
      lowered,
      inputs.map((c) => c.clone()),
      { ...opts, suspend: true },
    );
  });
  const base = { steps: r.reports, seconds, keySeconds, computeSeconds: seconds - keySeconds, cpuSeconds, refreshes: r.refreshes, stats: r.stats };
  if (r.suspended) return { ...base, suspended: r.suspended };
  return { ...base, ct: oneOutput(r.cur) };
}

/** Output metadata for a lowered program (`images`: how many lanes of a batch hold images). */
export function outputMeta(lowered: Lowered, model: string, images?: number): OutputMeta {
  const m: OutputMeta = { role: 'output', dims: lowered.output.dims, slotOf: Array.from(lowered.output.slotOf), gain: lowered.outputGain, model };
  if ((lowered.batch ?? 1) > 1) Object.assign(m, { batch: lowered.batch, images: images ?? lowered.batch });
  return m;
}

/**
 * A precision probe for `fhe run`: after each step, decrypt and compare with the float64 reference
 * of the same program on the same image (only possible where the secret key is, i.e. the client).
 * `x` may be a batch's images (slot batching): the error is then the largest over its images.
 */
export function precisionProbe(
  ctx: FheContext,
  sk: SecretKey,
  program: FheProgram,
  lowered: Lowered,
  x: ArrayLike<number> | readonly ArrayLike<number>[],
): (i: number, r: StepReport, cts: readonly Ciphertext[]) => void {
  const xs = Array.isArray(x) && typeof x[0] !== 'number' ? (x as readonly ArrayLike<number>[]) : [x as ArrayLike<number>];
  const refs = xs.map((xi) => simulateProgram(program, xi));
  return (i, r, cts) => {
    const s = lowered.steps[i]!;
    if (s.kind === 'refresh' || s.kind === 'scale' || (s.kind === 'maxlevel' && !s.final)) return;
    const k = program.steps.indexOf(s.src);
    // The ciphertexts' slots one after another: a multi-ciphertext layout's slotOf is global.
    const slots = new Float64Array(cts.length * ctx.slots);
    cts.forEach((ct, c) => slots.set(decryptSlots(ctx, sk, ct), c * ctx.slots));
    const gots = unpackBatch(s.out, slots, s.gain, refs.length);
    let err = 0;
    let mx = 0;
    refs.forEach((ref, b) => {
      const want = ref[k]!;
      const got = gots[b]!;
      for (let j = 0; j < want.length; j++) {
        err = Math.max(err, Math.abs(got[j]! - want[j]!));
        mx = Math.max(mx, Math.abs(want[j]!));
      }
    });
    r.maxAbsError = err;
    r.maxAbsRef = mx;
  };
}
