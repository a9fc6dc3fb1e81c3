// The floor any queue has on this machine (issue 20): the members of a Proteus bundle optimized by one
// process against the same members split over two processes by size (largest first onto the lighter
// half, as a queue balances), no queue, no member check; ORT on one thread, the built `dist/`.
// Alternating one/two per repetition; one JSON line per run, then medians and their ratio.
// Usage: node bench/proteus-split-floor.mjs BUNDLE OUT-DIR [reps=5]
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [bundle, out, third, part, parts] = process.argv.slice(2);
if (!bundle || !out) {
  process.stderr.write('Usage: node bench/proteus-split-floor.mjs BUNDLE OUT-DIR [reps=5]\n');
  process.exit(2);
}
const me = fileURLToPath(import.meta.url);

if (third === 'child') {
  const { optimizeMember } = await import(new URL('../dist/api/proteus.js', import.meta.url).href);
  const sized = readdirSync(bundle)
    .filter((f) => f.startsWith('member-'))
    .map((f) => [f, statSync(join(bundle, f)).size])
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const load = new Array(Number(parts)).fill(0);
  const mine = [];
  for (const [f, size] of sized) {
    let k = 0;
    for (let j = 1; j < load.length; j++) if (load[j] < load[k]) k = j;
    load[k] += size;
    if (k === Number(part)) mine.push(f);
  }
  const t0 = performance.now();
  for (const f of mine) await optimizeMember(join(bundle, f), join(out, f), { threads: 1 });
  const ru = process.resourceUsage();
  process.stdout.write(
    `${JSON.stringify({ part: Number(part), members: mine.length, seconds: (performance.now() - t0) / 1000, cpuSeconds: (ru.userCPUTime + ru.systemCPUTime) / 1e6 })}\n`,
  );
} else {
  const run = (n) =>
    new Promise((resolve, reject) => {
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out, { recursive: true });
      const t0 = performance.now();
      const done = [];
      for (let p = 0; p < n; p++) {
        const c = spawn(process.execPath, [me, bundle, out, 'child', String(p), String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let text = '';
        c.stdout.on('data', (d) => (text += d));
        c.on('exit', (code) => {
          if (code !== 0) return reject(new Error(`part ${p} of ${n} exited with ${code}`));
          done.push(JSON.parse(text));
          if (done.length === n) resolve({ processes: n, wallSeconds: (performance.now() - t0) / 1000, parts: done });
        });
      }
    });
  const reps = Number(third ?? 5);
  const walls = { 1: [], 2: [] };
  for (let i = 0; i < reps; i++)
    for (const n of [1, 2]) {
      const r = await run(n);
      walls[n].push(r.wallSeconds);
      process.stdout.write(`${JSON.stringify(r)}\n`);
    }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const pairs = walls[1].map((w, i) => +(walls[2][i] / w).toFixed(3));
  process.stdout.write(
    `${JSON.stringify({ summary: true, reps, oneProcess: median(walls[1]), twoProcesses: median(walls[2]), ratio: +(median(walls[2]) / median(walls[1])).toFixed(3), pairRatios: pairs })}\n`,
  );
}
