/**
 * The three roles of a privml MPC session as long-running functions over TCP: the dealer, party 0
 * (data owner: holds the inputs, receives the outputs) and party 1 (model owner). Each is run in its
 * own OS process by `privml mpc dealer|party`, or all three on loopback by `privml mpc infer`.
 */
import { encodeModel } from '../onnx/proto.js';
import type { Model } from '../onnx/ir.js';
import type { FrameChannel, PartyContext, PartyId } from './context.js';
import { DealerClient, DealerServer, type CorrelationRequest, type DealerClientStats, type DealerServerStats } from './dealer.js';
import { prepareWeights, runPlan, type BitRange, type LayerStat, type WeightMode } from './executor.js';
import { connect, listen, type TlsClientOptions, type TlsServerOptions } from './net/tcp.js';
import { emulateLink, type NetProfile } from './net/emulate.js';
import { handshake, sha256Hex, type Hello } from './net/handshake.js';
import { diffStats, modeledSeconds, peerChannel, snapshotStats } from './net/peer.js';
import { planModel, type MpcPlan } from './plan.js';
import { reveal, shareInput } from './protocols/arith.js';
import { relu, type ReluProtocol } from './protocols/compare.js';
import { decodeFixed, encodeFixed } from './ring.js';
import { Prg, randomSeed } from '../crypto/prg.js';

/** Wire-protocol version; parties and dealer must agree. */
export const MPC_PROTOCOL_VERSION = 'privml-mpc/1';
/** How long to wait for the other processes to connect and say hello. */
const CONNECT_TIMEOUT_MS = 30_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** host:port of a listening role. */
export interface Endpoint {
  host: string;
  port: number;
}

/** Parse "host:port" (or ":port", or "port"). */
export function parseEndpoint(text: string, what: string): Endpoint {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`${what} must look like host:port, got '${text}'`);
  return { host: m[1] || '127.0.0.1', port };
}

/** A private-inference job: run a model on party 0's inputs, batch by batch. */
export interface ModelJob {
  kind: 'model';
  model: Model;
  weights: WeightMode;
  reluProtocol: ReluProtocol;
  reluConfig?: Record<string, BitRange>;
  batch: number;
  /** Number of inputs (both parties know it). */
  count: number;
  /** Party 0 only: the inputs, count × input size floats. */
  inputs?: Float32Array;
  /** Prepare every batch's dealer material before timing it (online-only time). */
  preprocess: boolean;
  /** Run one untimed batch of zeros first (JIT warm-up; also records the dealer plan). */
  warmup: boolean;
}

/** A ReLU micro-benchmark job: party 0 shares n random values, both run `relu` `reps` times. */
export interface ReluJob {
  kind: 'relu';
  n: number;
  msb: number;
  lsb: number;
  reluProtocol: ReluProtocol;
  reps: number;
  preprocess: boolean;
}

/** Settings common to both parties. */
export interface PartyOptions {
  id: PartyId;
  job: ModelJob | ReluJob;
  /** Party 1: where to listen for party 0. Party 0: where party 1 listens. */
  peer: Endpoint;
  dealer: Endpoint;
  net: NetProfile;
  fracBits: number;
  tlsServer?: TlsServerOptions;
  tlsClient?: TlsClientOptions;
  /** Called once party 1 listens (with the bound port, useful with port 0). */
  onListening?: (port: number) => void;
}

/** Timing and traffic of one batch on one party. */
export interface BatchStat {
  size: number;
  /** Sharing the input to revealing the output, dealer waits included. */
  ms: number;
  /** Time this party waited for the dealer inside `ms`. */
  dealerWaitMs: number;
  bytesSent: number;
  bytesReceived: number;
  rounds: number;
  /** bytes·8/bandwidth + rounds·RTT for the chosen network. */
  modeledMs: number;
}

/** What a party reports when its job is done. */
export interface PartyReport {
  party: PartyId;
  job: 'model' | 'relu';
  batches: BatchStat[];
  /** Per layer, summed over the timed batches. */
  layers: LayerStat[];
  dealer: DealerClientStats;
  /** Party 0 of a model job: decoded outputs, count × output size. */
  outputs?: Float32Array;
  outputShape?: number[];
}

