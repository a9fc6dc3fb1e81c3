/**
 * The three roles of a privml MPC session as long-running functions over TCP: the dealer, party 0
 * (data owner: holds the inputs, receives the outputs) and party 1 (model owner). Each is run in its
 * own OS process by `privml mpc dealer|party`, or all three on loopback by `privml mpc infer`.
 */

import { Prg, randomSeed } from '../crypto/prg.js';
import type { Model } from '../onnx/ir.js';
import { encodeModel } from '../onnx/proto.js';
import { architectureHash } from './arch.js';
import type { PartyContext, PartyId, PeerChannel } from './context.js';
import { type CorrelationRequest, DealerClient, type DealerClientStats, DealerServer, type DealerServerStats } from './dealer.js';
import { addLayerProfile, type BitRange, type LayerStat, prepareWeights, profiledLayer, runPlan, type WeightMode } from './executor.js';
import { admitPeers } from './net/admit.js';
import { emulateLink, type NetProfile } from './net/emulate.js';
import { type Hello, handshake, sha256Hex } from './net/handshake.js';
import { diffStats, modeledSeconds, peerChannel, snapshotStats } from './net/peer.js';
import { connect, formatAddress, listen, namesRole, type TcpFrameChannel, type TlsClientOptions, type TlsServerOptions } from './net/tcp.js';
import { applyPost, type MpcPlan, planModel } from './plan.js';
import { maskedShare, reveal, shareInput, shareInputMask } from './protocols/arith.js';
import { type ReluProtocol, relu } from './protocols/compare.js';
import { decodeFixed, encodeFixed } from './ring.js';
import { lossWatch, orLoss } from './setup-loss.js';
import { LazyPool } from './threads/pool.js';

/** Wire-protocol version; parties and dealer must agree. */
export const MPC_PROTOCOL_VERSION = 'privml-mpc/1';
/** How long to wait for the other processes to connect and say hello. */
const CONNECT_TIMEOUT_MS = 30_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Default idle timeout of every link after its handshake: a peer that sends nothing (not even a
 * heartbeat, sent every quarter of it) for this long is treated as dead. `--timeout` changes it;
 * it must exceed the longest synchronous step of any role (a heartbeat cannot be sent during one).
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/** Points of a session at which a fault can be injected (`--fault`, tests). */
export const PHASES = ['connect', 'handshake', 'setup', 'mid-layer', 'reveal'] as const;
/** One of PHASES. */
export type Phase = (typeof PHASES)[number];

/** True when the certificate's subject CN or one of its SANs names `role` ("party 0", "party0", "party-0"). */
export const certificateNamesRole = namesRole;

/** Why a client's certificate does not entitle it to `role`, or null (null too when client certificates are not required). */
function certificateRefusal(ch: TcpFrameChannel, role: string, required: boolean): string | null {
  if (!required || certificateNamesRole(ch.peerIdentity, role)) return null;
  if (!ch.peerIdentity) return `claims to be ${role} without a client certificate`;
  const names = [ch.peerIdentity.cn, ...ch.peerIdentity.san].filter((n) => n !== undefined).map((n) => n!.replace(/[\x00-\x1f\x7f]/g, '?').slice(0, 40));
  return `claims to be ${role} but its certificate names ${names.join(', ') || 'nothing'}`;
}

/** Liveness, logging and fault hooks common to the three roles. */
export interface RoleHooks {
  /** Idle timeout of every link after its handshake (default DEFAULT_IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  /** One-line notices (dropped connections); never shares or keys. */
  log?: (line: string) => void;
  /** Called as the role enters each phase (fault-injection tests). */
  onPhase?: (phase: Phase) => void;
  /** How long to wait for the other roles to connect and complete their handshakes (default 30 s). */
  connectTimeoutMs?: number;
}

import type { Endpoint } from './net/endpoint.js';

