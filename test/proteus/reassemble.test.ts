import assert from 'node:assert/strict';
import { test } from 'node:test';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import type { Model, Tensor } from '../../src/onnx/ir.js';
import { floatTensor, int64Tensor, ModelError } from '../../src/onnx/ir.js';
import {
  extractParts,
  maxRelativeError,
  optimizeByParts,
  optimizeModel,
  optimizeModels,
  partitionModel,
  randomFeeds,
  reassemble,
} from '../../src/proteus/index.js';
import { opHistogram, runPlain, smallZoo } from './configs.js';

const zoo = smallZoo();

async function reference(m: Model, batch = 2): Promise<[Record<string, Tensor>, Record<string, Tensor>]> {
  const feeds = randomFeeds(m, { batch, seed: 8 });
  return [feeds, await runPlain(m, feeds)];
}

test('reassembled (unoptimized) subgraphs equal the original on every zoo model', async () => {
  for (const [name, m] of zoo) {
    const { models, wiring } = extractParts(m, partitionModel(m, { size: 5, seed: 6 }));
    const r = reassemble(models, wiring);
    assert.deepEqual(
      r.graph.inputs.map((v) => v.name),
      m.graph.inputs.map((v) => v.name),
      name,
    );
    assert.deepEqual(
      r.graph.outputs.map((v) => v.name),
      m.graph.outputs.map((v) => v.name),
      name,
    );
    assert.equal(r.graph.nodes.length, m.graph.nodes.length, name);
    const [feeds, ref] = await reference(m);
    const got = await runPlain(r, feeds);
    assert.ok(maxRelativeError(got, ref) <= 1e-4, `${name}: ${maxRelativeError(got, ref)}`);
  }
});

test('optimized per subgraph (extended) and reassembled: equal outputs and the same fused ops as whole-graph optimization', async () => {
  for (const [name, m] of zoo) {
    const res = await optimizeByParts(m, { size: 16, seed: 3 });
    const [feeds, ref] = await reference(m);
    const got = await runPlain(res.model, feeds);
    assert.ok(maxRelativeError(got, ref) <= 1e-4, `${name}: ${maxRelativeError(got, ref)}`);
    const whole = await optimizeModel(m, { level: 'extended' });
    assert.deepEqual(opHistogram(res.model), opHistogram(whole), `${name}: fusions lost by the partition`);
    if (name === 'resnet50' || name === 'bert-base') {
      // The check is sensitive: a cut that ignores the atoms loses fusions on the same model.
      const naive = await optimizeByParts(m, { size: 4, seed: 3, fusionAware: false });
      assert.notDeepEqual(opHistogram(naive.model), opHistogram(whole), `${name}: naive cut loses nothing?`);
    }
    assert.ok(
      res.model.opsetImports.some((o) => o.domain === 'com.microsoft'),
      `${name}: com.microsoft imported`,
    );
  }
});

