/**
 * Where a party's time goes: compute per kind of kernel versus waiting for the peer or the dealer.
 * A `Profiler` rides on the PartyContext (`ctx.profile`); protocols time their synchronous compute
 * sections with `timed`, and `profiledContext` wraps the peer channel and the dealer so every await
 * on them counts as waiting. Without a profiler, `timed` is a plain call.
 */
import type { Correlations, PartyContext, PeerChannel } from './context.js';

/** Compute categories and waits, in milliseconds. */
export const PROFILE_KEYS = ['ring', 'bitplanes', 'and', 'pack', 'framing', 'waitPeer', 'waitDealer'] as const;

/** One profile category. */
export type ProfileKey = (typeof PROFILE_KEYS)[number];

/** Milliseconds per category; `other` (filled by the executor) is the layer's unattributed time. */
export type Profile = Record<ProfileKey | 'other', number>;

/** A zero profile. */
export const emptyProfile = (): Profile => ({ ring: 0, bitplanes: 0, and: 0, pack: 0, framing: 0, waitPeer: 0, waitDealer: 0, other: 0 });

/** a += b, per category; returns a. */
export function addProfile(a: Profile, b: Partial<Profile>): Profile {
  for (const k of Object.keys(a) as (keyof Profile)[]) a[k] += b[k] ?? 0;
  return a;
}

/** Party compute time of a profile (everything except the two waits). */
export const computeMs = (p: Profile): number => p.ring + p.bitplanes + p.and + p.pack + p.framing + p.other;

/** Accumulates time per category. */
export class Profiler {
  /** Totals since creation. */
  readonly total: Profile = emptyProfile();
  /**
   * Concurrent strands of this party's protocol (`lanes.ts`): the party is idle only while all of
   * them are blocked, so waits are charged as wall-clock idle time, never summed over strands.
   */
  lanes = 1;
  private blocked = 0;
  private idleSince = 0;

  /** Add `ms` to category `k`. */
  add(k: ProfileKey, ms: number): void {
    this.total[k] += ms;
  }

  /** A strand starts waiting (for the peer, the dealer, or its turn). */
  beginWait(): void {
    if (++this.blocked === this.lanes) this.idleSince = performance.now();
  }

  /** A strand stops waiting; the idle time that ends now is charged to `k`. */
  endWait(k: ProfileKey): void {
    if (this.blocked-- === this.lanes) this.total[k] += performance.now() - this.idleSince;
  }

  /** One of the concurrent strands returned; if all the others are blocked, idle time starts now. */
  laneDone(): void {
    if (--this.lanes > 0 && this.blocked === this.lanes) this.idleSince = performance.now();
  }

  /** A copy of the totals (for before/after differences). */
  snapshot(): Profile {
    return { ...this.total };
  }
}

/** Run the synchronous `f`, charging its time to `k` when `ctx` carries a profiler. */
export function timed<T>(ctx: PartyContext, k: ProfileKey, f: () => T): T {
  const p = ctx.profile;
  if (!p) return f();
  const t0 = performance.now();
  try {
    return f();
  } finally {
    p.add(k, performance.now() - t0);
  }
}

/** Await `v`, charging the time all strands are blocked to `k`. */
export async function waited<T>(p: Profiler, k: ProfileKey, v: Promise<T>): Promise<T> {
  p.beginWait();
  try {
    return await v;
  } finally {
    p.endWait(k);
  }
}

function profiledPeer(peer: PeerChannel, p: Profiler): PeerChannel {
  return {
    exchange(msg, handOff) {
      const t0 = performance.now();
      const r = peer.exchange(msg, handOff); // the synchronous part frames and queues the message
      p.add('framing', performance.now() - t0);
      return waited(p, 'waitPeer', r);
    },
    send(msg, handOff) {
      const t0 = performance.now();
      peer.send(msg, handOff);
      p.add('framing', performance.now() - t0);
    },
    recv: () => waited(p, 'waitPeer', peer.recv()),
    get stats() {
      return peer.stats;
    },
  };
}

/** The dealer with every request's await charged to `waitDealer` (other methods pass through). */
function profiledDealer(d: Correlations, p: Profiler): Correlations {
  return new Proxy(d, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const r = (v as (...a: unknown[]) => unknown).apply(target, args);
        return r instanceof Promise ? waited(p, 'waitDealer', r) : r;
      };
    },
  });
}

/** `ctx` with a fresh profiler whose peer and dealer waits are measured. */
export function profiledContext(ctx: PartyContext): PartyContext & { profile: Profiler } {
  const p = new Profiler();
  return { ...ctx, peer: profiledPeer(ctx.peer, p), dealer: profiledDealer(ctx.dealer, p), profile: p };
}
