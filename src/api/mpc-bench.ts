/**
 * MPC micro-benchmarks over real processes (`privml mpc bench relu|model`): the dealer and both
 * parties start as separate processes on loopback, as in {@link infer}; the results are what the
 * commands print as JSON.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstLine, OptionError, PrivmlError, ProtocolError } from '../errors.js';
import { typed } from './core.js';
import { resolveModel } from './model-ref.js';
import {
  ALLOC_ENV,
  accounting,
  checkPlan,
  colocatedFlags,
  dealerNetArgs,
  defaultJobFlags,
  type JobFlags,
  jobArgs,
  type NetFlags,
  netArgs,
  parseNet,
  parseProtocol,
  perBatch,
} from './mpc-session.js';

/** Options of {@link benchRelu} (`privml mpc bench relu`). */
export interface BenchReluOptions extends NetFlags {
  /** Elements (default 10,000). */
  n?: number;
  /** Bit range [lsb, msb) (default [0, 64)). */
  msb?: number;
  lsb?: number;
  /** 'signonly' (default), 'crypten', 'fss' or 'fss2'. */
  reluProtocol?: string;
  /** Timed repetitions (default 5). */
  reps?: number;
  /** Dealer material prepared before timing. */
  preprocess?: boolean;
  /** Interleaved lanes per ReLU (default 2). */
  lanes?: number;
}

async function launched<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof PrivmlError || (e as Error)?.name === 'ModelError') return typed(e);
    throw new ProtocolError(firstLine(e));
  }
}

function positive(flag: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 1)) throw new OptionError(`${flag} must be a positive integer, got '${v}'`);
  return v;
}

/** Cost of one ReLU call on n elements: bits per element per party, rounds, median time, compute and waiting per party. */
export async function benchRelu(o: BenchReluOptions = {}) {
  const n = positive('--n', o.n ?? 10_000);
  const reps = positive('--reps', o.reps ?? 5);
  const msb = o.msb ?? 64;
  const lsb = o.lsb ?? 0;
  const protocol = parseProtocol(o.reluProtocol ?? 'signonly');
  const net = parseNet(o);
  const { launchSession } = await import('../mpc/launch.js');
  const { describeNet } = await import('../mpc/net/emulate.js');
  const common = [
    'x',
    '--job',
    'relu',
    '--n',
    String(n),
    '--msb',
    String(msb),
    '--lsb',
    String(lsb),
    '--relu-protocol',
    protocol,
    '--reps',
    String(reps),
    ...(o.preprocess ? ['--preprocess'] : []),
    ...(o.lanes ? ['--lanes', String(o.lanes)] : []),
    ...netArgs(o),
  ];
  const res = await launched(() => launchSession({ dealer: dealerNetArgs(o), party0: common, party1: common, env: ALLOC_ENV }));
  const b0 = res.party0.batches;
  const ms = b0.map((b) => b.ms).sort((x, y) => x - y);
  return {
    protocol,
    n,
    msb,
    lsb,
    net: describeNet(net),
    bytesPerElemPerParty: b0[0]!.bytesSent / n,
    bitsPerElemPerParty: (b0[0]!.bytesSent * 8) / n,
    rounds: b0[0]!.rounds,
    ms: ms[Math.floor(ms.length / 2)]!,
    dealerWaitMs: b0[0]!.dealerWaitMs,
    preprocess: !!o.preprocess,
    // mean over the repetitions, per party
    computeMs: [res.party0, res.party1].map((r) => (r.layers[0]?.computeMs ?? 0) / reps),
    waitMs: [res.party0, res.party1].map((r) => (r.layers[0]?.waitMs ?? 0) / reps),
    profile: [res.party0, res.party1].map((r) => perBatch(r.layers[0]?.profile, reps)),
  };
}

/** Result of {@link benchRelu}. */
export type BenchReluResult = Awaited<ReturnType<typeof benchRelu>>;

/** Options of {@link benchModel} (`privml mpc bench model`): the job flags of {@link infer} plus the timed batches. */
export type BenchModelOptions = Partial<Omit<JobFlags, 'dataset' | 'dataDir' | 'input' | 'limit' | 'count' | 'id' | 'architecture'>> & {
  /** Timed batches (default 5). */
  reps?: number;
};

/**
 * End-to-end private inference of a model on deterministic inputs in [0, 1): time with the dealer online
 * and with an offline phase (online-only), bytes and rounds per batch, per-layer costs.
 */
export async function benchModel(ref: string, opts: BenchModelOptions = {}) {
  const o = defaultJobFlags(opts);
  const reps = positive('--reps', opts.reps ?? 5);
  positive('--batch', o.batch);
  const { model } = resolveModel(ref);
  const per = checkPlan(model, o, ref)
    .inputShape.slice(1)
    .reduce((a, d) => a * d, 1);
  const { launchSession } = await import('../mpc/launch.js');
  const { describeNet } = await import('../mpc/net/emulate.js');
  // Random inputs in [0, 1): cost does not depend on the values.
  const count = o.batch * reps;
  const tmp = join(process.env.TMPDIR ?? tmpdir(), `privml-bench-${process.pid}-${Date.now()}.json`);
  writeFileSync(tmp, JSON.stringify(Array.from({ length: count * per }, (_, i) => ((i * 2654435761) % 1000) / 1000)));
  try {
    const run = async (preprocess: boolean) => {
      const f: JobFlags = colocatedFlags({ ...o, preprocess, warmup: true });
      const res = await launched(() =>
        launchSession({
          dealer: dealerNetArgs(o),
          party1: [ref, '--count', String(count), ...jobArgs(f)],
          party0: [ref, '--input', tmp, ...jobArgs(f)],
          env: ALLOC_ENV,
        }),
      );
      return accounting(res, parseNet(o));
    };
    // preprocess: only the offline/online run (the dealer-online run is skipped)
    const online = o.preprocess ? undefined : await run(false);
    const pre = await run(true);
    const base = online ?? pre;
    return {
      model: ref,
      batch: o.batch,
      weights: o.weights,
      reluProtocol: o.reluProtocol,
      net: describeNet(parseNet(o)),
      // dealer online: the dealer's material travels during the timed batch (no offline phase)
      msPerBatch: online?.msPerBatch ?? null,
      dealerWaitMsPerBatch: online?.dealerWaitMsPerBatch ?? null,
      dealerBytesPerBatch: online?.dealerBytesPerBatch ?? null,
      // offline/online split: the batch's material fetched before its input is shared
      // (offlineMsPerBatch, over the emulated dealer links), then input to output (onlineMsPerBatch)
      onlineMsPerBatch: pre.msPerBatch,
      offlineMsPerBatch: pre.offlineMsPerBatch,
      offlineDealerBytesPerBatch: pre.dealerBytesPerBatch,
      offlinePeerBytesPerBatch: pre.offlinePeerBytesPerBatch,
      onlineComputeMsPerBatch: pre.computeMsPerBatch,
      onlineWaitMsPerBatch: pre.waitMsPerBatch,
      onlineLayers: pre.layers,
      roundsPerBatch: base.roundsPerBatch,
      bytesSentPerBatch: base.bytesSentPerBatch,
      modeledMsPerBatch: base.modeledMsPerBatch,
      computeMsPerBatch: base.computeMsPerBatch,
      waitMsPerBatch: base.waitMsPerBatch,
      layers: base.layers,
    };
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Result of {@link benchModel}. */
export type BenchModelResult = Awaited<ReturnType<typeof benchModel>>;
