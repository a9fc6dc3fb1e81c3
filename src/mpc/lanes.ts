/**
 * Overlap of compute and communication inside one party: a protocol call on many elements runs as
 * several strands ("lanes") on disjoint slices, interleaved so that while one lane's opening is in
 * flight the other computes its next message (bit planes, AND gates, packing) — the network and
 * the peer work while this party computes, instead of strictly alternating.
 *
 * Both parties must send their messages and request dealer material in the same order, but lanes
 * resume in whatever order their messages arrive. So every interaction (exchange, recv, dealer
 * request) of a lane waits for its turn: turns go round-robin over the lanes still running, one
 * interaction per turn. Each lane's sequence of interactions is fixed by the protocol and its
 * slice size, so the global order is the same on both parties whatever the timing; only the
 * issuing is ordered, the awaiting of results is not (that is the overlap).
 *
 * Accounting: lanes run their rounds concurrently, so only lane 0's exchanges count as rounds
 * (the others' are taken back); bytes count for all. Waiting is charged only while every lane is
 * blocked (`Profiler.lanes`).
 */
import type { Correlations, PartyContext, PeerChannel } from './context.js';
import { waited } from './profile.js';

/** Round-robin turns over `n` lanes; a finished lane leaves the rotation. */
class Turns {
  private turn = 0;
  private readonly running: boolean[];
  private readonly wake = new Map<number, () => void>();

  constructor(n: number) {
    this.running = new Array<boolean>(n).fill(true);
  }

  /** Resolves when it is lane k's turn. */
  acquire(k: number): Promise<void> | undefined {
    if (this.turn === k) return undefined;
    return new Promise((resolve) => this.wake.set(k, resolve));
  }

  /** Lane k issued its interaction: the next running lane's turn. */
  release(k: number): void {
    this.advance(k);
  }

  /** Lane k returned (or failed): it takes no more turns. */
  finish(k: number): void {
    this.running[k] = false;
    if (this.turn === k) this.advance(k);
  }

  private advance(k: number): void {
    const n = this.running.length;
    for (let i = 1; i <= n; i++) {
      const j = (k + i) % n;
      if (!this.running[j]) continue;
      this.turn = j;
      const w = this.wake.get(j);
      if (w) this.wake.delete(j), w();
      return;
    }
  }
}

/** Run `issue` (which starts one interaction synchronously) in lane k's turn. */
async function inTurn<T>(ctx: PartyContext, turns: Turns, k: number, issue: () => Promise<T>): Promise<T> {
  const t = turns.acquire(k);
  if (t) await (ctx.profile ? waited(ctx.profile, 'waitPeer', t) : t);
  let r: Promise<T>;
  try {
    r = issue();
  } finally {
    turns.release(k);
  }
  return r;
}

function lanePeer(ctx: PartyContext, turns: Turns, k: number): PeerChannel {
  const peer = ctx.peer;
  return {
    exchange: (msg, handOff) =>
      inTurn(ctx, turns, k, () => {
        const r = peer.exchange(msg, handOff);
        if (k > 0) peer.stats.rounds--; // concurrent with lane 0's round
        return r;
      }),
    send() {
      // one-way sends are synchronous in the interface and cannot wait for a turn
      throw new Error('lanes: a one-way send inside a lane is not supported');
    },
    recv: () => inTurn(ctx, turns, k, () => peer.recv()),
    get stats() {
      return peer.stats;
    },
  };
}

function laneDealer(ctx: PartyContext, turns: Turns, k: number): Correlations {
  return new Proxy(ctx.dealer, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => inTurn(ctx, turns, k, () => Promise.resolve((v as (...a: unknown[]) => unknown).apply(target, args)));
    },
  });
}

/**
 * Run `f` on `parts` interleaved lanes (each gets a context whose peer and dealer are sequenced,
 * see above) and return the lanes' results in lane order. A lane that fails leaves the rotation,
 * so the others cannot wait for its turns forever; the first failure is thrown.
 */
export async function inLanes<T>(ctx: PartyContext, parts: number, f: (lane: PartyContext, k: number) => Promise<T>): Promise<T[]> {
  const turns = new Turns(parts);
  const prof = ctx.profile;
  // the calling strand becomes `parts` strands until they are all done
  if (prof) prof.lanes += parts - 1;
  try {
    return await Promise.all(
      Array.from({ length: parts }, async (_, k) => {
        try {
          return await f({ ...ctx, peer: lanePeer(ctx, turns, k), dealer: laneDealer(ctx, turns, k) }, k);
        } finally {
          turns.finish(k);
          prof?.laneDone();
        }
      }),
    );
  } finally {
    if (prof) prof.lanes++;
  }
}