test('fusion patterns beyond the zoo survive even one-op parts: decomposed LayerNorm, PyTorch Gelu, FastGelu (Pow), Gemm+Relu, Conv+Mul+Add+Relu', async () => {
  const b = new GraphBuilder('patterns');
  const w = (d: number[]) =>
    floatTensor(
      d,
      Array.from({ length: d.reduce((x, y) => x * y, 1) }, (_, i) => Math.sin(i * 1.7) * 0.3),
    );
  const c = (v: number) => b.init('c', floatTensor([], [v]));
  const x = b.input('x', 'float32', ['batch', 8, 16]);
  const d = b.op('Sub', [x, b.op('ReduceMean', [x], { axes: [-1], keepdims: 1 })]);
  const v = b.op('ReduceMean', [b.op('Pow', [d, c(2)])], { axes: [-1], keepdims: 1 });
  const ln = b.op('Add', [b.op('Mul', [b.op('Div', [d, b.op('Sqrt', [b.op('Add', [v, c(1e-5)])])]), b.init('g', w([16]))]), b.init('be', w([16]))]);
  const h = b.op('Add', [b.op('MatMul', [ln, b.init('w1', w([16, 32]))]), b.init('b1', w([32]))]);
  const ge = b.op('Mul', [b.op('Mul', [h, b.op('Add', [b.op('Erf', [b.op('Div', [h, c(Math.SQRT2)])]), c(1)])]), c(0.5)]);
  const h2 = b.op('Add', [b.op('MatMul', [ge, b.init('w2', w([32, 16]))]), b.init('b2', w([16]))]);
  const inner = b.op('Mul', [b.op('Add', [h2, b.op('Mul', [b.op('Pow', [h2, c(3)]), c(0.044715)])]), c(Math.sqrt(2 / Math.PI))]);
  const gt = b.op('Mul', [b.op('Mul', [h2, c(0.5)]), b.op('Add', [b.op('Tanh', [inner]), c(1)])]);
  const h3 = b.op('Add', [b.op('MatMul', [gt, b.init('w3', w([16, 16]))]), b.init('b3', w([16]))]);
  const y = b.op('LayerNormalization', [b.op('Add', [h3, ln]), b.init('g2', w([16])), b.init('be2', w([16]))], { axis: -1, epsilon: float(1e-5) });
  const flat = b.op('Reshape', [y, b.init('s', int64Tensor([2], [-1, 128]))]);
  b.output(b.op('Relu', [b.op('Add', [b.op('MatMul', [flat, b.init('w4', w([128, 10]))]), b.init('b4', w([10]))])]), 'float32', ['batch', 10]);
  const im = b.input('im', 'float32', ['batch', 3, 8, 8]);
  const cv = b.op('Conv', [im, b.init('k', w([4, 3, 3, 3]))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  b.output(b.op('Relu', [b.op('Add', [b.op('Mul', [cv, b.init('m', w([4, 1, 1]))]), b.init('a', w([4, 1, 1]))])]), 'float32', ['batch', 4, 8, 8]);
  const m = b.build();
  const whole = opHistogram(await optimizeModel(m));
  for (const op of [
    'com.microsoft.FastGelu',
    'com.microsoft.BiasGelu',
    'com.microsoft.SkipLayerNormalization',
    'com.microsoft.FusedGemm',
    'com.microsoft.FusedConv',
    'LayerNormalization',
  ]) {
    assert.ok(whole[op], `whole-graph optimization makes ${op}`);
  }
  for (const seed of [1, 2]) {
    const res = await optimizeByParts(m, { size: 1, seed });
    assert.ok(res.partition.parts.length >= 5);
    assert.deepEqual(opHistogram(res.model), whole);
    const [feeds, ref] = await reference(m);
    assert.ok(maxRelativeError(await runPlain(res.model, feeds), ref) <= 1e-4);
  }
});

test('pass-through and constant-folded subgraph outputs are reconnected with Identity', async () => {
  const b = new GraphBuilder('edge');
  const x = b.input('x', 'float32', ['batch', 4]);
  const y = b.op('Identity', [x]);
  const k = b.op('Relu', [b.init('w', floatTensor([4], [1, -2, 3, -4]))]);
  const z = b.op('Add', [y, k]);
  b.output(y, 'float32', ['batch', 4]);
  b.output(z, 'float32', ['batch', 4]);
  b.output(b.op('Mul', [z, k]), 'float32', ['batch', 4]);
  const m = b.build();
  for (const size of [1, 2, 4]) {
    const res = await optimizeByParts(m, { size, seed: 1 });
    const [feeds, ref] = await reference(m);
    const got = await runPlain(res.model, feeds);
    assert.ok(maxRelativeError(got, ref) === 0, `size ${size}`);
  }
});

test('reassembly is positional: renaming every value inside the subgraphs (as anonymisation will) changes nothing', async () => {
  const m = zoo.find(([n]) => n === 'bert-base')![1];
  const { models, wiring } = extractParts(m, partitionModel(m, { size: 8, seed: 2 }));
  const optimized = await optimizeModels(models);
  const renamed = optimized.map((p, i) => {
    const map = new Map<string, string>();
    const r = (t: string): string => (t ? (map.get(t) ?? (map.set(t, `t${i}_${map.size}`), map.get(t)!)) : t);
    const g = p.graph;
    return {
      ...p,
      graph: {
        ...g,
        nodes: g.nodes.map((n, k) => ({ ...n, name: `n${k}`, inputs: n.inputs.map(r), outputs: n.outputs.map(r) })),
        inputs: g.inputs.map((v) => ({ ...v, name: r(v.name) })),
        outputs: g.outputs.map((v) => ({ ...v, name: r(v.name) })),
        initializers: new Map([...g.initializers].map(([k, t]) => [r(k), t])),
        valueInfo: [],
      },
    };
  });
  const rm = reassemble(renamed, JSON.parse(JSON.stringify(wiring)));
  const [feeds, ref] = await reference(m);
  assert.ok(maxRelativeError(await runPlain(rm, feeds), ref) <= 1e-4);
});

test('shared weights are stored once; mismatched subgraphs are ModelErrors', () => {
  const m = zoo.find(([n]) => n === 'resnet20')![1];
  const { models, wiring } = extractParts(m, partitionModel(m, { size: 4, seed: 2 }));
  const r = reassemble(models, wiring);
  // Shared constants (Clip bounds, shape vectors) are de-duplicated by content.
  assert.ok(r.graph.initializers.size <= m.graph.initializers.size);
  assert.throws(() => reassemble(models.slice(1), wiring), ModelError);
  const wrongCount = { ...wiring, parts: wiring.parts.map((p, i) => (i === 1 ? { ...p, inputs: [...p.inputs, 'extra'] } : p)) };
  assert.throws(() => reassemble(models, wrongCount), /wiring expects/);
  const dangling = { ...wiring, parts: wiring.parts.map((p, i) => (i === 2 ? { ...p, inputs: p.inputs.map(() => 'ghost') } : p)) };
  assert.throws(() => reassemble(models, dangling), /ghost/);
});
