/**
 * Two-party private inference (the `privml mpc infer` job): a dealer and two parties run as separate
 * processes on loopback; party 0 holds the inputs, party 1 the model; the result is compared in the same
 * run with the plaintext float runtime.
 */
import { firstLine, PrivmlError, ProtocolError } from '../errors.js';
import { typed } from './core.js';
import type { InferResult } from './mpc-session.js';

export type { InferResult } from './mpc-session.js';

/** Options of {@link infer}: where party 0's inputs come from, and the protocol settings. */
export interface InferOptions {
  /** Inputs from a data set (default fashion-mnist-sample) … */
  dataset?: 'fashion-mnist' | 'fashion-mnist-sample' | 'cifar10';
  /** … read from this directory … */
  dataDir?: string;
  /** … or from a file: .npy (float32/64), IDX images (.gz ok) or a JSON array of floats. */
  inputFile?: string;
  /** Number of inputs (default: all). */
  limit?: number;
  /** Images per private inference (default 1). */
  batch?: number;
  /** 'public': both parties know the weights; 'secret': party 1 secret-shares them (default public). */
  weights?: 'public' | 'secret';
  /** ReLU protocol: 'signonly' (packed sign-only carry tree, default) or 'crypten' (baseline). */
  reluProtocol?: 'signonly' | 'crypten';
  /** HummingBird bit-range config file (from {@link hummingbird.search}). */
  reluConfig?: string;
  /** Fixed-point fractional bits (default 16). */
  fracBits?: number;
  /** Network emulation: 'none' (default), 'lan', 'wan', or custom bandwidth/latency. */
  net?: 'none' | 'lan' | 'wan';
  /** Custom emulated bandwidth, e.g. '1gbit'. */
  bandwidth?: string;
  /** Custom emulated one-way latency, e.g. '20ms'. */
  latency?: string;
  /** Prepare each batch's dealer material before timing it (online-only time). */
  preprocess?: boolean;
  /** Run an untimed warm-up batch first. */
  warmup?: boolean;
  /** Progress lines (never shares or inputs). */
  log?: (line: string) => void;
}

/**
 * Private inference of `model` (an .onnx path or a zoo name; the role processes load it themselves):
 * predictions, agreement with the plaintext model, time, bytes and rounds per batch, per-layer costs.
 */
export async function infer(model: string, opts: InferOptions = {}): Promise<InferResult> {
  const { privateInference, defaultJobFlags } = await import('./mpc-session.js');
  const flags = defaultJobFlags({
    dataset: opts.inputFile ? undefined : (opts.dataset ?? 'fashion-mnist-sample'),
    dataDir: opts.dataDir,
    input: opts.inputFile,
    limit: opts.limit,
    batch: opts.batch ?? 1,
    weights: opts.weights ?? 'public',
    reluProtocol: opts.reluProtocol ?? 'signonly',
    reluConfig: opts.reluConfig,
    fracBits: opts.fracBits ?? 16,
    net: opts.net ?? 'none',
    bandwidth: opts.bandwidth,
    latency: opts.latency,
    preprocess: opts.preprocess,
    warmup: opts.warmup,
  });
  try {
    return await privateInference(model, flags, opts.log);
  } catch (e) {
    const name = (e as Error)?.name;
    if (e instanceof PrivmlError || name === 'CliError' || name === 'ModelError') return typed(e);
    throw new ProtocolError(`private inference of ${model}: ${firstLine(e)}`);
  }
}

export type { BenchModelOptions, BenchModelResult, BenchReluOptions, BenchReluResult } from './mpc-bench.js';
export type { DealerProcessOptions, PartyProcessOptions, RoleHandle, RoleProcessOptions } from './mpc-process.js';
export type { ArchitectureExport, DealerRoleOptions, DealerServerStats, PartyReport, PartyRoleOptions, PartyRun, RoleNetOptions } from './mpc-roles.js';

// The entries below load the engine on first use, so `import 'privml'` stays light.
type Roles = typeof import('./mpc-roles.js');
type Processes = typeof import('./mpc-process.js');
type Bench = typeof import('./mpc-bench.js');

/** Run the dealer in this process until its session ends (`privml mpc dealer`); returns its traffic statistics. */
export const runDealer: Roles['runDealer'] = async (o) => (await import('./mpc-roles.js')).runDealer(o);
/** Run one party in this process until its session ends (`privml mpc party`); returns its report and party 0's predictions. */
export const runParty: Roles['runParty'] = async (ref, o) => (await import('./mpc-roles.js')).runParty(ref, o);
/** Start the dealer as a child process; resolves once it listens, with a handle (port, result, close()). */
export const startDealer: Processes['startDealer'] = async (o) => (await import('./mpc-process.js')).startDealer(o);
/** Start one party as a child process (party 1: once it listens), with a handle (port, result, close()). */
export const startParty: Processes['startParty'] = async (model, o) => (await import('./mpc-process.js')).startParty(model, o);
/** Cost of one ReLU call over real processes (`privml mpc bench relu`). */
export const benchRelu: Bench['benchRelu'] = async (o) => (await import('./mpc-bench.js')).benchRelu(o);
/** End-to-end private inference cost of a model, dealer online and with an offline phase (`privml mpc bench model`). */
export const benchModel: Bench['benchModel'] = async (ref, o) => (await import('./mpc-bench.js')).benchModel(ref, o);
/** Write the zero-weight architecture file party 0 loads for `weights: 'secret'` (`privml mpc export-architecture`). */
export const exportArchitecture: Roles['exportArchitecture'] = async (ref, out) => (await import('./mpc-roles.js')).exportArchitecture(ref, out);
/** Make a test CA and role certificates with openssl (`privml mpc certs`). */
export const makeCertificates: Roles['makeCertificates'] = async (dir, days) => (await import('./mpc-roles.js')).makeCertificates(dir, days);
