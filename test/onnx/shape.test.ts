import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import type { Dim, Model } from '../../src/onnx/ir.js';
import { floatTensor, int64Tensor, ModelError, sizeOf } from '../../src/onnx/ir.js';
import { encodeModel } from '../../src/onnx/proto.js';
import { annotateShapes, inferShapes } from '../../src/onnx/shape.js';

const rand = (dims: number[]) =>
  floatTensor(
    dims,
    Array.from({ length: sizeOf(dims) }, (_, i) => Math.sin(i * 1.7)),
  );

/**
 * Run `model` in ORT with every node output exposed as a graph output and check each inferred
 * shape (symbols replaced by `bind`) equals the dims ORT produced.
 */
async function checkAgainstOrt(model: Model, feeds: Record<string, ort.Tensor>, bind: Record<string, number>): Promise<number> {
  const info = inferShapes(model, { strict: true });
  const exposed = structuredClone({ ...model, graph: { ...model.graph, initializers: new Map() } });
  exposed.graph.initializers = model.graph.initializers;
  const declared = new Set(model.graph.outputs.map((o) => o.name));
  for (const n of model.graph.nodes) {
    for (const o of n.outputs) if (o && !declared.has(o)) exposed.graph.outputs.push({ name: o, dtype: info.get(o)!.dtype });
  }
  const sess = await ort.InferenceSession.create(encodeModel(exposed));
  const res = await sess.run(feeds);
  let checked = 0;
  for (const [name, t] of Object.entries(res)) {
    const v = info.get(name);
    assert.ok(v?.shape, `no shape inferred for ${name}`);
    const want = v.shape.map((d: Dim) => (typeof d === 'string' ? bind[d] : d));
    assert.deepEqual(t.dims, want, `shape of ${name}`);
    const ortType: Record<string, string> = { float32: 'float32', int64: 'int64', bool: 'bool', int32: 'int32' };
    assert.equal(t.type, ortType[v.dtype], `dtype of ${name}`);
    checked++;
  }
  return checked;
}

test('CNN shapes match onnxruntime (conv groups/pads/auto_pad, pools, ceil_mode, gemm)', async () => {
  const b = new GraphBuilder('cnn');
  const x = b.input('x', 'float32', ['batch', 3, 17, 15]);
  let h = b.op('Conv', [x, b.init('w1', rand([8, 3, 3, 3])), b.init('b1', rand([8]))], { pads: [1, 1, 1, 1], strides: [2, 2] });
  h = b.op('BatchNormalization', [h, b.init('s', rand([8])), b.init('o', rand([8])), b.init('m', rand([8])), b.init('v', floatTensor([8], Array(8).fill(1)))]);
  h = b.op('Relu', [h]);
  h = b.op('Conv', [h, b.init('wd', rand([8, 8, 3, 2]))], { dilations: [2, 3], pads: [2, 1, 1, 3] });
  const [mp] = b.opMulti('MaxPool', [h], 2, { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 });
  h = b.op('Conv', [mp!, b.init('w2', rand([4, 4, 3, 2]))], { group: 2, auto_pad: 'SAME_UPPER', strides: [2, 1] });
  h = b.op('ConvTranspose', [h, b.init('wt', rand([4, 6, 3, 3]))], { strides: [2, 2], pads: [1, 1, 0, 0], output_padding: [1, 0] });
  h = b.op('AveragePool', [h], { kernel_shape: [2, 3], auto_pad: 'VALID' });
  const side = b.op('GlobalMaxPool', [h]);
  h = b.op('GlobalAveragePool', [h]);
  h = b.op('Add', [h, side]);
  h = b.op('Flatten', [h]);
  h = b.op('Gemm', [h, b.init('fc', rand([5, 6])), b.init('fcb', rand([5]))], { transB: 1, alpha: float(0.5) });
  h = b.op('Softmax', [h], { axis: 1 });
  b.output(h, 'float32');
  const model = b.build();
  const n = await checkAgainstOrt(model, { x: new ort.Tensor('float32', new Float32Array(2 * 3 * 17 * 15), [2, 3, 17, 15]) }, { batch: 2 });
  assert.equal(n, model.graph.nodes.length + 1);
  assert.deepEqual(inferShapes(model).get(h)!.shape, ['batch', 5]);
});

