/**
 * FrameChannel over TCP (`node:net`) or TLS (`node:tls`). Parties start in any order, so `connect`
 * retries until its deadline while nothing listens yet. A peer that closes or dies makes every
 * pending and later `recv` reject at once with "peer <label> closed the connection".
 */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
// Before ws: replaces ws's byte-by-byte unmasking of the page's frames (see ws-unmask.ts).
import './ws-unmask.js';
import { WebSocketServer } from 'ws';
import type { FrameChannel } from '../context.js';
import { checkFrameLimit, DEFAULT_MAX_FRAME_BYTES, encodeFrame, FRAME_HEADER_BYTES, HEARTBEAT_BYTES, oversizedFrameError } from './framing.js';
import { formatSeconds } from './queue.js';
import { StreamChannel } from './stream-channel.js';
import { type WebSocketLike, wsFrameChannel } from './ws.js';

type Pem = string | Buffer;

/** TLS material of a listening party (`ca` set: clients must present a certificate it signed). */
export interface TlsServerOptions {
  cert: Pem;
  key: Pem;
  ca?: Pem | Pem[];
}

/** TLS settings of a connecting party (`ca` replaces the system trust store). */
export interface TlsClientOptions {
  ca?: Pem | Pem[];
  servername?: string;
  rejectUnauthorized?: boolean;
  cert?: Pem;
  key?: Pem;
  /** Check that the server's certificate names this role (CN or SAN) instead of its host name. */
  expectRole?: string;
}

/** True when a certificate's CN or a SAN names `role` ("party 0", "party0" or "party-0", any case). */
export function namesRole(id: PeerIdentity | undefined, role: string): boolean {
  if (!id) return false;
  const r = role.toLowerCase();
  const tokens = [r, r.replace(/\s+/g, ''), r.replace(/\s+/g, '-')];
  return [id.cn, ...id.san].some((n) => n !== undefined && tokens.includes(n.toLowerCase()));
}

/** Per-channel options common to both ends. */
export interface ChannelOptions {
  /** Reject a `recv` that waits longer than this, failing the link (default: wait forever). */
  idleTimeoutMs?: number;
  /** Largest frame accepted in either direction (default 256 MiB). */
  maxFrameBytes?: number;
  /** Name of the peer in error messages (default: its address). */
  label?: string;
  /**
   * Until `verified()` is called, accept frames of at most 64 KiB (PRE_AUTH_MAX_FRAME_BYTES) so an
   * unauthenticated peer cannot make this end allocate large buffers (default true).
   */
  preAuthLimit?: boolean;
}

/** Options of `listen`. */
export interface ListenOptions extends ChannelOptions {
  host: string;
  /** 0 picks a free ephemeral port (read it back from `Listener.port`). */
  port: number;
  tls?: TlsServerOptions;
  /** `accept` rejects when no peer connects within this time (default: wait forever). */
  acceptTimeoutMs?: number;
  /** Called with the address and a one-line reason when a client fails the TLS handshake. */
  onDrop?: (peer: string, reason: string) => void;
  /** A TLS client must finish its TLS handshake within this time (default 10 s). */
  tlsHandshakeTimeoutMs?: number;
  /**
   * Accept WebSocket clients (a browser page) instead of raw TCP: the same frames, one channel per
   * WebSocket (src/mpc/net/ws.ts). No TLS here (put a TLS-terminating proxy in front for wss://).
   */
  websocket?: boolean;
}

/** Options of `connect`. */
export interface ConnectOptions extends ChannelOptions {
  host: string;
  port: number;
  tls?: TlsClientOptions;
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between attempts while the peer is not listening yet (default 100 ms). */
  retryMs?: number;
  /**
   * Give up sooner when every attempt for this long was actively refused or reset (nothing
   * listens there: not started, or dead); default min(timeoutMs, 10 s).
   */
  refusedMs?: number;
}

/** What a peer's TLS certificate says about it (undefined on plain TCP or without a client certificate). */
export interface PeerIdentity {
  /** Subject common name. */
  cn?: string;
  /** subjectAltName values without their type prefix (DNS:, URI:, IP Address:, email:). */
  san: string[];
}

/** Liveness settings applied once a link's handshake is verified. */
export interface LivenessOptions {
  /** Fail the link when nothing (frame or heartbeat) arrives for this long; heartbeats are sent every quarter of it. */
  idleTimeoutMs?: number;
}

