/**
 * The page's stand-in for src/mpc/net/tcp.ts (esbuild redirects imports of that file here): party 0
 * "connects" to party 1 and the dealer over WebSockets (each listens on its own port). The endpoint's
 * `host` carries the ws:// URL (its `port` is ignored); a page can never listen.
 */

import type { ConnectOptions, Listener, PeerIdentity, TcpFrameChannel } from '../../mpc/net/tcp.js';
import { connectWs } from '../../mpc/net/ws.js';

export type { ConnectOptions, Listener, PeerIdentity, TcpFrameChannel };

/** The ws:// URL of an endpoint (the page passes it as the host). */
export function formatAddress(host: string, _port: number): string {
  return host;
}

/** As in tcp.ts: whether a certificate names `role` (never, in the page: there are no certificates). */
export function namesRole(id: PeerIdentity | undefined, _role: string): boolean {
  return id !== undefined && false;
}

/** Open the WebSocket whose URL is `opts.host`. */
export function connect(opts: ConnectOptions): Promise<TcpFrameChannel> {
  if (opts.tls) throw new Error('TLS options do not apply in the page (use a wss:// URL)');
  return connectWs({ url: opts.host, label: opts.label, timeoutMs: opts.timeoutMs, maxFrameBytes: opts.maxFrameBytes, open: (u) => new WebSocket(u) as never });
}

/** A page cannot accept connections. */
export function listen(): Promise<Listener> {
  return Promise.reject(new Error('a page cannot listen for connections (party 1 and the dealer run on the server)'));
}
