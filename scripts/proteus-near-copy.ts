/**
 * Cross-member near-copy attack on a Proteus bundle (a statistic the per-member battery does not
 * see): sentinel vectors resampled from a real vector of the same length are jittered copies of
 * it, so the real member's vectors tend to have a near twin somewhere else in the bundle. For each
 * member, the mean over its float vectors (1-D, at least 8 values) of the smallest distance to an
 * equal-length vector of any other member (mean |difference| of the sorted, standardised values);
 * the guess is each group's smallest. Obfuscates zoo models (fresh bundles, corpus configurations)
 * and prints JSON: per model, groups and the share whose real member is its group's smallest
 * (chance 1/(K+1)), and the real member's mean quantile (share of sentinels farther than it).
 *
 *   node --import tsx scripts/proteus-near-copy.ts [models=resnet20,mobilenetv2 (zoo names or .onnx files)] [bundles=2] [K=20]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModel } from '../src/api/model-ref.js';
import type { Model } from '../src/onnx/ir.js';
import { loadModel } from '../src/onnx/proto.js';
import { CORPUS_CONFIGS, corpusStats, obfuscate } from '../src/proteus/index.js';

/** Sorted, standardised float vectors of a member (constants left out: they have no spread). */
function vectors(m: Model): Float32Array[] {
  const out: Float32Array[] = [];
  for (const t of m.graph.initializers.values()) {
    if (t.dtype !== 'float32' || t.dims.length !== 1 || t.data.length < 8) continue;
    const s = Float32Array.from(t.data as Float32Array).sort();
    const mu = s.reduce((p, v) => p + v, 0) / s.length;
    const sd = Math.sqrt(s.reduce((p, v) => p + (v - mu) ** 2, 0) / s.length);
    if (sd > 0) out.push(s.map((v) => (v - mu) / sd));
  }
  return out;
}

/** Per member: mean over its vectors of the distance to the nearest equal-length vector of another member (NaN: no vector). */
function nearCopyScores(members: Float32Array[][]): number[] {
  const byLen = new Map<number, { m: number; v: Float32Array }[]>();
  members.forEach((vs, m) => {
    for (const v of vs) (byLen.get(v.length) ?? byLen.set(v.length, []).get(v.length)!).push({ m, v });
  });
  return members.map((vs, m) => {
    if (!vs.length) return Number.NaN;
    let sum = 0;
    for (const v of vs) {
      let best = Number.POSITIVE_INFINITY;
      for (const o of byLen.get(v.length)!) {
        if (o.m === m) continue;
        let d = 0;
        for (let i = 0; i < v.length; i++) d += Math.abs(v[i]! - o.v[i]!);
        best = Math.min(best, d / v.length);
      }
      sum += best;
    }
    return sum / vs.length;
  });
}

async function main(): Promise<void> {
  const [list = 'resnet20,mobilenetv2', bArg = '2', kArg = '20'] = process.argv.slice(2);
  const stats = corpusStats();
  const report = [];
  for (const name of list.split(',')) {
    let groups = 0;
    let first = 0;
    let quantile = 0;
    for (let b = 0; b < Number(bArg); b++) {
      const cfg = Object.fromEntries(Object.entries(CORPUS_CONFIGS[name] ?? {}).map(([k, v]) => [k, String(v)]));
      // A zoo model gets fresh weights per bundle; an .onnx file is the same model each time.
      const model = name.endsWith('.onnx') ? loadModel(name) : resolveModel(name, { ...cfg, seed: String(b + 11) }).model;
      const dir = mkdtempSync(join(tmpdir(), 'privml-near-copy-'));
      try {
        const r = await obfuscate(model, { k: Number(kArg), stats, outDir: join(dir, 'bundle'), reference: false });
        // The attacker's view: every member file of the bundle, read back from disk.
        const files = r.key.groups.flatMap((g) => g.members);
        const scores = nearCopyScores(files.map((f) => vectors(loadModel(join(dir, 'bundle', f)))));
        const score = new Map(files.map((f, i) => [f, scores[i]!]));
        for (const g of r.key.groups) {
          const real = score.get(g.real)!;
          const others = g.members
            .filter((f) => f !== g.real)
            .map((f) => score.get(f)!)
            .filter((x) => !Number.isNaN(x));
          if (Number.isNaN(real) || !others.length) continue;
          groups++;
          if (others.every((x) => x > real)) first++;
          quantile += others.filter((x) => x > real).length / others.length;
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    report.push({
      model: name,
      groups,
      realFirst: groups ? first / groups : Number.NaN,
      chance: 1 / (Number(kArg) + 1),
      realMeanQuantile: groups ? quantile / groups : Number.NaN,
    });
  }
  process.stdout.write(`${JSON.stringify({ attack: 'near-copy vectors', bundles: Number(bArg), k: Number(kArg), models: report }, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
