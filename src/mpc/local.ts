/**
 * An in-process two-party session (tests, `--in-process` runs): both parties and the dealer in one
 * process, linked by in-memory frame channels with the same semantics and accounting as TCP.
 */

import type { PartyContext } from './context.js';
import { DealerClient, DealerServer } from './dealer.js';
import { memoryFramePair } from './net/memory.js';
import { peerChannel } from './net/peer.js';

/** Options of `localSession`. */
export interface LocalSessionOptions {
  /** Fixed-point fractional bits (default 16). */
  fracBits?: number;
}

/** A running in-process session. */
export interface LocalSession {
  ctx0: PartyContext;
  ctx1: PartyContext;
  /** Settles when the dealer stops: resolves after `close()`, rejects on a dealer failure. */
  dealer: Promise<void>;
  /** The dealer and both clients, for accounting. */
  server: DealerServer;
  clients: [DealerClient, DealerClient];
  /** End the session: party 1 releases the dealer, every link is closed. */
  close(): void;
}

/** Start an in-process session: peer link, dealer, both dealer clients. */
export async function localSession(opts: LocalSessionOptions = {}): Promise<LocalSession> {
  const fracBits = opts.fracBits ?? 16;
  if (!Number.isInteger(fracBits) || fracBits < 0 || fracBits > 31) throw new Error(`localSession: fracBits must be an integer in [0, 31], got ${fracBits}`);
  const [p0, p1] = memoryFramePair({ labels: ['party 0', 'party 1'] });
  const [d0, c0] = memoryFramePair({ labels: ['dealer', 'party 0'] });
  const [d1, c1] = memoryFramePair({ labels: ['dealer', 'party 1'] });
  const server = new DealerServer(d0, d1);
  const dealer = server.serve();
  dealer.catch(() => {}); // the caller may await `dealer`; an unobserved failure must not crash the process
  const [client0, client1] = await Promise.all([DealerClient.connect(0, c0), DealerClient.connect(1, c1)]);
  const ctx0: PartyContext = { party: 0, peer: peerChannel(p0), dealer: client0, fracBits };
  const ctx1: PartyContext = { party: 1, peer: peerChannel(p1), dealer: client1, fracBits };
  return {
    ctx0,
    ctx1,
    dealer,
    server,
    clients: [client0, client1],
    close() {
      client1.close();
      client0.close();
      p0.close();
      p1.close();
    },
  };
}

/** Run `f` on both parties of a fresh local session; returns [party 0's result, party 1's result]. */
export async function runTwoParty<T>(f: (ctx: PartyContext) => Promise<T>, opts: LocalSessionOptions = {}): Promise<[T, T]> {
  const s = await localSession(opts);
  let results: [T, T];
  try {
    results = await Promise.all([f(s.ctx0), f(s.ctx1)]);
  } finally {
    // closing on failure makes the other party's pending receive reject instead of hanging
    s.close();
  }
  await s.dealer;
  return results;
}
