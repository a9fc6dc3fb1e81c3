/**
 * ReLU benchmark on an in-process session (both parties and the dealer in this process, no network
 * emulation): one JSON line per protocol with exact per-element communication and wall time.
 * Usage: node --import tsx bench/relu.ts [n] [msb] [lsb]
 */
import { randomBytes } from 'node:crypto';
import { localSession } from '../src/mpc/local.js';
import { type CompareOptions, relu } from '../src/mpc/protocols/compare.js';
import { ringFromBytes, ringShr } from '../src/mpc/ring.js';

const n = Number(process.argv[2] ?? 10000);
const msb = Number(process.argv[3] ?? 64);
const lsb = Number(process.argv[4] ?? 0);
const reps = 10;

const configs: (CompareOptions & { protocol: 'signonly' | 'crypten' })[] = [
  { protocol: 'signonly', msb, lsb },
  { protocol: 'signonly', msb, lsb, fold: true },
  ...(msb === 64 && lsb === 0 ? [{ protocol: 'crypten' as const }] : []),
];

const s = await localSession();
try {
  // Random shares of values far from the ring's edge (fixed-point activations).
  const x0 = ringFromBytes(randomBytes(8 * n), n);
  const x1 = ringShr(ringFromBytes(randomBytes(8 * n), n), 20);
  // Warm up every configuration first (JIT), so the order of the lines does not bias the times.
  for (const opts of configs) for (let r = 0; r < 3; r++) await Promise.all([relu(s.ctx0, x0, opts), relu(s.ctx1, x1, opts)]);
  for (const opts of configs) {
    const before = { ...s.ctx0.peer.stats };
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) await Promise.all([relu(s.ctx0, x0, opts), relu(s.ctx1, x1, opts)]);
    const ms = (performance.now() - t0) / reps;
    const st = s.ctx0.peer.stats;
    const bytes = (st.bytesSent - before.bytesSent) / reps;
    console.log(
      JSON.stringify({
        protocol: opts.protocol,
        fold: opts.fold ?? false,
        n,
        msb: opts.msb ?? 64,
        lsb: opts.lsb ?? 0,
        bytesPerElemPerParty: bytes / n,
        bitsPerElemPerParty: (bytes * 8) / n,
        rounds: (st.rounds - before.rounds) / reps,
        ms: Math.round(ms * 100) / 100,
      }),
    );
  }
} finally {
  s.close();
  await s.dealer.catch(() => {});
}
