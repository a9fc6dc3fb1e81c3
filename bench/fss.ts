/**
 * FSS ReLU benchmark: one JSON line per bit window with the gate's accounting, measured, not
 * modeled: online bits/element/party and rounds (peer counters), dealer key bytes/element/party
 * (dealer-client counters), AES blocks/element (hash counter), and compute time per element:
 * the dealer's key generation, one party's DCF evaluation alone, and one party's whole gate
 * (in-process session with keys prefetched: both parties run on this one thread, so the time of a
 * call is halved). Wall and CPU time (user + system of this process, which runs one JS thread plus
 * OpenSSL's AES on it: robust to other processes' load). Medians over `reps` runs, windows alternated.
 * Usage: node --import tsx bench/fss.ts [n=16384] [reps=7] [windows=0:16,0:64,0:16:2,0:64:2]
 * (a window is lsb:msb[:rounds]; rounds 2 = the 'fss2' variant, whose dealer bytes include the
 * bit-multiply triple of its second round).
 */

import { Prg, randomSeed } from '../src/crypto/prg.js';
import type { CorrelationRequest } from '../src/mpc/dealer.js';
import { localSession } from '../src/mpc/local.js';
import { relu } from '../src/mpc/protocols/compare.js';
import { dcfEval } from '../src/mpc/protocols/fss/dcf.js';
import { dcfBitEval } from '../src/mpc/protocols/fss/dcfbit.js';
import { dealFssRelu, drawFssRelu, type FssReluKey } from '../src/mpc/protocols/fss/keys.js';
import { aesCounter } from '../src/mpc/protocols/fss/mmo.js';
import { fssReluCost } from '../src/mpc/protocols/fss/relu.js';
import { ringFromBytes, ringShr } from '../src/mpc/ring.js';

const n = Number(process.argv[2] ?? 16384);
const reps = Number(process.argv[3] ?? 7);
// lsb:msb[:rounds] — rounds 1 = 'fss', 2 = 'fss2'
const windows = (process.argv[4] ?? '0:16,0:64,0:16:2,0:64:2').split(',').map((w) => {
  const [lsb, msb, rounds = 1] = w.split(':').map(Number) as [number, number, number?];
  return [lsb, msb, rounds === 2 ? 2 : 1] as [number, number, 1 | 2];
});
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(reps) || reps < 1) throw new Error('usage: bench/fss.ts [n] [reps] [lsb:msb,...]');

/** CPU milliseconds (user + system) of a process.cpuUsage delta: the thread's own work, robust to other load. */
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
const round = (v: number, d = 3): number => Math.round(v * 10 ** d) / 10 ** d;

