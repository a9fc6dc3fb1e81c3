/** `privml mpc …`: two-party secret-shared inference (dealer, parties, all-in-one infer, benches). */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { runOrt } from '../onnx/ort.js';
import { readIdx } from '../nn/data/idx.js';
import { launchSession, type LaunchResult, type RoleMessage } from '../mpc/launch.js';
import { parseNetOptions, describeNet, type NetProfile } from '../mpc/net/emulate.js';
import { parseEndpoint, runDealer, runParty, type ModelJob, type PartyReport, type ReluJob } from '../mpc/roles.js';
import type { BitRange, WeightMode } from '../mpc/executor.js';
import type { ReluProtocol } from '../mpc/protocols/compare.js';
import type { Model } from '../onnx/ir.js';
import { checkPlanWeights, maxFracBits, MIN_FRAC_BITS, planModel, type MpcPlan } from '../mpc/plan.js';
import { validateConfig, type HbConfig } from '../hummingbird/config.js';
import { CliError, loadDataset, pct, posInt, printJson, resolveModel } from './common.js';
import { registerMpcArchitecture } from './mpc-arch.js';
import { addRoleNetFlags, registerCerts, roleHooks, tlsClientOptions, tlsServerOptions, type RoleNetFlags } from './mpc-net.js';

/** Flags shared by every command that sets up a session. */
interface NetFlags {
  net?: string;
  bandwidth?: string;
  latency?: string;
  timeout?: string;
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
  /** `mpc infer --weights secret`: the architecture file party 0 loads instead of the model. */
  architecture?: string;
  /** `mpc party --id`: which party this process is ('0' or '1'); unset for launchers. */
  id?: string;
}

const addNetFlags = (c: Command): Command =>
  c
    .option('--net <profile>', 'network emulation: none | lan (1 Gbit/s, 0.25 ms) | wan (100 Mbit/s, 20 ms)', 'none')
    .option('--bandwidth <rate>', 'custom emulated bandwidth, e.g. 1gbit, 100mbit')
    .option('--latency <time>', 'custom emulated one-way latency, e.g. 0.25ms, 20ms')
    .option('--timeout <seconds>', 'idle timeout of every link after its handshake: a peer silent this long (no data, no heartbeat) is dead (default 60)');

const addJobFlags = (c: Command): Command =>
  addNetFlags(c)
    .option('--weights <mode>', 'public (both parties know the weights) | secret (party 1 shares them)', 'public')
    .option('--relu-protocol <name>', 'signonly (packed sign-only carry tree) | crypten (CrypTen-equivalent baseline) | fss (function secret sharing from the dealer, 1 round) | fss2 (FSS, 2 rounds, half-size keys)', 'signonly')
    .option('--relu-config <file>', 'JSON bit ranges per ReLU/MaxPool node: {"layers": {"<node>": {"msb": 24, "lsb": 6}}}')
    .option('--batch <n>', 'images per private inference', posInt('--batch'), 1)
    .option('--frac-bits <n>', 'fixed-point fractional bits', (v) => Number(v), 16)
    .option('--preprocess', 'prepare the dealer material of each batch before timing it (online-only time)')
    .option('--dataset <name>', 'inputs from a data set: fashion-mnist | fashion-mnist-sample | cifar10')
    .option('--data-dir <dir>', 'read the data set from this directory')
    .option('--limit <n>', 'number of data-set images', posInt('--limit'))
    .option('--input <file>', 'inputs from a file: IDX images (.gz ok) or JSON array of floats');

function parseWeights(v: string): WeightMode {
  if (v !== 'public' && v !== 'secret') throw new CliError(`--weights must be public or secret, got '${v}'`, 2);
  return v;
}

function parseProtocol(v: string): ReluProtocol {
  if (v !== 'signonly' && v !== 'crypten' && v !== 'fss' && v !== 'fss2') throw new CliError(`--relu-protocol must be signonly, crypten, fss or fss2, got '${v}'`, 2);
  return v;
}