/** Hash that two parties must share: the whole model (public weights) or its architecture (secret weights). */
export function modelHash(model: Model, weights: WeightMode): string {
  if (weights === 'public') return sha256Hex(encodeModel(model));
  const g = model.graph;
  const arch = {
    nodes: g.nodes.map((n) => ({ op: n.opType, d: n.domain, i: n.inputs, o: n.outputs, a: Object.entries(n.attrs).map(([k, v]) => [k, v.kind, v.kind === 'tensor' || v.kind === 'graph' ? null : v.value]) })),
    inputs: g.inputs.map((v) => [v.name, v.dtype, v.shape]),
    outputs: g.outputs.map((v) => [v.name, v.dtype, v.shape]),
    inits: [...g.initializers].map(([k, t]) => [k, t.dtype, t.dims]),
  };
  return sha256Hex(JSON.stringify(arch));
}

function jobConfig(job: ModelJob | ReluJob, fracBits: number): Record<string, string> {
  if (job.kind === 'relu') {
    return { job: 'relu', n: String(job.n), msb: String(job.msb), lsb: String(job.lsb), protocol: job.reluProtocol, reps: String(job.reps), preprocess: String(job.preprocess), fracBits: String(fracBits) };
  }
  return {
    job: 'model',
    weights: job.weights,
    protocol: job.reluProtocol,
    reluConfig: sha256Hex(JSON.stringify(job.reluConfig ?? {})),
    batch: String(job.batch),
    count: String(job.count),
    preprocess: String(job.preprocess),
    warmup: String(job.warmup),
    fracBits: String(fracBits),
  };
}

/** Run the dealer: accept both parties, check they belong to one session, serve until party 1 ends. */
export async function runDealer(opts: { listen: Endpoint; net: NetProfile; tls?: TlsServerOptions; onListening?: (port: number) => void }): Promise<DealerServerStats> {
  const listener = await listen({ host: opts.listen.host, port: opts.listen.port, tls: opts.tls, acceptTimeoutMs: CONNECT_TIMEOUT_MS });
  opts.onListening?.(listener.port);
  const links: (FrameChannel | undefined)[] = [undefined, undefined];
  const hellos: (Hello | undefined)[] = [undefined, undefined];
  const accepted: FrameChannel[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const ch = await listener.accept();
      accepted.push(ch);
      const hello = await handshake(ch, { role: 'dealer', version: MPC_PROTOCOL_VERSION }, ['party 0', 'party 1'], HANDSHAKE_TIMEOUT_MS);
      const id = hello.role === 'party 0' ? 0 : 1;
      if (links[id]) throw new Error(`dealer: two connections claim to be party ${id}`);
      links[id] = emulateLink(ch, opts.net);
      hellos[id] = hello;
    }
  } catch (e) {
    for (const ch of accepted) ch.close();
    throw e;
  } finally {
    listener.close();
  }
  if (hellos[0]!.configHash !== hellos[1]!.configHash) {
    links[0]!.close();
    links[1]!.close();
    const [e0, e1] = [hellos[0]!.extra ?? {}, hellos[1]!.extra ?? {}];
    const key = [...new Set([...Object.keys(e0), ...Object.keys(e1)])].find((k) => e0[k] !== e1[k]);
    // Settings come from the network: keep the message on one short line.
    const show = (v: string | undefined) => (v === undefined ? 'unset' : v.replace(/[\x00-\x1f\x7f]/g, '?').slice(0, 40));
    const what = key === undefined ? '' : `: ${show(key)} is ${show(e0[key])} for party 0, ${show(e1[key])} for party 1`;
    throw new Error(`dealer: party 0 and party 1 announced different session configurations${what}`);
  }
  const server = new DealerServer(links[0]!, links[1]!);
  try {
    await server.serve();
  } finally {
    links[0]!.close();
    links[1]!.close();
  }
  return server.stats;
}

/** What a party tells the dealer: role, version and the session configuration (no model hash). */
function dealerHello(h: Hello): Hello {
  return { role: h.role, version: h.version, configHash: h.configHash, extra: h.extra };
}

