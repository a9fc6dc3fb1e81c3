// The resident sign-only tree (protocols/sign-tree.ts) against the JS-array version it replaced:
// each party's run is recorded (dealer AND triples, messages sent and received) and replayed through
// the array version, which must send the same bytes in every round and return the same share.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prg } from '../../src/crypto/prg.js';
import type { AndTriples, BitMulTriples, PartyContext } from '../../src/mpc/context.js';
import { assemble, draw, LazyAndTriples, LazyBitMul } from '../../src/mpc/dealer/correlations.js';
import { sizesOf } from '../../src/mpc/dealer/wire.js';
import { runTwoParty } from '../../src/mpc/local.js';
import { getBit } from '../../src/mpc/protocols/bits.js';
import { reluFromSign, reluWithMask, signOnly } from '../../src/mpc/protocols/compare.js';
import { ringAdd, ringSub } from '../../src/mpc/ring.js';
import { rng } from '../helpers/splitmix.js';

interface Recorded<T = Uint8Array> {
  out: T;
  triples: { kind: 'and' | 'bitmul'; n: number; t: AndTriples | BitMulTriples }[];
  sent: Uint8Array[];
  received: Uint8Array[];
}

/** Run `f` (the resident version) on both parties, recording what each consumed and exchanged. */
async function recordRun<T>(f: (ctx: PartyContext) => Promise<T>): Promise<[Recorded<T>, Recorded<T>]> {
  return runTwoParty(async (ctx) => {
    const rec: Recorded<T> = { out: undefined as T, triples: [], sent: [], received: [] };
    const dealer = ctx.dealer;
    const peer = ctx.peer;
    const wrapped: PartyContext = {
      ...ctx,
      dealer: Object.assign(Object.create(dealer) as typeof dealer, {
        andTriples: async (n: number) => {
          const t = await dealer.andTriples(n);
          // copies: the protocol may not keep them, but the replay must see what was dealt
          rec.triples.push({ kind: 'and', n, t: { a: t.a.slice(), b: t.b.slice(), c: t.c.slice() } });
          return t;
        },
        bitMulTriples: async (n: number) => {
          const t = await dealer.bitMulTriples(n);
          rec.triples.push({ kind: 'bitmul', n, t: { xor: t.xor.slice(), arith: t.arith.slice(), a: t.a.slice(), c: t.c.slice() } });
          return t;
        },
      }),
      peer: {
        stats: peer.stats,
        send: peer.send.bind(peer),
        recv: peer.recv.bind(peer),
        exchange: async (msg: Uint8Array, handOff?: boolean) => {
          rec.sent.push(msg.slice());
          const r = await peer.exchange(msg, handOff);
          rec.received.push(r.slice());
          return r;
        },
      },
    };
    rec.out = await f(wrapped);
    return rec;
  });
}

const record = (shares: [BigInt64Array, BigInt64Array], lsb: number, b: number) => recordRun((ctx) => signOnly(ctx, shares[ctx.party], lsb, b, false));

/** Replay party `party`'s recording through the JS-array version `f`; returns its result. */
async function replayRun<T>(party: 0 | 1, rec: Recorded<T>, f: (ctx: PartyContext) => Promise<T>): Promise<T> {
  let ti = 0,
    ei = 0;
  const next = (kind: 'and' | 'bitmul', n: number) => {
    const r = rec.triples[ti++];
    assert.ok(r, `the array version asked for more ${kind} triples`);
    assert.equal(`${kind} ${n}`, `${r.kind} ${r.n}`, `triple request ${ti - 1}`);
    return r.t;
  };
  const ctx = {
    party,
    fracBits: 16,
    dealer: {
      andTriples: async (n: number) => next('and', n),
      bitMulTriples: async (n: number) => next('bitmul', n),
    },
    peer: {
      stats: { bytesSent: 0, bytesReceived: 0, rounds: 0 },
      exchange: async (msg: Uint8Array) => {
        const k = ei++;
        assert.ok(k < rec.sent.length, 'the array version exchanged more often');
        assert.deepEqual(msg, rec.sent[k], `party ${party}: message of round ${k} differs`);
        return rec.received[k]!;
      },
    },
  } as unknown as PartyContext;
  const out = await f(ctx);
  assert.equal(ti, rec.triples.length, 'triple requests');
  assert.equal(ei, rec.sent.length, 'exchanges');
  return out;
}