/** A FrameChannel over a socket, with the peer's name used in its errors. */
export interface TcpFrameChannel extends FrameChannel {
  readonly label: string;
  /** Name the peer by its verified role in later errors (a listener first knows it by address). */
  setLabel(label: string): void;
  /** The peer's certificate names (TLS with a client/server certificate), else undefined. */
  readonly peerIdentity: PeerIdentity | undefined;
  /** The handshake is verified: lift the 64 KiB pre-handshake frame cap and start heartbeats/idle timeout. */
  verified(opts?: LivenessOptions): void;
  /** Call `cb` once if the link fails (peer gone, bad frame, idle timeout), never on a local close. */
  onFailure?(cb: (err: Error) => void): void;
}

/** A listening socket handing out one channel per incoming connection. */
export interface Listener {
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** The next incoming connection (TLS: after a successful handshake). */
  accept(): Promise<TcpFrameChannel>;
  /** Stop listening; pending `accept` calls reject, accepted channels stay open. */
  close(): void;
}

/** "host:port", with brackets around IPv6 literals. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const CODE_TEXT: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
};

function errCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' ? c : undefined;
}

/** A one-line description of a socket/TLS error: its message, plus its code when that adds something. */
function describe(err: unknown): string {
  const code = errCode(err);
  // OpenSSL errors carry a readable `reason`; their message is a long internal trace.
  const reason = (err as { reason?: unknown }).reason;
  const msg = typeof reason === 'string' && reason ? reason : (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
  if (code && CODE_TEXT[code]) return CODE_TEXT[code]!;
  if (!code || msg.includes(code)) return msg;
  return `${msg} (${code})`;
}

/** Names in a certificate's subjectAltName string ("DNS:a, URI:b, IP Address:1.2.3.4"). */
function sanNames(alt: string | undefined): string[] {
  if (!alt) return [];
  return alt
    .split(/,\s*/)
    .map((e) => e.replace(/^(DNS|URI|IP Address|email):/, ''))
    .filter((e) => e.length > 0);
}

/** The peer certificate's names on a TLS socket (undefined on plain TCP or when the peer sent none). */
function identityOf(socket: net.Socket): PeerIdentity | undefined {
  if (!(socket instanceof tls.TLSSocket)) return undefined;
  const c = socket.getPeerCertificate();
  if (!c || Object.keys(c).length === 0) return undefined;
  const cn = c.subject?.CN;
  return { cn: Array.isArray(cn) ? cn[0] : cn, san: sanNames(c.subjectaltname) };
}

/** Frames handed off from this size on are written without a copy (smaller ones: one write of a copy is cheaper than two). */
const HANDOFF_MIN = 64 * 1024;

class SocketChannel extends StreamChannel implements TcpFrameChannel {
  readonly peerIdentity: PeerIdentity | undefined;
  /** Failure listeners; undefined once they were told (a later listener is called at once). */
  private failureCbs: ((err: Error) => void)[] | undefined = [];

  constructor(
    private readonly socket: net.Socket,
    label: string,
    opts: ChannelOptions,
  ) {
    super(label, opts);
    this.peerIdentity = identityOf(socket);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', (err) => this.peerGone(err));
    socket.on('end', () => this.peerGone(undefined));
    socket.on('close', () => this.peerGone(undefined));
  }

  protected heartbeat(): void {
    this.socket.write(HEARTBEAT_BYTES);
  }

  onFailure(cb: (err: Error) => void): void {
    if (this.failureCbs) this.failureCbs.push(cb);
    else if (this.queue.failure) cb(this.queue.failure);
  }

  /** Tell the failure listeners once (a local close clears them first). */
  private notify(err: Error): void {
    const cbs = this.failureCbs;
    this.failureCbs = undefined;
    for (const cb of cbs ?? []) cb(err);
  }

  private peerGone(err: Error | undefined): void {
    this.stopLiveness();
    if (this.queue.failure) return;
    const why = err ? ` (${describe(err)})` : '';
    const e = new Error(`peer ${this.label} closed the connection${this.midFrame()}${why}`);
    this.queue.fail(e);
    this.socket.destroy();
    this.notify(e);
  }

  protected abort(err: Error): void {
    this.stopLiveness();
    this.queue.fail(err, true);
    this.socket.destroy();
    this.notify(err);
  }

  send(frame: Uint8Array, handOff?: boolean): void {
    const err = this.queue.failure;
    if (err) throw err;
    if (handOff && frame.length >= HANDOFF_MIN) {
      // header and payload in one writev, the payload not copied: the caller gave it up (a large
      // frame's copy into its header buffer cost ~40 ms per fmnist-cnn batch of 64)
      if (frame.length > this.sendLimit) throw oversizedFrameError(frame.length, this.sendLimit);
      const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      head.writeUInt32BE(frame.length, 0);
      this.socket.cork();
      this.socket.write(head);
      this.socket.write(frame);
      this.socket.uncork();
    } else this.socket.write(encodeFrame(frame, this.sendLimit));
    this.lastTx = performance.now();
  }

  close(): void {
    this.stopLiveness();
    this.failureCbs = [];
    if (this.queue.failure) return;
    this.queue.fail(new Error(`connection to peer ${this.label} was closed locally`), true);
    // Flush what was sent, then release the handle even if the peer never answers the FIN.
    this.socket.end(() => this.socket.destroy());
  }
}

/** Listen for peers on host:port (plain TCP, or TLS when `tls` is given). */
export async function listen(opts: ListenOptions): Promise<Listener> {
  const addr = formatAddress(opts.host, opts.port);
  const chanOpts: ChannelOptions = { idleTimeoutMs: opts.idleTimeoutMs, maxFrameBytes: checkFrameLimit(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES) };
  if (opts.websocket && opts.tls) throw new Error(`cannot listen on ${addr}: TLS and WebSocket together are not supported (terminate TLS in front)`);
  const server: net.Server = opts.websocket
    ? http.createServer((_req, res) => res.writeHead(426, { connection: 'close' }).end('WebSocket only\n'))
    : opts.tls
      ? tls.createServer({
          cert: opts.tls.cert,
          key: opts.tls.key,
          ca: opts.tls.ca,
          requestCert: opts.tls.ca !== undefined,
          rejectUnauthorized: opts.tls.ca !== undefined,
          handshakeTimeout: opts.tlsHandshakeTimeoutMs ?? 10_000,
        })
      : net.createServer();

  const ready: TcpFrameChannel[] = [];
  const waiters: { resolve(c: TcpFrameChannel): void; reject(e: Error): void; timer?: ReturnType<typeof setTimeout> }[] = [];
  let closed = false;
  let lastTlsError: string | undefined;

  const deliver = (ch: TcpFrameChannel) => {
    const w = waiters.shift();
    if (w) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(ch);
    } else ready.push(ch);
  };
  if (opts.websocket) {
    // Frame limits are enforced by the channel; ws only caps one message (a frame may span several).
    const wss = new WebSocketServer({ server: server as http.Server, perMessageDeflate: false, maxPayload: chanOpts.maxFrameBytes! + 64 });
    wss.on('connection', (ws, req) => {
      if (closed) return ws.terminate();
      const label = opts.label ?? formatAddress(req.socket.remoteAddress ?? '?', req.socket.remotePort ?? 0);
      deliver(wsFrameChannel(ws as unknown as WebSocketLike, label, chanOpts));
    });
  } else {
    server.on(opts.tls ? 'secureConnection' : 'connection', (socket: net.Socket) => {
      if (closed) {
        socket.destroy();
        return;
      }
      const label = opts.label ?? formatAddress(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
      deliver(new SocketChannel(socket, label, chanOpts));
    });
  }
  // A client that fails the TLS handshake is dropped; keep waiting for a good one, but remember why.
  server.on('tlsClientError', (err: Error, socket: net.Socket) => {
    lastTlsError = describe(err);
    opts.onDrop?.(formatAddress(socket.remoteAddress ?? '?', socket.remotePort ?? 0), `TLS handshake failed: ${lastTlsError}`);
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`cannot listen on ${addr}: ${describe(err)}`));
    server.once('error', onError);
    server.listen({ host: opts.host, port: opts.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });

  const failAll = (err: Error) => {
    for (const w of waiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
  };
  const port = (server.address() as net.AddressInfo).port;
  const bound = formatAddress(opts.host, port);
  server.on('error', (err) => failAll(new Error(`listener on ${bound} failed: ${describe(err)}`)));

  return {
    port,
    accept(): Promise<TcpFrameChannel> {
      const ch = ready.shift();
      if (ch) return Promise.resolve(ch);
      if (closed) return Promise.reject(new Error(`listener on ${bound} is closed`));
      return new Promise<TcpFrameChannel>((resolve, reject) => {
        const w: (typeof waiters)[number] = { resolve, reject };
        const ms = opts.acceptTimeoutMs;
        if (ms !== undefined) {
          w.timer = setTimeout(() => {
            const i = waiters.indexOf(w);
            if (i >= 0) waiters.splice(i, 1);
            const tlsNote = lastTlsError ? ` (last TLS handshake failure: ${lastTlsError})` : '';
            reject(new Error(`no peer connected to ${bound} within ${formatSeconds(ms)}${tlsNote}`));
          }, ms);
        }
        waiters.push(w);
      });
    },
    close(): void {
      if (closed) return;
      closed = true;
      server.close();
      failAll(new Error(`listener on ${bound} is closed`));
      for (const ch of ready.splice(0)) ch.close();
    },
  };
}

type Attempt = { socket: net.Socket } | { retry: string };

/** A TLS server-identity check that wants a certificate naming `role` (CN or SAN). */
function roleCheck(role: string): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const cn = cert.subject?.CN;
    const id = { cn: Array.isArray(cn) ? cn[0] : cn, san: sanNames(cert.subjectaltname) };
    return namesRole(id, role) ? undefined : new Error(`the server's certificate does not name ${role}`);
  };
}

