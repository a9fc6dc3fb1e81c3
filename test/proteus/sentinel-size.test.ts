import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildZoo } from '../../src/onnx/zoo/index.js';
import { corpusStats, extractParts, generateSentinels, partitionModel, topologyOf } from '../../src/proteus/index.js';

test('ResNet-18 pieces cut inside residual blocks get sentinels smaller than themselves when the draws say below', () => {
  const stats = corpusStats();
  const m = buildZoo('resnet18', { input: '3x32x32' });
  let below = 0;
  let n = 0;
  for (const seed of [1, 3]) {
    const { models } = extractParts(m, partitionModel(m, { size: 16, seed }));
    // Pieces that start with a residual join of two inputs and hold a second join: their sentinels
    // can be smaller and stay joined. Whole learned blocks never made one smaller than the real piece.
    const pieces = models.filter((p) => p.graph.inputs.length === 2 && topologyOf(p).joins >= 2);
    assert.ok(pieces.length >= 2, `only ${pieces.length} such pieces`);
    for (const [i, real] of pieces.entries()) {
      const nodes = real.graph.nodes.length;
      // The real piece's place one standard deviation up: 84 % of the sentinels are drawn below it,
      // with node targets 0-30 % under the real count (a place far up asks for much smaller
      // sentinels, which whole blocks could already build).
      for (const f of generateSentinels(real, 6, { stats, seed: 10 * seed + i, position: 1 })) {
        const fn = f.graph.nodes.length;
        assert.ok(topologyOf(f).joins > 0, `seed ${seed} piece ${i}: a joinless sentinel`);
        if (fn < nodes) below++;
        n++;
      }
    }
  }
  // Old generator (whole blocks only): 7 of 30; now 12 (the rest tie: the group's realised place
  // follows the drawn one, and ties count half).
  assert.ok(below >= n / 3, `only ${below} of ${n} sentinels (84 % drawn below) have fewer nodes than their real piece`);
});
