/**
 * The CKKS client in a Web Worker (`privml serve --fhe`): node-seal's browser build (WASM embedded in
 * the bundle), the same context, key and packing code as `privml fhe` (src/fhe). Keys are generated
 * here once per session; the public, relinearisation and Galois keys are uploaded once, the secret
 * key never leaves this worker. Each image is encrypted here, evaluated by the server (with refresh
 * round trips answered here: decrypt the masked value, encrypt it afresh) and decrypted here.
 */
import {
  decodeCiphertext,
  encodeCiphertext,
  encodeCiphertextPayload,
  encodeFheFile,
  FheContext,
  type FheFileKind,
  FILE_VERSION,
  generateKeys,
} from '../fhe/context.js';
import { decryptOutput, encryptInputSeeded, localRefresh, type OutputMeta } from '../fhe/executor.js';
import type { Layout } from '../fhe/lower.js';
import { decodeWire, encodeWire, type ServedPlan, type WireHeader } from '../fhe/wire.js';
import type { FheWorkerMessage, FheWorkerRequest } from './session.js';

const post = (m: FheWorkerMessage): void => (self as unknown as { postMessage(m: FheWorkerMessage): void }).postMessage(m);

interface Client {
  ctx: FheContext;
  keys: ReturnType<typeof generateKeys>;
  ws: WebSocket;
  layout: Layout;
  inbox: { h: WireHeader; payload: Uint8Array }[];
  waiter?: (m: { h: WireHeader; payload: Uint8Array } | Error) => void;
  closed?: Error;
  sent: number;
  received: number;
  keygenMs: number;
  keyBytes: number;
  uploadMs: number;
}

let client: Client | undefined;

/** The next frame from the server (or the reason the connection ended). */
function next(c: Client): Promise<{ h: WireHeader; payload: Uint8Array }> {
  const m = c.inbox.shift();
  if (m) return Promise.resolve(m);
  if (c.closed) return Promise.reject(c.closed);
  return new Promise((resolve, reject) => {
    c.waiter = (x) => (x instanceof Error ? reject(x) : resolve(x));
  });
}

function send(c: Client, frame: Uint8Array): void {
  if (c.ws.readyState !== WebSocket.OPEN) throw c.closed ?? new Error('the connection to the server is closed');
  c.sent += frame.length;
  c.ws.send(frame);
}

/** Wait for `t`; an error frame from the server becomes an Error with its message. */
async function expect(c: Client, t: WireHeader['t']): Promise<{ h: WireHeader; payload: Uint8Array }> {
  const m = await next(c);
  if (m.h.t === 'error') throw new Error(`server: ${String(m.h['message'])}`);
  if (m.h.t !== t) throw new Error(`server sent '${m.h.t}', expected '${t}'`);
  return m;
}

/** Key generation, connection and key upload (once per session). */
async function start(plan: ServedPlan, wsUrl: string): Promise<Client> {
  post({ type: 'progress', phase: 'generating keys', fraction: 0.05 });
  const t0 = performance.now();
  const ctx = await FheContext.create(plan.params);
  const keys = generateKeys(ctx, plan.galoisSteps, 1);
  const head = (kind: FheFileKind, meta: Record<string, unknown> = {}) => ({ version: FILE_VERSION, kind, paramsHash: ctx.hash, keyId: keys.keyId, meta });
  // Seeded serializations of the server keys only; the secret key object is never serialized here.
  const files: { h: WireHeader; file: Uint8Array }[] = [
    { h: { t: 'key', kind: 'public' }, file: encodeFheFile(head('public'), keys.seeded!.publicKey()) },
    { h: { t: 'key', kind: 'relin' }, file: encodeFheFile(head('relin'), keys.seeded!.relinKeys()) },
  ];
  const steps = keys.galois.steps;
  for (let i = 0; i < steps.length; i++) {
    files.push({ h: { t: 'key', kind: 'galois', step: steps[i] }, file: encodeFheFile(head('galois', { step: steps[i] }), keys.seeded!.galois(steps[i]!)) });
    post({ type: 'progress', phase: `generating keys (${i + 1}/${steps.length} rotation keys)`, fraction: 0.05 + (0.35 * (i + 1)) / steps.length });
  }
  const keygenMs = performance.now() - t0;
  const ws = new WebSocket(wsUrl);
  ws.binaryType = 'arraybuffer';
  const L = plan.input;
  const c: Client = {
    ctx,
    keys,
    ws,
    layout: { dims: L.dims, slotOf: Int32Array.from(L.slotOf), period: L.period, copies: L.copies },
    inbox: [],
    sent: 0,
    received: 0,
    keygenMs,
    keyBytes: 0,
    uploadMs: 0,
  };
  const deliver = (m: { h: WireHeader; payload: Uint8Array } | Error) => {
    const w = c.waiter;
    c.waiter = undefined;
    if (w) w(m);
    else if (!(m instanceof Error)) c.inbox.push(m);
  };
  ws.onmessage = (ev: MessageEvent<ArrayBuffer>) => {
    if (!(ev.data instanceof ArrayBuffer)) return deliver(new Error('the server sent a text frame'));
    c.received += ev.data.byteLength;
    try {
      deliver(decodeWire(new Uint8Array(ev.data)));
    } catch (e) {
      deliver(e as Error);
    }
  };
  ws.onclose = (ev) => {
    c.closed = new Error(`the server closed the connection${ev.reason ? ` (${ev.reason})` : ''}`);
    deliver(c.closed);
  };
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('could not connect to the server (stopped?)'));
  });
  post({ type: 'progress', phase: 'uploading keys', fraction: 0.45 });
  const t1 = performance.now();
  for (const f of files) {
    send(c, encodeWire(f.h, f.file));
    c.keyBytes += f.file.length;
  }
  await expect(c, 'ready');
  c.uploadMs = performance.now() - t1;
  return c;
}

