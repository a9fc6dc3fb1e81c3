/** `privml mpc …`: two-party secret-shared inference (dealer, parties, all-in-one infer, benches). */
import { type Command, Option } from 'commander';
import { benchModel, benchRelu } from '../api/mpc-bench.js';
import { runDealer, runParty } from '../api/mpc-roles.js';
import {
  type accounting,
  addProfile,
  availableThreads,
  computeMs,
  emptyProfile,
  type JobFlags,
  type NetFlags,
  PROFILE_KEYS,
  type Profile,
  privateInference,
  type RoleMessage,
  sharedHostThreads,
  threadsProblem,
  totals,
} from '../api/mpc-session.js';
import { CliError, pct, posInt, printJson } from './common.js';
import { registerMpcArchitecture } from './mpc-arch.js';
import { addRoleNetFlags, type RoleNetFlags, registerCerts } from './mpc-net.js';

const addNetFlags = (c: Command): Command =>
  c
    .option('--net <profile>', 'network emulation: none | lan (1 Gbit/s, 0.25 ms) | wan (100 Mbit/s, 20 ms)', 'none')
    .option('--bandwidth <rate>', 'custom emulated bandwidth, e.g. 1gbit, 100mbit')
    .option('--latency <time>', 'custom emulated one-way latency, e.g. 0.25ms, 20ms')
    .option('--dealer-net <profile>', "the dealer's links: none | lan | wan (default: as the parties' link)")
    .option('--timeout <seconds>', 'idle timeout of every link after its handshake: a peer silent this long (no data, no heartbeat) is dead (default 60)')
    .option('--connect-timeout <seconds>', 'how long the dealer and the parties wait for each other to connect, model loading included (default 30)');

const LANES_HELP =
  "interleaved lanes per ReLU/MaxPool of 16,384 elements or more, so one computes while another's opening is in flight (1: no overlap; default 2)";

const addJobFlags = (c: Command): Command =>
  addNetFlags(c)
    .option('--weights <mode>', 'public (both parties know the weights) | secret (party 1 shares them)', 'public')
    .option(
      '--relu-protocol <name>',
      'signonly (packed sign-only carry tree) | crypten (CrypTen-equivalent baseline) | fss (function secret ' +
        'sharing from the dealer, 1 round) | fss2 (FSS, 2 rounds, half-size keys)',
      'signonly',
    )
    .option('--relu-config <file>', 'JSON bit ranges per ReLU/MaxPool node: {"layers": {"<node>": {"msb": 24, "lsb": 6}}}')
    .option('--batch <n>', 'images per private inference', posInt('--batch'), 1)
    .option('--frac-bits <n>', 'fixed-point fractional bits', (v) => Number(v), 16)
    .option(
      '--preprocess',
      "offline phase: fetch each batch's dealer material before its input is shared; its time and bytes are reported " +
        'apart from the online time (bench model: skip the dealer-online run)',
    )
    .option(
      '--threads <n>',
      `worker threads per party for batch-split convolutions and products (default: the ${availableThreads()} cores available; ` +
        `${sharedHostThreads(2)} when run/bench model start both parties here)`,
      parseThreads,
    )
    .option('--lanes <n>', LANES_HELP, posInt('--lanes'))
    // tests only: a party's thread pool kills a worker at its first task (test/mpc/threads.test.ts)
    .addOption(new Option('--fault-worker-crash').hideHelp())
    .option('--dataset <name>', 'inputs from a data set: fashion-mnist | fashion-mnist-sample | cifar10')
    .option('--data-dir <dir>', 'read the data set from this directory')
    .option('--limit <n>', 'number of data-set images', posInt('--limit'))
    .option('--input <file>', 'inputs from a file: .npy (float32/64), IDX images (.gz ok) or a JSON array of floats');

