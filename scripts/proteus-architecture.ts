/**
 * What a bundle shows of the real pieces' architectures, on bundles exactly as `obfuscate` writes
 * them, read back from disk: per model, the share of sentinels that have their real piece's
 * architecture (`architectureOf`: wiring and every weight's dims — such a sentinel shows the piece),
 * the share with its wiring only, distinct architectures per group, and the multiplicity attack in
 * both directions: the rate at which a random singleton of the group is the real member, and a
 * random member of the group's most repeated design (chance 1/(K+1)); the same for wirings
 * (`structureOf` alone). And what the group's most frequent design and wiring say of the real
 * piece's own (`realDesignGuessed`, `realWiringGuessed`: the attacker names the real design, not
 * the member; ties split).
 *
 *   node --import tsx scripts/proteus-architecture.ts [models=mobilenetv2,resnet20 (zoo names or .onnx files)] [bundles=1] [K=20]
 */
import { join } from 'node:path';
import { loadModel } from '../src/onnx/proto.js';
import { architectureOf, corpusStats, multiplicities, structureOf } from '../src/proteus/index.js';
import { forEachBundle } from './proteus-bundles.js';

/**
 * Whether "the group's most frequent design is the real piece's" names the real design (not the
 * member): 1 / the number of designs tied at the top when the real one is among them, else 0.
 */
function guessed(designs: readonly string[], real: number): number {
  const counts = new Map<string, number>();
  for (const d of designs) counts.set(d, (counts.get(d) ?? 0) + 1);
  const most = Math.max(...counts.values());
  if (counts.get(designs[real]!) !== most) return 0;
  return 1 / [...counts.values()].filter((c) => c === most).length;
}

async function main(): Promise<void> {
  if (process.argv.includes('--help')) {
    process.stdout.write('Usage: node --import tsx scripts/proteus-architecture.ts [models] [bundles=1] [K=20]\n');
    return;
  }
  const [list = 'mobilenetv2,resnet20', bArg = '1', kArg = '20'] = process.argv.slice(2);
  const stats = corpusStats();
  const report = [];
  for (const name of list.split(',')) {
    const t = {
      groups: 0,
      sentinels: 0,
      copies: 0,
      wiring: 0,
      singletons: 0,
      designs: 0,
      realFirst: 0,
      realMost: 0,
      wiringFirst: 0,
      wiringMost: 0,
      designGuessed: 0,
      wiringGuessed: 0,
    };
    await forEachBundle(name, { bundles: Number(bArg), k: Number(kArg), stats, seedBase: 41 }, (dir, r) => {
      for (const g of r.key.groups) {
        const members = g.members.map((f) => loadModel(join(dir, f)));
        const archs = members.map(architectureOf);
        const counts = multiplicities(archs);
        const real = g.members.indexOf(g.real);
        const wiring = structureOf(members[real]!);
        t.groups++;
        t.designs += new Set(archs).size;
        members.forEach((m, i) => {
          if (i === real) return;
          t.sentinels++;
          if (archs[i] === archs[real]) t.copies++;
          if (structureOf(m) === wiring) t.wiring++;
          if (counts[i] === 1) t.singletons++;
        });
        const singles = counts.filter((c) => c === 1).length;
        if (counts[real] === 1) t.realFirst += 1 / singles;
        const wired = multiplicities(members.map(structureOf));
        const wSingles = wired.filter((c) => c === 1).length;
        if (wired[real] === 1) t.wiringFirst += 1 / wSingles;
        const wMost = Math.max(...wired);
        if (wired[real] === wMost) t.wiringMost += 1 / wired.filter((c) => c === wMost).length;
        const most = Math.max(...counts);
        if (counts[real] === most) t.realMost += 1 / counts.filter((c) => c === most).length;
        t.designGuessed += guessed(archs, real);
        t.wiringGuessed += guessed(members.map(structureOf), real);
      }
    });
    const share = (x: number, n: number): number => Math.round((1000 * x) / Math.max(1, n)) / 1000;
    report.push({
      model: name,
      groups: t.groups,
      architectureCopies: share(t.copies, t.sentinels),
      sameWiring: share(t.wiring, t.sentinels),
      designsPerGroup: share(t.designs, t.groups),
      sentinelSingletons: share(t.singletons, t.sentinels),
      realFirstBySingleton: share(t.realFirst, t.groups),
      realFirstByMostRepeated: share(t.realMost, t.groups),
      wiringFirstBySingleton: share(t.wiringFirst, t.groups),
      wiringFirstByMostRepeated: share(t.wiringMost, t.groups),
      realDesignGuessed: share(t.designGuessed, t.groups),
      realWiringGuessed: share(t.wiringGuessed, t.groups),
    });
  }
  process.stdout.write(
    `${JSON.stringify({ attack: 'architecture copies and multiplicity', bundles: Number(bArg), k: Number(kArg), chance: 1 / (Number(kArg) + 1), models: report }, null, 2)}\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