async function classify(req: FheWorkerRequest): Promise<void> {
  const t0 = performance.now();
  const first = !client;
  client ??= await start(req.plan, req.wsUrl);
  const c = client;
  const { ctx, keys } = c;
  const sent0 = c.sent;
  const received0 = c.received;
  post({ type: 'progress', phase: 'encrypting', fraction: 0.5 });
  const te = performance.now();
  const { payload, meta } = encryptInputSeeded(ctx, keys.publicKey, keys.secretKey, c.layout, req.image);
  send(c, encodeWire({ t: 'infer', id: 1 }, encodeCiphertextPayload(ctx, keys.keyId, payload, meta)));
  const encryptMs = performance.now() - te;
  post({ type: 'progress', phase: 'server evaluating', fraction: 0.55 });
  const refresh = localRefresh(ctx, keys.secretKey, keys.publicKey);
  let refreshMs = 0;
  let refreshes = 0;
  for (;;) {
    const m = await next(c);
    if (m.h.t === 'error') throw new Error(`server: ${String(m.h['message'])}`);
    if (m.h.t === 'refresh') {
      const tr = performance.now();
      const { ct } = decodeCiphertext(ctx, keys.keyId, m.payload, 'masked ciphertext');
      let fresh;
      try {
        fresh = await refresh(ct);
      } finally {
        ct.delete();
      }
      const bytes = encodeCiphertext(ctx, keys.keyId, fresh, { role: 'refresh' });
      fresh.delete();
      send(c, encodeWire({ t: 'fresh', id: m.h['id'] }, bytes));
      refreshMs += performance.now() - tr;
      refreshes++;
      post({ type: 'progress', phase: `server evaluating (refresh ${refreshes} answered)`, fraction: 0.55 + 0.1 * refreshes });
      continue;
    }
    if (m.h.t !== 'result') throw new Error(`server sent '${m.h.t}' during an inference`);
    const td = performance.now();
    const { ct, meta: om } = decodeCiphertext(ctx, keys.keyId, m.payload, 'encrypted result');
    let logits: Float64Array;
    try {
      if (om['role'] !== 'output') throw new Error('the server returned something other than a model output');
      logits = decryptOutput(ctx, keys.secretKey, ct, om as OutputMeta);
    } finally {
      ct.delete();
    }
    const decryptMs = performance.now() - td;
    const out = Array.from(logits);
    post({
      type: 'result',
      logits: out,
      prediction: out.indexOf(Math.max(...out)),
      wallMs: performance.now() - t0,
      keygenMs: first ? c.keygenMs : 0,
      uploadMs: first ? c.uploadMs : 0,
      keyBytes: first ? c.keyBytes : 0,
      encryptMs,
      refreshMs,
      decryptMs,
      serverSeconds: Number(m.h['seconds']),
      serverCpuSeconds: Number(m.h['cpuSeconds']),
      refreshes,
      bytesSent: c.sent - sent0,
      bytesReceived: c.received - received0,
    });
    return;
  }
}

/**
 * For the traffic test only (test/long/serve-fhe.test.ts reads it through playwright): this worker's
 * secret key, serialized, so the test can search every frame for it. It stays inside the worker,
 * where the key already is; nothing sends it.
 */
(self as unknown as Record<string, unknown>)['privmlSecretKeyForTest'] = () =>
  client
    ? [
        Array.from(client.keys.secretKey.saveArray(client.ctx.seal.ComprModeType.none)),
        Array.from(client.keys.secretKey.saveArray(client.ctx.seal.ComprModeType.zstd)),
      ]
    : null;

self.addEventListener('message', (ev: MessageEvent<FheWorkerRequest>) => {
  if (ev.data?.type !== 'fhe-classify') return;
  classify(ev.data).catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
});
