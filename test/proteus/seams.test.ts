/**
 * Seam repair (src/proteus/seams.ts): at level 'all' onnxruntime runs CNNs in its blocked NCHWc
 * layout, so each separately optimized subgraph converts back and forth at every cut. After
 * stitching, the recovered model must have no more layout conversions than the whole-graph
 * optimized one, the residual Adds back in their Convs, and the original's outputs.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Model } from '../../src/onnx/ir.js';
import { loadNpy } from '../../src/onnx/npy.js';
import { runOrt } from '../../src/onnx/ort.js';
import { loadModel } from '../../src/onnx/proto.js';
import { buildZoo } from '../../src/onnx/zoo/index.js';
import { corpusStats, maxRelativeError, obfuscate, optimizeBundle, optimizeByParts, optimizeModel, randomFeeds, recover } from '../../src/proteus/index.js';

const NCHWC = 'com.microsoft.nchwc';
const count = (m: Model, op: string, pred: (inputs: string[]) => boolean = () => true): number =>
  m.graph.nodes.filter((n) => n.domain === NCHWC && n.opType === op && pred(n.inputs)).length;

for (const [name, opts] of [
  ['resnet20', {}],
  ['mobilenetv2', { input: '3x64x64', width: 0.5 }],
] as const) {
  test(`level 'all' by parts on ${name}: the stitched model has the whole graph's layout conversions and Sum fusions`, async () => {
    const model = buildZoo(name, opts);
    const whole = await optimizeModel(model, { level: 'all' });
    const res = await optimizeByParts(model, { size: 8, seed: 3, level: 'all' });
    const wholeBlocked = whole.graph.nodes.some((n) => n.domain === NCHWC);
    const seams = res.optimized.reduce((s, m) => s + count(m, 'ReorderInput'), 0);
    if (wholeBlocked) assert.ok(seams > res.optimized.length / 2, `the parts convert layouts at their cuts (${seams} ReorderInput)`);
    for (const op of ['ReorderInput', 'ReorderOutput']) assert.equal(count(res.model, op), count(whole, op), op);
    const withSum = (inputs: string[]): boolean => inputs.length > 3 && inputs[3] !== '';
    assert.equal(count(res.model, 'Conv', withSum), count(whole, 'Conv', withSum), 'Convs with a fused residual Add');
    const feeds = randomFeeds(model, { batch: 2, seed: 5 });
    const err = maxRelativeError(await runOrt(res.model, feeds), await runOrt(model, feeds));
    assert.ok(err < 1e-4, `recovered vs original: ${err}`);
  });
}

const fixture = (name: string): Model => loadModel(join(import.meta.dirname, '..', 'fixtures', 'pytorch', `${name}.onnx`));

test("level 'all' by parts on a PyTorch export whose residual Add broadcasts a pooled branch: left unfused, outputs kept", async () => {
  // Same channel count on both sides of the Add, but [1, 16, 1, 1] against [1, 16, 8, 8]: onnxruntime's
  // blocked Conv refuses such a Sum ("output and sum shape must match"), so the seam must stay an Add.
  const model = fixture('pooledadd_op13');
  const feeds = randomFeeds(model, { seed: 2 });
  const want = await runOrt(model, feeds);
  for (const size of [1, 3]) {
    const res = await optimizeByParts(model, { size, seed: 1, level: 'all' });
    assert.ok(res.partition.parts.length > 1);
    assert.ok(maxRelativeError(await runOrt(res.model, feeds), want) < 1e-5);
  }
});

test("level 'all' by parts on channel Concats (PyTorch SqueezeNet/DenseNet patterns): aligned ones joined blocked, BatchNorm islands blocked, outputs kept", async () => {
  for (const name of ['catbn_op13', 'tinysqueeze_op11']) {
    const model = fixture(name);
    const feeds = randomFeeds(model, { seed: 4 });
    const want = await runOrt(model, feeds);
    const whole = await optimizeModel(model, { level: 'all' });
    for (const [size, seed] of [
      [2, 1],
      [4, 2],
      [6, 3],
    ] as const) {
      const res = await optimizeByParts(model, { size, seed, level: 'all' });
      const g = res.model.graph;
      const producer = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
      const fromReorder = (v: string): boolean => producer.get(v)?.opType === 'ReorderOutput';
      assert.ok(!g.nodes.some((n) => n.opType === 'ReorderInput' && fromReorder(n.inputs[0]!)), `${name}: a reorder pair left`);
      const aligned = (v: string): boolean => {
        const c = producer.get(v)?.attrs.channels;
        return fromReorder(v) && c?.kind === 'int' && c.value % 16 === 0;
      };
      assert.ok(!g.nodes.some((n) => n.opType === 'Concat' && n.inputs.every(aligned)), `${name}: an aligned Concat left in NCHW`);
      // DenseNet's BatchNorm → ReLU after a Concat at a cut: compiled into the blocked layout (islands.ts).
      const bn = (m: Model): number => m.graph.nodes.filter((n) => n.opType === 'BatchNormalization').length;
      assert.equal(bn(res.model), bn(whole), `${name}: a BatchNormalization left in NCHW`);
      assert.ok(maxRelativeError(await runOrt(res.model, feeds), want) < 1e-5, `${name} size ${size}`);
    }
  }
});

test("obfuscate → optimize --level all → recover on the PyTorch Concat/BatchNorm export: PyTorch's output, no NCHW BatchNorm left", async () => {
  const model = fixture('catbn_op13');
  const x = loadNpy(join(import.meta.dirname, '..', 'fixtures', 'pytorch', 'catbn_op13.input.npy'));
  const want = loadNpy(join(import.meta.dirname, '..', 'fixtures', 'pytorch', 'catbn_op13.output.npy'));
  const tmp = mkdtempSync(join(tmpdir(), 'privml-seams-'));
  try {
    const res = await obfuscate(model, { k: 3, size: 3, stats: corpusStats(), outDir: join(tmp, 'b') });
    assert.ok(res.key.groups.length > 1);
    await optimizeBundle(join(tmp, 'b'), join(tmp, 'o'), { level: 'all' });
    const r = await recover(join(tmp, 'o'), res.key, { original: model });
    const got = (await runOrt(r.model, { [model.graph.inputs[0]!.name]: x }))[model.graph.outputs[0]!.name]!;
    assert.ok(maxRelativeError({ y: got }, { y: want }) < 1e-5);
    const bn = (m: Model): number => m.graph.nodes.filter((n) => n.opType === 'BatchNormalization').length;
    assert.equal(bn(r.model), bn(await optimizeModel(model, { level: 'all' })));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
