import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphBuilder } from '../../src/onnx/builder.js';
import type { Graph, Model } from '../../src/onnx/ir.js';
import { floatTensor, ModelError } from '../../src/onnx/ir.js';
import type { Partition } from '../../src/proteus/index.js';
import { balanceScore, findAtoms, isQuotientAcyclic, nodeGraph, Prng, partitionModel } from '../../src/proteus/index.js';
import { smallZoo } from './configs.js';

const zoo = smallZoo();

/** Every node in exactly one part; every part weakly connected; every atom inside one part; quotient a DAG. */
function checkPartition(g: Graph, p: Partition): void {
  const ng = nodeGraph(g);
  const partOf = new Array<number>(ng.n).fill(-1);
  p.parts.forEach((part, pi) =>
    part.forEach((v) => {
      assert.equal(partOf[v], -1, `node ${v} in two parts`);
      partOf[v] = pi;
    }),
  );
  assert.ok(
    partOf.every((x) => x >= 0),
    'every node is in a part',
  );
  for (const atom of p.atoms) assert.equal(new Set(atom.map((v) => partOf[v])).size, 1, `atom ${atom} is split`);
  for (const part of p.parts) {
    const inPart = new Set(part);
    const seen = new Set([part[0]!]);
    const stack = [part[0]!];
    while (stack.length) {
      const v = stack.pop()!;
      for (const w of [...ng.succ[v]!, ...ng.pred[v]!]) if (inPart.has(w) && !seen.has(w)) seen.add(w), stack.push(w);
    }
    assert.equal(seen.size, part.length, `part ${part} is not connected`);
  }
  assert.ok(isQuotientAcyclic(ng, p.parts), 'quotient graph of parts is acyclic');
  // Parts come in topological order: no edge goes from a later part to an earlier one.
  for (let u = 0; u < ng.n; u++) for (const v of ng.succ[u]!) assert.ok(partOf[u]! <= partOf[v]!, 'parts are listed in topological order');
}

/** A random DAG of elementwise ops (plus MatMul+Add+Relu atoms) over [batch, 4] values. */
function randomDag(seed: number, n: number): Model {
  const rng = new Prng(seed);
  const b = new GraphBuilder(`dag${seed}`);
  const vals = [b.input('x', 'float32', ['batch', 4]), b.input('y', 'float32', ['batch', 4])];
  const used = new Set<string>();
  const pick = (): string => {
    // Prefer recent values so the DAG is deep, but reach back sometimes for long skip edges.
    const v = rng.next() < 0.7 ? vals[vals.length - 1 - rng.int(Math.min(4, vals.length))]! : vals[rng.int(vals.length)]!;
    used.add(v);
    return v;
  };
  for (let i = 0; i < n; i++) {
    const r = rng.int(6);
    if (r === 0) vals.push(b.op('Relu', [pick()]));
    else if (r === 1) vals.push(b.op('Sigmoid', [pick()]));
    else if (r === 2) vals.push(b.op('Add', [pick(), pick()]));
    else if (r === 3) vals.push(b.op('Mul', [pick(), pick()]));
    else if (r === 4) vals.push(b.op('Sub', [pick(), pick()]));
    else {
      const w = b.init(
        'w',
        floatTensor(
          [4, 4],
          Array.from({ length: 16 }, () => rng.normal() * 0.5),
        ),
      );
      const bias = b.init('b', floatTensor([4], [0.1, -0.1, 0.2, 0]));
      vals.push(b.op('Relu', [b.op('Add', [b.op('MatMul', [pick(), w]), bias])]));
    }
  }
  for (const v of vals.slice(2)) if (!used.has(v)) b.output(v, 'float32', ['batch', 4]);
  return b.build();
}

test('partitions of every zoo model: exact cover, connected parts, atoms whole, acyclic quotient', () => {
  for (const [name, m] of zoo) {
    for (const size of [3, 8, 16]) {
      const p = partitionModel(m, { size, seed: 11 });
      assert.doesNotThrow(() => checkPartition(m.graph, p), `${name} size ${size}`);
      checkPartition(m.graph, p);
    }
  }
});

test('random DAGs with skip edges: every partition is a valid acyclic cover, for many seeds and sizes', () => {
  for (let s = 0; s < 12; s++) {
    const m = randomDag(100 + s, 40);
    for (const size of [2, 3, 5, 9]) checkPartition(m.graph, partitionModel(m, { size, seed: s, tries: 3 }));
  }
});

test('contraction never merges across a bypass: A→B→D with A→D cannot put A and D together without B', () => {
  const b = new GraphBuilder('bypass');
  const x = b.input('x', 'float32', [4]);
  const a = b.op('Relu', [x]); // node 0
  const bb = b.op('Sigmoid', [a]); // node 1
  const d = b.op('Add', [a, bb]); // node 2
  b.output(d, 'float32', [4]);
  const m = b.build();
  const ng = nodeGraph(m.graph);
  // The checker itself sees the cycle {A, D} ⇄ {B}.
  assert.equal(isQuotientAcyclic(ng, [[0, 2], [1]]), false);
  assert.equal(isQuotientAcyclic(ng, [[0, 1], [2]]), true);
  for (let seed = 0; seed < 40; seed++) {
    const p = partitionModel(m, { size: 2, seed, tries: 1 });
    assert.ok(!p.parts.some((part) => part.length === 2 && part.includes(0) && part.includes(2)), `seed ${seed} merged A and D`);
    assert.ok(isQuotientAcyclic(ng, p.parts));
  }
});

