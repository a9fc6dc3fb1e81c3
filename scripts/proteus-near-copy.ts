/**
 * The battery's near-twin statistic (`src/proteus/near-twin.ts`) on bundles exactly as
 * `obfuscate` writes them, read back from disk: for each member, the mean over its float tensors
 * of the distance to the nearest equal-length tensor of any other member of the bundle; the guess
 * is each group's smallest; and the same with each distance replaced by its rank among the bundle's
 * tensors of that length (free of the member's composition). Obfuscates zoo models (fresh bundles,
 * corpus configurations) and prints JSON: per model and statistic, groups and the share whose real
 * member is its group's smallest (chance 1/(K+1)), and the real member's mean quantile (share of
 * sentinels farther than it).
 *
 *   node --import tsx scripts/proteus-near-copy.ts [models=resnet20,mobilenetv2 (zoo names or .onnx files)] [bundles=2] [K=20]
 */
import { join } from 'node:path';
import { loadModel } from '../src/onnx/proto.js';
import { corpusStats, nearTwinScores, twinSketches } from '../src/proteus/index.js';
import { forEachBundle } from './proteus-bundles.js';

async function main(): Promise<void> {
  const [list = 'resnet20,mobilenetv2', bArg = '2', kArg = '20'] = process.argv.slice(2);
  const stats = corpusStats();
  const report = [];
  for (const name of list.split(',')) {
    // Per statistic: groups scored, groups whose real member is the smallest, sum of its quantiles.
    const tally = { distance: { groups: 0, first: 0, quantile: 0 }, rank: { groups: 0, first: 0, quantile: 0 } };
    await forEachBundle(name, { bundles: Number(bArg), k: Number(kArg), stats, seedBase: 11 }, (dir, r) => {
      // The attacker's view: every member file of the bundle, read back from disk.
      const files = r.key.groups.flatMap((g) => g.members);
      const scores = nearTwinScores(files.map((f) => twinSketches(loadModel(join(dir, f)))));
      const score = new Map(files.map((f, i) => [f, scores[i]!]));
      for (const stat of ['distance', 'rank'] as const) {
        const t = tally[stat];
        for (const g of r.key.groups) {
          const real = score.get(g.real)![stat];
          const others = g.members
            .filter((f) => f !== g.real)
            .map((f) => score.get(f)![stat])
            .filter((x) => !Number.isNaN(x));
          if (Number.isNaN(real) || !others.length) continue;
          t.groups++;
          if (others.every((x) => x > real)) t.first++;
          t.quantile += others.filter((x) => x > real).length / others.length;
        }
      }
    });
    const summary = (t: { groups: number; first: number; quantile: number }) => ({
      groups: t.groups,
      realFirst: t.groups ? t.first / t.groups : Number.NaN,
      realMeanQuantile: t.groups ? t.quantile / t.groups : Number.NaN,
    });
    report.push({ model: name, chance: 1 / (Number(kArg) + 1), distance: summary(tally.distance), rank: summary(tally.rank) });
  }
  process.stdout.write(
    `${JSON.stringify({ attack: 'near twin (src/proteus/near-twin.ts)', bundles: Number(bArg), k: Number(kArg), models: report }, null, 2)}\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
