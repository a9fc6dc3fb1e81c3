import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultJobFlags, privateInference } from '../../src/cli/mpc.js';
import { stripWeights } from '../../src/mpc/arch.js';
import { planModel } from '../../src/mpc/plan.js';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, int64Tensor, type Model } from '../../src/onnx/ir.js';
import { loadModel, saveModel } from '../../src/onnx/proto.js';
import { lcg, maxDiff, ortOut, randTensor, twoParty } from './plan-helpers.js';

/** Pad, Conv, Clip (ReLU6), MaxPool ceil_mode, LeakyRelu, Concat, Transpose, Slice, Unsqueeze/Squeeze, Identity, output Softmax. */
function exportPatterns(): Model {
  const r = lcg(3);
  const b = new GraphBuilder('export-patterns', 18);
  const x = b.input('x', 'float32', ['N', 3, 6, 6]);
  const p = b.op('Pad', [x, b.init('pads', int64Tensor([8], [0, 0, 1, 1, 0, 0, 1, 1])), b.init('pv', floatTensor([], [0]))]);
  const c = b.op('Conv', [p, b.init('w', randTensor(r, [4, 3, 3, 3], -0.6, 0.6)), b.init('b', randTensor(r, [4]))], { pads: [1, 1, 1, 1] });
  const r6 = b.op('Clip', [c, b.init('lo', floatTensor([], [0])), b.init('hi', floatTensor([], [0.8]))]);
  const mp = b.op('MaxPool', [r6], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 });
  const lk = b.op('LeakyRelu', [c], { alpha: float(0.1) });
  const mp2 = b.op('MaxPool', [lk], { kernel_shape: [2, 2], strides: [2, 2] });
  const cat = b.op('Concat', [mp, mp2], { axis: 1 });
  const t = b.op('Transpose', [cat], { perm: [0, 1, 3, 2] });
  const sl = b.op('Slice', [t, b.init('st', int64Tensor([1], [1])), b.init('en', int64Tensor([1], [4])), b.init('ax', int64Tensor([1], [3]))]);
  const un = b.op('Unsqueeze', [sl, b.init('ua', int64Tensor([1], [1]))]);
  const sq = b.op('Squeeze', [un, b.init('sa', int64Tensor([1], [1]))]);
  const id = b.op('Identity', [sq]);
  const gp = b.op('GlobalAveragePool', [id]);
  const fl = b.op('Flatten', [gp], { axis: 1 });
  const gm = b.op('Gemm', [fl, b.init('wf', randTensor(r, [5, 8], -2, 2)), b.init('bf', randTensor(r, [5]))], { transB: 1 });
  const y = b.op('Softmax', [gm], { axis: -1 });
  b.output(y, 'float32', ['N', 5]);
  return b.build();
}

test('ordinary export patterns run on shares and match onnxruntime (public, and secret with party 0 zeroed)', async () => {
  const model = exportPatterns();
  const plan = planModel(model, 2);
  assert.equal(plan.post, 'Softmax');
  // ceil_mode=1 on 8×8 with k3 s2 gives 4×4 (floor would give 3×3)
  const mp = plan.steps.find((s) => s.kind === 'maxpool' && s.geom.kh === 3)!;
  assert.equal(mp.kind === 'maxpool' && mp.geom.padB, 1);
  const r = lcg(11);
  const x = Float32Array.from({ length: 2 * 3 * 36 }, () => r(-1, 1));
  const want = await ortOut(model, x, [2, 3, 6, 6]);
  for (const [m0, mode] of [
    [model, 'public'],
    [stripWeights(model), 'secret'],
  ] as const) {
    const got = await twoParty(m0, model, x, 2, mode);
    assert.ok(maxDiff(got, want) < 2e-3, `${mode}: max diff ${maxDiff(got, want)}\n want ${want}\n got ${got}`);
  }
});

test('every offending node is named in one error, before any process starts', async () => {
  const b = new GraphBuilder('bad', 18);
  const x = b.input('x', 'float32', ['N', 4]);
  const s = b.op('Sigmoid', [x], {}, { name: 'gate' });
  const m = b.op('Mul', [s, x], {}, { name: 'swish' });
  const sm = b.op('Softmax', [m], {}, { name: 'inner_softmax' });
  const h = b.op('HardSwish', [sm], {}, { name: 'hs' });
  const mm = b.op('MatMul', [h, b.init('w', floatTensor([4, 2], new Array(8).fill(0.1)))]);
  b.output(mm, 'float32', ['N', 2]);
  const model = b.build();
  assert.throws(
    () => planModel(model, 1),
    (e: Error) =>
      ["'gate' (Sigmoid)", "'swish' (Mul)", "'inner_softmax' (Softmax)", "'hs' (HardSwish)"].every((n) => e.message.includes(n)) &&
      /5 problems/.test(e.message) &&
      /the MPC runtime supports Conv/.test(e.message),
  );
  const dir = mkdtempSync(join(tmpdir(), 'privml-plan-'));
  try {
    const file = join(dir, 'bad.onnx');
    saveModel(model, file);
    writeFileSync(join(dir, 'x.json'), JSON.stringify([1, 2, 3, 4]));
    const t0 = Date.now();
    await assert.rejects(privateInference(file, defaultJobFlags({ input: join(dir, 'x.json') })), /'gate' \(Sigmoid\)/);
    // the plan is checked in this process: no role process was started (they take seconds to load)
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a real PyTorch export (Constant, Pad+AveragePool, Clip, MaxPool ceil_mode, Concat, BN after Add, PRelu, LogSoftmax) matches PyTorch, party 0 zeroed in secret mode', async () => {
  const dir = join(import.meta.dirname, '..', 'fixtures', 'pytorch-mpc');
  const model = loadModel(join(dir, 'mixed.onnx'));
  const ref = JSON.parse(readFileSync(join(dir, 'mixed.json'), 'utf8')) as { dims: number[]; x: number[]; y: number[] };
  const x = Float32Array.from(ref.x);
  const want = Float32Array.from(ref.y);
  assert.ok(maxDiff(await ortOut(model, x, ref.dims), want) < 1e-4, 'onnxruntime agrees with PyTorch');
  const plan = planModel(model, 2);
  assert.equal(plan.post, 'LogSoftmax');
  assert.ok(!plan.steps.some((s) => s.node.opType === 'BatchNormalization' && s.kind !== 'affine'));
  for (const [m0, mode] of [
    [model, 'public'],
    [stripWeights(model), 'secret'],
  ] as const) {
    const got = await twoParty(m0, model, x, 2, mode);
    assert.ok(maxDiff(got, want) < 5e-3, `${mode}: max diff ${maxDiff(got, want)}`);
  }
});

test('Pad with a non-zero constant, edge and reflect modes match onnxruntime', async () => {
  for (const mode of ['constant', 'edge', 'reflect']) {
    const b = new GraphBuilder('pad', 18);
    const x = b.input('x', 'float32', ['N', 1, 3, 3]);
    const p = b.op('Pad', [x, b.init('pads', int64Tensor([8], [0, 0, 1, 2, 0, 0, 2, 1])), b.init('v', floatTensor([], [-2.5]))], { mode });
    b.output(b.op('Relu', [p]), 'float32', ['N', 1, 6, 6]);
    const model = b.build();
    const x0 = Float32Array.from({ length: 9 }, (_, i) => i - 4);
    const got = await twoParty(model, model, x0, 1, 'public');
    assert.ok(maxDiff(got, await ortOut(model, x0, [1, 1, 3, 3])) < 1e-3, mode);
  }
});