test('tensor-manipulation shapes match onnxruntime, symbolic batch propagates', async () => {
  const b = new GraphBuilder('manip');
  const x = b.input('x', 'float32', ['batch', 4, 6]);
  const cond = b.input('cond', 'bool', [2]);
  // PyTorch-style flatten target: Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]).
  const bdim = b.op('Gather', [b.op('Shape', [x]), b.init('zero', int64Tensor([], [0]))]);
  const target = b.op('Concat', [b.op('Unsqueeze', [bdim, b.init('ax0', int64Tensor([1], [0]))]), b.init('m1', int64Tensor([1], [-1]))], { axis: 0 });
  const flat = b.op('Reshape', [x, target]);
  const r2 = b.op('Reshape', [flat, b.init('shp', int64Tensor([3], [0, 3, -1]))]);
  const t = b.op('Transpose', [r2], { perm: [0, 2, 1] });
  const [s1, s2] = b.opMulti('Split', [t, b.init('sp', int64Tensor([2], [3, 5]))], 2, { axis: 1 });
  const [e1, e2, e3] = b.opMulti('Split', [x], 3, { axis: 2 }, { name: 'split_even' });
  const sl = b.op('Slice', [
    s2!,
    b.init('st', int64Tensor([2], [1, -1])),
    b.init('en', int64Tensor([2], [9, -4])),
    b.init('axs', int64Tensor([2], [1, 2])),
    b.init('stp', int64Tensor([2], [2, -1])),
  ]);
  const sq = b.op('Squeeze', [b.op('Unsqueeze', [s1!, b.init('ax13', int64Tensor([2], [1, 3]))]), b.init('ax1', int64Tensor([1], [1]))]);
  const p = b.op('Pad', [sq, b.init('pads', int64Tensor([8], [0, 1, 0, 2, 0, 0, 1, 0]))]);
  const red = b.op('ReduceMean', [p], { axes: [1], keepdims: 0 });
  const rs = b.op('ReduceSum', [p, b.init('rax', int64Tensor([2], [-1, 1]))], { keepdims: 1 });
  const g = b.op('Gather', [x, b.init('idx', int64Tensor([2, 3], [0, 1, 2, 3, 3, 0]))], { axis: 1 });
  const ex = b.op('Expand', [b.init('col', rand([4, 1])), b.init('eshape', int64Tensor([3], [2, 1, 6]))]);
  const mm = b.op('MatMul', [x, b.init('v', rand([6]))]);
  const mm2 = b.op('MatMul', [b.init('u', rand([4])), x]);
  const bmm = b.op('MatMul', [x, b.init('w3', rand([1, 6, 2]))]);
  const wh = b.op('Where', [cond, e1!, b.op('Constant', [], { value_float: float(0) })]);
  const cmp = b.op('Equal', [e2!, e3!]);
  const cst = b.op('Cast', [cmp], { to: 1 });
  const ln = b.op('LayerNormalization', [x, b.init('lg', rand([6])), b.init('lb', rand([6]))], { axis: -1 });
  const pw = b.op('Pow', [
    b.op('Sub', [ln, b.op('Constant', [], { value_floats: { kind: 'floats', value: [1, 2, 3, 4, 5, 6] } })]),
    b.op('Constant', [], { value_float: float(2) }),
  ]);
  const act = ['Sigmoid', 'Tanh', 'Erf', 'Abs', 'Neg', 'Exp', 'Identity'].reduce((v, op) => b.op(op, [v]), pw);
  const sm = b.op('LogSoftmax', [b.op('Sqrt', [b.op('Clip', [act])])], { axis: 1 });
  const [dr] = b.opMulti('Dropout', [sm], 2);
  for (const o of [sl, red, rs, g, ex, mm, mm2, bmm, wh, cst, dr!]) b.output(o, 'float32');
  const model = b.build();
  const feeds = { x: new ort.Tensor('float32', new Float32Array(2 * 24), [2, 4, 6]), cond: new ort.Tensor('bool', new Uint8Array(2), [2]) };
  await checkAgainstOrt(model, feeds, { batch: 2 });
  const info = inferShapes(model);
  assert.deepEqual(info.get(flat)!.shape, ['batch', 24]);
  assert.deepEqual(info.get(r2)!.shape, ['batch', 3, 8]);
  assert.deepEqual(info.get(sl)!.shape, ['batch', 2, 3]);
  assert.deepEqual(info.get(red)!.shape, ['batch', 2, 5]);
  assert.deepEqual(info.get(mm)!.shape, ['batch', 4]);
  assert.deepEqual(info.get(bmm)!.shape, ['batch', 4, 2]); // batch broadcast against 1
});

test('shape mismatches name node, op and both shapes', () => {
  const b = new GraphBuilder('bad');
  const x = b.input('x', 'float32', ['batch', 5]);
  b.output(b.op('Gemm', [x, b.init('w', rand([4, 3]))], {}, { name: 'fc' }), 'float32');
  assert.throws(() => inferShapes(b.build()), new ModelError("node 'fc' (Gemm): inner dimensions differ: A [batch, 5] and B [4, 3] (transA=0, transB=0)"));

  const c = new GraphBuilder('badconv');
  const y = c.input('y', 'float32', [1, 3, 8, 8]);
  c.output(c.op('Conv', [y, c.init('w', rand([8, 4, 3, 3]))], {}, { name: 'conv0' }), 'float32');
  assert.throws(
    () => inferShapes(c.build()),
    new ModelError("node 'conv0' (Conv): input channels 3 (X [1, 3, 8, 8]) do not match weight [8, 4, 3, 3] × group 1"),
  );

  const d = new GraphBuilder('badadd');
  const z = d.input('z', 'float32', [2, 3]);
  d.output(d.op('Add', [z, d.init('k', rand([4]))], {}, { name: 'add0' }), 'float32');
  assert.throws(() => inferShapes(d.build()), /^ModelError: node 'add0' \(Add\): cannot broadcast shapes \[2, 3\] and \[4\]$/);
});

