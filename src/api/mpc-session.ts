/**
 * One MPC session as a job: the flags a launcher takes, party 0's inputs, the plan checks that refuse a
 * bad model before any process starts, the launch of dealer and both parties on loopback, and the
 * accounting of time, bytes and rounds. `privml mpc infer`, `demo`, `hummingbird` and {@link infer} in
 * ./mpc.ts all run this code.
 */
import { readFileSync } from 'node:fs';
import { DataError, firstLine, ModelError, OptionError } from '../errors.js';
import { type HbConfig, validateConfig } from '../hummingbird/config.js';
import type { BitRange, LayerStat, WeightMode } from '../mpc/executor.js';
import { type LaunchResult, launchSession } from '../mpc/launch.js';
import { describeNet, NET_PRESETS, type NetProfile, parseNetOptions } from '../mpc/net/emulate.js';
import { checkPlanWeights, MIN_FRAC_BITS, type MpcPlan, maxFracBits, planModel } from '../mpc/plan.js';
import { emptyProfile, type Profile } from '../mpc/profile.js';
import type { ReluProtocol } from '../mpc/protocols/compare.js';
import type { ModelJob, PartyReport } from '../mpc/roles.js';
import { availableThreads, sharedHostThreads } from '../mpc/threads/pool.js';
import { readIdx } from '../nn/data/idx.js';
import type { Model, Tensor } from '../onnx/ir.js';
import { loadNpy } from '../onnx/npy.js';
import { runOrt } from '../onnx/ort.js';
import { loadDatasetSync } from './data.js';
import { resolveModel } from './model-ref.js';

/** Flags shared by every command that sets up a session. */
export interface NetFlags {
  net?: string;
  /** Profile of the dealer's links (both ends), when it differs from the parties' link. */
  dealerNet?: string;
  bandwidth?: string;
  latency?: string;
  timeout?: string;
  connectTimeout?: string;
}

/** Flags of a model job. */
export interface JobFlags extends NetFlags {
  weights: string;
  reluProtocol: string;
  reluConfig?: string;
  batch: number;
  fracBits: number;
  preprocess?: boolean;
  warmup?: boolean;
  dataset?: string;
  dataDir?: string;
  limit?: number;
  input?: string;
  count?: number;
  /** Worker threads per party (default: the cores available; half of them each when one command starts both parties). */
  threads?: number;
  /** Interleaved lanes per large ReLU/MaxPool (default 2; 1: no overlap). */
  lanes?: number;
  /** Tests only (hidden `--fault-worker-crash`): each party's thread pool kills a worker at its first task. */
  faultWorkerCrash?: boolean;
  /** `mpc infer --weights secret`: the architecture file party 0 loads instead of the model. */
  architecture?: string;
  /** `mpc party --id`: which party this process is ('0' or '1'); unset for launchers. */
  id?: string;
}

export function parseWeights(v: string): WeightMode {
  if (v !== 'public' && v !== 'secret') throw new OptionError(`--weights must be public or secret, got '${v}'`);
  return v;
}

export function parseProtocol(v: string): ReluProtocol {
  if (v !== 'signonly' && v !== 'crypten' && v !== 'fss' && v !== 'fss2')
    throw new OptionError(`--relu-protocol must be signonly, crypten, fss or fss2, got '${v}'`);
  return v;
}

export function parseNet(o: NetFlags) {
  try {
    return parseNetOptions(o);
  } catch (e) {
    throw new OptionError((e as Error).message);
  }
}