function parseNet(o: NetFlags) {
  try {
    return parseNetOptions(o);
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
}

/** Read a --relu-config file: {"layers": {node: {msb, lsb}}} or a plain {node: {msb, lsb}} map. */
export function readReluConfig(path: string, model: Model): Record<string, BitRange> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`${path}: cannot read ReLU config (${(e as Error).message.split('\n')[0]})`);
  }
  // `null` is valid JSON: check the top level before reading fields from it.
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CliError(`${path}: expected an object of per-node bit ranges`);
  const obj = (raw as { layers?: unknown }).layers ?? raw;
  if (typeof obj !== 'object' || obj === null) throw new CliError(`${path}: expected an object of per-node bit ranges`);
  const nodes = new Set(model.graph.nodes.filter((n) => n.opType === 'Relu' || n.opType === 'MaxPool').map((n) => n.name));
  const out: Record<string, BitRange> = {};
  for (const [name, v] of Object.entries(obj as Record<string, { msb?: unknown; lsb?: unknown }>)) {
    if (!nodes.has(name)) throw new CliError(`${path}: '${name}' is not a Relu or MaxPool node of the model`);
    const msb = Number(v?.msb);
    const lsb = Number(v?.lsb ?? 0);
    if (!Number.isInteger(msb) || !Number.isInteger(lsb) || lsb < 0 || msb > 64 || lsb > msb) {
      throw new CliError(`${path}: node '${name}' needs integers 0 ≤ lsb ≤ msb ≤ 64, got msb=${v?.msb} lsb=${v?.lsb ?? 0}`);
    }
    out[name] = { msb, lsb };
  }
  // A `hummingbird search` config carries its model's hash: refuse it on any other model.
  const meta = (raw as { hummingbird?: HbConfig['hummingbird'] }).hummingbird;
  if (meta !== undefined) {
    try {
      validateConfig({ layers: out, hummingbird: meta }, model, path);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  return out;
}

/** Party 0's inputs: a data set split or a file, checked against the model's input size. */
function loadInputs(o: JobFlags, model: Model): { images: Float32Array; labels?: Uint8Array; count: number; name: string } {
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
        throw new CliError(`${o.input}: cannot read JSON input (${(e as Error).message.split('\n')[0]})`);
      }
      const flat = (Array.isArray(v) ? v : (v as { data?: unknown }).data) as unknown;
      if (!Array.isArray(flat)) throw new CliError(`${o.input}: expected a JSON array of numbers (or {"data": [...]})`);
      const nums = (flat as unknown[]).flat(Infinity) as unknown[];
      if (!nums.every((x) => typeof x === 'number' && Number.isFinite(x))) throw new CliError(`${o.input}: every value must be a finite number`);
      data = Float32Array.from(nums as number[]);
    } else {
      const idx = readIdx(o.input);
      data = Float32Array.from(idx.data, (b) => b / 255);
    }
    if (data.length === 0 || data.length % per !== 0) throw new CliError(`${o.input}: ${data.length} values is not a whole number of inputs of ${per} values`);
    const count = Math.min(data.length / per, o.limit ?? Infinity);
    return { images: data.subarray(0, count * per), count, name: o.input };
  }
  if (!o.dataset) throw new CliError('give --dataset (with --limit) or --input', 2);
  const ds = loadDataset({ dataset: o.dataset, dataDir: o.dataDir, limit: o.limit }, 'test');
  if (ds.images.length / ds.n !== per) throw new CliError(`${ds.name} images have ${ds.images.length / ds.n} values, the model expects ${per}`);
  if (ds.shape.join() !== plan.inputShape.slice(1).join()) throw new CliError(`${ds.name} images are [${ds.shape}], the model's input is [${plan.inputShape.slice(1)}]`);
  if (ds.classes.length !== outPer) throw new CliError(`${ds.name} has ${ds.classes.length} classes, the model outputs ${outPer} values per image`);
  return { images: ds.images, labels: ds.labels, count: ds.n, name: ds.name };
}

function modelJob(o: JobFlags, model: Model, inputs: Float32Array | undefined, count: number): ModelJob {
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
  };
}

