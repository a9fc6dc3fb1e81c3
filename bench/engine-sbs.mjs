#!/usr/bin/env node
// Side-by-side measurement of the MPC engine (issue 19): every configuration below runs once per
// round, in the same order each round (so old/new/CrypTen alternate under the same load), and the
// medians over rounds are printed as JSON. Each privml run is `privml mpc bench … --json` from a
// source tree (this one, and --old DIR: the baseline tree with its own build/ring.wasm); CrypTen runs
// bench/crypten/bench.py with --python (an interpreter that can import crypten; omitted: skipped).
// --base DIR adds a third privml tree (e.g. main before the latest round of changes) for the target
// rows. Every run's CPU seconds (user + sys of the command and all its processes, via /usr/bin/time
// when present) are reported next to its wall time.
//
//   node bench/engine-sbs.mjs --old /tmp/old [--base /tmp/base] --python /tmp/venv/bin/python3 --rounds 3 [--groups relu,b1,b64|b64s,b64c] [--variants 0] > out.json
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const here = resolve(new URL('..', import.meta.url).pathname);
const old = opt('old');
const base = opt('base');
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const python = opt('python');
const rounds = Number(opt('rounds', '3'));
// --variants 0: only the default configuration of each tree (no --threads 2 / --lanes 1 rows)
const variants = opt('variants', '1') !== '0';
const groups = new Set(opt('groups', 'relu,b1,b64').split(','));
const model = resolve(here, 'models/fmnist-cnn.onnx');

/** [label, group, kind, tree or python, argv]; kind 'privml' parses msPerBatch/ms, 'crypten' ms. */
const configs = [];
// a row's group is relu, b1, b64s (batch 64 sign-only) or b64c (batch 64 crypten + CrypTen); b64 = both
const add = (label, group, kind, where, argv) => {
  const on = groups.has(group) || (group.startsWith('b64') && groups.has('b64'));
  if (on && where) configs.push({ label, group, kind, where, argv });
};
const relu = ['mpc', 'bench', 'relu', '--n', '262144', '--reps', '5'];
add('relu 2^18 signonly: old', 'relu', 'privml', old, relu);
add('relu 2^18 signonly: base', 'relu', 'privml', base, relu);
add('relu 2^18 signonly: new', 'relu', 'privml', here, relu);
add('relu 2^18 signonly: new --lanes 1', 'relu', 'privml', here, [...relu, '--lanes', '1']);
add('relu 2^18: CrypTen', 'relu', 'crypten', python, ['relu', '--n', '262144', '--reps', '5']);
for (const [group, batch, reps] of [
  ['b1', 1, 5],
  ['b64', 64, 1],
]) {
  const m = ['mpc', 'bench', 'model', model, '--batch', String(batch), '--reps', String(reps)];
  for (const proto of ['signonly', 'crypten']) {
    const g = batch > 1 ? `${group}${proto === 'signonly' ? 's' : 'c'}` : group;
    const p = [...m, '--relu-protocol', proto];
    add(`batch ${batch} ${proto}: old`, g, 'privml', old, p);
    // base: its own default (since 6c44f1a the same as new's: one thread per party on 2 cores)
    if (batch > 1) add(`batch ${batch} ${proto}: base (default)`, g, 'privml', base, p);
    // new's default: half the cores per party when both run here (1 on 2 cores)
    add(`batch ${batch} ${proto}: new (default)`, g, 'privml', here, p);
    // threads and lanes apart where they can matter (a whole batch; sign-only keeps it short)
    if (batch > 1 && proto === 'signonly' && variants) {
      add(`batch ${batch} ${proto}: new --threads 2`, g, 'privml', here, [...p, '--threads', '2']);
      add(`batch ${batch} ${proto}: new --lanes 1`, g, 'privml', here, [...p, '--lanes', '1']);
    }
  }
  add(`batch ${batch}: CrypTen (secret weights)`, batch > 1 ? `${group}c` : group, 'crypten', python, [
    'model',
    model,
    '--batch',
    String(batch),
    '--reps',
    String(reps),
  ]);
}

function runOne(c) {
  const [cmd, argv, cwd] =
    c.kind === 'privml'
      ? [process.execPath, [resolve(c.where, 'bin/privml.js'), ...c.argv, '--json'], c.where]
      : [c.where, [resolve(here, 'bench/crypten/bench.py'), ...c.argv], here];
  const tf = join(tmpdir(), `engine-sbs-${process.pid}.time`);
  const r = TIME
    ? spawnSync(TIME, ['-o', tf, '-f', '%U %S', cmd, ...argv], { cwd, encoding: 'utf8', maxBuffer: 1 << 28 })
    : spawnSync(cmd, argv, { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${c.label}: exit ${r.status}: ${(r.stderr || '').trim().split('\n').pop()}`);
  let cpuS;
  if (TIME) {
    const [u, s] = readFileSync(tf, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    cpuS = u + s;
    rmSync(tf, { force: true });
  }
  const j = JSON.parse(c.kind === 'privml' ? r.stdout : r.stdout.trim().split('\n').pop());
  if (c.kind === 'crypten') return { ms: j.ms, cpuS };
  if (j.msPerBatch === undefined) return { ms: j.ms, cpuS, computeMs: j.computeMs, waitMs: j.waitMs, profile: j.profile };
  return { ms: j.msPerBatch, cpuS, onlineMs: j.onlineMsPerBatch, computeMs: j.computeMsPerBatch, waitMs: j.waitMsPerBatch, layers: j.layers };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const loadStart = (await import('node:os')).loadavg();
const results = configs.map(() => []);
for (let r = 0; r < rounds; r++) {
  configs.forEach((c, i) => {
    const v = runOne(c);
    results[i].push(v);
    process.stderr.write(`round ${r + 1}/${rounds} ${c.label}: ${v.ms.toFixed(1)} ms${v.cpuS !== undefined ? `, ${v.cpuS.toFixed(1)} CPU s` : ''}\n`);
  });
}
const out = configs.map((c, i) => {
  const rs = results[i];
  const last = rs[rs.length - 1];
  return {
    label: c.label,
    command:
      c.kind === 'privml' ? `privml ${c.argv.join(' ').replace(here + '/', '')}` : `python3 bench/crypten/bench.py ${c.argv.join(' ').replace(here + '/', '')}`,
    tree: c.kind === 'privml' ? c.where : undefined,
    msMedian: median(rs.map((v) => v.ms)),
    ms: rs.map((v) => v.ms),
    // CPU seconds of the whole command (all its processes, start-up and warm-up included)
    ...(last.cpuS !== undefined ? { cpuS: rs.map((v) => v.cpuS) } : {}),
    ...(last.onlineMs !== undefined ? { onlineMsMedian: median(rs.map((v) => v.onlineMs)) } : {}),
    ...(last.computeMs !== undefined ? { computeMs: last.computeMs, waitMs: last.waitMs } : {}),
    ...(last.layers ? { layers: last.layers } : {}),
    ...(last.profile ? { profile: last.profile } : {}),
  };
});
process.stdout.write(JSON.stringify({ rounds, loadStart, loadavg: (await import('node:os')).loadavg(), results: out }, null, 1) + '\n');