function parseThreads(v: string): number {
  const n = Number(v);
  const problem = threadsProblem(n);
  if (problem) throw new CliError(problem, 2);
  return n;
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

/** `--profile`: where each party's time goes per layer (ms per batch), compute and waiting apart. */
function formatProfile(layers: { name: string; op: string; profile: Profile[] }[]): string {
  const keys = [...PROFILE_KEYS, 'other'] as const;
  const head = `  ${'layer'.padEnd(16)} party ${'compute'.padStart(9)} ${keys.map((k) => k.padStart(10)).join(' ')}`;
  const rows: string[] = [];
  const tot = [emptyProfile(), emptyProfile()];
  const row = (label: string, party: number, p: Profile) =>
    `  ${label.padEnd(16)} ${String(party).padStart(5)} ${computeMs(p).toFixed(2).padStart(9)} ${keys.map((k) => p[k].toFixed(2).padStart(10)).join(' ')}`;
  for (const l of layers) {
    l.profile.forEach((p, party) => {
      addProfile(tot[party]!, p);
      rows.push(row(party === 0 ? l.name : '', party, p));
    });
  }
  tot.forEach((p, party) => rows.push(row(party === 0 ? 'total' : '', party, p)));
  return ['profile (ms per batch; compute = ring + bitplanes + and + pack + framing + other; waitPeer/waitDealer = waiting):', head, ...rows].join('\n');
}

function formatAccounting(a: ReturnType<typeof accounting>): string {
  const kb = (b: number) => (b / 1024).toFixed(1).padStart(10);
  const rows = a.layers.map(
    (l) =>
      `  ${l.name.padEnd(22)} ${l.op.padEnd(18)} ${String(l.rounds).padStart(6)} ${kb(l.bytesSent[0]!)} ` +
      `${kb(l.bytesSent[1]!)} ${l.ms.toFixed(2).padStart(9)} ${l.modeledMs.toFixed(2).padStart(11)}`,
  );
  const mb = (b: number) => (b / 1e6).toFixed(3);
  const dealer =
    a.offlineMsPerBatch > 0
      ? `offline phase (dealer material, before the input): ${a.offlineMsPerBatch.toFixed(1)} ms, ` +
        `${mb(a.dealerBytesPerBatch[0]!)} / ${mb(a.dealerBytesPerBatch[1]!)} MB to party 0 / 1; online (input to output):`
      : `dealer online: ${mb(a.dealerBytesPerBatch[0]!)} / ${mb(a.dealerBytesPerBatch[1]!)} MB to party 0 / 1 inside the time;`;
  return [
    `per batch: ${dealer} ${a.msPerBatch.toFixed(1)} ms (dealer wait ${a.dealerWaitMsPerBatch.toFixed(1)} ms), ` +
      `${a.roundsPerBatch} rounds, sent ${mb(a.bytesSentPerBatch[0]!)} MB by party 0 and ${mb(a.bytesSentPerBatch[1]!)} MB by party 1, ` +
      `modeled network time ${a.modeledMsPerBatch.toFixed(1)} ms`,
    `  ${'layer'.padEnd(22)} ${'op'.padEnd(18)} ${'rounds'.padStart(6)} ${'p0 KB'.padStart(10)} ` +
      `${'p1 KB'.padStart(10)} ${'ms'.padStart(9)} ${'modeled ms'.padStart(11)}`,
    ...rows,
  ].join('\n');
}

/** The session code lives in the API layer; these re-exports keep `cli/mpc` a one-stop import for the CLI's siblings. */
export { defaultJobFlags, type InferResult, type JobFlags, privateInference, readReluConfig } from '../api/mpc-session.js';

/** Register `mpc`. */
export function registerMpc(program: Command): void {
  const mpc = program.command('mpc').description('two-party secret-shared inference: dealer, parties, infer, benches');
  registerMpcArchitecture(mpc);

  registerCerts(mpc);
  addRoleNetFlags(
    addNetFlags(
      mpc
        .command('dealer')
        .description('run the dealer (correlated randomness only; never sees inputs, shares or outputs)')
        .option('--listen <host:port>', 'address to listen on', '127.0.0.1:7600')
        .option('--ws-listen <host:port>', 'also accept party 0 over WebSocket here (a browser page, as privml serve does; port 0: any free port)')
        .option('--tls-cert <file>', 'TLS certificate (PEM; its CN or SAN should name "dealer")')
        .option('--tls-key <file>', 'TLS private key (PEM)')
        .option('--ipc', 'report to a launching process (internal)', false)
        .option('--json', 'machine-readable output'),
    ),
  ).action(async (o: NetFlags & RoleNetFlags & { listen: string; wsListen?: string; ipc: boolean; json?: boolean }) => {
    exitWithLauncher(o.ipc);
    const stats = await runDealer({
      ...o,
      onListening: (port, wsPort) => {
        send({ type: 'listening', port, wsPort });
        if (!o.ipc && !o.json) process.stderr.write(`dealer listening on port ${port}${wsPort === undefined ? '' : ` (WebSocket for party 0: ${wsPort})`}\n`);
      },
    });
    send({ type: 'dealer', stats });
    if (o.json) printJson(stats);
    else if (!o.ipc)
      process.stdout.write(
        `dealer done: ${stats.requests} requests in ${stats.roundTrips} round trips, sent ` +
          `${stats.bytesSent[0]} B to party 0 and ${stats.bytesSent[1]} B to party 1\n`,
      );
  });

  addRoleNetFlags(
    addJobFlags(
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
        .option(
          '--tls-cert <file>',
          "TLS certificate (PEM) naming this party's role: party 1's server certificate, and the client certificate of both parties when --tls-ca is given",
        )
        .option('--tls-key <file>', 'TLS private key (PEM)')
        .option('--peer-ws', 'party 1: accept party 0 over WebSocket (a browser page, as privml serve does) instead of TCP')
        .option('--ipc', 'report to a launching process (internal)', false)
        .option('--json', 'machine-readable output'),
    ),
  ).action(
    async (
      ref: string,
      o: JobFlags &
        RoleNetFlags & {
          id: string;
          peer: string;
          dealer: string;
          job: string;
          n: number;
          msb: number;
          lsb: number;
          reps: number;
          ipc: boolean;
          json?: boolean;
          peerWs?: boolean;
        },
    ) => {
      exitWithLauncher(o.ipc);
      const {
        id,
        report,
        predictions: preds,
        labels,
      } = await runParty(ref, {
        ...o,
        onListening: (port) => {
          send({ type: 'listening', port });
          if (!o.ipc && !o.json) process.stderr.write(`party 1 listening on port ${port}\n`);
        },
      });
      send({ type: 'report', report });
      if (o.ipc) return;
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
    process.stdout.write(
      `agreement with plaintext (onnxruntime) ${pct(r.agreement)} ` +
        `(${Math.round(r.agreement * r.count)}/${r.count}), max |logit difference| ` +
        `${r.maxLogitDiff.toExponential(2)}\n`,
    );
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
      .option('--lanes <n>', LANES_HELP, posInt('--lanes'))
      .option('--profile', 'print where each party spends its time (compute per kernel kind, waiting)')
      .option('--json', 'machine-readable output'),
  ).action(
    async (
      o: NetFlags & {
        n: number;
        msb: number;
        lsb: number;
        reluProtocol: string;
        reps: number;
        preprocess?: boolean;
        lanes?: number;
        profile?: boolean;
        json?: boolean;
      },
    ) => {
      const out = await benchRelu(o);
      if (o.json) printJson(out);
      else {
        process.stdout.write(
          `${out.protocol} ReLU on ${o.n} elements [${o.lsb}, ${o.msb}): ${out.bitsPerElemPerParty.toFixed(1)} ` +
            `bits/element/party, ${out.rounds} rounds, ${out.ms.toFixed(2)} ms (median of ${o.reps}); compute ` +
            `${out.computeMs.map((v) => v.toFixed(1)).join(' / ')} ms, waiting ` +
            `${out.waitMs.map((v) => v.toFixed(1)).join(' / ')} ms (party 0 / 1, mean)\n`,
        );
        if (o.profile) process.stdout.write(formatProfile([{ name: 'relu', op: 'Relu', profile: out.profile }]) + '\n');
      }
    },
  );

  addJobFlags(
    bench
      .command('model')
      .description('end-to-end private inference of a model: time with the dealer online and online-only, bytes, rounds')
      .argument('<model>', '.onnx model')
      .option('--reps <n>', 'timed batches', posInt('--reps'), 5)
      .option('--profile', 'print where each party spends its time per layer (compute per kernel kind, waiting)')
      .option('--json', 'machine-readable output'),
  ).action(async (ref: string, o: JobFlags & { reps: number; profile?: boolean; json?: boolean }) => {
    const out = await benchModel(ref, o);
    const online = out.msPerBatch !== null;
    if (o.json) printJson(out);
    else {
      const dealerOnline = online ? `dealer online ${out.msPerBatch!.toFixed(1)} ms per batch (dealer wait ${out.dealerWaitMsPerBatch!.toFixed(1)} ms); ` : '';
      process.stdout.write(
        `${ref} batch ${o.batch}: ${dealerOnline}with an offline phase ${out.offlineMsPerBatch.toFixed(1)} ms offline + ` +
          `${out.onlineMsPerBatch.toFixed(1)} ms online, ${out.roundsPerBatch} rounds, ` +
          `${(out.bytesSentPerBatch[0]! / 1e6).toFixed(3)} / ${(out.bytesSentPerBatch[1]! / 1e6).toFixed(3)} MB sent by party 0 / 1; ` +
          `party compute ${out.computeMsPerBatch.map((v) => v.toFixed(1)).join(' / ')} ms, ` +
          `waiting ${out.waitMsPerBatch.map((v) => v.toFixed(1)).join(' / ')} ms (party 0 / 1)\n`,
      );
      if (o.profile) process.stdout.write(formatProfile(out.layers) + '\n');
    }
  });
}
