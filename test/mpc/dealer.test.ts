import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prg, randomSeed } from '../../src/crypto/prg.js';
import type { FrameChannel } from '../../src/mpc/context.js';
import { andCorrectionStreamed, correction, draw } from '../../src/mpc/dealer/correlations.js';
import { sizesOf } from '../../src/mpc/dealer/wire.js';
import { type CorrelationRequest, DealerClient, DealerServer } from '../../src/mpc/dealer.js';
import { localSession } from '../../src/mpc/local.js';
import { memoryFramePair } from '../../src/mpc/net/memory.js';
import type { ConvGeom } from '../../src/mpc/ring.js';
import { convRef } from '../helpers/conv-ref.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const rec = (a: BigInt64Array, b: BigInt64Array): bigint[] => Array.from(a, (v, i) => BigInt.asIntN(64, v + b[i]!));
const bitAt = (bits: Uint8Array, i: number): number => (bits[i >> 3]! >> (i & 7)) & 1;

test('Prg matches the NIST SP 800-38A F.5.1 AES-128-CTR keystream and continues across calls', () => {
  const key = hex('2b7e151628aed2a6abf7158809cf4f3c');
  const iv = hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');
  const pt = hex('6bc1bee22e409f96e93d7e117393172a');
  const ct = hex('874d6191b620e3261bef6864990db6ce');
  const ks = new Prg(key, iv).bytes(16);
  assert.deepEqual(
    Array.from(ks, (k, i) => k ^ pt[i]!),
    Array.from(ct),
  );
  // the stream continues: split reads equal one read
  const whole = new Prg(key, iv).bytes(100);
  const p = new Prg(key, iv);
  const parts = [p.bytes(5), p.bytes(27), p.bytes(0), p.bytes(68)];
  assert.deepEqual(Buffer.concat(parts), Buffer.from(whole));
  // the same across the read-ahead buffer's boundaries and for large direct reads
  const sizes = [3000, 2000, 1, 10000, 4095, 4096, 4097, 70000, 7];
  const total = sizes.reduce((s, v) => s + v, 0);
  const q = new Prg(key, iv);
  assert.deepEqual(Buffer.concat(sizes.map((n) => q.bytes(n))), Buffer.from(new Prg(key, iv).bytes(total)));
  // ring elements are the keystream's little-endian 64-bit words
  const r = new Prg(key, iv).ring(2);
  const dv = new DataView(whole.buffer);
  assert.equal(r[0], dv.getBigInt64(0, true));
  assert.equal(r[1], dv.getBigInt64(8, true));
});

