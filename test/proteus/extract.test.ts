import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';
import { extractParts, maxRelativeError, partitionModel, randomFeeds, runParts } from '../../src/proteus/index.js';
import { runPlain, smallZoo } from './configs.js';

const zoo = smallZoo();

test('every extracted subgraph of every zoo model loads and runs in onnxruntime; chained they equal the model', async () => {
  for (const [name, m] of zoo) {
    const { models, wiring } = extractParts(m, partitionModel(m, { size: 4, seed: 4 }));
    assert.ok(models.length > 1, `${name} is split`);
    const feeds = randomFeeds(m, { batch: 2, seed: 1 });
    const ref = await runPlain(m, feeds);
    // runParts opens one ORT session per subgraph: any invalid subgraph throws here.
    const got = await runParts(models, wiring, feeds);
    assert.ok(maxRelativeError(got, ref) <= 1e-6, `${name}: chained subgraphs differ by ${maxRelativeError(got, ref)}`);
  }
});

test('subgraphs are standalone models: own initializers only, typed boundaries with symbolic batch, opset copied', () => {
  for (const [name, m] of zoo) {
    const { models, wiring } = extractParts(m, partitionModel(m, { size: 8, seed: 2 }));
    models.forEach((p, i) => {
      const g = p.graph;
      const used = new Set(g.nodes.flatMap((n) => n.inputs));
      for (const k of g.initializers.keys()) assert.ok(used.has(k), `${name} part ${i}: unused initializer ${k}`);
      const defined = new Set([...g.inputs.map((v) => v.name), ...g.initializers.keys(), ...g.nodes.flatMap((n) => n.outputs)]);
      for (const t of used) if (t) assert.ok(defined.has(t), `${name} part ${i}: '${t}' undefined`);
      for (const v of [...g.inputs, ...g.outputs]) {
        assert.ok(v.shape, `${name} part ${i}: '${v.name}' has a shape`);
        // Every activation starts with the batch dimension, kept symbolic.
        assert.equal(v.shape![0], 'batch', `${name} part ${i}: '${v.name}' ${JSON.stringify(v.shape)}`);
      }
      assert.deepEqual(p.opsetImports, m.opsetImports);
      assert.deepEqual(
        g.inputs.map((v) => v.name),
        wiring.parts[i]!.inputs,
      );
      assert.deepEqual(
        g.outputs.map((v) => v.name),
        wiring.parts[i]!.outputs,
      );
      // The proto writer and reader accept it unchanged.
      assert.equal(decodeModel(encodeModel(p), 'part').graph.nodes.length, g.nodes.length);
    });
    assert.deepEqual(JSON.parse(JSON.stringify(wiring)), wiring, `${name}: wiring is plain JSON`);
  }
});

test('a partition that misses or repeats a node is rejected', () => {
  const m = zoo.find(([n]) => n === 'lenet5')![1];
  const p = partitionModel(m, { size: 4, seed: 1 });
  assert.throws(() => extractParts(m, { ...p, parts: p.parts.slice(1) }), /is in no subgraph/);
  assert.throws(() => extractParts(m, { ...p, parts: [...p.parts, [0]] }), /in two subgraphs/);
});