/** Read a --relu-config file: {"layers": {node: {msb, lsb}}} or a plain {node: {msb, lsb}} map. */
export function readReluConfig(path: string, model: Model): Record<string, BitRange> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DataError(`${path}: cannot read ReLU config (${(e as Error).message.split('\n')[0]})`);
  }
  // `null` is valid JSON: check the top level before reading fields from it.
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DataError(`${path}: expected an object of per-node bit ranges`);
  const obj = (raw as { layers?: unknown }).layers ?? raw;
  if (typeof obj !== 'object' || obj === null) throw new DataError(`${path}: expected an object of per-node bit ranges`);
  const nodes = new Set(model.graph.nodes.filter((n) => n.opType === 'Relu' || n.opType === 'MaxPool').map((n) => n.name));
  const out: Record<string, BitRange> = {};
  for (const [name, v] of Object.entries(obj as Record<string, { msb?: unknown; lsb?: unknown }>)) {
    if (!nodes.has(name)) throw new DataError(`${path}: '${name}' is not a Relu or MaxPool node of the model`);
    const msb = Number(v?.msb);
    const lsb = Number(v?.lsb ?? 0);
    if (!Number.isInteger(msb) || !Number.isInteger(lsb) || lsb < 0 || msb > 64 || lsb > msb) {
      throw new DataError(`${path}: node '${name}' needs integers 0 ≤ lsb ≤ msb ≤ 64, got msb=${v?.msb} lsb=${v?.lsb ?? 0}`);
    }
    out[name] = { msb, lsb };
  }
  // A `hummingbird search` config carries its model's hash: refuse it on any other model.
  const meta = (raw as { hummingbird?: HbConfig['hummingbird'] }).hummingbird;
  if (meta !== undefined) {
    try {
      validateConfig({ layers: out, hummingbird: meta }, model, path);
    } catch (e) {
      throw new DataError(firstLine(e));
    }
  }
  return out;
}

/** Party 0's inputs: a data set split or a file, checked against the model's input size. */
export function loadInputs(o: JobFlags, model: Model): { images: Float32Array; labels?: Uint8Array; count: number; name: string } {
  // Sizes from the compiled plan (batch 1): every other dim is concrete there, or the plan is refused.
  const plan = checkPlan(model, { ...o, batch: 1 }, model.graph.name);
  const per = plan.inputShape.slice(1).reduce((a, d) => a * d, 1);
  const outPer = plan.outputShape.slice(1).reduce((a, d) => a * d, 1);
  if (o.input) {
    let data: Float32Array;
    if (o.input.endsWith('.json')) {
      let v: unknown;
      try {
        v = JSON.parse(readFileSync(o.input, 'utf8'));
      } catch (e) {
        throw new DataError(`${o.input}: cannot read JSON input (${(e as Error).message.split('\n')[0]})`);
      }
      const flat = (Array.isArray(v) ? v : (v as { data?: unknown }).data) as unknown;
      if (!Array.isArray(flat)) throw new DataError(`${o.input}: expected a JSON array of numbers (or {"data": [...]})`);
      const nums = (flat as unknown[]).flat(Infinity) as unknown[];
      if (!nums.every((x) => typeof x === 'number' && Number.isFinite(x))) throw new DataError(`${o.input}: every value must be a finite number`);
      data = Float32Array.from(nums as number[]);
    } else if (o.input.endsWith('.npy')) {
      let t: Tensor;
      try {
        t = loadNpy(o.input);
      } catch (e) {
        throw new DataError(firstLine(e));
      }
      if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new DataError(`${o.input}: ${t.dtype} array, expected float32 or float64`);
      data = Float32Array.from(t.data as Float32Array | Float64Array);
      if (!data.every(Number.isFinite)) throw new DataError(`${o.input}: every value must be a finite number`);
    } else {
      const idx = readIdx(o.input);
      data = Float32Array.from(idx.data, (b) => b / 255);
    }
    if (data.length === 0 || data.length % per !== 0) throw new DataError(`${o.input}: ${data.length} values is not a whole number of inputs of ${per} values`);
    const count = Math.min(data.length / per, o.limit ?? Infinity);
    return { images: data.subarray(0, count * per), count, name: o.input };
  }
  if (!o.dataset) throw new OptionError('give --dataset (with --limit) or --input');
  const ds = loadDatasetSync(o.dataset, { split: 'test', dataDir: o.dataDir, limit: o.limit });
  if (ds.images.length / ds.n !== per) throw new DataError(`${ds.name} images have ${ds.images.length / ds.n} values, the model expects ${per}`);
  if (ds.shape.join() !== plan.inputShape.slice(1).join())
    throw new DataError(`${ds.name} images are [${ds.shape}], the model's input is [${plan.inputShape.slice(1)}]`);
  if (ds.classes.length !== outPer) throw new DataError(`${ds.name} has ${ds.classes.length} classes, the model outputs ${outPer} values per image`);
  return { images: ds.images, labels: ds.labels, count: ds.n, name: ds.name };
}