test('Prg.fork and skip read the same stream as sequential draws (any offset, counter carries across bytes)', () => {
  // iv ending in ff..: forks far into the stream must carry the counter into higher bytes
  for (const iv of [new Uint8Array(16), hex('000000000000000000000000fffffffe'), hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff')]) {
    const seed = randomSeed();
    const whole = new Prg(seed, iv).bytes(300_000);
    const p = new Prg(seed, iv);
    p.bytes(5);
    for (const off of [0, 1, 15, 16, 17, 4091, 70_001, 200_000]) {
      const f = p.fork(off);
      assert.equal(f.position, 5 + off);
      assert.deepEqual(Buffer.from(f.bytes(1000)), Buffer.from(whole.subarray(5 + off, 5 + off + 1000)), `fork at ${5 + off}`);
    }
    // the parent did not move; skips inside and beyond the read-ahead buffer keep the stream
    assert.deepEqual(Buffer.from(p.bytes(3)), Buffer.from(whole.subarray(5, 8)));
    p.skip(10);
    assert.deepEqual(Buffer.from(p.bytes(4)), Buffer.from(whole.subarray(18, 22)));
    p.skip(150_003);
    assert.equal(p.position, 150_025);
    assert.deepEqual(Buffer.from(p.bytes(20_000)), Buffer.from(whole.subarray(150_025, 170_025)));
    p.skip(0);
    assert.deepEqual(Buffer.from(p.bytes(7)), Buffer.from(whole.subarray(170_025, 170_032)));
  }
  assert.throws(() => new Prg(randomSeed()).skip(-1), /bad skip/);
  assert.throws(() => new Prg(randomSeed()).fork(0.5), /bad fork offset/);
});

test('the streamed AND correction equals the correction of the drawn parts, and leaves the mirrors where draw does', () => {
  const [s0, s1] = [randomSeed(), randomSeed()];
  const [m0, m1, r0, r1] = [new Prg(s0), new Prg(s1), new Prg(s0), new Prg(s1)];
  for (const n of [1, 7, 8, 33, 8 * 65536, 8 * 65536 + 13, 8 * 200_000 + 5, 3]) {
    const req: CorrelationRequest = { kind: 'and', n };
    const sz = sizesOf(req);
    const want = correction(req, draw(r0, 0, req, sz), draw(r1, 1, req, sz));
    const got = andCorrectionStreamed(m0, m1, n);
    assert.ok(Buffer.from(got).equals(Buffer.from(want)), `correction for ${n} gates`);
    // a small draw in between checks the stream positions
    assert.deepEqual(m0.bytes(5), r0.bytes(5));
    assert.deepEqual(m1.bytes(3), r1.bytes(3));
  }
});

test('Prg.bits zeroes unused high bits; the default counter starts at zero; seeds are checked', () => {
  const seed = randomSeed();
  assert.equal(seed.length, 16);
  for (const n of [1, 7, 8, 9, 63, 1000]) {
    const b = new Prg(seed).bits(n);
    assert.equal(b.length, Math.ceil(n / 8));
    if (n % 8) assert.equal(b[b.length - 1]! >> (n % 8), 0);
  }
  assert.deepEqual(new Prg(seed).bytes(32), new Prg(seed, new Uint8Array(16)).bytes(32));
  assert.notDeepEqual(new Prg(seed).bytes(16), new Prg(randomSeed()).bytes(16));
  assert.throws(() => new Prg(new Uint8Array(15)), /seed must be 16 bytes/);
});

test('reconstructed Beaver, matrix, conv, AND and shared-bit correlations are correct', async () => {
  const s = await localSession();
  const [d0, d1] = s.clients;
  const n = 37;
  const [b0, b1] = await Promise.all([d0.beaver(n), d1.beaver(n)]);
  const a = rec(b0.a, b1.a),
    b = rec(b0.b, b1.b),
    c = rec(b0.c, b1.c);
  for (let i = 0; i < n; i++) assert.equal(c[i], BigInt.asIntN(64, a[i]! * b[i]!));
  assert.ok(new Set(a).size > n - 2, 'triple values look random');

  const [m, k, nn] = [3, 5, 4];
  const [t0, t1] = await Promise.all([d0.matmulTriple(m, k, nn), d1.matmulTriple(m, k, nn)]);
  const A = rec(t0.a, t1.a),
    B = rec(t0.b, t1.b),
    C = rec(t0.c, t1.c);
  assert.equal(C.length, m * nn);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < nn; j++) {
      let sum = 0n;
      for (let l = 0; l < k; l++) sum += A[i * k + l]! * B[l * nn + j]!;
      assert.equal(C[i * nn + j], BigInt.asIntN(64, sum));
    }

  const g: ConvGeom = { n: 2, c: 4, h: 5, w: 6, co: 6, kh: 3, kw: 2, strideH: 2, strideW: 1, padT: 1, padL: 0, padB: 1, padR: 1, group: 2 };
  const [v0, v1] = await Promise.all([d0.convTriple(g), d1.convTriple(g)]);
  assert.deepEqual(rec(v0.c, v1.c), convRef(rec(v0.a, v1.a), rec(v0.b, v1.b), g));

  const nb = 77;
  const [x0, x1] = await Promise.all([d0.andTriples(nb), d1.andTriples(nb)]);
  for (const arr of [x0.a, x0.b, x0.c, x1.a, x1.b, x1.c]) {
    assert.equal(arr.length, 10);
    assert.equal(arr[9]! >> 5, 0, 'unused high bits are zero');
  }
  for (let i = 0; i < nb; i++) {
    const ai = bitAt(x0.a, i) ^ bitAt(x1.a, i),
      bi = bitAt(x0.b, i) ^ bitAt(x1.b, i);
    assert.equal(bitAt(x0.c, i) ^ bitAt(x1.c, i), ai & bi);
  }

  const [r0, r1] = await Promise.all([d0.sharedBits(nb), d1.sharedBits(nb)]);
  const ar = rec(r0.arith, r1.arith);
  let ones = 0;
  for (let i = 0; i < nb; i++) {
    const bit = bitAt(r0.xor, i) ^ bitAt(r1.xor, i);
    ones += bit;
    assert.equal(ar[i], BigInt(bit));
  }
  assert.ok(ones > 10 && ones < nb - 10, 'shared bits look random');

  // bit-multiplication pairs: [r] in both forms and C = A·r, with A uniform
  const [m0, m1] = await Promise.all([d0.bitMulTriples(nb), d1.bitMulTriples(nb)]);
  const mr = rec(m0.arith, m1.arith),
    ma = rec(m0.a, m1.a),
    mc = rec(m0.c, m1.c);
  let mOnes = 0;
  for (let i = 0; i < nb; i++) {
    const bit = bitAt(m0.xor, i) ^ bitAt(m1.xor, i);
    mOnes += bit;
    assert.equal(mr[i], BigInt(bit));
    assert.equal(mc[i], bit ? ma[i] : 0n);
  }
  assert.ok(mOnes > 10 && mOnes < nb - 10, 'bit-multiplication bits look random');
  assert.equal(new Set(ma).size, nb, 'A is uniform (no repeats among 77 draws)');
  s.close();
  await s.dealer;
});