/** Forward the job flags a launcher passes on to both parties. */
function jobArgs(o: JobFlags): string[] {
  const a = ['--weights', o.weights, '--relu-protocol', o.reluProtocol, '--batch', String(o.batch), '--frac-bits', String(o.fracBits)];
  if (o.reluConfig) a.push('--relu-config', o.reluConfig);
  if (o.preprocess) a.push('--preprocess');
  if (o.warmup) a.push('--warmup');
  return [...a, ...netArgs(o)];
}

function netArgs(o: NetFlags): string[] {
  const a: string[] = [];
  if (o.net) a.push('--net', o.net);
  if (o.bandwidth) a.push('--bandwidth', o.bandwidth);
  if (o.latency) a.push('--latency', o.latency);
  if (o.timeout) a.push('--timeout', o.timeout);
  return a;
}

const send = (m: RoleMessage): void => {
  process.send?.(m);
};

/** A role started by a launcher (--ipc) stops when the launcher dies, so no orphan keeps a port or a core. */
function exitWithLauncher(ipc: boolean): void {
  if (!ipc || !process.send) return;
  const stop = (): never => {
    process.stderr.write('privml: error: the launching process went away; stopping this role\n');
    process.exit(1);
  };
  // It may have died while this process was still loading, before the listener existed.
  if (!process.connected) stop();
  process.on('disconnect', stop);
  // Listening for 'disconnect' refs the IPC channel; unref it so a finished role still exits by itself.
  process.channel?.unref();
}

/** Sum of a party's batch stats. */
function totals(r: PartyReport) {
  const t = { ms: 0, dealerWaitMs: 0, bytesSent: 0, bytesReceived: 0, rounds: 0, modeledMs: 0 };
  for (const b of r.batches) {
    t.ms += b.ms;
    t.dealerWaitMs += b.dealerWaitMs;
    t.bytesSent += b.bytesSent;
    t.bytesReceived += b.bytesReceived;
    t.rounds += b.rounds;
    t.modeledMs += b.modeledMs;
  }
  return t;
}

/** The accounting both `infer` and `bench model` print. */
function accounting(res: LaunchResult, net: NetProfile) {
  const t0 = totals(res.party0);
  const t1 = totals(res.party1);
  const nb = res.party0.batches.length;
  return {
    batches: nb,
    msPerBatch: t0.ms / nb,
    dealerWaitMsPerBatch: Math.max(t0.dealerWaitMs, t1.dealerWaitMs) / nb,
    bytesSentPerBatch: [t0.bytesSent / nb, t1.bytesSent / nb],
    roundsPerBatch: t0.rounds / nb,
    modeledMsPerBatch: Math.max(t0.modeledMs, t1.modeledMs) / nb,
    dealerBytesSent: res.dealer.bytesSent,
    layers: res.party0.layers.map((l, i) => ({
      name: l.name,
      op: l.op,
      rounds: l.rounds / nb,
      bytesSent: [l.bytesSent / nb, (res.party1.layers[i]?.bytesSent ?? 0) / nb],
      ms: l.ms / nb,
      modeledMs:
        (Math.max(l.bytesSent, res.party1.layers[i]?.bytesSent ?? 0) * 8 * 1000) / nb / net.bandwidthBitsPerSec + ((l.rounds / nb) * 2 * net.latencyMs),
    })),
  };
}