export { type Endpoint, parseEndpoint } from './net/endpoint.js';

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
  /** Worker threads for batch-split public-weight convolutions/products (1 or absent: none). */
  threads?: number;
  /** Interleaved lanes per large ReLU/MaxPool (compare.ts; default 2 from LANE_MIN elements). */
  lanes?: number;
  /** Tests only: the thread pool's first task kills its worker (PoolOptions.crashFirstTask). */
  faultWorkerCrash?: boolean;
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
  lanes?: number;
}

/** Settings common to both parties. */
export interface PartyOptions {
  id: PartyId;
  job: ModelJob | ReluJob;
  /** Party 1: where to listen for party 0. Party 0: where party 1 listens. */
  peer: Endpoint;
  dealer: Endpoint;
  net: NetProfile;
  /** The link to the dealer's profile (default: `net`). */
  dealerNet?: NetProfile;
  fracBits: number;
  /** Party 1's listener (`ca` set: party 0 must present a certificate naming "party 0"). */
  tlsServer?: TlsServerOptions;
  /** TLS towards the dealer and party 1 (the server's certificate must name its role). */
  tlsClient?: TlsClientOptions;
  /** Called once party 1 listens (with the bound port, useful with port 0). */
  onListening?: (port: number) => void;
  /** Party 1: accept party 0 over WebSocket (a browser page, `privml serve`) instead of TCP. */
  peerWebSocket?: boolean;
  hooks?: RoleHooks;
}

/** Timing and traffic of one batch on one party. */
export interface BatchStat {
  size: number;
  /** Sharing the input to revealing the output, dealer waits included. */
  ms: number;
  /** Time this party waited for the dealer inside `ms`. */
  dealerWaitMs: number;
  /**
   * Offline phase (--preprocess): wall time of fetching this batch's dealer material before the
   * input is shared (not inside `ms`); 0 when the dealer is online.
   */
  offlineMs: number;
  /** Bytes this party sent its peer in the offline phase (the input's mask), not in bytesSent. */
  offlinePeerBytes: number;
  /** Bytes this party received from the dealer for this batch (offline or, dealer online, inside `ms`). */
  dealerBytes: number;
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
  return architectureHash(model);
}

function jobConfig(job: ModelJob | ReluJob, fracBits: number): Record<string, string> {
  if (job.kind === 'relu') {
    return {
      job: 'relu',
      n: String(job.n),
      msb: String(job.msb),
      lsb: String(job.lsb),
      protocol: job.reluProtocol,
      reps: String(job.reps),
      preprocess: String(job.preprocess),
      fracBits: String(fracBits),
      lanes: String(job.lanes ?? 'auto'),
    };
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
    // both parties must split ReLUs into the same lanes, or their messages would not match
    lanes: String(job.lanes ?? 'auto'),
  };
}

/** Options of `runDealer`. */
export interface DealerOptions {
  listen: Endpoint;
  net: NetProfile;
  /** `ca` set: a party must present a certificate naming its role ("party 0" / "party 1"). */
  tls?: TlsServerOptions;
  /** Also accept party 0 (only) over WebSocket here: a browser page (`privml serve`). */
  listenWs?: Endpoint;
  /** Called once listening, with the bound ports (the WebSocket one when `listenWs` is set). */
  onListening?: (port: number, wsPort?: number) => void;
  hooks?: RoleHooks;
}

/**
 * Run the dealer: admit both parties (stray or unauthenticated connections are dropped and
 * logged), check they belong to one session, serve until party 1 ends.
 */
