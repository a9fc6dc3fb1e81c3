/**
 * Sentinels hide the real piece's architecture: none has it (wiring and every weight's dims), and a
 * group's sentinels repeat each other's designs as little as the generator allows (the real piece
 * is always a singleton, so repeated decoys single it out: `architecture multiplicity`).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildZoo } from '../../src/onnx/zoo/index.js';
import { architectureOf, corpusStats, extractParts, generateSentinels, multiplicities, partitionModel } from '../../src/proteus/index.js';

test('multiplicities: how many entries share each key', () => {
  assert.deepEqual(multiplicities(['a', 'b', 'a', 'c', 'a']), [3, 1, 3, 1, 3]);
  assert.deepEqual(multiplicities([]), []);
});

test('no sentinel has its real piece architecture (fmnist-cnn whole, resnet20 and bert-base pieces)', () => {
  const stats = corpusStats();
  const pieces = [buildZoo('fmnist-cnn', {})];
  for (const [name, opts] of [
    ['resnet20', {}],
    ['bert-base', { layers: 2, hidden: 64, heads: 2, seq: 16, vocab: 100 }],
  ] as const) {
    const m = buildZoo(name, opts);
    pieces.push(...extractParts(m, partitionModel(m, { size: 16, seed: 2 })).models.slice(0, 2));
  }
  for (const [i, real] of pieces.entries()) {
    const arch = architectureOf(real);
    const sentinels = generateSentinels(real, 20, { stats, seed: 7 + i });
    // The generator of 309ce53 gave these five pieces 5, 10, 0, 0 and 2 copies in 20, and 2-5 designs.
    assert.equal(sentinels.filter((s) => architectureOf(s) === arch).length, 0, `piece ${i} (${real.graph.name})`);
    const counts = multiplicities(sentinels.map(architectureOf));
    assert.ok(new Set(sentinels.map(architectureOf)).size >= 3, `piece ${i}: ${Math.max(...counts)} repeats of one design`);
  }
});