/** Connect this party to its peer and the dealer, with handshakes; returns the live context. */
async function openSession(opts: PartyOptions, hello: Hello): Promise<{ ctx: PartyContext; client: DealerClient; close: (ok: boolean) => void }> {
  const other = opts.id === 0 ? 'party 1' : 'party 0';
  const opened: FrameChannel[] = [];
  try {
    let peerRaw: FrameChannel;
    let dealerRaw: FrameChannel;
    if (opts.id === 1) {
      const l = await listen({ host: opts.peer.host, port: opts.peer.port, tls: opts.tlsServer, acceptTimeoutMs: CONNECT_TIMEOUT_MS, label: 'party 0' });
      opts.onListening?.(l.port);
      try {
        dealerRaw = await connect({ ...opts.dealer, tls: opts.tlsClient, timeoutMs: CONNECT_TIMEOUT_MS, label: 'dealer' });
        opened.push(dealerRaw);
        await handshake(dealerRaw, dealerHello(hello), 'dealer', HANDSHAKE_TIMEOUT_MS, false);
        peerRaw = await l.accept();
        opened.push(peerRaw);
      } finally {
        l.close();
      }
    } else {
      dealerRaw = await connect({ ...opts.dealer, tls: opts.tlsClient, timeoutMs: CONNECT_TIMEOUT_MS, label: 'dealer' });
      opened.push(dealerRaw);
      await handshake(dealerRaw, dealerHello(hello), 'dealer', HANDSHAKE_TIMEOUT_MS, false);
      peerRaw = await connect({ ...opts.peer, tls: opts.tlsClient, timeoutMs: CONNECT_TIMEOUT_MS, label: 'party 1' });
      opened.push(peerRaw);
    }
    // The peer compares `extra` setting by setting (naming a difference), not the opaque config hash.
    await handshake(peerRaw, { ...hello, configHash: undefined }, other, HANDSHAKE_TIMEOUT_MS);
    const peerLink = emulateLink(peerRaw, opts.net);
    const dealerLink = emulateLink(dealerRaw, opts.net);
    const client = await DealerClient.connect(opts.id, dealerLink);
    const ctx: PartyContext = { party: opts.id, peer: peerChannel(peerLink), dealer: client, fracBits: opts.fracBits };
    return {
      ctx,
      client,
      close: (ok: boolean) => {
        // After a failure, drop the dealer link first so party 1 cannot send the dealer a normal end.
        if (!ok) dealerLink.close();
        client.close();
        peerLink.close();
        dealerLink.close();
      },
    };
  } catch (e) {
    for (const ch of opened) ch.close();
    throw e;
  }
}

/** Run one party's side of a job over TCP; resolves with its report. */
export async function runParty(opts: PartyOptions): Promise<PartyReport> {
  const job = opts.job;
  const hello: Hello = {
    role: `party ${opts.id}`,
    version: MPC_PROTOCOL_VERSION,
    modelHash: job.kind === 'model' ? modelHash(job.model, job.weights) : undefined,
    configHash: sha256Hex(JSON.stringify(jobConfig(job, opts.fracBits))),
    extra: jobConfig(job, opts.fracBits),
  };
  const session = await openSession(opts, hello);
  let ok = false;
  try {
    const report = job.kind === 'model' ? await runModelJob(opts, session.ctx, session.client, job) : await runReluJob(opts, session.ctx, session.client, job);
    ok = true;
    return report;
  } finally {
    session.close(ok);
  }
}

/** Time one batch: optional prefetch (untimed), then share → run → reveal. */
async function timed<T>(
  ctx: PartyContext,
  client: DealerClient,
  net: NetProfile,
  size: number,
  dealerPlan: { requests: CorrelationRequest[]; ahead: boolean } | undefined,
  body: () => Promise<T>,
): Promise<{ value: T; stat: BatchStat; requests: CorrelationRequest[] }> {
  // Offline phase: all of this batch's dealer material is ready before the clock starts.
  if (dealerPlan?.ahead) await client.prefetch(dealerPlan.requests);
  // Barrier: neither party starts its clock before both are ready (e.g. done prefetching).
  await ctx.peer.exchange(new Uint8Array(1));
  const before = snapshotStats(ctx.peer.stats);
  const wait0 = client.stats.waitMs;
  const hist0 = client.history.length;
  const t0 = performance.now();
  // Dealer online, pipelined: ask for the whole batch's material in one round trip at the start;
  // the protocol consumes each item as it arrives (failures surface at the consumer).
  if (dealerPlan && !dealerPlan.ahead) client.prefetch(dealerPlan.requests).catch(() => {});
  const value = await body();
  const ms = performance.now() - t0;
  const d = diffStats(ctx.peer.stats, before);
  const stat: BatchStat = {
    size,
    ms,
    dealerWaitMs: client.stats.waitMs - wait0,
    bytesSent: d.bytesSent,
    bytesReceived: d.bytesReceived,
    rounds: d.rounds,
    modeledMs: modeledSeconds(d, net) * 1000,
  };
  return { value, stat, requests: client.history.slice(hist0) };
}

