// Interleaved lanes (src/mpc/lanes.ts): a ReLU split over lanes gives the plaintext result with the
// same bytes and rounds as one lane, also when messages and dealer material arrive with random
// delays (lanes then resume in different orders on the two parties: only the turn order keeps
// their messages matched).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Correlations, PartyContext, PeerChannel } from '../../src/mpc/context.js';
import { inLanes } from '../../src/mpc/lanes.js';
import { runTwoParty } from '../../src/mpc/local.js';
import { profiledContext } from '../../src/mpc/profile.js';
import { type CompareOptions, relu, reluCost } from '../../src/mpc/protocols/compare.js';
import { ringAdd, ringSub } from '../../src/mpc/ring.js';

// Seeded test values and jitter (xorshift); never used for anything cryptographic.
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function values(n: number, seed: number): BigInt64Array {
  const r = rng(seed);
  const x = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const hi = BigInt(Math.floor(r() * 2 ** 32)),
      lo = BigInt(Math.floor(r() * 2 ** 32));
    x[i] = BigInt.asIntN(64, (hi << 32n) | lo) >> BigInt(i % 64);
  }
  return x;
}

/** Resolve every await on the peer and the dealer after a random 0–2 ms (seeded per party). */
function jittered(ctx: PartyContext, seed: number): PartyContext {
  const r = rng(seed);
  const later = <T>(p: Promise<T>): Promise<T> => p.then((v) => new Promise<T>((res) => setTimeout(() => res(v), Math.floor(r() * 3))));
  const peer: PeerChannel = {
    exchange: (m) => later(ctx.peer.exchange(m)),
    send: (m) => ctx.peer.send(m),
    recv: () => later(ctx.peer.recv()),
    get stats() {
      return ctx.peer.stats;
    },
  };
  const dealer = new Proxy(ctx.dealer, {
    get(t, prop, recv) {
      const v = Reflect.get(t, prop, recv) as unknown;
      return typeof v === 'function' ? (...a: unknown[]) => later((v as (...a: unknown[]) => Promise<unknown>).apply(t, a)) : v;
    },
  }) as Correlations;
  return { ...ctx, peer, dealer };
}

async function reluLanes(x: BigInt64Array, opts: CompareOptions, jitter: boolean) {
  const x0 = values(x.length, 99),
    x1 = ringSub(x, x0);
  const res = await runTwoParty(async (ctx0) => {
    const ctx = jitter ? jittered(ctx0, 17 + 31 * ctx0.party) : ctx0;
    const before = { ...ctx.peer.stats };
    const y = await relu(ctx, ctx.party === 0 ? x0 : x1, opts);
    const s = ctx.peer.stats;
    return { y, sent: s.bytesSent - before.bytesSent, rounds: s.rounds - before.rounds };
  });
  return { y: ringAdd(res[0].y, res[1].y), sent: res[0].sent, rounds: res[0].rounds };
}

for (const base of [{}, { msb: 40, lsb: 8 }, { protocol: 'crypten' as const }] as CompareOptions[]) {
  test(`relu ${JSON.stringify(base)} on 1, 2 and 3 lanes, with random delays: plaintext result, same bytes and rounds`, async () => {
    const n = 1000;
    const x = values(n, 5);
    const lo = BigInt(-1) << BigInt((base.msb ?? 64) - 1);
    const one = await reluLanes(x, { ...base, lanes: 1 }, false);
    for (const lanes of [2, 3]) {
      for (const jitter of [false, true]) {
        const r = await reluLanes(x, { ...base, lanes }, jitter);
        assert.deepEqual(r.y, one.y, `lanes ${lanes}, jitter ${jitter}`);
        assert.equal(r.sent, one.sent);
        assert.equal(r.rounds, reluCost(base).rounds);
      }
    }
    // and the one-lane result is the plaintext ReLU where the range is exact
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      if (base.msb === undefined) assert.equal(one.y[i], v < 0n ? 0n : v);
      else if (v >= lo && v < -lo && (v < 0n || v >= 256n)) assert.equal(one.y[i], v < 0n ? 0n : v);
    }
  });
}

test('a failing lane leaves the rotation: the other lanes still get their turns, the failure is thrown', async () => {
  await runTwoParty(async (ctx) => {
    const done: Promise<Uint8Array>[] = [];
    await assert.rejects(
      inLanes(ctx, 3, async (lane, k) => {
        if (k === 1) throw new Error('lane 1 broke');
        const p = lane.peer.exchange(Uint8Array.of(k, ctx.party));
        done.push(p);
        return p;
      }),
      /lane 1 broke/,
    );
    const got = await Promise.all(done);
    assert.deepEqual(
      got.map((m) => [...m]),
      [
        [0, 1 - ctx.party],
        [2, 1 - ctx.party],
      ],
    );
  });
});

test('profile with lanes: waiting is charged once as idle time, never more than the wall time', async () => {
  await runTwoParty(async (ctx0) => {
    const ctx = profiledContext(jittered(ctx0, 3 + ctx0.party));
    const t0 = performance.now();
    await relu(ctx, values(5000, 1 + ctx.party), { lanes: 2 });
    const ms = performance.now() - t0,
      p = ctx.profile.total;
    assert.ok(p.waitPeer + p.waitDealer > 0);
    assert.ok(p.waitPeer + p.waitDealer + p.and + p.bitplanes + p.pack + p.framing + p.ring <= ms + 1, JSON.stringify({ ms, p }));
    assert.equal(ctx.profile.lanes, 1);
  });
});
