/**
 * Queue throughput: the local command against the same command over the queue with 1 and 2 local
 * `privml worker`s (real redis-server on a free loopback port, workers started before timing and kept
 * warm). Runs alternate local / 2 workers / 1 worker per repetition so load drifts hit all alike;
 * prints one JSON line per run and a summary with medians.
 *
 * Usage: node --import tsx bench/queue.ts --kind proteus|fhe|mpc --reps 3 -- <privml args without --queue/--json>
 *   e.g. bench/queue.ts --kind proteus --reps 3 -- proteus optimize /tmp/bundle -o /tmp/opt
 *        bench/queue.ts --kind fhe --reps 1 -- fhe run model.onnx --paf f1g2 --limit 8
 *        bench/queue.ts --kind mpc --reps 2 -- mpc infer model.onnx --dataset fashion-mnist-sample --limit 40
 * Extra args only for the queued runs go after --queued (e.g. --queued --per-job 10 or --queued --shared-dir /tmp/q20).
 * `--worker-args "--ort-threads 1"` passes extra arguments to every worker; `--variants local,q2,q1`
 * picks the runs (default all three); `--save DIR` keeps each run's full --json output as DIR/LABEL-REP.json.
 *
 * CPU seconds per run: the submitter's (a child this process waits for, from /proc/self/stat's cutime +
 * cstime) plus each warm worker's (utime + stime + its children's, from /proc/PID/stat), as deltas;
 * `cpuParts` splits it (command, each worker) and adds redis-server's, which cpuSeconds leaves out. With
 * `-o DIR`, every run's output files are hashed and compared with the local run's (sameMembers).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Proc, privml, startRedis, startWorker, stopWorker } from '../test/queue/redis.js';

const USAGE = 'Usage: node --import tsx bench/queue.ts --kind proteus|fhe|mpc [--reps 3] -- PRIVML-ARGS [--queued EXTRA-ARGS]\n';
const argv = process.argv.slice(2);
const dd = argv.indexOf('--');
if (argv.includes('--help') || dd < 0) {
  process.stdout.write(USAGE);
  process.exit(dd < 0 && !argv.includes('--help') ? 2 : 0);
}
const own = argv.slice(0, dd);
const opt = (n: string, d: string) => (own.includes(`--${n}`) ? own[own.indexOf(`--${n}`) + 1]! : d);
const kind = opt('kind', 'proteus');
const reps = Number(opt('reps', '3'));
const rest = argv.slice(dd + 1);
const qi = rest.indexOf('--queued');
const base = qi < 0 ? rest : rest.slice(0, qi);
const queuedExtra = qi < 0 ? [] : rest.slice(qi + 1);
const outFlag = base.indexOf('-o');
const outDir = outFlag >= 0 ? base[outFlag + 1] : undefined;
const workerArgs = opt('worker-args', '')
  .split(' ')
  .filter((a) => a);
const variants = new Set(opt('variants', 'local,q2,q1').split(','));
const saveDir = opt('save', '');
let rep = 0;
const TICK = 100; // USER_HZ on Linux

/** CPU seconds of a process (self and waited-for children) from /proc/PID/stat. */
function cpuOf(pid: number | 'self', children: boolean): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const v = f
      .slice(f.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // Fields 14-17 (utime stime cutime cstime) are at 11-14 after the ')'-terminated comm.
    return (children ? v[13]! + v[14]! : v[11]! + v[12]! + v[13]! + v[14]!) / TICK;
  } catch {
    return 0;
  }
}

/** SHA-256 of every file in a directory, by name. */
function hashDir(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [
        f,
        createHash('sha256')
          .update(readFileSync(join(dir, f)))
          .digest('hex'),
      ]),
  );
}
let localHashes: string | undefined;
const live: Proc[] = [];