/** A FrameChannel wrapper counting frames and bytes each way. */
function counting(ch: FrameChannel): FrameChannel & { framesIn: number; bytesIn: number; framesOut: number; bytesOut: number } {
  const w = {
    framesIn: 0,
    bytesIn: 0,
    framesOut: 0,
    bytesOut: 0,
    send(f: Uint8Array) {
      w.framesOut++;
      w.bytesOut += f.length;
      ch.send(f);
    },
    async recv() {
      const f = await ch.recv();
      w.framesIn++;
      w.bytesIn += f.length;
      return f;
    },
    close: () => ch.close(),
  };
  return w;
}

test('party 0 receives only its seed; party 1 sends only request sizes; requests in one tick share a round trip', async () => {
  const [s0, c0raw] = memoryFramePair();
  const [s1, c1raw] = memoryFramePair();
  const c0 = counting(c0raw),
    c1 = counting(c1raw);
  const server = new DealerServer(s0, s1);
  const done = server.serve();
  const [d0, d1] = await Promise.all([DealerClient.connect(0, c0), DealerClient.connect(1, c1)]);
  const work = (d: DealerClient) => Promise.all([d.beaver(1000), d.andTriples(64), d.sharedBits(10), d.matmulTriple(2, 3, 4)]);
  await Promise.all([work(d0), work(d1)]);
  await Promise.all([d0.beaver(5), d1.beaver(5)]);
  // party 0: the 19-byte setup frame and nothing else, in either direction
  assert.deepEqual([c0.framesIn, c0.bytesIn, c0.framesOut], [1, 19, 0]);
  assert.equal(server.stats.bytesSent[0], 19);
  assert.deepEqual([d0.stats.roundTrips, d0.stats.bytesSent, d0.stats.bytesReceived], [0, 0, 19]);
  // party 1: two batches (4 requests in one tick, then 1): kind byte + u32 fields per request
  assert.equal(d1.stats.roundTrips, 2);
  assert.equal(server.stats.roundTrips, 2);
  assert.equal(c1.bytesOut, 6 + 5 + 5 + 5 + 13 + (6 + 5));
  assert.equal(d1.stats.bytesSent, c1.bytesOut);
  const corrections = 8 * 1000 + 8 + 8 * 10 + 8 * 8 + 8 * 5;
  assert.equal(c1.bytesIn, 19 + corrections);
  assert.equal(server.stats.bytesSent[1], 19 + corrections);
  assert.equal(server.stats.requests, 5);
  assert.equal(d1.history.length, 5);
  d1.close();
  d0.close();
  await done;
});

