/**
 * Tensor-level exchangeability check of the sentinel weight sampler (`src/proteus/weights.ts`),
 * much faster than a bundle attack: for every real weight tensor of each model, K sentinel tensors
 * of the same shape are drawn from the model's weight pool (the model cut into pieces as
 * `obfuscate --size 16` and `proteus attack` cut it; a sentinel draws from its own piece), and the real tensor is ranked among
 * the K + 1 by value statistics (excess kurtosis, skew, max |z|, tail mass, channel-norm spread,
 * duplicate and zero fractions). A sampler whose draws look like fresh samples of the same
 * distribution ranks the real tensor first, last or closest to the median each in ~1/(K+1) of the
 * tensors; a sampler with too little variability makes the real tensor extreme, one with too much
 * makes it central. Prints JSON (rates per model and pooled, with the binomial tail under chance).
 *
 *   node --import tsx scripts/proteus-sampler-check.ts [--k 20] [--size 16] [MODEL ...]
 *
 * MODEL: a zoo name (built at the adversary corpus configuration) or an .onnx path.
 */

import type { Model } from '../src/onnx/ir.js';
import { loadModel } from '../src/onnx/proto.js';
import { buildZoo } from '../src/onnx/zoo/index.js';
import { centralMoments, channelAxis, channelNorms } from '../src/proteus/battery.js';
import { CORPUS_CONFIGS } from '../src/proteus/corpus.js';
import { extractParts } from '../src/proteus/extract.js';
import { partitionModel } from '../src/proteus/partition.js';
import { secretRng } from '../src/proteus/rng.js';
import { weightKey } from '../src/proteus/stats.js';
import { WeightPool } from '../src/proteus/weights.js';

const STATS = ['excess kurtosis', 'skew', 'max |z|', 'tail mass |z|>3', 'channel norm cv', 'duplicate fraction', 'zero fraction'] as const;

/** Value statistics of one tensor (STATS order; NaN where undefined). */
function tensorStats(d: Float32Array, dims: readonly number[], axis: number): number[] {
  const n = d.length;
  const { mean: m1, m2, m3, m4 } = centralMoments(d);
  const sd = Math.sqrt(m2);
  let maxZ = 0;
  let tail = 0;
  let zeros = 0;
  for (const v of d) {
    const z = sd > 0 ? Math.abs(v - m1) / sd : 0;
    if (z > maxZ) maxZ = z;
    if (z > 3) tail++;
    if (v === 0) zeros++;
  }
  const s = Float32Array.from(d).sort();
  let dup = 0;
  for (let i = 1; i < n; i++) if (s[i] === s[i - 1]) dup++;
  let cv = NaN;
  if (axis >= 0) {
    const norms = channelNorms(d, dims, axis);
    const mu = norms.reduce((p, c) => p + c, 0) / norms.length;
    cv = mu > 0 ? Math.sqrt(norms.reduce((p, c) => p + (c - mu) ** 2, 0) / norms.length) / mu : NaN;
  }
  return [sd > 0 ? m4 / (m2 * m2) - 3 : NaN, sd > 0 ? m3 / (sd * sd * sd) : NaN, maxZ, tail / n, cv, dup / n, zeros / n];
}

/** Credit of the real row (index 0) for being first by `val` (ties share). */
function first(vals: number[], val: (v: number) => number): number {
  const x = vals.map(val);
  const top = Math.max(...x);
  const at = x.filter((v) => v === top).length;
  return x[0] === top ? 1 / at : 0;
}

function binomTail(hits: number, n: number, p: number): number {
  let tail = 0;
  let term = (1 - p) ** n;
  for (let i = 0; i <= n; i++) {
    if (i >= hits) tail += term;
    term *= ((n - i) / (i + 1)) * (p / (1 - p));
  }
  return Math.min(1, tail);
}

function load(name: string): Model {
  return name.endsWith('.onnx') ? loadModel(name) : buildZoo(name, CORPUS_CONFIGS[name] ?? {});
}

const args = process.argv.slice(2);
let k = 20;
let size = 16;
const names: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--k') k = Number(args[++i]);
  else if (args[i] === '--size') size = Number(args[++i]);
  else if (args[i] === '--help') {
    console.log('usage: node --import tsx scripts/proteus-sampler-check.ts [--k 20] [--size 16] [MODEL ...]');
    process.exit(0);
  } else names.push(args[i]!);
}
if (!names.length) names.push('resnet18', 'vgg16', 'mobilenetv2', 'resnet20', 'bert-base', 'gpt2-small', 'models/resnet20-fmnist.onnx');

type Tally = { tensors: number; largest: number[]; smallest: number[]; central: number[]; n: number[] };
const tally = (): Tally => ({ tensors: 0, largest: STATS.map(() => 0), smallest: STATS.map(() => 0), central: STATS.map(() => 0), n: STATS.map(() => 0) });
const pooled = tally();
const perModel: Record<string, unknown> = {};
const rng = secretRng();
const t0 = performance.now();
for (const name of names) {
  const model = load(name);
  const { models: subs } = extractParts(model, partitionModel(model, { size }));
  const pool = new WeightPool(subs);
  const t = tally();
  for (const [part, m] of subs.entries()) {
    const g = m.graph;
    const seen = new Set<string>();
    for (const node of g.nodes) {
      for (const [slot, tn] of node.inputs.entries()) {
        const w = g.initializers.get(tn);
        if (!w || seen.has(tn) || w.dtype !== 'float32' || w.data.length < 2) continue;
        seen.add(tn);
        const d = w.data as Float32Array;
        if (d.some((v) => v <= -1e3)) continue;
        const key = weightKey(node.opType, slot, w.dims.length);
        const axis = channelAxis(node.opType, slot, w.dims);
        const rows = [tensorStats(d, w.dims, axis)];
        for (let j = 0; j < k; j++) {
          const s = pool.sample(key, node.opType, slot, w.dims, part, rng);
          if (!s) break;
          rows.push(tensorStats(s, w.dims, axis));
        }
        if (rows.length < k + 1) continue;
        for (const tt of [t, pooled]) {
          tt.tensors++;
          STATS.forEach((_, j) => {
            const v = rows.map((r) => r[j]!);
            if (v.some((x) => Number.isNaN(x))) return;
            const sorted = [...v].sort((a, b) => a - b);
            const med = sorted[Math.floor(v.length / 2)]!;
            tt.n[j]!++;
            tt.largest[j]! += first(v, (x) => x);
            tt.smallest[j]! += first(v, (x) => -x);
            tt.central[j]! += first(v, (x) => -Math.abs(x - med));
          });
        }
      }
    }
  }
  perModel[name] = summary(t);
  process.stderr.write(`${name}: ${t.tensors} tensors (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
}

function summary(t: Tally): Record<string, unknown> {
  const out: Record<string, unknown> = { tensors: t.tensors };
  STATS.forEach((s, j) => {
    const n = t.n[j]!;
    if (!n) return;
    const r = (x: number): number => Math.round((1000 * x) / n) / 10;
    const worst = Math.max(t.largest[j]!, t.smallest[j]!, t.central[j]!);
    out[s] = {
      n,
      largestPct: r(t.largest[j]!),
      smallestPct: r(t.smallest[j]!),
      centralPct: r(t.central[j]!),
      pChanceWorst: binomTail(Math.round(worst), n, 1 / (k + 1)),
    };
  });
  return out;
}

console.log(JSON.stringify({ k, chancePct: Math.round(1000 / (k + 1)) / 10, pooled: summary(pooled), models: perModel }, null, 1));
