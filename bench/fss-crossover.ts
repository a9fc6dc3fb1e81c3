/**
 * Crossover of the ReLU protocols on fmnist-cnn: `privml mpc bench model --preprocess` over an
 * emulated round-trip time (RTT/2 one way on the parties' link, 100 Mbit/s) and the batch size, for
 * the HummingBird eco and aggressive configs. Real processes; the parties' link is emulated, the
 * dealer's links are not (--dealer-net none): the grid is about the online time (input shared →
 * output revealed), which does not depend on the dealer link once its material was fetched in the
 * offline phase; the offline bytes per party are printed with every point (offline time on any
 * link ≈ bytes·8/bandwidth + RTT + the dealer's key generation).
 * Usage:
 *   node --import tsx bench/fss-crossover.ts [reps=1] [protocols=signonly,fss2] [configs=eco,aggressive] [rtts=0,10,40,100] [batches=1,8,64]
 *   node --import tsx bench/fss-crossover.ts plot points.jsonl... > docs/fss-crossover.svg
 * One JSON line per point (protocols alternated within every grid cell), then a summary line;
 * `plot` draws the points of earlier runs (online ms per image against RTT, one panel per batch).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
if (process.argv[2] === 'plot') {
  const pts = process.argv
    .slice(3)
    .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
    .filter((l) => l.startsWith('{') && !l.includes('"summary"'))
    .map((l) => JSON.parse(l) as Point);
  process.stdout.write(plot(pts));
  process.exit(0);
}
const arg = (i: number, d: string): string => process.argv[i] ?? d;
const reps = Number(arg(2, '1'));
const protos = arg(3, 'signonly,fss2').split(',');
const configs = arg(4, 'eco,aggressive').split(',');
const rtts = arg(5, '0,10,40,100').split(',').map(Number);
const batches = arg(6, '1,8,64').split(',').map(Number);
const CONFIGS: Record<string, string> = { eco: 'eco.json', aggressive: 'aggressive-6.4.json' };
for (const c of configs) if (!CONFIGS[c]) throw new Error(`bench/fss-crossover: unknown config ${c} (expected ${Object.keys(CONFIGS).join(', ')})`);

interface Point {
  protocol: string;
  config: string;
  rttMs: number;
  batch: number;
  onlineMs: number;
  onlineMsPerImage: number;
  rounds: number;
  onlineBytesSentPerParty: number[];
  onlineComputeMsPerParty: number[];
  offlineDealerBytesPerParty: number[];
  cpuS: number;
}
const points: Point[] = [];
const t0 = performance.now(),
  load0 = loadavg()[0]!;
for (const batch of batches) {
  for (const rtt of rtts) {
    for (const config of configs) {
      // alternate which protocol goes first from one cell to the next
      const order = (points.length / protos.length) % 2 ? [...protos].reverse() : protos;
      for (const protocol of order) {
        const args = [
          join(root, 'bin/privml.js'),
          'mpc',
          'bench',
          'model',
          join(root, 'models/fmnist-cnn.onnx'),
          '--preprocess',
          '--bandwidth',
          '100mbit',
          '--latency',
          `${rtt / 2}ms`,
          '--dealer-net',
          'none',
          '--relu-protocol',
          protocol,
          '--relu-config',
          join(root, 'models/hummingbird/fmnist-cnn', CONFIGS[config]!),
          '--batch',
          String(batch),
          '--reps',
          String(reps),
          '--connect-timeout',
          '300',
          '--json',
        ];
        let out, cpuS;
        try {
          [out, cpuS] = runTimed(args);
        } catch (e) {
          console.error(
            `${protocol} ${config} rtt ${rtt} batch ${batch}: failed: ${
              String((e as { stderr?: string }).stderr ?? e)
                .trim()
                .split('\n')[0]
            }`,
          );
          continue;
        }
        const p: Point = {
          protocol,
          config,
          rttMs: rtt,
          batch,
          onlineMs: Math.round(out.onlineMsPerBatch * 10) / 10,
          onlineMsPerImage: Math.round((out.onlineMsPerBatch / batch) * 100) / 100,
          rounds: out.roundsPerBatch,
          onlineBytesSentPerParty: out.bytesSentPerBatch.map(Math.round),
          onlineComputeMsPerParty: out.onlineComputeMsPerBatch.map(Math.round),
          offlineDealerBytesPerParty: out.offlineDealerBytesPerBatch.map(Math.round),
          cpuS,
        };
        points.push(p);
        console.log(JSON.stringify(p));
      }
    }
  }
}
console.log(
  JSON.stringify({ summary: true, points: points.length, wallS: Math.round((performance.now() - t0) / 1000), load1Start: load0, load1End: loadavg()[0] }),
);

/** Online ms per image against RTT, one panel per batch, a line per protocol and config (log y). */
function plot(ps: Point[]): string {
  const uniq = <T>(v: T[]): T[] => [...new Set(v)];
  const protos = uniq(ps.map((p) => p.protocol)),
    configs = uniq(ps.map((p) => p.config)),
    rtts = uniq(ps.map((p) => p.rttMs)).sort((a, b) => a - b),
    batches = uniq(ps.map((p) => p.batch)).sort((a, b) => a - b);
  const W = 300,
    H = 240,
    M = { l: 52, r: 10, t: 28, b: 40 };
  const colors: Record<string, string> = { signonly: '#1f77b4', fss: '#d62728', fss2: '#2ca02c', crypten: '#7f7f7f' };
  const ys = ps.map((p) => p.onlineMsPerImage).filter((v) => v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...ys))),
    hi = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  const maxRtt = Math.max(...rtts, 1);
  const x = (r: number): number => M.l + ((W - M.l - M.r) * r) / maxRtt;
  const y = (v: number): number => H - M.b - ((H - M.t - M.b) * Math.log10(v / lo)) / Math.log10(hi / lo);
  const panels = batches.map((b, i) => {
    const g: string[] = [`<g transform="translate(${i * W},0)">`, `<text x="${W / 2}" y="16" text-anchor="middle" font-weight="bold">batch ${b}</text>`];
    g.push(
      `<line x1="${M.l}" y1="${H - M.b}" x2="${W - M.r}" y2="${H - M.b}" stroke="#000"/><line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${H - M.b}" stroke="#000"/>`,
    );
    for (const r of rtts) g.push(`<text x="${x(r)}" y="${H - M.b + 14}" text-anchor="middle">${r}</text>`);
    g.push(`<text x="${(M.l + W - M.r) / 2}" y="${H - 8}" text-anchor="middle">RTT (ms)</text>`);
    for (let d = lo; d <= hi; d *= 10) {
      g.push(`<line x1="${M.l}" y1="${y(d)}" x2="${W - M.r}" y2="${y(d)}" stroke="#ddd"/><text x="${M.l - 4}" y="${y(d) + 4}" text-anchor="end">${d}</text>`);
    }
    if (i === 0) g.push(`<text transform="translate(12,${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">online ms per image</text>`);
    for (const proto of protos) {
      for (const config of configs) {
        const line = ps.filter((p) => p.batch === b && p.protocol === proto && p.config === config).sort((p, q) => p.rttMs - q.rttMs);
        if (!line.length) continue;
        const dash = config === 'eco' ? '' : ' stroke-dasharray="5,3"';
        g.push(
          `<polyline fill="none" stroke="${colors[proto] ?? '#000'}" stroke-width="2"${dash} points="${line.map((p) => `${x(p.rttMs).toFixed(1)},${y(p.onlineMsPerImage).toFixed(1)}`).join(' ')}"/>`,
        );
        for (const p of line)
          g.push(`<circle cx="${x(p.rttMs).toFixed(1)}" cy="${y(p.onlineMsPerImage).toFixed(1)}" r="2.5" fill="${colors[proto] ?? '#000'}"/>`);
      }
    }
    g.push('</g>');
    return g.join('\n');
  });
  const shown = protos.flatMap((proto) =>
    configs.filter((config) => ps.some((p) => p.protocol === proto && p.config === config)).map((config) => [proto, config] as const),
  );
  const legend = shown.map(([proto, config], k) => {
    const lx = 10 + k * 150,
      ly = H + 14;
    const dash = config === 'eco' ? '' : ' stroke-dasharray="5,3"';
    return `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${colors[proto] ?? '#000'}" stroke-width="2"${dash}/><text x="${lx + 30}" y="${ly + 4}">${proto} ${config}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W * batches.length}" height="${H + 28}" font-family="sans-serif" font-size="11">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    ...panels,
    ...legend,
    '</svg>',
    '',
  ].join('\n');
}

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