async function run(label: string, args: string[]): Promise<{ label: string; wallSeconds: number; json: Record<string, unknown> }> {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
  const cpu0 = cpuOf('self', true) + live.reduce((a, w) => a + cpuOf(w.child.pid!, false), 0);
  // The parts apart: submitter (or local command), each worker, and redis-server (not in cpuSeconds).
  const parts0 = [cpuOf('self', true), ...live.map((w) => cpuOf(w.child.pid!, false)), redisCpu()];
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  const t0 = performance.now();
  const p: Proc = privml([...args, '--json']);
  const code = await p.exited;
  const wallSeconds = (performance.now() - t0) / 1000;
  const cpuSeconds = cpuOf('self', true) + live.reduce((a, w) => a + cpuOf(w.child.pid!, false), 0) - cpu0;
  const parts = [cpuOf('self', true), ...live.map((w) => cpuOf(w.child.pid!, false)), redisCpu()].map((c, i) => +(c - parts0[i]!).toFixed(2));
  const cpuParts = { command: parts[0], workers: parts.slice(1, -1), redis: parts.at(-1) };
  if (code !== 0) throw new Error(`${label}: exit ${code}: ${p.stderr().slice(-500)}`);
  const json = JSON.parse(p.stdout()) as Record<string, unknown>;
  if (saveDir) writeFileSync(join(saveDir, `${label}-${rep}.json`), p.stdout());
  let sameMembers: boolean | undefined;
  if (outDir) {
    const h = JSON.stringify(hashDir(outDir));
    if (label === 'local') localHashes = h;
    else sameMembers = h === localHashes;
  }
  const line = {
    label,
    wallSeconds: +wallSeconds.toFixed(2),
    cpuSeconds: +cpuSeconds.toFixed(2),
    cpuParts,
    load1: Number(load),
    ...(sameMembers === undefined ? {} : { sameMembers }),
    ...(json['queue'] && typeof json['queue'] === 'object' ? { queue: json['queue'] } : {}),
    ...pick(json),
  };
  process.stdout.write(JSON.stringify(line) + '\n');
  return { label, wallSeconds, json };
}

/** The fields that say what a run computed and how long its parts took (no per-image arrays). */
function pick(j: Record<string, unknown>): Record<string, unknown> {
  const keep = [
    'members',
    'mode',
    'seconds',
    'computeSeconds',
    'optimizeSeconds',
    'workers',
    'count',
    'agreement',
    'meanSecondsPerImage',
    'agreementWithPlaintextPaf',
    'images',
  ];
  return Object.fromEntries(keep.filter((k) => k in j).map((k) => [k, j[k]]));
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const redis = await startRedis();
const redisCpu = () => {
  const pid = redis.pid();
  return pid ? cpuOf(pid, false) : 0;
};
let w1: Proc | undefined;
let w2: Proc | undefined;
const times: Record<string, number[]> = { local: [], q2: [], q1: [] };
try {
  w1 = await startWorker(redis.url, ['--kinds', kind, ...workerArgs]);
  live.push(w1);
  for (let r = 0; r < reps; r++) {
    rep = r;
    const local = variants.has('local') ? await run('local', base) : undefined;
    if (local) times['local']!.push(local.wallSeconds);
    let q2: Awaited<ReturnType<typeof run>> | undefined;
    if (variants.has('q2')) {
      w2 = await startWorker(redis.url, ['--kinds', kind, ...workerArgs]);
      live.push(w2);
      q2 = await run('queue-2-workers', [...base, '--queue', redis.url, ...queuedExtra]);
      times['q2']!.push(q2.wallSeconds);
      await stopWorker(w2);
      live.pop();
      w2 = undefined;
    }
    const q1 = variants.has('q1') ? await run('queue-1-worker', [...base, '--queue', redis.url, ...queuedExtra]) : undefined;
    if (q1) times['q1']!.push(q1.wallSeconds);
    // Predictions of the queued runs against the local run (fhe: per-image classes; mpc: predictions).
    const preds = (j: Record<string, unknown>) =>
      JSON.stringify(j['predictions'] ?? (j['results'] as { fheClass: number }[] | undefined)?.map((x) => x.fheClass) ?? null);
    if (local && (q1 || q2))
      process.stdout.write(
        JSON.stringify({
          rep: r,
          samePredictions: [q1, q2].every((q) => !q || preds(q.json) === preds(local.json)),
          images: JSON.parse(preds(local.json))?.length,
        }) + '\n',
      );
  }
} finally {
  if (w2) await stopWorker(w2);
  if (w1) await stopWorker(w1);
  await redis.stop();
}
const med = (v: number[]) => (v.length ? median(v) : Number.NaN);
const m = { local: med(times['local']!), q1: med(times['q1']!), q2: med(times['q2']!) };
process.stdout.write(
  JSON.stringify({
    summary: true,
    kind,
    reps,
    command: base.join(' '),
    queued: queuedExtra.join(' '),
    workerArgs: workerArgs.join(' '),
    medianSeconds: m,
    ratioQ2ToLocal: +(m.q2 / m.local).toFixed(3),
    ratioQ1ToLocal: +(m.q1 / m.local).toFixed(3),
    speedupQ2OverQ1: +(m.q1 / m.q2).toFixed(3),
    runs: times,
  }) + '\n',
);