function formatAccounting(a: ReturnType<typeof accounting>): string {
  const kb = (b: number) => (b / 1024).toFixed(1).padStart(10);
  const rows = a.layers.map((l) => `  ${l.name.padEnd(22)} ${l.op.padEnd(18)} ${String(l.rounds).padStart(6)} ${kb(l.bytesSent[0]!)} ${kb(l.bytesSent[1]!)} ${l.ms.toFixed(2).padStart(9)} ${l.modeledMs.toFixed(2).padStart(11)}`);
  return [
    `per batch: ${a.msPerBatch.toFixed(1)} ms (dealer wait ${a.dealerWaitMsPerBatch.toFixed(1)} ms), ${a.roundsPerBatch} rounds, sent ${(a.bytesSentPerBatch[0]! / 1e6).toFixed(3)} MB by party 0 and ${(a.bytesSentPerBatch[1]! / 1e6).toFixed(3)} MB by party 1, modeled network time ${a.modeledMsPerBatch.toFixed(1)} ms`,
    `  ${'layer'.padEnd(22)} ${'op'.padEnd(18)} ${'rounds'.padStart(6)} ${'p0 KB'.padStart(10)} ${'p1 KB'.padStart(10)} ${'ms'.padStart(9)} ${'modeled ms'.padStart(11)}`,
    ...rows,
  ].join('\n');
}