async function runModelJob(opts: PartyOptions, ctx: PartyContext, client: DealerClient, job: ModelJob): Promise<PartyReport> {
  const plans = new Map<number, MpcPlan>();
  const planFor = (b: number): MpcPlan => {
    let p = plans.get(b);
    if (!p) plans.set(b, (p = planModel(job.model, b)));
    return p;
  };
  const first = planFor(Math.min(job.batch, job.count));
  const inSize = first.inputShape.slice(1).reduce((a, b) => a * b, 1);
  const outSize = first.outputShape.slice(1).reduce((a, b) => a * b, 1);
  if (opts.id === 0 && (!job.inputs || job.inputs.length !== job.count * inSize)) {
    throw new Error(`party 0: expected ${job.count} inputs of ${inSize} values, got ${job.inputs ? job.inputs.length : 0} values`);
  }
  const weights = await prepareWeights(ctx, first, job.weights);
  const recorded = new Map<number, CorrelationRequest[]>();
  const runBatch = async (plan: MpcPlan, x: Float32Array | undefined, layers?: LayerStat[]) => {
    const n = plan.batch * inSize;
    const share = await shareInput(ctx, 0, ctx.party === 0 ? encodeFixed(x!, ctx.fracBits) : undefined, n);
    const { output, layers: ls } = await runPlan(ctx, plan, weights, share, { weights: job.weights, reluProtocol: job.reluProtocol, reluConfig: job.reluConfig });
    if (layers) for (const l of ls) layers.push(l);
    const y = await reveal(ctx, output, 0);
    return y && decodeFixed(y, ctx.fracBits);
  };
  // Untimed warm-up batches of zeros: JIT warm-up, and the dealer plan of each batch size.
  const sizes = [...new Set([Math.min(job.batch, job.count), job.count % job.batch || job.batch].filter((s) => s <= job.count))];
  if (job.warmup || job.preprocess) {
    for (const s of sizes) {
      const h0 = client.history.length;
      await runBatch(planFor(s), opts.id === 0 ? new Float32Array(s * inSize) : undefined);
      recorded.set(s, client.history.slice(h0));
    }
  }
  const batches: BatchStat[] = [];
  const perLayer: LayerStat[] = [];
  const outputs = opts.id === 0 ? new Float32Array(job.count * outSize) : undefined;
  for (let start = 0; start < job.count; start += job.batch) {
    const size = Math.min(job.batch, job.count - start);
    const plan = planFor(size);
    const x = opts.id === 0 ? job.inputs!.subarray(start * inSize, (start + size) * inSize) : undefined;
    const layerStats: LayerStat[] = [];
    const known = recorded.get(size);
    const { value, stat, requests } = await timed(ctx, client, opts.net, size, known && { requests: known, ahead: job.preprocess }, () => runBatch(plan, x, layerStats));
    if (!known) recorded.set(size, requests);
    if (outputs && value) outputs.set(value, start * outSize);
    batches.push(stat);
    layerStats.forEach((l, i) => {
      const acc = perLayer[i];
      if (!acc) perLayer.push({ ...l });
      else {
        acc.bytesSent += l.bytesSent;
        acc.bytesReceived += l.bytesReceived;
        acc.rounds += l.rounds;
        acc.ms += l.ms;
      }
    });
  }
  return { party: opts.id, job: 'model', batches, layers: perLayer, dealer: { ...client.stats }, outputs, outputShape: first.outputShape.slice(1) };
}

async function runReluJob(opts: PartyOptions, ctx: PartyContext, client: DealerClient, job: ReluJob): Promise<PartyReport> {
  // Party 0 shares fresh random ring values (their distribution does not affect cost).
  const prg = new Prg(randomSeed());
  const x = await shareInput(ctx, 0, ctx.party === 0 ? prg.ring(job.n) : undefined, job.n);
  const copts = { protocol: job.reluProtocol, ...(job.reluProtocol !== 'crypten' ? { msb: job.msb, lsb: job.lsb } : {}) };
  const h0 = client.history.length;
  await relu(ctx, x, copts); // warm-up; records the dealer plan of one call
  const plan = client.history.slice(h0);
  const batches: BatchStat[] = [];
  for (let r = 0; r < job.reps; r++) {
    const { stat } = await timed(ctx, client, opts.net, job.n, { requests: plan, ahead: job.preprocess }, () => relu(ctx, x, copts));
    batches.push(stat);
  }
  return { party: opts.id, job: 'relu', batches, layers: [], dealer: { ...client.stats } };
}
