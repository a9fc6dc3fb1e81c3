import assert from 'node:assert/strict';
import { test } from 'node:test';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { CANONICAL_OPSET, canonicalize, ModelProblems, validateModel } from '../../src/onnx/canonical.js';
import { floatTensor, int64Tensor, type Model, sizeOf } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';

const w = (dims: number[], s = 0.1) =>
  floatTensor(
    dims,
    Array.from({ length: sizeOf(dims) }, (_, i) => Math.sin(i * 1.7) * s),
  );

/** A torch-style export at opset 11: Constant-fed Pad, Identity-of-initializer weight, Shape→Gather→Concat→Reshape. */
function torchStyle(opset = 11): Model {
  const b = new GraphBuilder('torchy', opset);
  const x = b.input('x', 'float32', [2, 3, 6, 6]);
  const wInit = b.init('w', w([4, 3, 3, 3]));
  const wAlias = b.op('Identity', [wInit]);
  let h =
    opset < 11
      ? b.op('Pad', [x], { pads: [0, 0, 1, 1, 0, 0, 1, 1], value: float(0.25) })
      : b.op('Pad', [x, b.op('Constant', [], { value: int64Tensor([8], [0, 0, 1, 1, 0, 0, 1, 1]) }), b.op('Constant', [], { value: floatTensor([], [0.25]) })]);
  h = b.op('Conv', [h, wAlias], { kernel_shape: [3, 3] });
  h = b.op('Max', [h, b.op('Constant', [], { value: floatTensor([], [0]) }), b.op('Constant', [], { value: floatTensor([], [-1]) })]);
  const shape = b.op('Shape', [h]);
  const n = b.op('Gather', [shape, b.op('Constant', [], { value: int64Tensor([], [0]) })], { axis: 0 });
  const nn = b.op('Unsqueeze', [n], { axes: [0] });
  const target = b.op('Concat', [nn, b.op('Constant', [], { value: int64Tensor([1], [-1]) })], { axis: 0 });
  h = b.op('Reshape', [h, target]);
  h = b.op('Gemm', [h, b.init('fc', w([5, 144])), b.init('fcb', w([5]))], { transB: 1 });
  h =
    opset < 11
      ? b.op('Clip', [h], { min: float(-0.05), max: float(0.05) })
      : b.op('Clip', [h, b.op('Constant', [], { value: floatTensor([], [-0.05]) }), b.op('Constant', [], { value: floatTensor([], [0.05]) })]);
  b.output(h, 'float32', [2, 5]);
  return b.build();
}

test('canonical form: constants folded, shape subgraph folded, opset 18 forms, same numbers as before in onnxruntime', async () => {
  const m = torchStyle(10);
  const c = canonicalize(m);
  const ops = c.model.graph.nodes.map((n) => n.opType);
  assert.deepEqual(ops, ['Pad', 'Conv', 'Max', 'Max', 'Reshape', 'Gemm', 'Clip']);
  assert.equal(c.originalOpset, 10);
  assert.equal(c.model.opsetImports[0]!.version, CANONICAL_OPSET);
  const clip = c.model.graph.nodes.at(-1)!;
  assert.equal(clip.inputs.length, 3, 'Clip bounds moved to inputs');
  assert.ok(c.model.graph.initializers.get(clip.inputs[2]!));
  const reshape = c.model.graph.nodes[4]!;
  assert.deepEqual(Array.from(c.model.graph.initializers.get(reshape.inputs[1]!)!.data as BigInt64Array, Number), [2, -1]);
  // The input model is untouched.
  assert.equal(m.graph.nodes.filter((n) => n.opType === 'Constant').length, 4);
  const x = floatTensor(
    [2, 3, 6, 6],
    Array.from({ length: 216 }, (_, i) => Math.cos(i)),
  );
  const want = await runOrt(m, { x });
  const got = await runOrt(c.model, { x });
  const k = Object.keys(want)[0]!;
  assert.deepEqual(Array.from(got[k]!.data as Float32Array), Array.from(want[k]!.data as Float32Array));
});

test('symbolic batch: the shape subgraph stays, the dims are reported', () => {
  const m = torchStyle();
  m.graph.inputs[0]!.shape = ['N', 3, 6, 6];
  const c = canonicalize(m);
  assert.deepEqual(c.symbolicDims, ['N']);
  assert.ok(
    c.model.graph.nodes.some((n) => n.opType === 'Shape'),
    'a Shape of a symbolic dim must not be folded',
  );
});

test('validation lists every problem at once, with node names', () => {
  const b = new GraphBuilder('bad');
  const x = b.input('x', 'float32', [1, 3, 8, 8]);
  const bad = floatTensor([4, 3, 3, 3], new Array(108).fill(0));
  (bad.data as Float32Array)[5] = NaN;
  let h = b.op('Conv', [x, b.init('w', bad)], { kernel_shape: [5, 5] }, { name: 'conv0' });
  h = b.op('FancyOp', [h], {}, { name: 'fancy' });
  h = b.op('Relu', ['nowhere'], {}, { name: 'dangling' });
  b.output(h, 'float32');
  b.output('never', 'float32');
  const m = b.build();
  const problems = validateModel(m, { ops: ['Conv', 'Relu'] });
  const text = problems.map((p) => `${p.node}|${p.op}|${p.reason}`).join('\n');
  assert.match(text, /conv0\|Conv\|kernel_shape \[5,5\] contradicts the weight shape \[4,3,3,3\]/);
  assert.match(text, /conv0\|Conv\|initializer 'w' holds 1 non-finite value/);
  assert.match(text, /fancy\|FancyOp\|unsupported op/);
  assert.match(text, /dangling\|Relu\|input 'nowhere' is not/);
  assert.match(text, /never\|\|graph output is never produced/);
  assert.throws(
    () => canonicalize(m, { ops: ['Conv', 'Relu'], source: 'bad.onnx' }),
    (e: Error) => e instanceof ModelProblems && /^bad\.onnx: \d+ problems: /.test(e.message) && !e.message.includes('\n'),
  );
});

test('a cycle and a graph without outputs are problems', () => {
  const b = new GraphBuilder('cyc');
  const x = b.input('x', 'float32', [1, 4]);
  b.op('Add', [x, 'q'], {}, { name: 'p', output: 'p' });
  b.op('Relu', ['p'], {}, { name: 'q', output: 'q' });
  const m = b.build();
  const reasons = validateModel(m).map((p) => `${p.node}: ${p.reason}`);
  assert.ok(reasons.includes('p: is on a cycle (its inputs depend on its own output)'));
  assert.ok(reasons.includes(': the graph has no outputs'));
});
