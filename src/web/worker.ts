/**
 * Party 0 in a Web Worker: the image is secret-shared here and never leaves this worker in the
 * clear. It runs the engine's own `runParty` (roles.ts), with the TCP transport replaced by
 * WebSockets to party 1 and the dealer (shims/tcp.ts) and Node's crypto by WebCrypto + AES-CTR in JS.
 * A worker (not the page's main thread) may compile the ring kernels synchronously, and the
 * page stays responsive while the protocol runs.
 */

import { NET_PRESETS } from '../mpc/net/emulate.js';
import { andGateClose, andGateOpen, toBitPlanes } from '../mpc/ring.js';
import { type Phase, runParty } from '../mpc/roles.js';
import { decodeModel } from '../onnx/proto.js';
import type { WorkerMessage, WorkerRequest } from './session.js';

const post = (m: WorkerMessage): void => (self as unknown as { postMessage(m: WorkerMessage): void }).postMessage(m);

/** Rough share of the work done when each phase starts (for the progress bar). */
const PHASE_FRACTION: Record<Phase, number> = { connect: 0.05, handshake: 0.1, setup: 0.2, 'mid-layer': 0.5, reveal: 0.9 };

/** The ws:// URL of `port` on the host of `origin`. */
const atPort = (origin: string, port: number): string => ((u) => ((u.port = String(port)), u.href))(new URL(origin));

/**
 * JIT warm-up of the ring kernels of a ReLU layer, on zeros (no data of the user's), before the
 * session: V8 runs a WebAssembly function in its baseline tier until it has spent a budget of work,
 * then swaps in optimised code compiled in the background. After the session's two warm-up batches
 * the bit-plane kernel still ran unoptimised in Chromium (0.2–0.7 ms per image, against < 0.05 ms
 * in the Node party 0 after the same two batches); with four warm-up batches it was gone, so the
 * page spends those calls here instead (a few ms, while the roles start; not part of the timed
 * batch, nor of Node's).
 */
function warmKernels(): void {
  const n = 16384;
  const x = new BigInt64Array(n);
  const planes = Array.from({ length: 8 }, () => new Uint8Array(n / 8));
  const masks = new Uint8Array(n);
  for (let i = 0; i < 8; i++) {
    toBitPlanes(x, 6, 18);
    const msg = andGateOpen(planes, planes, n, masks, masks);
    andGateClose(msg, msg, planes.length, n, masks, masks, masks, true);
  }
}

async function classify(req: WorkerRequest): Promise<void> {
  const t0 = performance.now();
  warmKernels();
  const model = decodeModel(new Uint8Array(req.model), 'served model');
  const s = req.session;
  const report = await runParty({
    id: 0,
    job: {
      kind: 'model',
      model,
      weights: s.job.weights,
      reluProtocol: s.job.reluProtocol,
      reluConfig: s.job.reluConfig,
      batch: 1,
      count: 1,
      inputs: req.image,
      preprocess: s.job.preprocess,
      warmup: s.job.warmup,
    },
    // Party 1 and the dealer listen themselves, each on its own port of the page's host.
    peer: { host: atPort(req.wsOrigin, s.peerPort), port: 0 },
    dealer: { host: atPort(req.wsOrigin, s.dealerPort), port: 0 },
    net: NET_PRESETS.none,
    fracBits: s.job.fracBits,
    hooks: {
      idleTimeoutMs: s.job.idleTimeoutMs,
      // The warm-up batch reaches each phase too; the bar only moves forward.
      onPhase: (p) => post({ type: 'progress', phase: p, fraction: PHASE_FRACTION[p] }),
    },
  });
  const logits = Array.from(report.outputs ?? []);
  if (logits.length === 0 || !logits.every(Number.isFinite)) throw new Error('party 0 received no valid output');
  const b = report.batches[0]!;
  post({
    type: 'result',
    logits,
    prediction: logits.indexOf(Math.max(...logits)),
    ms: b.ms,
    wallMs: performance.now() - t0,
    rounds: b.rounds,
    bytesSent: b.bytesSent,
    bytesReceived: b.bytesReceived,
    dealerWaitMs: b.dealerWaitMs,
    dealerLocalMs: report.dealer.localMs,
    layers: report.layers.map((l) => ({ name: l.name, ms: l.ms, rounds: l.rounds, profile: l.profile })),
  });
}

self.addEventListener('message', (ev: MessageEvent<WorkerRequest>) => {
  if (ev.data?.type !== 'classify') return;
  classify(ev.data).catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
});
