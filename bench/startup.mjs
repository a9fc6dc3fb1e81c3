// Start-up time of `privml --version` against a bare `node -e 0`, hyperfine-style: alternating runs, medians.
// Usage: node bench/startup.mjs [runs=15] [-- extra privml args]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const runs = Number(process.argv[2] ?? 15);
const dd = process.argv.indexOf('--');
const args = dd > 0 ? process.argv.slice(dd + 1) : ['--version'];
const bin = fileURLToPath(new URL('../bin/privml.js', import.meta.url));
const time = (cmd) => {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, cmd, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited with ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
};
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const cli = [];
const bare = [];
for (let i = 0; i < runs; i++) {
  cli.push(time([bin, ...args]));
  bare.push(time(['-e', '0']));
}
console.log(
  `privml ${args.join(' ')}: median ${median(cli).toFixed(3)} s (min ${Math.min(...cli).toFixed(3)}); node -e 0: median ${median(bare).toFixed(3)} s (min ${Math.min(...bare).toFixed(3)}); ${runs} alternating runs`,
);