export async function runDealer(opts: DealerOptions): Promise<DealerServerStats> {
  const hooks = opts.hooks ?? {};
  const idleTimeoutMs = hooks.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const requireCert = opts.tls?.ca !== undefined;
  const onDrop = (peer: string, why: string) => hooks.log?.(`dealer dropped a connection from ${peer}: ${why}`);
  const listener = await listen({ host: opts.listen.host, port: opts.listen.port, tls: opts.tls, onDrop });
  const wsListener = opts.listenWs && (await listen({ ...opts.listenWs, websocket: true, onDrop }).catch((e) => (listener.close(), Promise.reject(e))));
  opts.onListening?.(listener.port, wsListener?.port);
  hooks.onPhase?.('connect');
  const links: (TcpFrameChannel | undefined)[] = [undefined, undefined];
  const hellos: (Hello | undefined)[] = [undefined, undefined];
  let first = true;
  const loss = lossWatch();
  try {
    const admission = admitPeers(wsListener ? [listener, wsListener] : listener, {
      where: formatAddress(opts.listen.host, listener.port) + (wsListener ? ` (WebSocket ${formatAddress(opts.listenWs!.host, wsListener.port)})` : ''),
      timeoutMs: hooks.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      awaiting: () =>
        [0, 1]
          .filter((i) => !links[i])
          .map((i) => `party ${i}`)
          .join(' and '),
      onDrop,
      admit: async (ch, from) => {
        if (first) hooks.onPhase?.('handshake');
        first = false;
        // The WebSocket listener is for the page's party 0; party 1 comes over TCP (with its certificate, if required).
        const roles = from === 1 ? ['party 0'] : ['party 0', 'party 1'];
        const hello = await handshake(ch, { role: 'dealer', version: MPC_PROTOCOL_VERSION }, roles, HANDSHAKE_TIMEOUT_MS, true, {
          replyAfter: true,
          checkPeer: (h) => certificateRefusal(ch, h.role, requireCert) ?? (links[h.role === 'party 0' ? 0 : 1] ? `${h.role} is already connected` : null),
        });
        const id = hello.role === 'party 0' ? 0 : 1;
        if (links[id]) throw new Error(`${hello.role} is already connected`);
        ch.setLabel(hello.role);
        ch.verified({ idleTimeoutMs });
        links[id] = ch;
        hellos[id] = hello;
        loss.watch(ch, hello.role);
        return links[0] !== undefined && links[1] !== undefined;
      },
    });
    admission.catch(() => {});
    await Promise.race([admission, loss.lost]);
  } catch (e) {
    for (const ch of links) ch?.close();
    throw new Error(`dealer: ${(e as Error).message}`);
  } finally {
    listener.close();
    wsListener?.close();
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
  hooks.onPhase?.('setup');
  const dl0 = emulateLink(links[0]!, opts.net);
  const dl1 = emulateLink(links[1]!, opts.net);
  const server = new DealerServer(dl0, dl1, { onBatch: (i) => i === 1 && hooks.onPhase?.('mid-layer') });
  try {
    await server.serve();
  } finally {
    dl0.close();
    dl1.close();
  }
  return server.stats;
}

/** What a party tells the dealer: role, version and the session configuration (no model hash). */
function dealerHello(h: Hello): Hello {
  return { role: h.role, version: h.version, configHash: h.configHash, extra: h.extra };
}

/** Fault hook on the peer link: `onPhase('mid-layer')` at the 10th message this party sends. */
function watchMessages(peer: PeerChannel, hooks: RoleHooks): PeerChannel {
  const onPhase = hooks.onPhase;
  if (!onPhase) return peer;
  let sent = 0;
  const tick = () => {
    if (++sent === 10) onPhase('mid-layer');
  };
  return {
    stats: peer.stats,
    exchange: (m, handOff) => (tick(), peer.exchange(m, handOff)),
    send: (m, handOff) => (tick(), peer.send(m, handOff)),
    recv: () => peer.recv(),
  };
}

/** Connect this party to its peer and the dealer, with handshakes; returns the live context. */
async function openSession(opts: PartyOptions, hello: Hello): Promise<{ ctx: PartyContext; client: DealerClient; close: (ok: boolean) => void }> {
  const hooks = opts.hooks ?? {};
  const idleTimeoutMs = hooks.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const other = opts.id === 0 ? 'party 1' : 'party 0';
  const opened: TcpFrameChannel[] = [];
  const client = (expectRole: string): TlsClientOptions | undefined => opts.tlsClient && { ...opts.tlsClient, expectRole };
  // The peer compares `extra` setting by setting (naming a difference), not the opaque config hash.
  const peerHello = { ...hello, configHash: undefined };
  const loss = lossWatch();
  const toDealer = async (): Promise<TcpFrameChannel> => {
    const ch = await connect({ ...opts.dealer, tls: client('dealer'), timeoutMs: hooks.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, label: 'dealer' });
    opened.push(ch);
    hooks.onPhase?.('handshake');
    await handshake(ch, dealerHello(hello), 'dealer', HANDSHAKE_TIMEOUT_MS, false);
    ch.verified({ idleTimeoutMs });
    loss.watch(ch, 'the dealer');
    return ch;
  };
  try {
    let peerRaw: TcpFrameChannel;
    let dealerRaw: TcpFrameChannel;
    if (opts.id === 1) {
      const requireCert = opts.tlsServer?.ca !== undefined;
      const onDrop = (peer: string, why: string) => hooks.log?.(`party 1 dropped a connection from ${peer}: ${why}`);
      const l = await listen({ host: opts.peer.host, port: opts.peer.port, tls: opts.tlsServer, onDrop, websocket: opts.peerWebSocket });
      opts.onListening?.(l.port);
      let admitted: TcpFrameChannel | undefined;
      // Admit party 0 while connecting to the dealer, so a stray client never waits in the backlog.
      const admission = admitPeers(l, {
        where: formatAddress(opts.peer.host, l.port),
        timeoutMs: hooks.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
        awaiting: () => 'party 0',
        onDrop,
        admit: async (ch) => {
          await handshake(ch, peerHello, 'party 0', HANDSHAKE_TIMEOUT_MS, true, {
            replyAfter: true,
            checkPeer: () => certificateRefusal(ch, 'party 0', requireCert),
          });
          if (admitted) throw new Error('party 0 is already connected');
          admitted = ch;
          ch.setLabel('party 0');
          ch.verified({ idleTimeoutMs });
          loss.watch(ch, 'party 0');
          return true;
        },
      });
      admission.catch(() => {});
      try {
        hooks.onPhase?.('connect');
        dealerRaw = await orLoss(toDealer(), loss.lost);
        await orLoss(admission, loss.lost);
        peerRaw = admitted!;
        opened.push(peerRaw);
      } catch (e) {
        admitted?.close();
        throw e;
      } finally {
        l.close();
      }
    } else {
      hooks.onPhase?.('connect');
      dealerRaw = await toDealer();
      // Connect and handshake as one step, so a dealer lost during the connect still lets party 1's
      // hello name the setting the dealer refused.
      const toPeer = (async () => {
        const ch = await connect({ ...opts.peer, tls: client('party 1'), timeoutMs: hooks.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, label: 'party 1' });
        opened.push(ch);
        await handshake(ch, peerHello, other, HANDSHAKE_TIMEOUT_MS);
        return ch;
      })();
      peerRaw = await orLoss(toPeer, loss.lost);
      peerRaw.verified({ idleTimeoutMs });
    }
    hooks.onPhase?.('setup');
    const peerLink = emulateLink(peerRaw, opts.net);
    const dealerLink = emulateLink(dealerRaw, opts.dealerNet ?? opts.net);
    const dealerClient = await DealerClient.connect(opts.id, dealerLink);
    const ctx: PartyContext = { party: opts.id, peer: watchMessages(peerChannel(peerLink), hooks), dealer: dealerClient, fracBits: opts.fracBits };
    return {
      ctx,
      client: dealerClient,
      close: (ok: boolean) => {
        // After a failure, drop the dealer link first so the party cannot send the dealer a normal end.
        if (!ok) dealerLink.close();
        dealerClient.close();
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
    const report =
      job.kind === 'model'
        ? await withPool(job.threads, !!job.faultWorkerCrash, (pool) => runModelJob(opts, session.ctx, session.client, job, pool))
        : await runReluJob(opts, session.ctx, session.client, job);
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
  dealerPlan: { requests: CorrelationRequest[]; ahead: boolean; keystream?: number } | undefined,
  body: () => Promise<T>,
  /** More of the offline phase (e.g. the input's mask, which does not depend on the input). */
  offline?: () => Promise<void>,
): Promise<{ value: T; stat: BatchStat; requests: CorrelationRequest[] }> {
  // Offline phase: all of this batch's dealer material is ready before the clock starts; its time and bytes are reported
  // apart from the online time. `keystream`: PRG bytes the plan expands, fetched first by the page from WebCrypto (Node: no-op).
  const k0 = client.stats.bytesReceived,
    p0 = ctx.peer.stats.bytesSent,
    o0 = performance.now();
  if (dealerPlan?.ahead) await client.reserve(dealerPlan.keystream), await client.prefetch(dealerPlan.requests, true);
  await offline?.();
  const offlineMs = dealerPlan?.ahead || offline ? performance.now() - o0 : 0;
  const offlinePeerBytes = ctx.peer.stats.bytesSent - p0;
  // Barrier: neither party starts its clock before both are ready (e.g. done prefetching).
  await ctx.peer.exchange(new Uint8Array(1));
  const before = snapshotStats(ctx.peer.stats);
  const wait0 = client.stats.waitMs;
  const hist0 = client.history.length;
  const t0 = performance.now();
  // Dealer online, pipelined: ask for the whole batch's material in one round trip at the start;
  // the protocol consumes each item as it arrives (failures surface at the consumer).
  if (dealerPlan && !dealerPlan.ahead) await client.reserve(dealerPlan.keystream), client.prefetch(dealerPlan.requests).catch(() => {});
  const value = await body();
  const ms = performance.now() - t0;
  const d = diffStats(ctx.peer.stats, before);
  const stat: BatchStat = {
    size,
    ms,
    dealerWaitMs: client.stats.waitMs - wait0,
    offlineMs,
    offlinePeerBytes,
    dealerBytes: client.stats.bytesReceived - k0,
    bytesSent: d.bytesSent,
    bytesReceived: d.bytesReceived,
    rounds: d.rounds,
    modeledMs: modeledSeconds(d, net) * 1000,
  };
  return { value, stat, requests: client.history.slice(hist0) };
}

/** Run `f` with a lazily started thread pool of `threads` workers (none for 1), ended afterwards. */
async function withPool<T>(threads: number | undefined, crashFirstTask: boolean, f: (pool: LazyPool | undefined) => Promise<T>): Promise<T> {
  const pool = threads && threads > 1 ? new LazyPool(threads, { crashFirstTask }) : undefined;
  try {
    return await f(pool);
  } finally {
    await pool?.close();
  }
}

async function runModelJob(opts: PartyOptions, ctx: PartyContext, client: DealerClient, job: ModelJob, pool?: LazyPool): Promise<PartyReport> {
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
  let revealed = false;
  const runBatch = async (plan: MpcPlan, x: Float32Array | undefined, layers?: LayerStat[], mask?: BigInt64Array) => {
    const n = plan.batch * inSize;
    const plain = ctx.party === 0 ? encodeFixed(x!, ctx.fracBits) : undefined;
    // with an offline phase the input's mask already travelled: sharing the input costs no message
    const share = mask ? maskedShare(ctx, 0, mask, plain) : await shareInput(ctx, 0, plain, n);
    const { output, layers: ls } = await runPlan(ctx, plan, weights, share, {
      weights: job.weights,
      reluProtocol: job.reluProtocol,
      reluConfig: job.reluConfig,
      ...(pool ? { pool } : {}),
      ...(job.lanes ? { lanes: job.lanes } : {}),
    });
    if (layers) for (const l of ls) layers.push(l);
    if (!revealed) opts.hooks?.onPhase?.('reveal');
    revealed = true;
    const y = await reveal(ctx, output, 0);
    return y && applyPost(plan, decodeFixed(y, ctx.fracBits));
  };
  // Untimed warm-up batches of zeros: JIT warm-up, the dealer plan of each batch size and the PRG bytes it expands (the page
  // fetches just that much keystream ahead of a later batch). Two of the first size: after one, the next batch still ran ~2x
  // the steady CPU time of the ReLU kernels.
  const sizes = [...new Set([Math.min(job.batch, job.count), job.count % job.batch || job.batch].filter((s) => s <= job.count))];
  const keystream = new Map<number, number>();
  if (job.warmup || job.preprocess) {
    for (const s of sizes.length ? [sizes[0]!, ...sizes] : []) {
      await client.reserve(keystream.get(s));
      const h0 = client.history.length;
      const k0 = client.prgBytes;
      await runBatch(planFor(s), opts.id === 0 ? new Float32Array(s * inSize) : undefined);
      recorded.set(s, client.history.slice(h0));
      keystream.set(s, client.prgBytes - k0);
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
    let mask: BigInt64Array | undefined;
    const offline = job.preprocess
      ? async () => {
          mask = await shareInputMask(ctx, 0, size * inSize);
        }
      : undefined;
    const { value, stat, requests } = await timed(
      ctx,
      client,
      opts.net,
      size,
      known && { requests: known, ahead: job.preprocess, keystream: keystream.get(size) },
      () => runBatch(plan, x, layerStats, mask),
      offline,
    );
    if (!known) recorded.set(size, requests);
    if (outputs && value) outputs.set(value, start * outSize);
    batches.push(stat);
    layerStats.forEach((l, i) => {
      const acc = perLayer[i];
      if (!acc) perLayer.push({ ...l, profile: { ...l.profile } });
      else {
        acc.bytesSent += l.bytesSent;
        acc.bytesReceived += l.bytesReceived;
        acc.rounds += l.rounds;
        acc.ms += l.ms;
        addLayerProfile(acc, l);
      }
    });
  }
  return { party: opts.id, job: 'model', batches, layers: perLayer, dealer: { ...client.stats }, outputs, outputShape: first.outputShape.slice(1) };
}

async function runReluJob(opts: PartyOptions, ctx: PartyContext, client: DealerClient, job: ReluJob): Promise<PartyReport> {
  // Party 0 shares fresh random ring values (their distribution does not affect cost).
  const prg = new Prg(randomSeed());
  const x = await shareInput(ctx, 0, ctx.party === 0 ? prg.ring(job.n) : undefined, job.n);
  const copts = {
    protocol: job.reluProtocol,
    ...(job.reluProtocol !== 'crypten' ? { msb: job.msb, lsb: job.lsb } : {}),
    ...(job.lanes ? { lanes: job.lanes } : {}),
  };
  const h0 = client.history.length;
  await relu(ctx, x, copts); // warm-up; records the dealer plan of one call
  const plan = client.history.slice(h0);
  const batches: BatchStat[] = [];
  const layers: LayerStat[] = [];
  for (let r = 0; r < job.reps; r++) {
    const { stat, value } = await timed(ctx, client, opts.net, job.n, { requests: plan, ahead: job.preprocess }, () =>
      profiledLayer(ctx, 'relu', 'Relu', (p) => relu(p, x, copts)),
    );
    batches.push(stat);
    if (r === 0) layers.push(value.stat);
    else addLayerProfile(layers[0]!, value.stat);
  }
  return { party: opts.id, job: 'relu', batches, layers, dealer: { ...client.stats } };
}
