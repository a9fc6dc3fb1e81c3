import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { formatInfo, modelInfo } from '../../src/onnx/info.js';
import { floatTensor, int64Tensor, sizeOf } from '../../src/onnx/ir.js';

const w = (dims: number[]) =>
  floatTensor(
    dims,
    Array.from({ length: sizeOf(dims) }, (_, i) => i % 7),
  );

/** x[batch,3,8,8] → Conv 4×3×3×3 pad 1 → Relu → Conv group 2 stride 2 → Reshape → Gemm(transB) → MatMul. */
function smallModel() {
  const b = new GraphBuilder('small');
  const x = b.input('x', 'float32', ['batch', 3, 8, 8]);
  let h = b.op('Conv', [x, b.init('w1', w([4, 3, 3, 3])), b.init('b1', w([4]))], { pads: [1, 1, 1, 1] });
  h = b.op('Relu', [h]);
  h = b.op('Conv', [h, b.init('w2', w([4, 2, 3, 3]))], { group: 2, strides: [2, 2], pads: [1, 1, 1, 1] });
  h = b.op('Reshape', [h, b.init('shape', int64Tensor([2], [0, -1]))]);
  h = b.op('Gemm', [h, b.init('fc', w([10, 64])), b.init('fcb', w([10]))], { transB: 1 });
  h = b.op('MatMul', [h, b.init('proj', w([10, 5]))]);
  b.output(h, 'float32', ['batch', 5]);
  b.init('mask', { dtype: 'bool', dims: [3], data: new Uint8Array(3) });
  return b.build();
}

test('MAC count equals a hand computation', () => {
  const info = modelInfo(smallModel());
  const conv1 = 4 * 8 * 8 * (3 * 3 * 3); // output elements × (C/g · kh · kw)
  const conv2 = 4 * 4 * 4 * (2 * 3 * 3); // grouped: each output sees 4/2 channels
  const gemm = 64 * 10;
  const matmul = 10 * 5;
  assert.deepEqual(info.macsByOp, { Conv: conv1 + conv2, Gemm: gemm, MatMul: matmul });
  assert.equal(info.macs, 8754);
  assert.equal(info.macs, conv1 + conv2 + gemm + matmul);
});

test('header, histogram, parameters and io', () => {
  const info = modelInfo(smallModel());
  assert.equal(info.name, 'small');
  assert.equal(info.opset, 17);
  assert.equal(info.irVersion, 8);
  assert.equal(info.producer, 'privml 0.1.0');
  assert.equal(info.nodes, 6);
  assert.deepEqual(info.opsHistogram, { Conv: 2, Relu: 1, Reshape: 1, Gemm: 1, MatMul: 1 });
  const floats = 108 + 4 + 72 + 640 + 10 + 50;
  assert.equal(info.parameters, floats); // the int64 reshape target and the bool mask are not parameters
  assert.equal(info.parameterBytes, floats * 4);
  assert.deepEqual(info.inputs, [{ name: 'x', dtype: 'float32', shape: ['batch', 3, 8, 8] }]);
  assert.deepEqual(info.outputs, [{ name: 'matmul_1_out', dtype: 'float32', shape: ['batch', 5] }]);
});

test('formatInfo renders a readable table', () => {
  const text = formatInfo(modelInfo(smallModel()));
  assert.match(text, /^model\s+small$/m);
  assert.match(text, /^parameters\s+884 \(3\.5 KiB\)$/m);
  assert.match(text, /^MACs\s+8,754 \(batch 1; symbolic dims taken as 1: batch\)$/m);
  assert.match(text, /^ {2}x\s+float32\s+\[batch, 3, 8, 8\]$/m);
  assert.match(text, /^Conv\s+2\s+8,064\s+92\.1 %$/m);
  assert.match(text, /^Relu\s+1\s+-$/m);
  // Ops are listed by MAC share first.
  assert.ok(
    text.indexOf('Conv ') < text.indexOf('Gemm ') && text.indexOf('Gemm ') < text.indexOf('MatMul ') && text.indexOf('MatMul ') < text.indexOf('Relu '),
  );
});

test('names with control characters stay on one line: escaped in the table, the problems and every ModelError', async () => {
  const { ModelError, printable } = await import('../../src/onnx/ir.js');
  const { PrivmlError } = await import('../../src/errors.js');
  const { formatProblems } = await import('../../src/onnx/canonical.js');
  const b = new GraphBuilder('nl');
  const x = b.input('x\nfake', 'float32', [1, 2]);
  b.output(b.op('Relu', [x], {}, { output: 'y\nERROR: forged' }), 'float32');
  const text = formatInfo(modelInfo(b.build()));
  assert.match(text, /^ {2}y\\nERROR: forged\s+float32/m);
  assert.doesNotMatch(text, /^ERROR/m);
  assert.equal(printable('a\u0000\u001b\u2028\tb'), 'a\\u0000\\u001b\\u2028\\tb');
  const line = formatProblems(
    'm.onnx',
    [
      { op: 'Foo', node: 'n\nx', reason: 'bad' },
      { op: '', node: 'o\r', reason: 'missing' },
    ],
    true,
  );
  assert.equal(line.split('\n').length, 3, line);
  const e = new ModelError("m.onnx: node 'a\nb' (Foo): unsupported op");
  assert.ok(e instanceof PrivmlError, 'API users catch every privml error as PrivmlError');
  assert.equal(e.name, 'ModelError');
  assert.equal(e.message.split('\n').length, 1);
});
