import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { architectureConstants, architectureHash, stripWeights } from '../../src/mpc/arch.js';
import { planModel } from '../../src/mpc/plan.js';
import { loadFashionMnistSample } from '../../src/nn/data/index.js';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, int64Tensor, type Model } from '../../src/onnx/ir.js';
import { loadModel } from '../../src/onnx/proto.js';
import { lcg, maxDiff, ortOut, randTensor, refill, twoParty } from './plan-helpers.js';

const FMNIST = join(import.meta.dirname, '..', '..', 'models', 'fmnist-cnn.onnx');

/**
 * Every kind of constant the old planner kept public: standalone BN (first op, and after a
 * residual Add), Conv + Add bias, a per-channel Mul, PRelu slope, MatMul + Add bias, a Sub.
 */
function constantsModel(seed = 1): Model {
  const r = lcg(seed);
  const b = new GraphBuilder('constants');
  const x = b.input('x', 'float32', ['N', 2, 6, 6]);
  const bn = (v: string, c: number) =>
    b.op(
      'BatchNormalization',
      [
        v,
        b.init('g', randTensor(r, [c], 0.5, 1.5)),
        b.init('be', randTensor(r, [c])),
        b.init('m', randTensor(r, [c])),
        b.init('v', randTensor(r, [c], 0.5, 2)),
      ],
      { epsilon: float(1e-5) },
    );
  const h0 = bn(x, 2);
  const c1 = b.op('Conv', [h0, b.init('w1', randTensor(r, [3, 2, 3, 3], -0.5, 0.5))], { pads: [1, 1, 1, 1] });
  const a1 = b.op('Add', [c1, b.init('cb', randTensor(r, [3, 1, 1]))]);
  const r1 = b.op('Relu', [a1]);
  const c2 = b.op('Conv', [r1, b.init('w2', randTensor(r, [3, 3, 3, 3], -0.5, 0.5)), b.init('b2', randTensor(r, [3]))], { pads: [1, 1, 1, 1] });
  const res = b.op('Add', [c2, r1]);
  const bn2 = bn(res, 3);
  const pr = b.op('PRelu', [bn2, b.init('slope', randTensor(r, [3, 1, 1], 0.05, 0.3))]);
  const mu = b.op('Mul', [pr, b.init('mul', randTensor(r, [1, 3, 1, 1], 0.5, 2))]);
  const su = b.op('Sub', [mu, b.init('sub', randTensor(r, [1]))]);
  const fl = b.op('Flatten', [su], { axis: 1 });
  const mm = b.op('MatMul', [fl, b.init('wf', randTensor(r, [108, 4], -0.2, 0.2))]);
  const y = b.op('Add', [mm, b.init('bf', randTensor(r, [4]))]);
  b.output(y, 'float32', ['N', 4]);
  return b.build();
}

/** The reproduction: MatMul + Add, the bias used to stay public. */
function matmulAdd(): Model {
  const b = new GraphBuilder('matmul-add');
  const x = b.input('x', 'float32', ['N', 3]);
  const mm = b.op('MatMul', [x, b.init('w', floatTensor([3, 2], [1, -1, 2, 0, 1, 3]))]);
  const y = b.op('Add', [mm, b.init('b', floatTensor([2], [1, -8]))]);
  b.output(y, 'float32', ['N', 2]);
  return b.build();
}

test('secret weights: party 0 with zeroed or random initializers gets the right answer (BN, Conv+Add, MatMul+Add, residual, PRelu, Mul, Sub)', async () => {
  const model = constantsModel();
  const r = lcg(7);
  const x = Float32Array.from({ length: 2 * 2 * 36 }, () => r(0, 1));
  const want = await ortOut(model, x, [2, 2, 6, 6]);
  const zero = await twoParty(stripWeights(model), model, x, 2, 'secret');
  assert.ok(maxDiff(zero, want) < 1e-2, `zeroed party 0: max diff ${maxDiff(zero, want)} (want ${want.slice(0, 4)}, got ${zero.slice(0, 4)})`);
  const rnd = lcg(99);
  const random = await twoParty(
    refill(model, () => rnd(-50, 50)),
    model,
    x,
    2,
    'secret',
  );
  assert.ok(maxDiff(random, want) < 1e-2, `random party 0: max diff ${maxDiff(random, want)}`);
  // The check can fail: with public weights, party 0's zeros do change the answer.
  const pub = await twoParty(stripWeights(model), model, x, 2, 'public');
  assert.ok(maxDiff(pub, want) > 0.1, 'public mode with different weights should differ');
  // Nothing of the model was left public: no affine step without a weight, BN and biases folded where exact.
  const kinds = planModel(model, 2).steps.map((s) => s.kind);
  assert.deepEqual(kinds, ['affine', 'conv', 'relu', 'conv', 'add', 'affine', 'prelu', 'affine', 'affine', 'alias', 'gemm']);
});

test('secret weights: MatMul + Add with party 0 holding zeros returns x·W + b = [9, 0]', async () => {
  const model = matmulAdd();
  // [1, 2, 3] · [[1, −1], [2, 0], [1, 3]] = [8, 8]; + [1, −8]
  const y = await twoParty(stripWeights(model), model, Float32Array.of(1, 2, 3), 1, 'secret');
  assert.ok(maxDiff(y, Float32Array.of(9, 0)) < 1e-3, `got ${y}`);
});

test('secret weights: fmnist-cnn with party 0 zeroed matches onnxruntime', async () => {
  const model = loadModel(FMNIST);
  const ds = loadFashionMnistSample({ limit: 4 });
  const want = await ortOut(model, ds.images, [4, 1, 28, 28]);
  const got = await twoParty(stripWeights(model), model, ds.images, 4, 'secret');
  assert.ok(maxDiff(got, want) < 1e-2, `max diff ${maxDiff(got, want)}`);
});

test('architecture hash: ignores weight values, covers architecture constants; stripWeights zeroes every weight', () => {
  const model = constantsModel();
  const h = architectureHash(model);
  assert.equal(architectureHash(stripWeights(model)), h);
  assert.equal(architectureHash(constantsModel(5)), h, 'other weights, same architecture');
  for (const t of stripWeights(model).graph.initializers.values()) assert.ok(Array.from(t.data as Float32Array).every((v) => v === 0));
  // A Clip bound and a Reshape target are architecture: they stay in the file and in the hash.
  const b = new GraphBuilder('clip');
  const x = b.input('x', 'float32', ['N', 4]);
  const lo = b.init('lo', floatTensor([], [0]));
  const hi = b.init('hi', floatTensor([], [6]));
  const c = b.op('Clip', [b.op('MatMul', [x, b.init('w', floatTensor([4, 4], new Array(16).fill(0.5)))]), lo, hi]);
  const y = b.op('Reshape', [c, b.init('shape', int64Tensor([2], [-1, 4]))]);
  b.output(y, 'float32', ['N', 4]);
  const m = b.build();
  assert.deepEqual([...architectureConstants(m)].sort(), ['hi', 'lo', 'shape']);
  const stripped = stripWeights(m);
  assert.equal(Number(stripped.graph.initializers.get('hi')!.data[0]), 6);
  const other = refill(m, () => 3, new Set(['w']));
  assert.notEqual(architectureHash(other), architectureHash(m), 'a different Clip bound is a different architecture');
});
