/**
 * The page's PRG keystream computed in a second worker. Chromium computes AES-CTR inside each
 * WebCrypto `encrypt` call, on the calling thread (~1 ms for the 1.49 MB a fmnist-cnn batch of
 * party 0 expands), so in party 0's worker every byte fetched delayed the protocol by that much.
 * This helper worker makes the same calls (same key, same counter blocks: the same bytes) and
 * transfers each piece back; party 0's worker goes on sharing the input and computing while they
 * land, and each draw waits only for its own bytes (ctr-stream.ts `ready`).
 *
 * The helper is a worker of the same page (a Blob URL, no file to serve): the seeds it receives
 * never leave the browser, as before.
 */
import type { KeystreamSource } from './ctr-stream.js';

/** The helper's code: per message, one WebCrypto call; keys imported once per seed (a few per session). */
const HELPER = `
const keys = new Map();
let zeros = new Uint8Array(0);
self.onmessage = async (e) => {
  const { id, key, counter, len } = e.data;
  let buf = null;
  try {
    const kid = key.join(',');
    let k = keys.get(kid);
    if (!k) {
      if (keys.size >= 16) keys.clear();
      keys.set(kid, (k = crypto.subtle.importKey('raw', key, { name: 'AES-CTR' }, false, ['encrypt'])));
    }
    if (zeros.length < len) zeros = new Uint8Array(len);
    buf = await crypto.subtle.encrypt({ name: 'AES-CTR', counter, length: 128 }, await k, zeros.subarray(0, len));
  } catch {
    buf = null;
  }
  self.postMessage({ id, buf }, buf ? [buf] : []);
};`;

/** The part of a Worker the source uses. */
interface WorkerLike {
  postMessage(m: unknown): void;
  addEventListener(type: 'message' | 'error', f: (ev: { data?: unknown }) => void): void;
}

/** A KeystreamSource answered by `w` (running HELPER's protocol); a failed helper answers null from then on. */
export function workerSource(w: WorkerLike): KeystreamSource {
  const waiting = new Map<number, (b: ArrayBuffer | null) => void>();
  let next = 0;
  let broken = false;
  w.addEventListener('message', (ev) => {
    const { id, buf } = ev.data as { id: number; buf: ArrayBuffer | null };
    waiting.get(id)?.(buf);
    waiting.delete(id);
  });
  w.addEventListener('error', () => {
    broken = true;
    for (const r of waiting.values()) r(null);
    waiting.clear();
  });
  return (key, counter, len) => {
    if (broken) return Promise.resolve(null);
    const id = next++;
    return new Promise((resolve) => {
      waiting.set(id, resolve);
      w.postMessage({ id, key, counter, len });
    });
  };
}

/** Start the helper worker and return its source, or undefined when this context cannot start workers. */
export function startKeystreamWorker(): KeystreamSource | undefined {
  if (typeof Worker === 'undefined' || typeof Blob === 'undefined' || typeof URL?.createObjectURL !== 'function') return undefined;
  try {
    const url = URL.createObjectURL(new Blob([HELPER], { type: 'text/javascript' }));
    return workerSource(new Worker(url) as unknown as WorkerLike);
  } catch {
    return undefined;
  }
}