test('prefetch gives the same material, costs one round trip, and the online phase never waits on the dealer', async () => {
  const plan: CorrelationRequest[] = [
    { kind: 'beaver', n: 50 },
    { kind: 'and', n: 300 },
    { kind: 'matmul', m: 2, k: 3, n: 2 },
    { kind: 'bits', n: 9 },
  ];
  const s = await localSession();
  const [d0, d1] = s.clients;
  await Promise.all([d0.prefetch(plan), d1.prefetch(plan)]);
  assert.equal(d1.stats.roundTrips, 1);
  assert.equal(d1.pending, 4);
  const sent = s.server.stats.bytesSent[1];
  const [t0, t1] = await Promise.all([d0.beaver(50), d1.beaver(50)]);
  const a = rec(t0.a, t1.a),
    b = rec(t0.b, t1.b),
    c = rec(t0.c, t1.c);
  for (let i = 0; i < 50; i++) assert.equal(c[i], BigInt.asIntN(64, a[i]! * b[i]!));
  const [x0, x1] = await Promise.all([d0.andTriples(300), d1.andTriples(300)]);
  for (let i = 0; i < 300; i++) {
    assert.equal(bitAt(x0.c, i) ^ bitAt(x1.c, i), (bitAt(x0.a, i) ^ bitAt(x1.a, i)) & (bitAt(x0.b, i) ^ bitAt(x1.b, i)));
  }
  // a request that differs from the plan is refused with a clear message
  await assert.rejects(d1.matmulTriple(3, 2, 2), /matmul\(3x2 · 2x2\) does not match the prefetched plan, which expected matmul\(2x3 · 3x2\)/);
  await assert.rejects(d0.sharedBits(9), /bits\(9\) does not match the prefetched plan, which expected matmul/);
  assert.equal(d1.stats.roundTrips, 1);
  assert.equal(s.server.stats.bytesSent[1], sent, 'nothing fetched online');
  s.close();
  await s.dealer;
});

test('prefetched and on-demand material follow the same PRG streams (prefetch is transparent)', async () => {
  // Party 0's material depends only on its seed and the request order, so a prefetched run and an
  // on-demand run of the same plan must pair up with the same party-1 corrections.
  const s = await localSession();
  const [d0, d1] = s.clients;
  await d0.prefetch([{ kind: 'beaver', n: 8 }]);
  const [t0, t1] = await Promise.all([d0.beaver(8), d1.beaver(8)]); // party 1 on demand
  const [u0, u1] = await Promise.all([d0.beaver(8), (async () => (await d1.prefetch([{ kind: 'beaver', n: 8 }]), d1.beaver(8)))()]);
  for (const [p, q] of [
    [t0, t1],
    [u0, u1],
  ] as const) {
    const a = rec(p.a, q.a),
      b = rec(p.b, q.b),
      c = rec(p.c, q.c);
    for (let i = 0; i < 8; i++) assert.equal(c[i], BigInt.asIntN(64, a[i]! * b[i]!));
  }
  s.close();
  await s.dealer;
});

test('a prefetch of more requests than fit one request frame is still one round trip', async () => {
  const s = await localSession();
  const plan: CorrelationRequest[] = Array.from({ length: 9000 }, (_, i) => (i % 2 ? { kind: 'and', n: 3 } : { kind: 'beaver', n: 1 }));
  await Promise.all(s.clients.map((c) => c.prefetch(plan)));
  assert.equal(s.clients[1].stats.roundTrips, 1);
  assert.equal(s.server.stats.roundTrips, 1);
  assert.equal(s.server.stats.requests, 9000);
  const [t0, t1] = [s.clients[0], s.clients[1]];
  for (let i = 0; i < 4; i++) {
    const [b0, b1] = await Promise.all([t0.beaver(1), t1.beaver(1)]);
    assert.equal(BigInt.asIntN(64, b0.c[0]! + b1.c[0]!), BigInt.asIntN(64, (b0.a[0]! + b1.a[0]!) * (b0.b[0]! + b1.b[0]!)));
    const [a0, a1] = await Promise.all([t0.andTriples(3), t1.andTriples(3)]);
    assert.equal((a0.c[0]! ^ a1.c[0]!) & 7, (a0.a[0]! ^ a1.a[0]!) & (a0.b[0]! ^ a1.b[0]!) & 7);
  }
  assert.equal(s.clients[1].pending, 9000 - 8);
  s.close();
  await s.dealer;
});