test('atoms group the fusion patterns of the zoo', () => {
  for (const [name, m] of zoo) {
    const g = m.graph;
    const atoms = findAtoms(g);
    const atomOf = new Map<number, number>();
    atoms.forEach((a, ai) => a.forEach((v) => atomOf.set(v, ai)));
    const ng = nodeGraph(g);
    const prod = (t: string): number => ng.producer.get(t)!;
    const same = (u: number, v: number, why: string): void =>
      assert.equal(atomOf.get(u), atomOf.get(v), `${name}: ${why} (${g.nodes[u]!.name}, ${g.nodes[v]!.name})`);
    g.nodes.forEach((n, i) => {
      if (n.opType === 'BatchNormalization') same(i, prod(n.inputs[0]!), 'BN with its Conv');
      if (n.opType === 'Relu' || n.opType === 'Clip') {
        const p = prod(n.inputs[0]!);
        if (['Conv', 'BatchNormalization', 'Gemm'].includes(g.nodes[p]!.opType)) same(i, p, 'activation with its Conv/BN/Gemm');
      }
      if (n.opType === 'Erf') {
        const div = prod(n.inputs[0]!);
        same(i, div, 'Erf with its Div');
        same(i, prod(g.nodes[div]!.inputs[0]!), 'Gelu with its bias Add');
      }
      if (n.opType === 'Softmax') {
        let p = prod(n.inputs[0]!);
        same(i, p, 'Softmax with its scale/mask');
        while (g.nodes[p]!.opType !== 'MatMul') p = prod(g.nodes[p]!.inputs[0]!);
        same(i, p, 'Softmax with the scores MatMul');
        same(i, ng.consumers.get(n.outputs[0]!)![0]!, 'Softmax with the context MatMul');
      }
      if (n.opType === 'LayerNormalization' && g.nodes[prod(n.inputs[0]!)]!.opType === 'Add' && !g.initializers.has(g.nodes[prod(n.inputs[0]!)]!.inputs[1]!)) {
        same(i, prod(n.inputs[0]!), 'LayerNorm with its residual Add');
      }
      if (n.opType === 'MatMul' && !g.initializers.has(n.inputs[0]!)) {
        const c = ng.consumers.get(n.outputs[0]!) ?? [];
        if (c.length === 1 && g.nodes[c[0]!]!.opType === 'Add' && g.initializers.has(g.nodes[c[0]!]!.inputs[1]!)) same(i, c[0]!, 'MatMul with its bias');
      }
    });
  }
});

test('sizes are balanced: parts stay within 1.5× the target unless a single atom is bigger', () => {
  for (const [name, m] of zoo) {
    const p = partitionModel(m, { size: 8, seed: 5 });
    const atomSets = new Set(p.atoms.map((a) => a.join(',')));
    for (const part of p.parts) {
      assert.ok(part.length <= 12 || atomSets.has(part.join(',')), `${name}: part of ${part.length} nodes`);
    }
    // Fragments are rare: at most a quarter of the parts hold under a quarter of the target.
    const small = p.parts.filter((x) => x.length < 2).length;
    assert.ok(small <= Math.max(1, p.parts.length / 4), `${name}: ${small} tiny parts of ${p.parts.length}`);
  }
  // A plain chain of 160 ops splits into parts of 8..24 around 16.
  const b = new GraphBuilder('chain');
  let x = b.input('x', 'float32', [4]);
  for (let i = 0; i < 160; i++) x = b.op(i % 2 ? 'Relu' : 'Sigmoid', [x]);
  b.output(x, 'float32', [4]);
  const p = partitionModel(b.build(), { size: 16, seed: 3 });
  assert.ok(
    p.parts.every((q) => q.length >= 8 && q.length <= 24),
    `chain parts ${p.parts.map((q) => q.length)}`,
  );
  assert.ok(p.parts.length >= 9 && p.parts.length <= 14, `${p.parts.length} parts`);
});

test('more tries never give a less balanced partition (the first try is the same stream)', () => {
  for (const [name, m] of zoo) {
    const one = partitionModel(m, { size: 6, seed: 21, tries: 1 });
    const many = partitionModel(m, { size: 6, seed: 21, tries: 8 });
    assert.ok(balanceScore(many.parts, 6) <= balanceScore(one.parts, 6), name);
  }
});

test('seeded partitions are reproducible; unseeded ones differ; result is plain JSON', () => {
  const m = zoo.find(([n]) => n === 'resnet50')![1];
  const a = partitionModel(m, { seed: 9 });
  assert.deepEqual(partitionModel(m, { seed: 9 }), a);
  assert.deepEqual(JSON.parse(JSON.stringify(a)), a);
  const seeds = [1, 2, 3, 4].map((s) => JSON.stringify(partitionModel(m, { seed: s }).parts));
  assert.ok(new Set(seeds).size > 1, 'different seeds give different partitions');
  assert.notDeepEqual(partitionModel(m).parts, partitionModel(m).parts);
});

test('bad input: control flow, bad options, undefined inputs are ModelErrors', () => {
  const b = new GraphBuilder('cf');
  const x = b.input('x', 'float32', [1]);
  const body = new GraphBuilder('body').graph();
  b.output(b.op('If', [x], { then_branch: { kind: 'graph', value: body }, else_branch: { kind: 'graph', value: body } }), 'float32', [1]);
  assert.throws(
    () => partitionModel(b.build()),
    (e: unknown) => e instanceof ModelError && /control flow/.test(e.message),
  );
  const m = zoo[0]![1];
  assert.throws(() => partitionModel(m, { size: 0 }), ModelError);
  assert.throws(() => partitionModel(m, { tries: 0 }), ModelError);
  const bad = new GraphBuilder('dangling');
  bad.input('x', 'float32', [1]);
  bad.output(bad.op('Relu', ['nope']), 'float32', [1]);
  assert.throws(() => partitionModel(bad.build()), /input 'nope' is not defined/);
});