export function modelJob(o: JobFlags, model: Model, inputs: Float32Array | undefined, count: number): ModelJob {
  return {
    kind: 'model',
    model,
    weights: parseWeights(o.weights),
    reluProtocol: parseProtocol(o.reluProtocol),
    reluConfig: o.reluConfig ? readReluConfig(o.reluConfig, model) : undefined,
    batch: o.batch,
    count,
    inputs,
    preprocess: !!o.preprocess,
    warmup: !!o.warmup,
    threads: o.threads ?? availableThreads(),
    ...(o.lanes ? { lanes: o.lanes } : {}),
    ...(o.faultWorkerCrash ? { faultWorkerCrash: true } : {}),
  };
}

/**
 * The job flags of a command that starts both parties on this host: without --threads, each party
 * gets half the cores (`sharedHostThreads`), not all of them as a party started on its own would.
 */
export function colocatedFlags(o: JobFlags): JobFlags {
  return o.threads === undefined ? { ...o, threads: sharedHostThreads(2) } : o;
}

/** Forward the job flags a launcher passes on to both parties. */
export function jobArgs(o: JobFlags): string[] {
  const a = ['--weights', o.weights, '--relu-protocol', o.reluProtocol, '--batch', String(o.batch), '--frac-bits', String(o.fracBits)];
  if (o.reluConfig) a.push('--relu-config', o.reluConfig);
  if (o.preprocess) a.push('--preprocess');
  if (o.warmup) a.push('--warmup');
  if (o.threads !== undefined) a.push('--threads', String(o.threads));
  if (o.lanes !== undefined) a.push('--lanes', String(o.lanes));
  if (o.faultWorkerCrash) a.push('--fault-worker-crash');
  return [...a, ...netArgs(o)];
}

export function netArgs(o: NetFlags): string[] {
  const a: string[] = [];
  if (o.net) a.push('--net', o.net);
  if (o.dealerNet) a.push('--dealer-net', o.dealerNet);
  if (o.bandwidth) a.push('--bandwidth', o.bandwidth);
  if (o.latency) a.push('--latency', o.latency);
  if (o.timeout) a.push('--timeout', o.timeout);
  if (o.connectTimeout) a.push('--connect-timeout', o.connectTimeout);
  return a;
}

/** The dealer process's flags: its links use --dealer-net when given (the parties' profile otherwise). */
export function dealerNetArgs(o: NetFlags): string[] {
  if (!o.dealerNet) return netArgs(o);
  parseDealerNet(o); // a bad value is refused here, naming --dealer-net, before any process starts
  return netArgs({ net: o.dealerNet, timeout: o.timeout, connectTimeout: o.connectTimeout });
}

/** The dealer links' profile for a party (`--dealer-net`, else the parties' own). */
export function parseDealerNet(o: NetFlags) {
  if (!o.dealerNet) return parseNet(o);
  if (!Object.hasOwn(NET_PRESETS, o.dealerNet))
    throw new OptionError(`unknown --dealer-net value '${o.dealerNet}' (expected ${Object.keys(NET_PRESETS).join(', ')})`);
  return parseNet({ net: o.dealerNet });
}

/** Sum of a party's batch stats. */
export function totals(r: PartyReport) {
  const t = { ms: 0, dealerWaitMs: 0, offlineMs: 0, offlinePeerBytes: 0, dealerBytes: 0, bytesSent: 0, bytesReceived: 0, rounds: 0, modeledMs: 0 };
  for (const b of r.batches) {
    t.ms += b.ms;
    t.dealerWaitMs += b.dealerWaitMs;
    t.offlineMs += b.offlineMs;
    t.offlinePeerBytes += b.offlinePeerBytes;
    t.dealerBytes += b.dealerBytes;
    t.bytesSent += b.bytesSent;
    t.bytesReceived += b.bytesReceived;
    t.rounds += b.rounds;
    t.modeledMs += b.modeledMs;
  }
  return t;
}

const sumOf = (ls: LayerStat[], k: 'computeMs' | 'waitMs'): number => ls.reduce((a, l) => a + (l[k] ?? 0), 0);

