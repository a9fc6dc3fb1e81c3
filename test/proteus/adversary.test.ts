import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { buildZoo } from '../../src/onnx/zoo/index.js';
import type { Example } from '../../src/proteus/index.js';
import {
  attack,
  auc,
  aucChanceP,
  buildExamples,
  corpusStats,
  features,
  groupRelative,
  Logistic,
  log10SearchSpace,
  partitionModel,
  proteusReportHtml,
  specificityAt,
  VALUE_FEATURES,
} from '../../src/proteus/index.js';
import { Prng } from '../../src/proteus/rng.js';
import { SMALL } from './configs.js';

test('metrics: AUC, specificity at 99% sensitivity, search space', () => {
  assert.equal(auc([0.9, 0.8, 0.1, 0.2], [true, true, false, false]), 1);
  assert.equal(auc([0.1, 0.2, 0.9, 0.8], [true, true, false, false]), 0);
  assert.equal(auc([0.5, 0.5], [true, false]), 0.5);
  assert.equal(specificityAt([0.9, 0.8, 0.1, 0.85], [true, true, false, false]), 0.5);
  assert.ok(Math.abs(log10SearchSpace(0, 20, 25) - 25 * Math.log10(21)) < 1e-12);
  assert.equal(log10SearchSpace(1, 20, 25), 0);
});

test('aucChanceP: the exact chance distribution of the AUC (Mann–Whitney), and its normal approximation', () => {
  // 1 real among 21: ranked first with probability 1/21.
  assert.ok(Math.abs(aucChanceP(1, 1, 20) - 1 / 21) < 1e-12);
  // 2 reals, 2 sentinels: U ∈ {0, 1, 2, 2, 3, 4} over the 6 arrangements, P(U ≥ 3) = 1/3.
  assert.ok(Math.abs(aucChanceP(0.75, 2, 2) - 1 / 3) < 1e-12);
  assert.ok(Math.abs(aucChanceP(0, 3, 7) - 1) < 1e-12);
  // What the per-model target means for a 2-piece model (vgg16 at the corpus size): AUC > 0.60 one time in three.
  assert.ok(Math.abs(aucChanceP(0.6, 2, 40) - 0.3357) < 1e-3);
  // The normal approximation (used past 10^8 steps) agrees with the exact distribution.
  for (const [a, pos, neg] of [
    [0.55, 20, 200],
    [0.6, 5, 100],
    [0.7, 13, 260],
  ] as const) {
    const exact = aucChanceP(a, pos, neg);
    const approx = aucChanceP(a, pos, neg, 0);
    assert.ok(Math.abs(exact - approx) < 0.01, `${a} ${pos}/${neg}: exact ${exact}, normal ${approx}`);
  }
  assert.ok(aucChanceP(0.6, 48, 960) < 0.02 && aucChanceP(0.6, 48, 960) > 0.005);
});

test('logistic regression separates a separable problem and not a random one', () => {
  const rng = new Prng(1);
  const xs = Array.from({ length: 200 }, (_, i) => [rng.normal() + (i % 2 ? 2 : -2), rng.normal()]);
  const ys = xs.map((_, i) => i % 2 === 1);
  const clf = new Logistic().fit(xs, ys);
  assert.ok(
    auc(
      xs.map((x) => clf.score(x)),
      ys,
    ) > 0.97,
  );
  const noise = xs.map(() => [rng.normal(), rng.normal()]);
  const c2 = new Logistic().fit(noise.slice(0, 100), ys.slice(0, 100));
  assert.ok(
    Math.abs(
      auc(
        noise.slice(100).map((x) => c2.score(x)),
        ys.slice(100),
      ) - 0.5,
    ) < 0.2,
  );
});

test('adversary runs leave-one-family-out on a tiny setting and reports per-model numbers', async () => {
  const models = ['lenet5', 'resnet20', 'bert-base'].map((n) => ({ name: n, family: n, model: buildZoo(n, SMALL[n]!) }));
  const { examples, parts } = await buildExamples(models, { k: 3, size: 8, stats: corpusStats(), seed: 3 });
  assert.equal(examples.length, 4 * Object.values(parts).reduce((s, v) => s + v, 0));
  assert.equal(new Set(examples.map((e) => e.x.length)).size, 1);
  const rep = attack(examples, parts, 3, 8);
  assert.ok(rep.auc >= 0 && rep.auc <= 1);
  assert.equal(rep.models.length, 3);
  for (const m of rep.models) {
    assert.ok(m.specificity >= 0 && m.specificity <= 1);
    assert.ok(m.boosted.specificity >= 0 && m.boosted.specificity <= 1 && m.boosted.auc >= 0 && m.boosted.auc <= 1);
    // The search space is the stronger adversary's.
    assert.ok(Math.abs(m.log10SearchSpace - log10SearchSpace(Math.max(m.specificity, m.boosted.specificity), 3, m.subgraphs)) < 1e-9);
    assert.equal(m.battery.length, VALUE_FEATURES.length);
    for (const b of m.battery) assert.ok(b.oracleFirstRate >= 0 && b.oracleFirstRate <= 1, `${m.model} ${b.statistic}`);
  }
  assert.ok(features(models[0]!.model).every(Number.isFinite));
});