const replay = (party: 0 | 1, x: BigInt64Array, lsb: number, b: number, rec: Recorded) => replayRun(party, rec, (ctx) => signOnly(ctx, x, lsb, b, false, true));

for (const [n, lsb, b] of [
  [1, 0, 64],
  [7, 0, 1],
  [13, 0, 2],
  [64, 0, 3],
  [100, 5, 17],
  [1000, 0, 64],
  [4099, 10, 22],
  [8192, 0, 33],
] as const) {
  test(`sign-tree: n=${n}, bits [${lsb}, ${lsb + b}): same messages and shares as the array version, correct sign`, async () => {
    const r = rng(n * 131 + b);
    const bound = 1n << BigInt(lsb + b - 1);
    // values inside the exact range: [−2^(msb−1) + 2^lsb, 2^(msb−1)), away from [0, 2^lsb)
    const low = lsb === 0 ? 0n : 1n << BigInt(lsb),
      lo = -bound + low;
    const x = BigInt64Array.from({ length: n }, () => {
      let v = lo + (BigInt.asUintN(64, r()) % (bound - lo));
      if (v >= 0n && v < low) v += low;
      return v;
    });
    const x0 = BigInt64Array.from({ length: n }, () => r());
    const shares: [BigInt64Array, BigInt64Array] = [x0, ringSub(x, x0)];
    const [r0, r1] = await record(shares, lsb, b);
    assert.deepEqual(await replay(0, shares[0], lsb, b, r0), r0.out);
    assert.deepEqual(await replay(1, shares[1], lsb, b, r1), r1.out);
    for (let i = 0; i < n; i++) assert.equal(getBit(r0.out, i) ^ getBit(r1.out, i), x[i]! < 0n ? 1 : 0, `element ${i} (${x[i]})`);
    // unused high bits stay zero (packed-vector convention)
    if (n & 7) assert.equal(r0.out[r0.out.length - 1]! >>> (n & 7), 0);
  });
}

test('LazyAndTriples: the same parts as draw, and the stream continues at the same position', () => {
  for (const party of [0, 1] as const) {
    for (const nbits of [8, 13, 1 << 19, (1 << 19) + 5]) {
      const seed = new Uint8Array(16).fill(7 + party);
      const eager = new Prg(seed),
        lazy = new Prg(seed);
      // start mid-stream and off the 16-byte block grid, as a real batch does
      eager.bytes(21), lazy.bytes(21);
      const req = { kind: 'and', n: nbits } as const;
      const d = draw(eager, party, req, sizesOf(req));
      const t = new LazyAndTriples(lazy, party, nbits);
      assert.deepEqual(lazy.bytes(100), eager.bytes(100), 'stream position after the draw');
      const len = (nbits + 7) >>> 3;
      const parts = party === 0 ? ([0, 1, 2] as const) : ([0, 1] as const);
      for (const i of parts) {
        const want = i === 0 ? d.a : i === 1 ? d.b : d.c!;
        const got = new Uint8Array(len);
        // part 1 through the property (expanded once), the others through fill
        if (i === 1) assert.deepEqual(t.b, want, `party ${party}, part b`);
        else {
          t.fill(i, got);
          assert.deepEqual(got, want, `party ${party}, part ${'abc'[i]}, ${nbits} bits`);
          assert.throws(() => t.fill(i, got), /already consumed/);
        }
      }
    }
  }
});

test('sign-tree: a large call (AND triples drawn lazily into wasm memory) gives the correct sign', async () => {
  const n = 20000,
    b = 40;
  const r = rng(99);
  const bound = 1n << BigInt(b - 1);
  const x = BigInt64Array.from({ length: n }, () => -bound + (BigInt.asUintN(64, r()) % (2n * bound)));
  const x0 = BigInt64Array.from({ length: n }, () => r());
  const shares = [x0, ringSub(x, x0)];
  const [s0, s1] = await runTwoParty((ctx) => signOnly(ctx, shares[ctx.party]!, 0, b, false));
  for (let i = 0; i < n; i++) assert.equal(getBit(s0, i) ^ getBit(s1, i), x[i]! < 0n ? 1 : 0, `element ${i}`);
});

