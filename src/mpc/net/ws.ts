/**
 * FrameChannel over a WebSocket: the same length-prefixed frames (and heartbeats) as TCP, carried
 * in binary WebSocket messages. A message is treated as a stream chunk, so a relay may re-chunk
 * the bytes freely (e.g. pipe a TCP socket into a WebSocket). It runs on any object with the
 * browser WebSocket API — the browser's own `WebSocket` in the page, the `ws` package in Node —
 * and imports nothing from Node, so the page bundle uses this very file.
 */
import { FRAME_HEADER_BYTES, HEARTBEAT_BYTES, oversizedFrameError } from './framing.js';
import { formatSeconds } from './queue.js';
import { StreamChannel } from './stream-channel.js';
import type { PeerIdentity, TcpFrameChannel } from './tcp.js';

/** The part of the WebSocket API this transport uses (browser WebSocket and `ws` both have it). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  /** Bytes queued by `send` but not yet written to the network. */
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (ev: { data?: unknown; code?: number; reason?: string }) => void): void;
}

/** Per-channel options of a WebSocket FrameChannel (as for TCP). */
export interface WsChannelOptions {
  /** Reject a `recv` waiting longer than this, failing the link (default: wait forever). */
  idleTimeoutMs?: number;
  /** Largest frame accepted either way (default 256 MiB). */
  maxFrameBytes?: number;
  /** 64 KiB frame cap until `verified()` (default true), as on TCP. */
  preAuthLimit?: boolean;
}

const OPEN = 1;

/** A copy of `payload` behind a 4-byte big-endian length header (Buffer-free, for the page). */
function frameBytes(payload: Uint8Array, limit: number): Uint8Array {
  if (payload.length > limit) throw oversizedFrameError(payload.length, limit);
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** The bytes of a binary message (ArrayBuffer in the browser with binaryType "arraybuffer"; Buffer(s) from `ws`). */
function messageBytes(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) {
    const parts = data.map(messageBytes);
    if (parts.some((p) => p === null)) return null;
    const out = new Uint8Array(parts.reduce((a, p) => a + p!.length, 0));
    let off = 0;
    for (const p of parts) out.set(p!, off), (off += p!.length);
    return out;
  }
  return null;
}

class WsChannel extends StreamChannel implements TcpFrameChannel {
  readonly peerIdentity: PeerIdentity | undefined = undefined;

  constructor(
    private readonly ws: WebSocketLike,
    label: string,
    opts: WsChannelOptions,
  ) {
    super(label, opts);
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('message', (ev) => {
      const bytes = messageBytes(ev.data);
      if (bytes) return this.received(bytes);
      this.lastRx = performance.now();
      this.abort(new Error(`peer ${this.label} sent a text message where binary frames were expected`));
    });
    ws.addEventListener('close', (ev) => this.peerGone(ev.reason ? `${ev.code}: ${ev.reason}` : undefined));
    ws.addEventListener('error', () => this.peerGone('WebSocket error'));
  }

  protected heartbeat(): void {
    if (this.ws.readyState === OPEN) this.ws.send(HEARTBEAT_BYTES);
  }

  private peerGone(why: string | undefined): void {
    this.stopLiveness();
    if (this.queue.failure) return;
    this.queue.fail(new Error(`peer ${this.label} closed the connection${this.midFrame()}${why ? ` (${why})` : ''}`));
    this.ws.close();
  }

  protected abort(err: Error): void {
    this.stopLiveness();
    this.queue.fail(err, true);
    this.ws.close(1002, 'bad frame or timeout');
  }

  send(frame: Uint8Array): void {
    const err = this.queue.failure;
    if (err) throw err;
    if (this.ws.readyState !== OPEN) throw new Error(`connection to peer ${this.label} is not open`);
    this.ws.send(frameBytes(frame, this.sendLimit));
    this.lastTx = performance.now();
  }

  close(): void {
    this.stopLiveness();
    if (this.queue.failure) return;
    this.queue.fail(new Error(`connection to peer ${this.label} was closed locally`), true);
    // A WebSocket close flushes queued messages before the close frame.
    this.ws.close(1000);
  }
}

/** A FrameChannel over an open (or opening) WebSocket; `label` names the peer in errors. */
export function wsFrameChannel(ws: WebSocketLike, label: string, opts: WsChannelOptions = {}): TcpFrameChannel {
  return new WsChannel(ws, label, opts);
}

/** Options of `connectWs`. */
export interface WsConnectOptions extends WsChannelOptions {
  /** ws:// or wss:// address. */
  url: string;
  /** Name of the peer in errors (default: the URL). */
  label?: string;
  /** Give up when the socket is not open within this time (default 10 s). */
  timeoutMs?: number;
  /** Creates the socket (the page passes `(u) => new WebSocket(u)`; Node passes the `ws` package's). */
  open: (url: string) => WebSocketLike;
}

/** Open a WebSocket and resolve with a FrameChannel once it is open (one attempt, with a deadline). */
export function connectWs(opts: WsConnectOptions): Promise<TcpFrameChannel> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const label = opts.label ?? opts.url;
  return new Promise((resolve, reject) => {
    let ws: WebSocketLike;
    try {
      ws = opts.open(opts.url);
    } catch (e) {
      reject(new Error(`cannot connect to ${opts.url}: ${(e as Error).message}`));
      return;
    }
    let done = false;
    const timer = setTimeout(() => finish(new Error(`cannot connect to ${opts.url} within ${formatSeconds(timeoutMs)}`)), timeoutMs);
    // The channel is made now so that no message arriving right after 'open' is missed.
    const ch = new WsChannel(ws, label, opts);
    function finish(r: Error | null): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (r) {
        ws.close();
        reject(r);
      } else resolve(ch);
    }
    ws.addEventListener('open', () => finish(null));
    ws.addEventListener('close', (ev) =>
      finish(new Error(`cannot connect to ${opts.url}${ev.code ? ` (closed with code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})` : ''}`)),
    );
    ws.addEventListener('error', () => finish(new Error(`cannot connect to ${opts.url} (is the server running?)`)));
  });
}
