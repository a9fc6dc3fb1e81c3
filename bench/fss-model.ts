/**
 * fmnist-cnn under each ReLU protocol in one process (both parties and the dealer on this thread):
 * per batch the measured online bytes and rounds of party 0, its CPU time (user + system, halved:
 * the two parties are symmetric) with all dealer material prefetched before timing, the dealer
 * bytes per batch and party, and the online time those give on the WAN profile (100 Mbit/s,
 * 20 ms one way): bytes·8/bandwidth + exchanges·20 ms (a simultaneous exchange costs one one-way
 * latency, as the emulated links charge it; +1 for the output reveal; the input's mask is offline)
 * + CPU. Per layer too (`layers`: rounds, bytes, CPU ≈ half the in-process wall time of the layer).
 * A model, not a wall-clock run over processes (privml mpc bench model measures that).
 * Usage: node --import tsx bench/fss-model.ts [batch]
 */

import { readFileSync } from 'node:fs';
import { prepareWeights, runPlan } from '../src/mpc/executor.js';
import { localSession } from '../src/mpc/local.js';
import { planModel } from '../src/mpc/plan.js';
import { shareInput } from '../src/mpc/protocols/arith.js';
import type { ReluProtocol } from '../src/mpc/protocols/compare.js';
import { encodeFixed } from '../src/mpc/ring.js';
import { loadModel } from '../src/onnx/proto.js';

const root = new URL('..', import.meta.url).pathname;
const model = loadModel(`${root}models/fmnist-cnn.onnx`);
const eco = JSON.parse(readFileSync(`${root}models/hummingbird/fmnist-cnn/eco.json`, 'utf8')).layers;
const batch = Number(process.argv[2] ?? 1);
const plan = planModel(model, batch);
const inSize = plan.inputShape.slice(1).reduce((a: number, b: number) => a * b, 1);
for (const [proto, cfg] of [
  ['signonly', undefined],
  ['signonly', eco],
  ['fss', undefined],
  ['fss', eco],
  ['fss2', undefined],
  ['fss2', eco],
  ['crypten', undefined],
] as const) {
  const s = await localSession();
  const w = await Promise.all([prepareWeights(s.ctx0, plan, 'public'), prepareWeights(s.ctx1, plan, 'public')]);
  const x = new Float32Array(batch * inSize).map(() => Math.random());
  const run = async () => {
    const sh = await Promise.all([shareInput(s.ctx0, 0, encodeFixed(x, 16), x.length), shareInput(s.ctx1, 0, undefined, x.length)]);
    const b = { ...s.ctx0.peer.stats };
    const c0 = process.cpuUsage();
    const [r0] = await Promise.all(
      [0, 1].map((p) => runPlan(p ? s.ctx1 : s.ctx0, plan, w[p]!, sh[p]!, { weights: 'public', reluProtocol: proto as ReluProtocol, reluConfig: cfg })),
    );
    const c = process.cpuUsage(c0);
    const st = s.ctx0.peer.stats;
    const layers = r0!.layers
      .filter((l) => l.rounds > 0)
      .map((l) => ({
        name: l.name,
        rounds: l.rounds,
        bytes: l.bytesSent,
        cpuMs: Math.round((l.ms / 2) * 10) / 10,
        modeledWanMs: Math.round(((l.bytesSent * 8) / 100e6) * 1000 + l.rounds * 20 + l.ms / 2),
      }));
    return { bytes: st.bytesSent - b.bytesSent, rounds: st.rounds - b.rounds, cpuMsPerParty: (c.user + c.system) / 2000, layers };
  };
  await run(); // JIT warm-up
  const h0 = s.clients[1].history.length;
  await run();
  const plan1 = s.clients[1].history.slice(h0);
  const k0 = s.clients[0].stats.bytesReceived,
    k1 = s.clients[1].stats.bytesReceived;
  await Promise.all([s.clients[0].prefetch(plan1), s.clients[1].prefetch(plan1)]); // dealer work before timing
  const dealerBytes = [s.clients[0].stats.bytesReceived - k0, s.clients[1].stats.bytesReceived - k1];
  const r = await run();
  // the input share's one-way message is excluded (offline), the reveal is one more one-way latency
  const wanMs = ((r.bytes * 8) / 100e6) * 1000 + (r.rounds + 1) * 20;
  console.log(
    JSON.stringify({
      proto,
      config: cfg ? 'eco' : '64-bit',
      batch,
      ...r,
      modeledWanCommMs: Math.round(wanMs),
      modeledWanOnlineMs: Math.round(wanMs + r.cpuMsPerParty),
      dealerBytesPerBatch: dealerBytes,
    }),
  );
  s.close();
  await s.dealer;
}