/** A summed profile divided by the number of batches (an empty one if missing). */
export function perBatch(p: Profile | undefined, nb: number): Profile {
  const out = emptyProfile();
  if (p) for (const k of Object.keys(out) as (keyof Profile)[]) out[k] = (p[k] ?? 0) / nb;
  return out;
}

/** The accounting both `infer` and `bench model` print. */
export function accounting(res: LaunchResult, net: NetProfile) {
  const t0 = totals(res.party0);
  const t1 = totals(res.party1);
  const nb = res.party0.batches.length;
  return {
    batches: nb,
    msPerBatch: t0.ms / nb,
    dealerWaitMsPerBatch: Math.max(t0.dealerWaitMs, t1.dealerWaitMs) / nb,
    /** --preprocess: the offline phase per batch (dealer material fetched before the input is shared; not in msPerBatch). */
    offlineMsPerBatch: Math.max(t0.offlineMs, t1.offlineMs) / nb,
    /** Bytes each party received from the dealer per batch (offline with --preprocess, else during msPerBatch). */
    dealerBytesPerBatch: [t0.dealerBytes / nb, t1.dealerBytes / nb],
    /** --preprocess: bytes each party sent its peer in the offline phase (party 0: the input's mask). */
    offlinePeerBytesPerBatch: [t0.offlinePeerBytes / nb, t1.offlinePeerBytes / nb],
    bytesSentPerBatch: [t0.bytesSent / nb, t1.bytesSent / nb],
    roundsPerBatch: t0.rounds / nb,
    modeledMsPerBatch: Math.max(t0.modeledMs, t1.modeledMs) / nb,
    dealerBytesSent: res.dealer.bytesSent,
    computeMsPerBatch: [sumOf(res.party0.layers, 'computeMs') / nb, sumOf(res.party1.layers, 'computeMs') / nb],
    waitMsPerBatch: [sumOf(res.party0.layers, 'waitMs') / nb, sumOf(res.party1.layers, 'waitMs') / nb],
    layers: res.party0.layers.map((l, i) => ({
      name: l.name,
      op: l.op,
      computeMs: [l.computeMs / nb, (res.party1.layers[i]?.computeMs ?? 0) / nb],
      waitMs: [l.waitMs / nb, (res.party1.layers[i]?.waitMs ?? 0) / nb],
      profile: [perBatch(l.profile, nb), perBatch(res.party1.layers[i]?.profile, nb)],
      rounds: l.rounds / nb,
      bytesSent: [l.bytesSent / nb, (res.party1.layers[i]?.bytesSent ?? 0) / nb],
      ms: l.ms / nb,
      modeledMs: (Math.max(l.bytesSent, res.party1.layers[i]?.bytesSent ?? 0) * 8 * 1000) / nb / net.bandwidthBitsPerSec + (l.rounds / nb) * 2 * net.latencyMs,
    })),
  };
}

/** Result of {@link privateInference}. */
export type InferResult = ReturnType<typeof accounting> & {
  model: string;
  inputs: string;
  count: number;
  batch: number;
  weights: string;
  reluProtocol: string;
  net: string;
  predictions: number[];
  accuracy?: number;
  agreement: number;
  maxLogitDiff: number;
};

/**
 * Private inference of `ref` on party 0's inputs with the dealer and both parties as separate
 * processes on loopback, compared in the same run with plaintext onnxruntime.
 */