test('unknown ops are skipped (downstream too) unless strict', () => {
  const b = new GraphBuilder('unk');
  const x = b.input('x', 'float32', ['n', 3]);
  const u = b.op('FancyOp', [x], {}, { name: 'fancy', domain: 'com.example' });
  const r = b.op('Relu', [u]);
  const ok = b.op('Relu', [x]);
  b.output(r, 'float32');
  const info = inferShapes(b.build());
  assert.equal(info.has(u), false);
  assert.equal(info.has(r), false);
  assert.deepEqual(info.get(ok), { name: ok, dtype: 'float32', shape: ['n', 3] });
  assert.throws(() => inferShapes(b.build(), { strict: true }), new ModelError("node 'fancy' (FancyOp): no shape inference rule for op com.example.FancyOp"));
});

test('unknown rank gives dtype without shape; Constant forms; annotateShapes', () => {
  const b = new GraphBuilder('misc');
  const x = b.input('x', 'float32', ['batch', 2]);
  const q = b.input('q', 'float32', []);
  const s = b.op('Shape', [b.op('Relu', [q])]);
  const ci = b.op('Constant', [], { value_ints: [3, 4, 5] });
  const ct = b.op('Constant', [], { value: int64Tensor([2], [-1, 1]) });
  const r = b.op('Reshape', [x, ct]);
  b.output(r, 'float32');
  const m = b.build();
  m.graph.inputs[1]!.shape = undefined;
  const info = inferShapes(m);
  assert.deepEqual(info.get(s), { name: s, dtype: 'int64', shape: undefined });
  assert.deepEqual(info.get(ci)!.shape, [3]);
  assert.deepEqual(info.get(r)!.shape, [null, 1]); // batch*2 elements: -1 is not a plain symbol
  const a = annotateShapes(m);
  assert.deepEqual(a.graph.valueInfo.map((v) => v.name).sort(), [ci, ct, s, m.graph.nodes[0]!.outputs[0]!].sort());
  assert.deepEqual(a.graph.outputs[0]!.shape, [null, 1]);
  assert.equal(m.graph.valueInfo.length, 0, 'the input model is not modified');
});

test('ceil_mode window that would start in the padding is dropped (as in onnxruntime)', async () => {
  const b = new GraphBuilder('ceil');
  const x = b.input('x', 'float32', [1, 2, 6, 7]);
  const p = b.op('MaxPool', [x], { kernel_shape: [2, 3], strides: [2, 2], pads: [0, 0, 1, 1], ceil_mode: 1 });
  const a = b.op('AveragePool', [x], { kernel_shape: [3, 3], strides: [3, 3], ceil_mode: 1 });
  const t = b.op('Tile', [p, b.init('rep', int64Tensor([4], [1, 2, 1, 3]))]);
  const z = b.op('ConstantOfShape', [b.op('Shape', [a])], { value: int64Tensor([1], [7]) });
  b.output(t, 'float32');
  b.output(z, 'int64');
  const model = b.build();
  await checkAgainstOrt(model, { x: new ort.Tensor('float32', new Float32Array(84), [1, 2, 6, 7]) }, {});
  assert.deepEqual(inferShapes(model).get(p)!.shape, [1, 2, 3, 4]);
});

test('Resize shapes (scales with a fractional result, sizes with axes, symbolic batch) match onnxruntime', async () => {
  const b = new GraphBuilder('resize', 18);
  const x = b.input('x', 'float32', ['batch', 2, 5, 7]);
  const up = b.op('Resize', [x, '', b.init('sc', floatTensor([4], [1, 1, 2, 1.5]))], { mode: 'nearest' });
  const sz = b.op('Resize', [x, '', '', b.init('sz', int64Tensor([2], [3, 11]))], { mode: 'linear', axes: [2, -1] });
  const half = b.op('Resize', [up, '', b.init('sc2', floatTensor([2], [0.5, 0.34]))], { axes: [2, 3] });
  for (const o of [up, sz, half]) b.output(o, 'float32');
  const model = b.build();
  await checkAgainstOrt(model, { x: new ort.Tensor('float32', new Float32Array(3 * 70), [3, 2, 5, 7]) }, { batch: 3 });
  const info = inferShapes(model);
  assert.deepEqual(info.get(up)!.shape, ['batch', 2, 10, 10]);
  assert.deepEqual(info.get(sz)!.shape, ['batch', 2, 3, 11]);
  // scales fed at run time: every dim may be resized, so all are unknown (null), never guessed
  const b2 = new GraphBuilder('resize-fed', 18);
  const x2 = b2.input('x', 'float32', ['batch', 2, 5, 7]);
  const s2 = b2.input('s', 'float32', [4]);
  const y2 = b2.op('Resize', [x2, '', s2]);
  b2.output(y2, 'float32');
  assert.deepEqual(inferShapes(b2.build()).get(y2)!.shape, [null, null, null, null]);
});