test('corrections larger than one frame are split and reassembled', async () => {
  const s = await localSession();
  const [d0, d1] = s.clients;
  const n = (16 << 20) / 8 + 123;
  const [t0, t1] = await Promise.all([d0.beaver(n), d1.beaver(n)]);
  for (const i of [0, 1, n - 124, n - 123, n - 1]) {
    assert.equal(BigInt.asIntN(64, t0.c[i]! + t1.c[i]!), BigInt.asIntN(64, (t0.a[i]! + t1.a[i]!) * (t0.b[i]! + t1.b[i]!)));
  }
  assert.equal(d1.stats.bytesReceived, 19 + 8 * n);
  s.close();
  await s.dealer;
});

test('the dealer fails cleanly when party 1 vanishes or sends garbage; bad sizes are refused locally', async () => {
  {
    const [s0, c0] = memoryFramePair();
    const [s1, c1] = memoryFramePair();
    const server = new DealerServer(s0, s1);
    const done = server.serve();
    const d1 = await DealerClient.connect(1, c1);
    await DealerClient.connect(0, c0);
    await d1.beaver(3);
    c1.close(); // no END frame
    await assert.rejects(done, /dealer: link to party 1 failed before the session ended/);
  }
  {
    const [s0, c0] = memoryFramePair();
    const [s1, c1] = memoryFramePair();
    const done = new DealerServer(s0, s1).serve();
    await c0.recv();
    await c1.recv();
    c1.send(new Uint8Array([1, 0, 1, 0, 0, 0, 99]));
    await assert.rejects(done, /malformed request frame from party 1 \(unknown kind code 99\)/);
    await assert.rejects(c1.recv(), /closed/);
  }
  {
    const s = await localSession();
    await assert.rejects(s.clients[1].beaver(-1), /beaver n must be an integer/);
    await assert.rejects(s.clients[1].prefetch([{ kind: 'and', n: 1.5 }]), /and n must be an integer/);
    assert.equal(s.clients[1].stats.requests, 0);
    s.close();
    await s.dealer;
  }
  {
    // a client wired to the wrong party's link is refused at setup
    const [s0, c0] = memoryFramePair();
    const [s1, c1] = memoryFramePair();
    const done = new DealerServer(s0, s1).serve();
    await assert.rejects(DealerClient.connect(1, c0), /the dealer set this link up for party 0/);
    c1.close();
    await assert.rejects(done);
  }
});

test('the dealer notices a party 0 that dies (no end frame) even while party 1 is quiet; a finished party 0 is fine', async () => {
  {
    const [s0, c0] = memoryFramePair({ labels: ['dealer', 'party 0'] });
    const [s1, c1] = memoryFramePair();
    const done = new DealerServer(s0, s1).serve();
    const d1 = await DealerClient.connect(1, c1);
    await DealerClient.connect(0, c0);
    await d1.beaver(2);
    c0.close(); // party 0 dies: its link closes without the end frame
    await assert.rejects(done, /^Error: dealer: party 0 left before the session ended: peer party 0 closed the connection$/);
  }
  {
    const [s0, c0] = memoryFramePair();
    const [s1, c1] = memoryFramePair();
    const server = new DealerServer(s0, s1);
    const done = server.serve();
    const d1 = await DealerClient.connect(1, c1);
    const d0 = await DealerClient.connect(0, c0);
    await Promise.all([d0.beaver(4), d1.beaver(4)]);
    d0.close(); // party 0 finishes first: it sends the end frame, then closes
    await d1.beaver(4);
    d1.close();
    await done;
    assert.equal(d0.stats.bytesSent, 1, 'party 0 sent only its end frame');
  }
});
