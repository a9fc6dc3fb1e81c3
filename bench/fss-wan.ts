/**
 * fmnist-cnn under the WAN emulation (100 Mbit/s, 20 ms one way, on every link including the
 * dealer's), batch 1, over real processes: `privml mpc bench model` per protocol, the protocols
 * alternated in every pass (so load drifts hit all of them alike), medians over the passes of the
 * per-batch time with the dealer online (end to end) and of the online-only time (dealer material
 * prepared before the clock). Usage:
 *   node --import tsx bench/fss-wan.ts [passes=3] [reps=3] [protocols=signonly:eco,fss2:eco,fss:eco,crypten:64]
 * A protocol is name:eco (models/hummingbird/fmnist-cnn/eco.json) or name:64 (no config).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const passes = Number(process.argv[2] ?? 3);
const reps = Number(process.argv[3] ?? 3);
const protos = (process.argv[4] ?? 'signonly:eco,fss2:eco,fss:eco,crypten:64').split(',').map((p) => p.split(':') as [string, string]);
const net = process.env.BENCH_NET ?? 'wan';

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
const acc = new Map<string, { ms: number[]; online: number[]; dealerWait: number[]; rounds: number; bytes: number[] }>();
for (let pass = 0; pass < passes; pass++) {
  // alternate the order each pass: forward, then backward
  const order = pass % 2 ? [...protos].reverse() : protos;
  for (const [name, cfg] of order) {
    const args = [
      join(root, 'bin/privml.js'),
      'mpc',
      'bench',
      'model',
      join(root, 'models/fmnist-cnn.onnx'),
      '--net',
      net,
      '--relu-protocol',
      name,
      '--reps',
      String(reps),
      '--connect-timeout',
      '300',
      '--json',
    ];
    if (cfg === 'eco') args.push('--relu-config', join(root, 'models/hummingbird/fmnist-cnn/eco.json'));
    const id = `${name}:${cfg}`;
    let out;
    try {
      out = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] }));
    } catch (e) {
      // a run that could not start (e.g. the connect timeout on an overloaded machine) is reported and skipped
      console.error(
        `pass ${pass} ${id}: failed: ${
          String((e as { stderr?: string }).stderr ?? e)
            .trim()
            .split('\n')[0]
        }`,
      );
      continue;
    }
    const a = acc.get(id) ?? { ms: [], online: [], dealerWait: [], rounds: 0, bytes: [] };
    acc.set(id, a);
    a.ms.push(out.msPerBatch);
    a.online.push(out.onlineMsPerBatch);
    a.dealerWait.push(out.dealerWaitMsPerBatch);
    a.rounds = out.roundsPerBatch;
    a.bytes = out.bytesSentPerBatch;
    console.error(`pass ${pass} ${id}: ${out.msPerBatch.toFixed(1)} ms end to end, ${out.onlineMsPerBatch.toFixed(1)} ms online-only`);
  }
}
const base = acc.get('signonly:eco');
for (const [id, a] of acc) {
  const ms = median(a.ms),
    online = median(a.online);
  console.log(
    JSON.stringify({
      protocol: id,
      net,
      passes,
      reps,
      msEndToEndMedian: Math.round(ms * 10) / 10,
      msOnlineOnlyMedian: Math.round(online * 10) / 10,
      dealerWaitMsMedian: Math.round(median(a.dealerWait) * 10) / 10,
      rounds: a.rounds,
      bytesSentPerParty: a.bytes,
      speedupVsSignonlyEco: base
        ? { endToEnd: Math.round((median(base.ms) / ms) * 100) / 100, onlineOnly: Math.round((median(base.online) / online) * 100) / 100 }
        : undefined,
      all: { ms: a.ms.map(Math.round), online: a.online.map(Math.round) },
    }),
  );
}