/** One connection attempt: a connected socket, a retryable error code, or a thrown fatal error. */
function attempt(opts: ConnectOptions, addr: string, budgetMs: number): Promise<Attempt> {
  return new Promise<Attempt>((resolve, reject) => {
    let tcpUp = false;
    let done = false;
    const t = opts.tls;
    const socket: net.Socket = t
      ? tls.connect({
          host: opts.host,
          port: opts.port,
          ca: t.ca,
          cert: t.cert,
          key: t.key,
          rejectUnauthorized: t.rejectUnauthorized ?? true,
          // RFC 6066 forbids IP literals as SNI; Node then checks the certificate against the IP.
          servername: t.servername ?? (net.isIP(opts.host) ? undefined : opts.host),
          // Role-bound certificates: the dealer/party 1 is whoever holds a certificate naming its role.
          ...(t.expectRole ? { checkServerIdentity: roleCheck(t.expectRole) } : {}),
        })
      : net.connect({ host: opts.host, port: opts.port });
    const finish = (r: Attempt | Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // onError stays attached (inert once done) until the channel adds its own handler: an
      // 'error' emitted in between must not go unhandled.
      if (r instanceof Error || 'retry' in r) socket.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const onError = (err: Error) => {
      const code = errCode(err);
      if (t && tcpUp) {
        const hint = code === 'ECONNRESET' ? ' — is the peer listening with TLS?' : '';
        finish(new Error(`TLS handshake with ${addr} failed: ${describe(err)}${hint}`));
      } else if (code === 'ENOTFOUND') finish(new Error(`cannot connect to ${addr}: unknown host`));
      else finish({ retry: code ?? describe(err) });
    };
    const timer = setTimeout(() => {
      if (t && tcpUp) finish(new Error(`TLS handshake with ${addr} failed: no answer within ${formatSeconds(budgetMs)}`));
      else finish({ retry: 'ETIMEDOUT' });
    }, budgetMs);
    socket.on('error', onError);
    socket.once('connect', () => {
      // Retrying a loopback port in the ephemeral range can make TCP connect a socket to itself.
      if (socket.localPort === socket.remotePort && socket.localAddress === socket.remoteAddress) {
        finish({ retry: 'ECONNREFUSED' });
        return;
      }
      tcpUp = true;
      if (!t) finish({ socket });
    });
    if (t) socket.once('secureConnect', () => finish({ socket }));
  });
}

/** Connect to a listening peer, retrying until `timeoutMs` while it is not up yet. */
export async function connect(opts: ConnectOptions): Promise<TcpFrameChannel> {
  const addr = formatAddress(opts.host, opts.port);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const retryMs = opts.retryMs ?? 100;
  const refusedMs = opts.refusedMs ?? Math.min(timeoutMs, REFUSED_WINDOW_MS);
  if (!(timeoutMs > 0)) throw new Error(`invalid connect timeout ${timeoutMs} ms`);
  if (!(retryMs >= 0)) throw new Error(`invalid connect retry interval ${retryMs} ms`);
  if (!(refusedMs > 0)) throw new Error(`invalid connect refusal window ${refusedMs} ms`);
  const chanOpts: ChannelOptions = { idleTimeoutMs: opts.idleTimeoutMs, maxFrameBytes: checkFrameLimit(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES) };
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  let last = 'timed out';
  // Start of the current run of refused/reset attempts (a silent drop or timeout ends the run:
  // then something may be there, only slow).
  let refusedSince: number | undefined;
  // Bounded: every pass either returns, throws, or sleeps; the deadline ends the loop.
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    const r = await attempt(opts, addr, left);
    if ('socket' in r) return new SocketChannel(r.socket, opts.label ?? addr, chanOpts);
    last = r.retry;
    const now = performance.now();
    if (r.retry === 'ECONNREFUSED' || r.retry === 'ECONNRESET') {
      refusedSince ??= now;
      if (now - refusedSince >= refusedMs) {
        const who = opts.label ? `${opts.label} at ${addr}` : addr;
        throw new Error(`cannot connect to ${who}: connection refused for ${formatSeconds(now - t0)} (not running, or it died)`);
      }
    } else refusedSince = undefined;
    const wait = Math.min(retryMs, deadline - now);
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
  }
  throw new Error(`cannot connect to ${addr} within ${formatSeconds(timeoutMs)}: ${last}`);
}

/** Default refusal window of `connect`: how long a role waits for a peer that refuses connections. */
export const REFUSED_WINDOW_MS = 10_000;
