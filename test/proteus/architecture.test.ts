/**
 * What sentinels show of the real piece's architecture: `architectureOf` (wiring and every weight's
 * dims), the count of sentinels with the real architecture that `generateSentinels` and `obfuscate`
 * report, and `multiplicities` (the battery's architecture-multiplicity statistic).
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildZoo } from '../../src/onnx/zoo/index.js';
import { architectureOf, corpusStats, generateSentinels, multiplicities, obfuscate } from '../../src/proteus/index.js';

test('multiplicities: how many entries share each key', () => {
  assert.deepEqual(multiplicities(['a', 'b', 'a', 'c', 'a']), [3, 1, 3, 1, 3]);
  assert.deepEqual(multiplicities([]), []);
});

test('architectureOf: wiring and weight dims; renaming changes nothing, a width does', () => {
  const m = buildZoo('lenet5', {});
  const renamed = { ...m, graph: { ...m.graph, nodes: m.graph.nodes.map((n, i) => ({ ...n, name: `x${i}` })) } };
  assert.equal(architectureOf(renamed), architectureOf(m));
  assert.notEqual(architectureOf(buildZoo('resnet20', {})), architectureOf(buildZoo('resnet20', { width: 2 })));
});

test('generateSentinels and obfuscate report the sentinels that have their real piece architecture', async () => {
  const stats = corpusStats();
  const real = buildZoo('fmnist-cnn', {});
  let told = -1;
  const sentinels = generateSentinels(real, 20, { stats, seed: 7, onCopies: (n) => (told = n) });
  assert.equal(told, sentinels.filter((s) => architectureOf(s) === architectureOf(real)).length);
  const dir = mkdtempSync(join(tmpdir(), 'privml-arch-'));
  try {
    const res = await obfuscate(real, { k: 8, stats, outDir: join(dir, 'b'), reference: false, threads: 1 });
    assert.ok(res.architectureCopies >= 0 && res.architectureCopies <= 8);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
