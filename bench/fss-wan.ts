/**
 * fmnist-cnn under the WAN emulation (100 Mbit/s, 20 ms one way, on every link including the
 * dealer's), batch 1, over real processes: `privml mpc bench model` per protocol, the protocols
 * alternated in every pass (so load drifts hit all of them alike), medians over the passes.
 *
 * Two ways to serve the dealer's material, reported apart (never hidden):
 *   - offline/online split (--preprocess, every protocol alike): a batch's dealer material and the
 *     input's mask travel before the input is shared (offlineMs, offline dealer bytes per party);
 *     onlineMs = what the user waits for once the input is given (input shared → output revealed);
 *   - dealer online (mode 'both' only): the material travels inside the timed batch (dealerOnlineMs).
 * Usage:
 *   node --import tsx bench/fss-wan.ts [passes=5] [reps=3] [protocols=signonly:eco,fss2:eco,fss:eco,crypten:64] [mode=split|both]
 * A protocol is name:eco (models/hummingbird/fmnist-cnn/eco.json), name:aggressive
 * (aggressive-6.4.json) or name:64 (no config). Prints one JSON line per protocol, then a summary
 * line with the speedups of the online time and the process CPU seconds and load.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const passes = Number(process.argv[2] ?? 5);
const reps = Number(process.argv[3] ?? 3);
const protos = (process.argv[4] ?? 'signonly:eco,fss2:eco,fss:eco,crypten:64').split(',').map((p) => p.split(':') as [string, string]);
const mode = process.argv[5] ?? 'split';
if (mode !== 'split' && mode !== 'both') throw new Error(`bench/fss-wan: mode must be split or both, got ${mode}`);
const net = process.env.BENCH_NET ?? 'wan';
const CONFIGS: Record<string, string> = { eco: 'eco.json', aggressive: 'aggressive-6.4.json' };

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
const r1 = (v: number): number => Math.round(v * 10) / 10;
interface Acc {
  online: number[];
  offline: number[];
  dealerOnline: number[];
  cpuS: number[];
  rounds: number;
  bytes: number[];
  offlineDealerBytes: number[];
  compute: number[][];
}
const acc = new Map<string, Acc>();
const load0 = loadavg()[0]!;
const t0 = performance.now();
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
    if (mode === 'split') args.push('--preprocess');
    if (CONFIGS[cfg]) args.push('--relu-config', join(root, 'models/hummingbird/fmnist-cnn', CONFIGS[cfg]));
    const id = `${name}:${cfg}`;
    let out, cpuS: number;
    try {
      [out, cpuS] = runTimed(args);
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
    const a = acc.get(id) ?? { online: [], offline: [], dealerOnline: [], cpuS: [], rounds: 0, bytes: [], offlineDealerBytes: [], compute: [] };
    acc.set(id, a);
    a.online.push(out.onlineMsPerBatch);
    a.offline.push(out.offlineMsPerBatch);
    if (out.msPerBatch !== null) a.dealerOnline.push(out.msPerBatch);
    a.cpuS.push(cpuS);
    a.rounds = out.roundsPerBatch;
    a.bytes = out.bytesSentPerBatch;
    a.offlineDealerBytes = out.offlineDealerBytesPerBatch;
    a.compute.push(out.onlineComputeMsPerBatch);
    console.error(
      `pass ${pass} ${id}: online ${out.onlineMsPerBatch.toFixed(1)} ms (offline ${out.offlineMsPerBatch.toFixed(1)} ms)${out.msPerBatch !== null ? `, dealer online ${out.msPerBatch.toFixed(1)} ms` : ''}`,
    );
  }
}
const base = acc.get('signonly:eco'),
  crypten = acc.get('crypten:64');
const ratio = (b: number[] | undefined, v: number[]): number | undefined =>
  b?.length && v.length ? Math.round((median(b) / median(v)) * 100) / 100 : undefined;
for (const [id, a] of acc) {
  console.log(
    JSON.stringify({
      protocol: id,
      net,
      batch: 1,
      passes: a.online.length,
      reps,
      onlineMsMedian: r1(median(a.online)),
      offlineMsMedian: r1(median(a.offline)),
      offlineDealerBytesPerParty: a.offlineDealerBytes.map(Math.round),
      dealerOnlineMsMedian: a.dealerOnline.length ? r1(median(a.dealerOnline)) : undefined,
      rounds: a.rounds,
      onlineBytesSentPerParty: a.bytes.map(Math.round),
      onlineComputeMsPerParty: a.compute.map((c) => c.map(Math.round)),
      speedupOnline: { vsSignonlyEco: ratio(base?.online, a.online), vsCrypten64: ratio(crypten?.online, a.online) },
      speedupDealerOnline: { vsSignonlyEco: ratio(base?.dealerOnline, a.dealerOnline), vsCrypten64: ratio(crypten?.dealerOnline, a.dealerOnline) },
      all: { online: a.online.map(Math.round), offline: a.offline.map(Math.round), dealerOnline: a.dealerOnline.map(Math.round) },
      cpuSecondsPerRunMedian: r1(median(a.cpuS)),
    }),
  );
}
console.log(JSON.stringify({ summary: true, mode, wallS: r1((performance.now() - t0) / 1000), load1Start: load0, load1End: loadavg()[0] }));

/** The fields of `privml mpc bench model --json` read here. */
interface BenchOut {
  onlineMsPerBatch: number;
  offlineMsPerBatch: number;
  msPerBatch: number | null;
  roundsPerBatch: number;
  bytesSentPerBatch: number[];
  offlineDealerBytesPerBatch: number[];
  onlineComputeMsPerBatch: number[];
}

/**
 * Run `privml` with `args` under /usr/bin/time: its JSON output and the CPU seconds (user + system)
 * of the launcher and the dealer and party processes it waited for (the whole run, warm-up and
 * offline phase included).
 */
function runTimed(args: string[]): [BenchOut, number] {
  const dir = mkdtempSync(join(tmpdir(), 'privml-bench-')),
    f = join(dir, 'time');
  try {
    const stdout = execFileSync('/usr/bin/time', ['-o', f, '-f', '%U %S', process.execPath, ...args], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [u, sy] = readFileSync(f, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
    return [JSON.parse(stdout) as BenchOut, Math.round((u! + sy!) * 10) / 10];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