const s = await localSession();
try {
  const prg = new Prg(randomSeed());
  const x0 = ringFromBytes(prg.bytes(8 * n), n);
  const x1 = ringShr(ringFromBytes(prg.bytes(8 * n), n), 20);
  interface Acc {
    gen: number[];
    genCpu: number[];
    evalOnly: number[];
    gate: number[];
    evalCpu: number[];
    gateCpu: number[];
    bits: number;
    rounds: number;
    keyBytes: [number, number];
    blocks: number;
    genBlocks: number;
  }
  const acc = new Map<string, Acc>();
  const keyOf = (lsb: number, msb: number, rounds: 1 | 2): { key0: FssReluKey } => {
    const p0 = new Prg(randomSeed()),
      p1 = new Prg(randomSeed());
    const d0 = drawFssRelu(p0, 0, n, lsb, msb, rounds),
      d1 = drawFssRelu(p1, 1, n, lsb, msb, rounds);
    const { to0 } = dealFssRelu(d0, d1, n, lsb, msb, rounds);
    const key0 = { party: 0 as const, rounds, n, lsb, msb, seeds: d0.seeds, r: d0.r, a: d0.a, offset: d0.offset ?? new BigInt64Array(0), cw: to0 };
    return { key0 };
  };
  const plan = (lsb: number, msb: number, rounds: 1 | 2): CorrelationRequest[] => [
    { kind: 'fssrelu', n, lsb, msb, rounds },
    ...(rounds === 2 ? [{ kind: 'bitmul' as const, n }] : []),
  ];
  for (let rep = -1; rep < reps; rep++) {
    for (const [lsb, msb, rounds] of windows) {
      const id = `${lsb}:${msb}:${rounds}`;
      const a = acc.get(id) ?? {
        gen: [],
        genCpu: [],
        evalOnly: [],
        gate: [],
        evalCpu: [],
        gateCpu: [],
        bits: 0,
        rounds: 0,
        keyBytes: [0, 0],
        blocks: 0,
        genBlocks: 0,
      };
      acc.set(id, a);
      // dealer: key generation (both parties' PRG draws + DCF Gen)
      let b0 = aesCounter.blocks,
        t0 = performance.now(),
        g0 = process.cpuUsage();
      const { key0 } = keyOf(lsb, msb, rounds);
      const gen = performance.now() - t0,
        genCpu = cpuMs(process.cpuUsage(g0));
      const genBlocks = aesCounter.blocks - b0;
      // one party: DCF evaluation alone on public inputs
      const y = ringFromBytes(prg.bytes(8 * n), n);
      b0 = aesCounter.blocks;
      let c0 = process.cpuUsage();
      t0 = performance.now();
      if (rounds === 1) dcfEval(0, msb - lsb - 1, key0.seeds, key0.cw, y);
      else dcfBitEval(0, msb - lsb - 1, key0.seeds, key0.cw, y);
      const ev = performance.now() - t0;
      const evCpu = cpuMs(process.cpuUsage(c0));
      const blocks = aesCounter.blocks - b0;
      // the whole gate on both parties, keys prefetched from the dealer first
      const opts = { protocol: rounds === 1 ? ('fss' as const) : ('fss2' as const), lsb, msb };
      const req = plan(lsb, msb, rounds);
      await Promise.all([s.clients[0].prefetch(req), s.clients[1].prefetch(req)]);
      const before = { ...s.ctx0.peer.stats };
      c0 = process.cpuUsage();
      t0 = performance.now();
      await Promise.all([relu(s.ctx0, x0, opts), relu(s.ctx1, x1, opts)]);
      const gate = (performance.now() - t0) / 2;
      const gateCpu = cpuMs(process.cpuUsage(c0)) / 2;
      if (rep < 0) continue; // warm-up round (JIT)
      a.gen.push(gen / n);
      a.genCpu.push(genCpu / n);
      a.evalOnly.push(ev / n);
      a.gate.push(gate / n);
      a.evalCpu.push(evCpu / n);
      a.gateCpu.push(gateCpu / n);
      a.blocks = blocks / n;
      a.genBlocks = genBlocks / n;
      const st = s.ctx0.peer.stats;
      a.bits = ((st.bytesSent - before.bytesSent) * 8) / n;
      a.rounds = st.rounds - before.rounds;
    }
  }
  // Key bytes per element as received by each party's dealer client for one more request.
  for (const [lsb, msb, rounds] of windows) {
    const req = plan(lsb, msb, rounds);
    const k0 = s.clients[0].stats.bytesReceived,
      k1 = s.clients[1].stats.bytesReceived;
    await Promise.all([s.clients[0].prefetch(req), s.clients[1].prefetch(req)]);
    const a = acc.get(`${lsb}:${msb}:${rounds}`)!;
    a.keyBytes = [(s.clients[0].stats.bytesReceived - k0) / n, (s.clients[1].stats.bytesReceived - k1) / n];
    const opts = { protocol: rounds === 1 ? ('fss' as const) : ('fss2' as const), lsb, msb };
    await Promise.all([relu(s.ctx0, x0, opts), relu(s.ctx1, x1, opts)]);
  }
  for (const [lsb, msb, rounds] of windows) {
    const a = acc.get(`${lsb}:${msb}:${rounds}`)!;
    const c = fssReluCost(lsb, msb, rounds);
    console.log(
      JSON.stringify({
        protocol: rounds === 1 ? 'fss' : 'fss2',
        n,
        lsb,
        msb,
        bits: msb - lsb,
        onlineBitsPerElemPerParty: round(a.bits),
        onlineRounds: a.rounds,
        modelBits: c.bits,
        modelRounds: c.rounds,
        dealerKeyBytesPerElem: { party0: round(a.keyBytes[0]), party1: round(a.keyBytes[1]) },
        aesBlocksPerElemParty: round(a.blocks),
        aesBlocksPerElemDealer: round(a.genBlocks),
        usPerElemWall: {
          dcfEvalOneParty: round(median(a.evalOnly) * 1000),
          gateOneParty: round(median(a.gate) * 1000),
          dealerGen: round(median(a.gen) * 1000),
        },
        usPerElemCpu: {
          dcfEvalOneParty: round(median(a.evalCpu) * 1000),
          gateOneParty: round(median(a.gateCpu) * 1000),
          dealerGen: round(median(a.genCpu) * 1000),
        },
        reps,
      }),
    );
  }
} finally {
  s.close();
}
await s.dealer;