for (const [n, lsb, b] of [
  [1, 0, 64],
  [9, 0, 1],
  [300, 3, 20],
  [5000, 0, 64],
] as const) {
  test(`sign-tree ReLU: n=${n}, bits [${lsb}, ${lsb + b}): same messages and shares as the array version, exact ReLU`, async () => {
    const r = rng(7 * n + b);
    const bound = 1n << BigInt(lsb + b - 1);
    const low = lsb === 0 ? 0n : 1n << BigInt(lsb);
    const x = BigInt64Array.from({ length: n }, () => {
      let v = -bound + low + (BigInt.asUintN(64, r()) % (bound * 2n - low));
      if (v >= 0n && v < low) v += low;
      return v;
    });
    const x0 = BigInt64Array.from({ length: n }, () => r());
    const shares: [BigInt64Array, BigInt64Array] = [x0, ringSub(x, x0)];
    // lanes 1: one call, so the recorded order is the protocol's own
    const recs = await recordRun((ctx) => reluWithMask(ctx, shares[ctx.party], { lsb, msb: lsb + b, lanes: 1 }));
    for (const p of [0, 1] as const) {
      const got = await replayRun(p, recs[p], async (ctx) => reluFromSign(ctx, shares[p], await signOnly(ctx, shares[p], lsb, b, false, true)));
      assert.deepEqual(got.y, recs[p].out.y, `party ${p}: y share`);
      assert.deepEqual(got.mask, recs[p].out.mask, `party ${p}: mask share`);
    }
    const y = ringAdd(recs[0].out.y, recs[1].out.y),
      mask = ringAdd(recs[0].out.mask, recs[1].out.mask);
    for (let i = 0; i < n; i++) {
      assert.equal(y[i], x[i]! < 0n ? 0n : x[i], `ReLU of element ${i}`);
      assert.equal(mask[i], x[i]! < 0n ? 0n : 1n, `mask of element ${i}`);
    }
  });
}

test('LazyBitMul: the same parts as draw + assemble, and the stream continues at the same position', () => {
  for (const party of [0, 1] as const) {
    for (const n of [5, 8, 9000, 9001]) {
      const seed = new Uint8Array(16).fill(3 + party);
      const eager = new Prg(seed),
        lazy = new Prg(seed);
      eager.bytes(13), lazy.bytes(13);
      const req = { kind: 'bitmul', n } as const;
      const d = draw(eager, party, req, sizesOf(req));
      const corr = party === 1 ? new Uint8Array(16 * n).map((_, i) => (i * 37) & 0xff) : undefined;
      const want = assemble(req, d, corr) as BitMulTriples;
      const t = new LazyBitMul(lazy, party, n);
      if (corr) t.setCorrection(corr);
      // expanded ahead (an offline phase) from a second copy of the stream: the same parts
      const ahead = new Prg(seed);
      ahead.bytes(13);
      const te = new LazyBitMul(ahead, party, n);
      if (corr) te.setCorrection(corr);
      te.expand();
      assert.deepEqual(lazy.bytes(64), eager.bytes(64), 'stream position after the draw');
      const bytes = (a: BigInt64Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      for (const k of ['xor', 'a', 'arith', 'c'] as const) {
        const w = bytes(want[k]);
        assert.deepEqual(bytes(te[k]), w, `party ${party}, ${k} (expanded ahead)`);
        if (k === 'a') assert.deepEqual(bytes(t.a), w, `party ${party}, ${k} (property)`);
        else {
          const got = new Uint8Array(w.length);
          t.fill(k, got);
          assert.deepEqual(got, w, `party ${party}, part ${k}, n=${n}`);
          assert.throws(() => t.fill(k, got), /already consumed/);
        }
      }
    }
  }
});

test('sign-tree ReLU: a large call (parts drawn lazily into wasm memory, two lanes) is the exact ReLU', async () => {
  const n = 40000,
    b = 30;
  const r = rng(5);
  const bound = 1n << BigInt(b - 1);
  const x = BigInt64Array.from({ length: n }, () => -bound + (BigInt.asUintN(64, r()) % (2n * bound)));
  const x0 = BigInt64Array.from({ length: n }, () => r());
  const shares = [x0, ringSub(x, x0)];
  const [o0, o1] = await runTwoParty((ctx) => reluWithMask(ctx, shares[ctx.party]!, { msb: b }));
  const y = ringAdd(o0.y, o1.y),
    mask = ringAdd(o0.mask, o1.mask);
  for (let i = 0; i < n; i++) {
    assert.equal(y[i], x[i]! < 0n ? 0n : x[i], `ReLU of element ${i}`);
    assert.equal(mask[i], x[i]! < 0n ? 0n : 1n, `mask of element ${i}`);
  }
});