/** Register `mpc`. */
export function registerMpc(program: Command): void {
  const mpc = program.command('mpc').description('two-party secret-shared inference: dealer, parties, infer, benches');
  registerMpcArchitecture(mpc);

  registerCerts(mpc);
  addRoleNetFlags(addNetFlags(
    mpc
      .command('dealer')
      .description('run the dealer (correlated randomness only; never sees inputs, shares or outputs)')
      .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7600')
      .option('--tls-cert <file>', 'TLS certificate (PEM; its CN or SAN should name "dealer")')
      .option('--tls-key <file>', 'TLS private key (PEM)')
      .option('--ipc', 'report to a launching process (internal)', false)
      .option('--json', 'machine-readable output'),
  )).action(async (o: NetFlags & RoleNetFlags & { listen: string; ipc: boolean; json?: boolean }) => {
    exitWithLauncher(o.ipc);
    const stats = await runDealer({
      listen: parseEndpoint(o.listen, '--listen'),
      net: parseNet(o),
      tls: tlsServerOptions(o),
      hooks: roleHooks(o),
      onListening: (port) => {
        send({ type: 'listening', port });
        if (!o.ipc && !o.json) process.stderr.write(`dealer listening on port ${port}\n`);
      },
    });
    send({ type: 'dealer', stats });
    if (o.json) printJson(stats);
    else if (!o.ipc) process.stdout.write(`dealer done: ${stats.requests} requests in ${stats.roundTrips} round trips, sent ${stats.bytesSent[0]} B to party 0 and ${stats.bytesSent[1]} B to party 1\n`);
  });

  addRoleNetFlags(addJobFlags(
    mpc
      .command('party')
      .description('run one party (0: data owner with --dataset/--input; 1: model owner)')
      .argument('<model>', '.onnx model (party 0 uses only its architecture when --weights secret)')
      .requiredOption('--id <0|1>', 'which party')
      .requiredOption('--peer <host:port>', 'party 1: address to listen on for party 0; party 0: address of party 1')
      .requiredOption('--dealer <host:port>', "the dealer's address")
      .option('--count <n>', 'party 1: number of inputs party 0 will send', posInt('--count'))
      .option('--warmup', 'run one untimed batch of zeros first')
      .option('--job <kind>', 'model (default) | relu (micro-benchmark)', 'model')
      .option('--n <n>', 'relu job: elements', posInt('--n'), 10_000)
      .option('--msb <b>', 'relu job: top of the bit range', (v) => Number(v), 64)
      .option('--lsb <b>', 'relu job: bottom of the bit range', (v) => Number(v), 0)
      .option('--reps <n>', 'relu job: timed repetitions', posInt('--reps'), 5)
      .option('--tls-cert <file>', "TLS certificate (PEM) naming this party's role: party 1's server certificate, and the client certificate of both parties when --tls-ca is given")
      .option('--tls-key <file>', 'TLS private key (PEM)')
      .option('--ipc', 'report to a launching process (internal)', false)
      .option('--json', 'machine-readable output'),
  )).action(
    async (
      ref: string,
      o: JobFlags & RoleNetFlags & { id: string; peer: string; dealer: string; job: string; n: number; msb: number; lsb: number; reps: number; ipc: boolean; json?: boolean },
    ) => {
      exitWithLauncher(o.ipc);
      if (o.id !== '0' && o.id !== '1') throw new CliError(`--id must be 0 or 1, got '${o.id}'`, 2);
      const id = Number(o.id) as 0 | 1;
      let job: ModelJob | ReluJob;
      let labels: Uint8Array | undefined;
      if (o.job === 'relu') {
        job = { kind: 'relu', n: o.n, msb: o.msb, lsb: o.lsb, reluProtocol: parseProtocol(o.reluProtocol), reps: o.reps, preprocess: !!o.preprocess };
      } else if (o.job === 'model') {
        const { model } = resolveModel(ref);
        if (id === 0) {
          const inp = loadInputs(o, model);
          labels = inp.labels;
          job = modelJob(o, model, inp.images, inp.count);
        } else {
          if (!o.count) throw new CliError('party 1 needs --count (the number of inputs party 0 sends)', 2);
          checkPlan(model, { ...o, batch: 1 }, ref);
          job = modelJob(o, model, undefined, o.count);
        }
      } else throw new CliError(`--job must be model or relu, got '${o.job}'`, 2);
      const report = await runParty({
        id,
        job,
        peer: parseEndpoint(o.peer, '--peer'),
        dealer: parseEndpoint(o.dealer, '--dealer'),
        net: parseNet(o),
        fracBits: o.fracBits,
        tlsServer: id === 1 ? tlsServerOptions(o) : undefined,
        tlsClient: tlsClientOptions(o),
        hooks: roleHooks(o),
        onListening: (port) => {
          send({ type: 'listening', port });
          if (!o.ipc && !o.json) process.stderr.write(`party 1 listening on port ${port}\n`);
        },
      });
      send({ type: 'report', report });
      if (o.ipc) return;
      const preds = predictions(report);
      if (o.json) return printJson({ party: id, predictions: preds, batches: report.batches, layers: report.layers, dealer: report.dealer });
      const t = totals(report);
      process.stdout.write(`party ${id}: ${report.batches.length} batches, ${t.ms.toFixed(1)} ms, sent ${t.bytesSent} B in ${t.rounds} rounds\n`);
      if (preds) {
        process.stdout.write(`predictions: ${preds.join(' ')}\n`);
        if (labels) process.stdout.write(`accuracy: ${pct(preds.filter((p, i) => p === labels![i]).length / preds.length)}\n`);
      }
    },
  );

  addJobFlags(
    mpc
      .command('infer')
      .description('private inference: dealer and both parties as separate processes on loopback')
      .argument('<model>', '.onnx model (or zoo name)')
      .option('--architecture <file>', "with --weights secret: party 0 loads this file (from 'mpc export-architecture') instead of the model")
      .option('--json', 'machine-readable output (includes agreement with plaintext onnxruntime)')
      .option('--queue <url>', "run as jobs of `privml worker`s on this Redis (a data owner's offline batch: workers hold the data set)")
      .option('--per-job <n>', 'with --queue: images per job', posInt('--per-job'), 10),
  ).action(async (ref: string, o: JobFlags & { json?: boolean; queue?: string; perJob?: number }) => {
    if (o.queue) return (await import('./queue-hooks.js')).mpcInferQueued(ref, { ...o, queue: o.queue });
    const log = (line: string) => !o.json && process.stderr.write(line + '\n');
    const r = await privateInference(ref, o, log);
    if (o.json) return printJson(r);
    process.stdout.write(`predictions: ${r.predictions.slice(0, 40).join(' ')}${r.predictions.length > 40 ? ' …' : ''}\n`);
    if (r.accuracy !== undefined) process.stdout.write(`accuracy ${pct(r.accuracy)}; `);
    process.stdout.write(`agreement with plaintext (onnxruntime) ${pct(r.agreement)} (${Math.round(r.agreement * r.count)}/${r.count}), max |logit difference| ${r.maxLogitDiff.toExponential(2)}\n`);
    process.stdout.write(formatAccounting(r) + '\n');
  });

  const bench = mpc.command('bench').description('MPC micro-benchmarks over real processes (JSON)');
  addNetFlags(
    bench
      .command('relu')
      .description('cost of one ReLU call on n elements: bits per element per party, rounds, time')
      .option('--n <n>', 'elements', posInt('--n'), 10_000)
      .option('--msb <b>', 'top of the bit range', (v) => Number(v), 64)
      .option('--lsb <b>', 'bottom of the bit range', (v) => Number(v), 0)
      .option('--relu-protocol <name>', 'signonly | crypten | fss | fss2', 'signonly')
      .option('--reps <n>', 'timed repetitions', posInt('--reps'), 5)
      .option('--preprocess', 'dealer material prepared before timing')
      .option('--json', 'machine-readable output'),
  ).action(async (o: NetFlags & { n: number; msb: number; lsb: number; reluProtocol: string; reps: number; preprocess?: boolean; json?: boolean }) => {
    parseProtocol(o.reluProtocol);
    const common = ['x', '--job', 'relu', '--n', String(o.n), '--msb', String(o.msb), '--lsb', String(o.lsb), '--relu-protocol', o.reluProtocol, '--reps', String(o.reps), ...(o.preprocess ? ['--preprocess'] : []), ...netArgs(o)];
    const res = await launchSession({ dealer: netArgs(o), party0: common, party1: common, env: ALLOC_ENV });
    const b0 = res.party0.batches;
    const ms = b0.map((b) => b.ms).sort((x, y) => x - y);
    const out = {
      protocol: o.reluProtocol,
      n: o.n,
      msb: o.msb,
      lsb: o.lsb,
      net: describeNet(parseNet(o)),
      bytesPerElemPerParty: b0[0]!.bytesSent / o.n,
      bitsPerElemPerParty: (b0[0]!.bytesSent * 8) / o.n,
      rounds: b0[0]!.rounds,
      ms: ms[Math.floor(ms.length / 2)]!,
      dealerWaitMs: b0[0]!.dealerWaitMs,
      preprocess: !!o.preprocess,
    };
    if (o.json) printJson(out);
    else process.stdout.write(`${out.protocol} ReLU on ${o.n} elements [${o.lsb}, ${o.msb}): ${out.bitsPerElemPerParty.toFixed(1)} bits/element/party, ${out.rounds} rounds, ${out.ms.toFixed(2)} ms (median of ${o.reps})\n`);
  });

  addJobFlags(
    bench
      .command('model')
      .description('end-to-end private inference of a model: time with the dealer online and online-only, bytes, rounds')
      .argument('<model>', '.onnx model')
      .option('--reps <n>', 'timed batches', posInt('--reps'), 5)
      .option('--json', 'machine-readable output'),
  ).action(async (ref: string, o: JobFlags & { reps: number; json?: boolean }) => {
    const { model } = resolveModel(ref);
    const per = checkPlan(model, o, ref).inputShape.slice(1).reduce((a, d) => a * d, 1);
    // Random inputs in [0, 1): cost does not depend on the values.
    const count = o.batch * o.reps;
    const tmp = `${process.env.TMPDIR ?? '/tmp'}/privml-bench-${process.pid}.json`;
    const { writeFileSync, rmSync } = await import('node:fs');
    writeFileSync(tmp, JSON.stringify(Array.from({ length: count * per }, (_, i) => ((i * 2654435761) % 1000) / 1000)));
    try {
      const run = async (preprocess: boolean) => {
        const f: JobFlags = { ...o, preprocess, warmup: true };
        return accounting(await launchSession({ dealer: netArgs(o), party1: [ref, '--count', String(count), ...jobArgs(f)], party0: [ref, '--input', tmp, ...jobArgs(f)], env: ALLOC_ENV }), parseNet(o));
      };
      const online = await run(false);
      const pre = await run(true);
      const out = {
        model: ref,
        batch: o.batch,
        weights: o.weights,
        reluProtocol: o.reluProtocol,
        net: describeNet(parseNet(o)),
        msPerBatch: online.msPerBatch,
        dealerWaitMsPerBatch: online.dealerWaitMsPerBatch,
        onlineMsPerBatch: pre.msPerBatch,
        roundsPerBatch: online.roundsPerBatch,
        bytesSentPerBatch: online.bytesSentPerBatch,
        modeledMsPerBatch: online.modeledMsPerBatch,
        layers: online.layers,
      };
      if (o.json) printJson(out);
      else process.stdout.write(`${ref} batch ${o.batch}: ${out.msPerBatch.toFixed(1)} ms per batch (dealer wait ${out.dealerWaitMsPerBatch.toFixed(1)} ms; online-only ${out.onlineMsPerBatch.toFixed(1)} ms), ${out.roundsPerBatch} rounds, ${(out.bytesSentPerBatch[0]! / 1e6).toFixed(3)} / ${(out.bytesSentPerBatch[1]! / 1e6).toFixed(3)} MB sent by party 0 / 1\n`);
    } finally {
      rmSync(tmp, { force: true });
    }
  });
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
  if (o.architecture && o.weights !== 'secret') throw new CliError('--architecture is for --weights secret (with public weights both parties load the model)', 2);
  const inp = loadInputs(o, model);
  const dataArgs = o.input ? ['--input', o.input] : ['--dataset', o.dataset!, ...(o.dataDir ? ['--data-dir', o.dataDir] : [])];
  if (o.limit) dataArgs.push('--limit', String(o.limit));
  log(`private inference of ${source} on ${inp.count} inputs of ${inp.name}: batch ${o.batch}, ${o.weights} weights, ${o.reluProtocol} ReLU, network ${describeNet(net)}`);
  const res = await launchSession({
    dealer: netArgs(o),
    party1: [ref, '--count', String(inp.count), ...jobArgs(o)],
    party0: [o.architecture ?? ref, ...dataArgs, ...jobArgs(o)],
    env: ALLOC_ENV,
  });
  const preds = predictions(res.party0)!;
  // Plaintext reference on the same inputs, in this run: onnxruntime, the ground truth.
  const plan = planModel(model, 1, source);
  const plain = (await runOrt(model, { [plan.input]: { dtype: 'float32', dims: [inp.count, ...plan.inputShape.slice(1)], data: inp.images } }))[model.graph.outputs[0]!.name]!.data as Float32Array;
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
function checkPlan(model: Model, o: JobFlags, source: string): MpcPlan {
  let plan: MpcPlan;
  try {
    plan = planModel(model, o.batch, source);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const f = o.fracBits;
  const max = maxFracBits(plan);
  if (!Number.isInteger(f) || f < MIN_FRAC_BITS || f > max) {
    throw new CliError(`--frac-bits must be an integer in [${MIN_FRAC_BITS}, ${max}] for ${source} (fixed-point headroom of its ${plan.steps.length} steps), got ${o.fracBits}`, 2);
  }
  if (o.reluConfig && o.reluProtocol === 'crypten') throw new CliError('--relu-config sets sign-only bit ranges; it cannot be used with --relu-protocol crypten', 2);
  if (o.weights !== 'secret' || o.id !== '0') {
    // Whoever holds the real weights checks them (party 0 of --weights secret holds only the architecture).
    try {
      checkPlanWeights(plan);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  return plan;
}

/** Default job flags (as the CLI would parse them), for callers such as `privml demo`. */
export function defaultJobFlags(over: Partial<JobFlags> = {}): JobFlags {
  return { weights: 'public', reluProtocol: 'signonly', batch: 1, fracBits: 16, net: 'none', ...over };
}

/** glibc allocator settings for the role processes: keep freed wasm-sized blocks instead of unmapping them. */
const ALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: '33554432', MALLOC_TRIM_THRESHOLD_: '268435456' };

/** Party 0's predicted classes from its decoded outputs. */
function predictions(r: PartyReport): number[] | undefined {
  if (!r.outputs || !r.outputShape) return undefined;
  const k = r.outputShape.reduce((a, b) => a * b, 1);
  const n = r.outputs.length / k;
  return Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (r.outputs![i * k + j]! > r.outputs![i * k + best]!) best = j;
    return best;
  });
}
