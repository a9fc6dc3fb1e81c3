/**
 * FrameChannel over TCP (`node:net`) or TLS (`node:tls`). Parties start in any order, so `connect`
 * retries until its deadline while nothing listens yet. A peer that closes or dies makes every
 * pending and later `recv` reject at once with "peer <label> closed the connection".
 */
import net from 'node:net';
import tls from 'node:tls';
import type { FrameChannel } from '../context.js';
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, checkFrameLimit, encodeFrame } from './framing.js';
import { FrameQueue, formatSeconds } from './queue.js';

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
}

/** Per-channel options common to both ends. */
export interface ChannelOptions {
  /** Reject a `recv` that waits longer than this, failing the link (default: wait forever). */
  idleTimeoutMs?: number;
  /** Largest frame accepted in either direction (default 256 MiB). */
  maxFrameBytes?: number;
  /** Name of the peer in error messages (default: its address). */
  label?: string;
}

/** Options of `listen`. */
export interface ListenOptions extends ChannelOptions {
  host: string;
  /** 0 picks a free ephemeral port (read it back from `Listener.port`). */
  port: number;
  tls?: TlsServerOptions;
  /** `accept` rejects when no peer connects within this time (default: wait forever). */
  acceptTimeoutMs?: number;
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
}

/** A FrameChannel over a socket, with the peer's name used in its errors. */
export interface TcpFrameChannel extends FrameChannel {
  readonly label: string;
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

class SocketChannel implements TcpFrameChannel {
  private readonly queue: FrameQueue;
  private readonly decoder: FrameDecoder;
  private readonly maxFrameBytes: number;

  constructor(
    private readonly socket: net.Socket,
    readonly label: string,
    opts: ChannelOptions,
  ) {
    this.maxFrameBytes = checkFrameLimit(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.queue = new FrameQueue(opts.idleTimeoutMs, (err) => this.abort(err), label);
    this.decoder = new FrameDecoder((f) => this.queue.push(f), this.maxFrameBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.decoder.push(chunk);
      } catch (err) {
        this.abort(new Error(`peer ${label} sent a bad frame: ${(err as Error).message}`));
      }
    });
    socket.on('error', (err) => this.peerGone(err));
    socket.on('end', () => this.peerGone(undefined));
    socket.on('close', () => this.peerGone(undefined));
  }

  private peerGone(err: Error | undefined): void {
    if (this.queue.failure) return;
    const midFrame = this.decoder.idle ? '' : ' in the middle of a frame';
    const why = err ? ` (${describe(err)})` : '';
    this.queue.fail(new Error(`peer ${this.label} closed the connection${midFrame}${why}`));
    this.socket.destroy();
  }

  /** Fail the link with `err` and drop the connection. */
  private abort(err: Error): void {
    this.queue.fail(err, true);
    this.socket.destroy();
  }

  send(frame: Uint8Array): void {
    const err = this.queue.failure;
    if (err) throw err;
    this.socket.write(encodeFrame(frame, this.maxFrameBytes));
  }

  recv(): Promise<Uint8Array> {
    return this.queue.recv();
  }

  close(): void {
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
  const server: net.Server = opts.tls
    ? tls.createServer({
        cert: opts.tls.cert,
        key: opts.tls.key,
        ca: opts.tls.ca,
        requestCert: opts.tls.ca !== undefined,
        rejectUnauthorized: opts.tls.ca !== undefined,
      })
    : net.createServer();

  const ready: TcpFrameChannel[] = [];
  const waiters: { resolve(c: TcpFrameChannel): void; reject(e: Error): void; timer?: ReturnType<typeof setTimeout> }[] = [];
  let closed = false;
  let lastTlsError: string | undefined;

  server.on(opts.tls ? 'secureConnection' : 'connection', (socket: net.Socket) => {
    if (closed) {
      socket.destroy();
      return;
    }
    const label = opts.label ?? formatAddress(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    const ch = new SocketChannel(socket, label, chanOpts);
    const w = waiters.shift();
    if (w) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(ch);
    } else ready.push(ch);
  });
  // A client that fails the TLS handshake is dropped; keep waiting for a good one, but remember why.
  server.on('tlsClientError', (err: Error, socket: net.Socket) => {
    lastTlsError = describe(err);
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
  if (!(timeoutMs > 0)) throw new Error(`invalid connect timeout ${timeoutMs} ms`);
  if (!(retryMs >= 0)) throw new Error(`invalid connect retry interval ${retryMs} ms`);
  const chanOpts: ChannelOptions = { idleTimeoutMs: opts.idleTimeoutMs, maxFrameBytes: checkFrameLimit(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES) };
  const deadline = performance.now() + timeoutMs;
  let last = 'timed out';
  // Bounded: every pass either returns, throws, or sleeps; the deadline ends the loop.
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    const r = await attempt(opts, addr, left);
    if ('socket' in r) return new SocketChannel(r.socket, opts.label ?? addr, chanOpts);
    last = r.retry;
    const wait = Math.min(retryMs, deadline - performance.now());
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
  }
  throw new Error(`cannot connect to ${addr} within ${formatSeconds(timeoutMs)}: ${last}`);
}