test('report: HTML with an SVG partition drawing coloured by subgraph and a table', () => {
  const m = buildZoo('resnet20', {});
  const p = partitionModel(m, { size: 16, seed: 1 });
  const html = proteusReportHtml('t', [{ name: 'resnet20', model: m, partition: p, rows: [['subgraphs', p.parts.length]] }]);
  assert.match(html, /<svg/);
  assert.equal((html.match(/<circle/g) ?? []).length, m.graph.nodes.length);
  assert.equal(new Set(html.match(/hsl\([^)]*\)/g)).size, p.parts.length);
  assert.match(html, /<table>.*subgraphs.*<\/table>/);
});

test('attack CLI: --opt sets zoo sizes and --search-space partitions full-size models with the measured specificity', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'privml-attack-'));
  const examplesFile = join(tmp, 'examples.jsonl');
  const { stdout } = await promisify(execFile)('node', [
    join(import.meta.dirname, '..', '..', 'bin', 'privml.js'),
    'proteus',
    'attack',
    '--models',
    'lenet5,resnet20',
    '-k',
    '2',
    '--size',
    '8',
    '--opt',
    'resnet20:width=8',
    '--search-space',
    'resnet20,lenet5',
    '--opt',
    'lenet5:pool=avg',
    '--min-groups',
    '3',
    '--examples',
    examplesFile,
    '--json',
  ]);
  const rep = JSON.parse(stdout) as {
    specificity: number;
    boosted: { specificity: number };
    models: { model: string; subgraphs: number; groups: number; specificity: number; boosted: { specificity: number } }[];
    searchSpace: {
      model: string;
      subgraphs: number;
      specificity: number;
      specificityFrom: string;
      log10SearchSpace: number;
      log10SearchSpaceNoAdversary: number;
      options: Record<string, string>;
    }[];
  };
  assert.equal(rep.searchSpace.length, 2);
  for (const r of rep.searchSpace) {
    const m = rep.models.find((x) => x.model === r.model)!;
    const zooModel = buildZoo(r.model, r.options);
    assert.equal(r.subgraphs, partitionModel(zooModel, { size: 8, seed: 1 }).parts.length);
    // The stronger learned adversary's specificity: the model's own, else the pooled one.
    const own = Math.max(m.specificity, m.boosted.specificity);
    assert.equal(r.specificity, Number.isFinite(m.specificity) ? own : Math.max(rep.specificity, rep.boosted.specificity));
    assert.ok(Math.abs(r.log10SearchSpace - log10SearchSpace(r.specificity, 2, r.subgraphs)) < 0.051);
    assert.ok(r.log10SearchSpace <= r.log10SearchSpaceNoAdversary);
  }
  assert.deepEqual(rep.searchSpace.find((r) => r.model === 'lenet5')!.options, { pool: 'avg' });
  // --min-groups obfuscates a model again until it has that many groups (lenet5: 2 pieces at size 8, twice).
  const lenet = rep.models.find((m) => m.model === 'lenet5')!;
  assert.deepEqual([lenet.subgraphs, lenet.groups], [2, 4]);
  assert.ok(rep.models.every((m) => m.groups >= 3));
  // --examples: feature names, then one labelled member per line (K + 1 per group).
  const [head, ...rows] = readFileSync(examplesFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  rmSync(tmp, { recursive: true, force: true });
  const groups = rep.models.reduce((a, m) => a + m.groups, 0);
  assert.equal(rows.length, 3 * groups);
  assert.equal(rows.filter((r) => r.real).length, groups);
  assert.ok(rows.every((r) => r.x.length === head.features.length && ['lenet5', 'resnet20'].includes(r.model)));
  assert.equal(head.features[0], 'nodes');
});

test('group-aware adversary finds a real member that only stands out within its group', () => {
  const rng = new Prng(9);
  const examples: Example[] = [];
  let group = 0;
  for (const family of ['a', 'b', 'c']) {
    for (let g = 0; g < 12; g++, group++) {
      const offset = 10 * rng.normal();
      for (let i = 0; i < 6; i++)
        examples.push({ model: family, family, real: i === 0, group, x: [offset + (i === 0 ? 1 : 0) + 0.1 * rng.normal(), rng.normal()] });
    }
  }
  const parts = { a: 12, b: 12, c: 12 };
  const plain = attack(examples, parts, 5, 8);
  const aware = attack(examples, parts, 5, 8, { groupAware: true });
  assert.ok(plain.auc < 0.7, `plain ${plain.auc}`);
  assert.ok(aware.auc > 0.95, `group-aware ${aware.auc}`);
  assert.throws(() => groupRelative([{ model: 'a', family: 'a', real: true, x: [1] }]), /no group ids/);
});
