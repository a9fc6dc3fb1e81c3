/**
 * Structure-level check of the sentinel generator, much faster than a bundle attack (no files, no
 * onnxruntime, no training): each model is cut as `proteus attack` cuts it (a fresh zoo weight draw
 * and partition per bundle), K sentinels are generated per piece, and for each of the learned
 * adversary's structural scalars (`SCALAR_FEATURES`: node count, joins per node, 1×1 share, ...)
 * it reports the AUC of "real vs sentinel" over all groups (0.5: no signal; the real member above
 * its sentinels gives > 0.5) and how often the real member is strictly its group's largest or
 * smallest (chance 1/(K+1) each where values do not tie). Prints JSON.
 *
 *   node --import tsx scripts/proteus-structure-check.ts [--k 20] [--bundles 6] [--seed 3] MODEL ...
 *
 * MODEL: a zoo name built at the adversary corpus configuration (resnet20, mobilenetv2, ...).
 * `--seed` makes the run reproducible (a test-only stream; a real bundle never takes one).
 */

import { buildZoo } from '../src/onnx/zoo/index.js';
import { auc, features, SCALAR_FEATURES } from '../src/proteus/adversary.js';
import { CORPUS_CONFIGS, corpusStats } from '../src/proteus/corpus.js';
import { extractParts } from '../src/proteus/extract.js';
import { partitionModel } from '../src/proteus/partition.js';
import { secretRng } from '../src/proteus/rng.js';
import { generateSentinels } from '../src/proteus/sentinel.js';
import { WeightPool } from '../src/proteus/weights.js';

function main(): void {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: number): number => {
    const i = args.indexOf(name);
    if (i < 0) return dflt;
    const v = Number(args.splice(i, 2)[1]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} takes a positive integer`);
    return v;
  };
  const k = opt('--k', 20);
  const bundles = opt('--bundles', 6);
  const seed = opt('--seed', 3);
  if (!args.length || args.some((a) => a.startsWith('-'))) {
    process.stderr.write('usage: proteus-structure-check.ts [--k 20] [--bundles 6] [--seed 3] MODEL ...\n');
    process.exit(2);
  }
  const stats = corpusStats();
  const rng = secretRng(seed);
  // Structural scalars only (the hashed op n-grams follow from them; value statistics have their own check).
  const cols = SCALAR_FEATURES.map((name, j) => ({ name, j })).filter(({ name }) => !/^(log10 params|mean \|weight std\||inputs|outputs)$/.test(name));
  const out = [];
  for (const name of args) {
    const cfg = CORPUS_CONFIGS[name];
    if (!cfg) throw new Error(`unknown zoo model '${name}' (known: ${Object.keys(CORPUS_CONFIGS).join(', ')})`);
    const x: number[][] = [];
    const y: boolean[] = [];
    const largest = new Array<number>(cols.length).fill(0);
    const smallest = new Array<number>(cols.length).fill(0);
    let groups = 0;
    const t0 = performance.now();
    for (let b = 0; b < bundles; b++) {
      const model = buildZoo(name, { ...cfg, seed: b + 1 });
      const { models: pieces } = extractParts(model, partitionModel(model, { size: 16, seed: seed + 7919 * b }));
      const pool = new WeightPool(pieces);
      for (const piece of pieces) {
        const real = features(piece);
        const fakes = generateSentinels(piece, k, { stats, rng, pool }).map(features);
        groups++;
        x.push(real, ...fakes);
        y.push(true, ...fakes.map(() => false));
        cols.forEach(({ j }, c) => {
          if (fakes.every((f) => f[j]! < real[j]!)) largest[c]!++;
          if (fakes.every((f) => f[j]! > real[j]!)) smallest[c]!++;
        });
      }
    }
    out.push({
      model: name,
      groups,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      features: cols.map(({ name: f, j }, c) => ({
        feature: f,
        auc: r(
          auc(
            x.map((v) => v[j]!),
            y,
          ),
        ),
        realLargest: largest[c],
        realSmallest: smallest[c],
      })),
    });
  }
  process.stdout.write(`${JSON.stringify({ k, bundles, seed, chanceFirst: r(1 / (k + 1)), models: out }, null, 1)}\n`);
}

const r = (v: number): number => Math.round(v * 1000) / 1000;

main();
