import assert from 'node:assert/strict';
import { test } from 'node:test';
import { floatTensor, type Node } from '../../src/onnx/ir.js';
import { avgPoolDivisors, batchNormAffine, foldAffineIntoWeight, linearLayer, windowGeometry } from '../../src/onnx/lower.js';

const node = (opType: string, attrs: Record<string, number[] | number | string>): Node => ({
  name: 'n',
  opType,
  domain: '',
  inputs: [],
  outputs: ['y'],
  attrs: Object.fromEntries(
    Object.entries(attrs).map(([k, v]) => [
      k,
      Array.isArray(v) ? { kind: 'ints', value: v } : typeof v === 'string' ? { kind: 'string', value: v } : { kind: 'int', value: v },
    ]),
  ) as Node['attrs'],
});

test('window geometry: ceil_mode (PyTorch rule), auto_pad, dilations', () => {
  // torchvision SqueezeNet: MaxPool(3, 2, ceil_mode) on 111 → 55; on 54 → 27 (floor would give 26).
  assert.deepEqual(windowGeometry(node('MaxPool', { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }), [111, 54]).outShape, [55, 27]);
  // The last window may not start in the end pad: in 4, k 3, s 2, pads 1 → 3 (not 4 with the naive ceil).
  const g = windowGeometry(node('MaxPool', { kernel_shape: [2], strides: [2], pads: [1, 1], ceil_mode: 1 }), [4]);
  assert.deepEqual(g.outShape, [3]);
  assert.deepEqual(g.effectiveEndPads, [1]);
  const s = windowGeometry(node('Conv', { auto_pad: 'SAME_UPPER', strides: [2, 2] }), [7, 8], [3, 3]);
  assert.deepEqual(
    [s.outShape, s.pads],
    [
      [4, 4],
      [1, 0, 1, 1],
    ],
  );
  const d = windowGeometry(node('MaxPool', { kernel_shape: [3, 3], dilations: [2, 2] }), [9, 9]);
  assert.deepEqual(d.outShape, [5, 5]);
});

test('avgPool divisors exclude ceil-mode cells, include declared pads on request', () => {
  const g = windowGeometry(node('AveragePool', { kernel_shape: [3], strides: [2], pads: [1, 1], ceil_mode: 1 }), [6]);
  assert.deepEqual(g.outShape, [4]);
  assert.deepEqual(avgPoolDivisors(g, [6], false), [[2, 3, 3, 1]]);
  assert.deepEqual(avgPoolDivisors(g, [6], true), [[3, 3, 3, 2]]);
});

test('BN folds into a conv weight exactly as y = BN(conv(x))', () => {
  const bn = batchNormAffine(
    node('BatchNormalization', {}),
    floatTensor([2], [2, 0.5]),
    floatTensor([2], [1, -1]),
    floatTensor([2], [0.5, 3]),
    floatTensor([2], [4, 0.25]),
  );
  const eps = 1e-5;
  assert.ok(Math.abs(bn.scale[0]! - 2 / Math.sqrt(4 + eps)) < 1e-7);
  const { weight, bias } = foldAffineIntoWeight(floatTensor([2, 1], [3, -2]), floatTensor([2], [1, 1]), bn);
  // channel 1: (x·-2 + 1 − 3)·0.5/√(0.25+eps) − 1 at x = 1
  const want = ((-2 + 1 - 3) * 0.5) / Math.sqrt(0.25 + eps) - 1;
  assert.ok(Math.abs(Number(weight.data[1]) + Number(bias.data[1]) - want) < 1e-5);
});

test('Gemm lowering applies transB, alpha and beta; rejects a full-matrix C', () => {
  const gemm: Node = {
    ...node('Gemm', { transB: 1 }),
    attrs: { transB: { kind: 'int', value: 1 }, alpha: { kind: 'float', value: 2 }, beta: { kind: 'float', value: 0.5 } },
  };
  const l = linearLayer(gemm, floatTensor([3, 2], [1, 2, 3, 4, 5, 6]), floatTensor([3], [2, 4, 6]));
  assert.deepEqual([l.k, l.n, Array.from(l.weight), Array.from(l.bias!)], [2, 3, [2, 6, 10, 4, 8, 12], [1, 2, 3]]);
  assert.throws(() => linearLayer(gemm, floatTensor([3, 2]), floatTensor([2, 3])), /not a row vector/);
});

test('batchNormAffine refuses training_mode=1 (batch statistics cannot be folded into a fixed affine map)', () => {
  const t = floatTensor([1], [1]);
  assert.throws(() => batchNormAffine(node('BatchNormalization', { training_mode: 1 }), t, t, t, t), /training_mode=1/);
});