export async function privateInference(ref: string, o: JobFlags, log: (line: string) => void = () => {}): Promise<InferResult> {
  const { model, source } = resolveModel(ref);
  parseWeights(o.weights);
  parseProtocol(o.reluProtocol);
  if (o.reluConfig) readReluConfig(o.reluConfig, model);
  const net = parseNet(o);
  // Refuse a model the MPC runtime cannot run (every offending node) before any process starts.
  checkPlan(model, o, source);
  if (o.architecture && o.weights !== 'secret')
    throw new OptionError('--architecture is for --weights secret (with public weights both parties load the model)');
  const inp = loadInputs(o, model);
  const dataArgs = o.input ? ['--input', o.input] : ['--dataset', o.dataset!, ...(o.dataDir ? ['--data-dir', o.dataDir] : [])];
  if (o.limit) dataArgs.push('--limit', String(o.limit));
  log(
    `private inference of ${source} on ${inp.count} inputs of ${inp.name}: batch ${o.batch}, ${o.weights} ` +
      `weights, ${o.reluProtocol} ReLU, network ${describeNet(net)}`,
  );
  const res = await launchSession({
    dealer: dealerNetArgs(o),
    party1: [ref, '--count', String(inp.count), ...jobArgs(colocatedFlags(o))],
    party0: [o.architecture ?? ref, ...dataArgs, ...jobArgs(colocatedFlags(o))],
    env: ALLOC_ENV,
  });
  const preds = predictions(res.party0)!;
  // Plaintext reference on the same inputs, in this run: onnxruntime, the ground truth.
  const plan = planModel(model, 1, source);
  const plain = (await runOrt(model, { [plan.input]: { dtype: 'float32', dims: [inp.count, ...plan.inputShape.slice(1)], data: inp.images } }))[
    model.graph.outputs[0]!.name
  ]!.data as Float32Array;
  const k = res.party0.outputShape!.reduce((a, b) => a * b, 1);
  let agree = 0;
  let maxDiff = 0;
  for (let i = 0; i < inp.count; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (plain[i * k + j]! > plain[i * k + best]!) best = j;
    if (best === preds[i]) agree++;
    for (let j = 0; j < k; j++) maxDiff = Math.max(maxDiff, Math.abs(plain[i * k + j]! - res.party0.outputs![i * k + j]!));
  }
  const accuracy = inp.labels ? preds.filter((p, i) => p === inp.labels![i]).length / inp.count : undefined;
  return {
    model: source,
    inputs: inp.name,
    count: inp.count,
    batch: o.batch,
    weights: o.weights,
    reluProtocol: o.reluProtocol,
    net: describeNet(net),
    predictions: preds,
    accuracy,
    agreement: agree / inp.count,
    maxLogitDiff: maxDiff,
    ...accounting(res, net),
  };
}

/** Build the MPC plan in this process (and check weights), so a bad model fails before any role starts. */
export function checkPlan(model: Model, o: JobFlags, source: string): MpcPlan {
  let plan: MpcPlan;
  try {
    plan = planModel(model, o.batch, source);
  } catch (e) {
    throw new ModelError(firstLine(e));
  }
  const f = o.fracBits;
  const max = maxFracBits(plan);
  if (!Number.isInteger(f) || f < MIN_FRAC_BITS || f > max) {
    throw new OptionError(
      `--frac-bits must be an integer in [${MIN_FRAC_BITS}, ${max}] for ${source} (fixed-point headroom of its ${plan.steps.length} steps), got ${o.fracBits}`,
    );
  }
  if (o.reluConfig && o.reluProtocol === 'crypten')
    throw new OptionError('--relu-config sets sign-only bit ranges; it cannot be used with --relu-protocol crypten');
  if (o.weights !== 'secret' || o.id !== '0') {
    // Whoever holds the real weights checks them (party 0 of --weights secret holds only the architecture).
    try {
      checkPlanWeights(plan);
    } catch (e) {
      throw new ModelError(firstLine(e));
    }
  }
  return plan;
}

/** Default job flags (as the CLI would parse them), for callers such as `privml demo`. */
export function defaultJobFlags(over: Partial<JobFlags> = {}): JobFlags {
  return { weights: 'public', reluProtocol: 'signonly', batch: 1, fracBits: 16, net: 'none', ...over };
}

/** glibc allocator settings for the role processes: keep freed wasm-sized blocks instead of unmapping them. */
export const ALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_TRIM_THRESHOLD_: '268435456' };

/** Party 0's predicted classes from its decoded outputs. */
export function predictions(r: PartyReport): number[] | undefined {
  if (!r.outputs || !r.outputShape) return undefined;
  const k = r.outputShape.reduce((a, b) => a * b, 1);
  const n = r.outputs.length / k;
  return Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (r.outputs![i * k + j]! > r.outputs![i * k + best]!) best = j;
    return best;
  });
}

export type { RoleMessage } from '../mpc/launch.js';
/** For the CLI's tables and flags: profile sums, the role IPC messages, the thread count parties use. */
export { addProfile, computeMs, emptyProfile, PROFILE_KEYS, type Profile } from '../mpc/profile.js';
export { availableThreads, sharedHostThreads, threadsProblem } from '../mpc/threads/pool.js';
