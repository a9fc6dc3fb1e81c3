/**
 * Proteus partition cost: for each zoo model, ORT latency of (a) the original with graph
 * optimization disabled, (b) the original optimized whole by ORT (level extended, in the session),
 * (c) the Proteus-recovered model (subgraphs optimized separately, reassembled, run with
 * optimization disabled), plus (b') the whole-graph optimized file run with optimization disabled,
 * the like-for-like twin of (c). Prints one JSON line per model and batch size, then a summary.
 * Sessions are timed round-robin so machine load drifts hit all variants alike; medians are reported.
 *
 * Usage: node --import tsx bench/proteus.ts [--runs 15] [--warmup 3] [--size 16] [--seed 1] [--threads 1]
 *        [--models resnet50,bert-base] [--full]   (--full: every model at its default, full size)
 */

import type { InferenceSession } from 'onnxruntime-node';
import type { Model, Tensor } from '../src/onnx/ir.js';
import { ortSession, runOrt, toOrtTensor } from '../src/onnx/ort.js';
import { buildZoo } from '../src/onnx/zoo/index.js';
import { maxRelativeError, optimizeByParts, optimizeModel, randomFeeds } from '../src/proteus/index.js';

const USAGE = 'Usage: node --import tsx bench/proteus.ts [--runs 15] [--warmup 3] [--size 16] [--seed 1] [--threads 1] [--models a,b] [--full]\n';
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}
const runs = Number(arg('runs', '15'));
const warmup = Number(arg('warmup', '3'));
const size = Number(arg('size', '16'));
const seed = Number(arg('seed', '1'));
const full = process.argv.includes('--full');
const threads = Number(arg('threads', '1'));
const threadOpts = threads > 0 ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {};

/** Bench configurations: reduced where the default would take minutes per run on 2 cores; resnet50 at full size. */
const CONFIGS: { name: string; opts: Record<string, string | number>; cnn: boolean }[] = [
  { name: 'fmnist-cnn', opts: {}, cnn: true },
  { name: 'lenet5', opts: {}, cnn: true },
  { name: 'resnet20', opts: {}, cnn: true },
  { name: 'resnet18', opts: {}, cnn: true },
  { name: 'resnet50', opts: {}, cnn: true },
  { name: 'vgg16', opts: full ? {} : { input: '3x112x112' }, cnn: true },
  { name: 'mobilenetv2', opts: {}, cnn: true },
  { name: 'bert-base', opts: full ? {} : { layers: 4, hidden: 256, heads: 4, seq: 64, vocab: 2000 }, cnn: false },
  { name: 'gpt2-small', opts: full ? {} : { layers: 4, hidden: 256, heads: 4, seq: 64, vocab: 2000 }, cnn: false },
];
const only = arg('models', '');
const selected = only ? CONFIGS.filter((c) => only.split(',').includes(c.name)) : CONFIGS;

/** Op-type histogram, domain-qualified. */
function histogram(m: Model): Map<string, number> {
  const h = new Map<string, number>();
  for (const n of m.graph.nodes) {
    const k = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    h.set(k, (h.get(k) ?? 0) + 1);
  }
  return h;
}

/** Op types whose count differs between whole-graph and per-part optimization: the fusions the cuts cost. */
function fusionDiff(whole: Model, recovered: Model): Record<string, { whole: number; recovered: number }> {
  const a = histogram(whole);
  const b = histogram(recovered);
  const out: Record<string, { whole: number; recovered: number }> = {};
  for (const k of new Set([...a.keys(), ...b.keys()])) if ((a.get(k) ?? 0) !== (b.get(k) ?? 0)) out[k] = { whole: a.get(k) ?? 0, recovered: b.get(k) ?? 0 };
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median latency (ms) of each session on the same feeds, timed round-robin. */
async function timeSessions(sessions: InferenceSession[], feeds: Record<string, Tensor>): Promise<number[]> {
  const f = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrtTensor(v)]));
  for (let r = 0; r < warmup; r++) for (const s of sessions) await s.run(f);
  const times: number[][] = sessions.map(() => []);
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < sessions.length; i++) {
      const t0 = performance.now();
      await sessions[i]!.run(f);
      times[i]!.push(performance.now() - t0);
    }
  }
  return times.map(median);
}

const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;
const summary: Record<string, number> = {};
for (const cfg of selected) {
  const model = buildZoo(cfg.name, cfg.opts);
  const t0 = performance.now();
  const res = await optimizeByParts(model, { size, seed, level: 'extended' });
  const proteusMs = performance.now() - t0;
  const naive = await optimizeByParts(model, { size, seed, level: 'extended', fusionAware: false });
  const whole = await optimizeModel(model, { level: 'extended' });
  const a = await ortSession(model, { ...threadOpts, graphOptimizationLevel: 'disabled' });
  const b = await ortSession(model, { ...threadOpts, graphOptimizationLevel: 'extended' });
  const bSaved = await ortSession(whole, { ...threadOpts, graphOptimizationLevel: 'disabled' });
  const c = await ortSession(res.model, { ...threadOpts, graphOptimizationLevel: 'disabled' });
  const d = await ortSession(naive.model, { ...threadOpts, graphOptimizationLevel: 'disabled' });
  try {
    for (const batch of cfg.cnn ? [1, 8] : [1]) {
      const feeds = randomFeeds(model, { batch, seed: 7 });
      const err = maxRelativeError(await runOrt(res.model, feeds, c), await runOrt(model, feeds, a));
      const [ta, tb, tbs, tc, td] = await timeSessions([a, b, bSaved, c, d], feeds);
      const ratio = tc! / tb!;
      summary[`${cfg.name}@${batch}`] = round(ratio);
      console.log(
        JSON.stringify({
          model: cfg.name,
          options: cfg.opts,
          batch,
          nodes: model.graph.nodes.length,
          subgraphs: res.partition.parts.length,
          partSizes: res.partition.parts.map((p) => p.length),
          proteusMs: Math.round(proteusMs),
          relError: err,
          msUnoptimized: round(ta!),
          msWholeOptimized: round(tb!),
          msWholeOptimizedSaved: round(tbs!),
          msRecovered: round(tc!),
          ratioRecoveredToWhole: round(ratio),
          ratioRecoveredToWholeSaved: round(tc! / tbs!),
          cutFusions: fusionDiff(whole, res.model),
          naive: { msRecovered: round(td!), ratioToWhole: round(td! / tb!), cutFusions: fusionDiff(whole, naive.model) },
        }),
      );
    }
  } finally {
    for (const s of [a, b, bSaved, c, d]) await s.release();
  }
}
const worst = Math.max(...Object.values(summary));
console.log(
  JSON.stringify({ summary: 'ratio recovered / whole-graph optimized (target <= 1.05)', runs, size, threads, ratios: summary, worst, met: worst <= 1.05 }),
);
