import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareWeights, runPlan, type WeightMode } from '../../src/mpc/executor.js';
import { runTwoParty } from '../../src/mpc/local.js';
import { planModel } from '../../src/mpc/plan.js';
import { reveal, shareInput } from '../../src/mpc/protocols/arith.js';
import type { ReluProtocol } from '../../src/mpc/protocols/compare.js';
import { decodeFixed, encodeFixed } from '../../src/mpc/ring.js';
import { loadFashionMnistSample } from '../../src/nn/data/index.js';
import { FloatModel } from '../../src/nn/runtime.js';
import type { Model } from '../../src/onnx/ir.js';
import { loadModel } from '../../src/onnx/proto.js';
import { buildZoo } from '../../src/onnx/zoo/index.js';

const MODEL = join(import.meta.dirname, '..', '..', 'models', 'fmnist-cnn.onnx');

async function privateLogits(model: Model, images: Float32Array, batch: number, weights: WeightMode, reluProtocol: ReluProtocol = 'signonly') {
  const plan = planModel(model, batch);
  const nIn = images.length;
  const [out0] = await runTwoParty(async (ctx) => {
    const w = await prepareWeights(ctx, plan, weights);
    const x = await shareInput(ctx, 0, ctx.party === 0 ? encodeFixed(images, ctx.fracBits) : undefined, nIn);
    const { output, layers } = await runPlan(ctx, plan, w, x, { weights, reluProtocol });
    const y = await reveal(ctx, output, 0);
    return { y: y && decodeFixed(y, ctx.fracBits), layers };
  });
  return out0;
}

async function plainLogits(model: Model, images: Float32Array, batch: number): Promise<Float32Array> {
  const fm = await FloatModel.create(model);
  const out = fm.run({ [model.graph.inputs[0]!.name]: { dtype: 'float32', dims: [batch, 1, 28, 28], data: images } });
  fm.dispose();
  return out[model.graph.outputs[0]!.name]!.data as Float32Array;
}

const argmax = (v: Float32Array, k: number, i: number) => {
  let b = 0;
  for (let j = 1; j < k; j++) if (v[i * k + j]! > v[i * k + b]!) b = j;
  return b;
};

for (const [weights, protocol] of [
  ['public', 'signonly'],
  ['secret', 'signonly'],
  ['public', 'crypten'],
] as const) {
  test(`fmnist-cnn on shares (${weights} weights, ${protocol}) matches the float runtime`, async () => {
    const model = loadModel(MODEL);
    const ds = loadFashionMnistSample({ limit: 8 });
    const priv = await privateLogits(model, ds.images, 8, weights, protocol);
    const plain = await plainLogits(model, ds.images, 8);
    let maxDiff = 0;
    for (let i = 0; i < plain.length; i++) maxDiff = Math.max(maxDiff, Math.abs(priv.y![i]! - plain[i]!));
    assert.ok(maxDiff < 1e-2, `max logit difference ${maxDiff}`);
    for (let i = 0; i < 8; i++) assert.equal(argmax(priv.y!, 10, i), argmax(plain, 10, i));
    // Every ReLU costs the protocol's exact bits: 427 (signonly) or 1,856 (crypten) per element per party.
    const relu = priv.layers.find((l) => l.op === 'Relu')!;
    assert.equal(relu.bytesSent * 8, (protocol === 'signonly' ? 427 : 1856) * 8 * 16 * 28 * 28);
  });
}

test('max-pool and residual models run on shares and match the float runtime', async () => {
  for (const [name, opts] of [
    ['fmnist-cnn', { pool: 'max' }],
    ['resnet20', { width: 4 }],
  ] as const) {
    const model = buildZoo(name, opts);
    const ds = loadFashionMnistSample({ limit: 2 });
    const priv = await privateLogits(model, ds.images, 2, 'public');
    const plain = await plainLogits(model, ds.images, 2);
    let maxDiff = 0;
    let scale = 0;
    for (let i = 0; i < plain.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(priv.y![i]! - plain[i]!));
      scale = Math.max(scale, Math.abs(plain[i]!));
    }
    assert.ok(maxDiff < 1e-2 * Math.max(1, scale), `${name}: max logit difference ${maxDiff} (scale ${scale})`);
  }
});

test('unsupported ops are refused when the plan is compiled, naming node and op', () => {
  assert.throws(
    () => planModel(buildZoo('bert-base', { layers: 1, hidden: 16, heads: 2, seq: 4, vocab: 10 }), 1),
    /private inference needs exactly one (input|output)/,
  );
  const mb = buildZoo('mobilenetv2', { input: '3x32x32' });
  mb.graph.nodes
    .filter((n) => n.opType === 'Clip')
    .slice(0, 2)
    .forEach((n) => (n.opType = 'HardSwish'));
  const named = mb.graph.nodes.filter((n) => n.opType === 'HardSwish').map((n) => n.name);
  assert.throws(
    () => planModel(mb, 1),
    (e: Error) => /3 problems/.test(e.message) && named.every((n) => e.message.includes(`node '${n}' (HardSwish): op is not supported by the MPC runtime`)),
  );
});
