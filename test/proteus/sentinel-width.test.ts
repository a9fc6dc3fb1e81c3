/**
 * Internal width changes of sentinels (sentinel-width.ts): where a width can change without touching
 * the interface, that the changed graph is valid and runs in onnxruntime, and that a group's
 * sentinels stop repeating designs (`SentinelOptions.designs`).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Model } from '../../src/onnx/ir.js';
import { sizeOf } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';
import { buildZoo } from '../../src/onnx/zoo/index.js';
import { architectureOf, corpusStats, extractParts, generateSentinels, multiplicities, partitionModel, randomFeeds } from '../../src/proteus/index.js';
import { interfaceHolds } from '../../src/proteus/sentinel.js';
import { producedWidths, setWidth, widthChoices, widthSites } from '../../src/proteus/sentinel-width.js';

/** The model's subgraphs as `obfuscate` cuts them. */
function piecesOf(m: Model): Model[] {
  return extractParts(m, partitionModel(m, { seed: 1 })).models;
}

/** A copy whose weights are fresh arrays of their (possibly changed) dims, so it can run. */
function refilled(m: Model): Model {
  const inits = new Map(
    [...m.graph.initializers].map(([k, t]) => [
      k,
      t.dtype === 'float32' && t.data.length !== sizeOf(t.dims) ? { ...t, data: new Float32Array(sizeOf(t.dims)).fill(0.01) } : t,
    ]),
  );
  return { ...m, graph: { ...m.graph, initializers: inits } };
}

test('widthSites: conv chains, depthwise chains and FFN widths change; residual-joined widths do not', async () => {
  for (const name of ['resnet20', 'mobilenetv2', 'bert-base']) {
    let found = 0;
    for (const p of piecesOf(buildZoo(name, {})).slice(0, 12)) {
      const convs = p.graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'MatMul').length;
      const sites = widthSites(p);
      assert.ok(sites.length < Math.max(1, convs), `${name}: every product was a site (the residual widths must be pinned)`);
      for (const s of sites) {
        const before = architectureOf(p);
        const choices = widthChoices(s.width, producedWidths(p));
        assert.ok(choices.length > 0 && !choices.includes(s.width));
        const undo = setWidth(s, choices[0]!);
        assert.notEqual(architectureOf(p), before);
        assert.ok(interfaceHolds(p), `${name}: a width change broke the interface`);
        const run = refilled(p);
        const out = await runOrt(run, randomFeeds(run, { batch: 1 }));
        for (const o of p.graph.outputs) assert.ok(out[o.name], `${name}: output ${o.name} missing`);
        undo();
        assert.equal(architectureOf(p), before);
        found++;
      }
    }
    assert.ok(found > 0, `${name}: no width site found`);
  }
});

test('widthChoices: halves, doubles and the piece’s own widths, never the width itself or below 8', () => {
  assert.deepEqual(widthChoices(64, [64, 128]), [32, 128]);
  assert.deepEqual(widthChoices(16, [16]), [8, 32]);
  assert.deepEqual(widthChoices(8, [8]), [16]);
  assert.deepEqual(widthChoices(576, [96, 160, 576, 960]), [160, 288, 960, 1152]);
});

test('a group of sentinels avoids the real design and repeats no design more often than the real one (resnet20 pieces)', () => {
  const stats = corpusStats();
  let copies = 0;
  let distinct = 0;
  let groups = 0;
  for (const real of piecesOf(buildZoo('resnet20', {})).slice(0, 3)) {
    const designs = new Map<string, number>();
    const s = generateSentinels(real, 20, { stats, seed: 11 + groups, designs });
    const all = [architectureOf(real), ...s.map(architectureOf)];
    const counts = multiplicities(all);
    assert.deepEqual(designs, new Map(all.map((a, i) => [a, counts[i]!])), 'the caller’s map counts the group’s designs');
    copies += counts[0]! - 1;
    distinct += new Set(all).size;
    groups++;
  }
  // These pieces: 8 designs, 27 % copies. Before widths of their own, resnet20 bundles averaged 4.8
  // designs per group of 21 and 28 % copies (scripts/proteus-architecture.ts).
  assert.ok(distinct / groups >= 7, `designs per group ${distinct / groups}`);
  assert.ok(copies / (20 * groups) <= 0.3, `copies ${copies / (20 * groups)}`);
});
