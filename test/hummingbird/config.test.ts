import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readReluConfig } from '../../src/cli/mpc.js';
import {
  bitsKept,
  HB_DOMAIN,
  type HbConfig,
  layersOf,
  modelHash,
  parseConfig,
  REDUCED_RELU,
  readConfig,
  registerHummingbirdOps,
  SIM_OPTION,
  simState,
  toSimModel,
  validateConfig,
  withWeightsOf,
  writeConfig,
} from '../../src/hummingbird/index.js';
import { FloatModel } from '../../src/nn/runtime.js';
import { tf } from '../../src/nn/tf.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor } from '../../src/onnx/ir.js';
import { loadModel, saveModel } from '../../src/onnx/proto.js';
import { SeededRng } from '../../src/seeded-rng.js';

const MODEL = join(import.meta.dirname, '..', '..', 'models', 'fmnist-cnn.onnx');

test('config file round trip: the MPC reader accepts it, metadata survives, hash binds the model', () => {
  const model = loadModel(MODEL);
  const dir = mkdtempSync(join(tmpdir(), 'hb-cfg-'));
  try {
    const levels = [
      { name: '28x28', nodes: ['relu_1'], elements: 12544, msb: 21, lsb: 9 },
      { name: '14x14', nodes: ['relu_2'], elements: 6272, msb: 21, lsb: 10 },
    ];
    const cfg: HbConfig = {
      layers: layersOf(levels),
      hummingbird: {
        version: 1,
        model: MODEL,
        modelHash: modelHash(model),
        mode: 'eco',
        budget: 18,
        fracBits: 16,
        levels,
        bitsKept: bitsKept(levels),
        bitsDiscarded: 1 - bitsKept(levels) / 64,
        calibration: { dataset: 'x', n: 10, accuracy64: 0.9, accuracy: 0.9, agreement: 1, seed: 1 },
      },
    };
    assert.equal(cfg.hummingbird!.bitsKept, (12 * 12544 + 11 * 6272) / 18816);
    const path = join(dir, 'c.json');
    writeConfig(path, cfg);
    const back = readConfig(path);
    assert.deepEqual(back, JSON.parse(JSON.stringify(cfg)));
    assert.deepEqual(validateConfig(back, model, path), { relu_1: { msb: 21, lsb: 9 }, relu_2: { msb: 21, lsb: 10 } });
    // the MPC engine's --relu-config reader takes the same file
    assert.deepEqual(readReluConfig(path, model), { relu_1: { msb: 21, lsb: 9 }, relu_2: { msb: 21, lsb: 10 } });
    // re-saving the model keeps its hash; changing one weight does not
    const resaved = join(dir, 'm.onnx');
    saveModel(model, resaved);
    assert.equal(modelHash(loadModel(resaved)), cfg.hummingbird!.modelHash);
    const other = loadModel(MODEL);
    const w = other.graph.initializers.values().next().value!;
    (w.data as Float32Array)[0]! += 1e-3;
    assert.throws(() => validateConfig(back, other, path), /made for another model/);
    assert.throws(() => readReluConfig(path, other), /made for another model/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad configs are refused with one-line errors naming the problem', () => {
  const model = loadModel(MODEL);
  const bad = (text: string, re: RegExp) => assert.throws(() => validateConfig(parseConfig(text, 'c.json'), model, 'c.json'), re);
  bad('{"layers": {"nope": {"msb": 20, "lsb": 4}}}', /'nope' is not a node/);
  bad('{"layers": {"conv_1": {"msb": 20, "lsb": 4}}}', /Conv node, not Relu or MaxPool/);
  bad('{"layers": {"relu_1": {"msb": 20, "lsb": 24}}}', /invalid bit range/);
  bad('{"layers": {"relu_1": {"msb": 65, "lsb": 0}}}', /invalid bit range/);
  bad('{"layers": {"relu_1": {"msb": 20.5, "lsb": 0}}}', /invalid bit range/);
  bad('[1, 2]', /expected a JSON object/);
  bad('{not json', /not valid JSON/);
  // b = 0 (msb = lsb) removes the ReLU and is allowed; a plain node map is accepted too
  assert.deepEqual(validateConfig(parseConfig('{"relu_2": {"msb": 7, "lsb": 7}}', 'c.json'), model, 'c.json'), { relu_2: { msb: 7, lsb: 7 } });
  assert.throws(() => readConfig('/nonexistent/cfg.json'), /cannot read config/);
});

test('ReducedRelu in the float runtime: forward = x·mask, gradient = mask, simulated graph restores to plain Relu', async () => {
  registerHummingbirdOps();
  const b = new GraphBuilder('tiny');
  const x = b.input('x', 'float32', ['batch', 6]);
  const w = b.init(
    'w',
    floatTensor(
      [6, 6],
      Array.from({ length: 36 }, (_, i) => (i % 7 === 0 ? 1 : 0)),
    ),
  );
  const y = b.op('MatMul', [x, w]);
  const r = b.op('Relu', [y], {}, { name: 'act' });
  b.output(r, 'float32', ['batch', 6]);
  const model = b.build();
  const sim = toSimModel(model, { act: { msb: 20, lsb: 6 } });
  const node = sim.graph.nodes.find((n) => n.name === 'act')!;
  assert.equal(node.opType, REDUCED_RELU);
  assert.equal(node.domain, HB_DOMAIN);
  // values (fixed point, f = 16): 3 in the misread window [0, 64), one above, negatives, a wrap above 2^19
  const xs = [3 / 65536, 50 / 65536, 100 / 65536, -1, 2, 9];
  const state = simState({ ranges: { act: { msb: 20, lsb: 6 } }, mode: 'worst' });
  const fm = await FloatModel.create(sim, { options: { [SIM_OPTION]: state } });
  try {
    const { value, grads } = tf.variableGrads(
      () => tf.sum(fm.forward({ x: tf.tensor2d(xs, [1, 6]) })[fm.outputNames[0]!]!) as tf.Scalar,
      fm.trainableVariables(),
    );
    // worst-case shares zero 3 and 50 (< 2^6 − 1), keep 100/65536 and 2; −1 → 0; 9 wraps (9·2^16 ≥ 2^19) → 0
    assert.ok(Math.abs(value.dataSync()[0]! - (100 / 65536 + 2)) < 1e-6);
    const g = grads[fm.trainableVariables()[0]!.name]!.dataSync();
    // d sum / d w[i][j] = x_i · mask_j (mask treated as a constant): only columns 2 and 4 pass
    for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) assert.ok(Math.abs(g[i * 6 + j]! - (j === 2 || j === 4 ? xs[i]! : 0)) < 1e-6, `grad[${i}][${j}]`);
    state.mode = 'random';
    state.rng = new SeededRng(1);
    state.ranges = { act: { msb: 64, lsb: 0 } };
    const exact = fm.run({ x: { dtype: 'float32', dims: [1, 6], data: Float32Array.from(xs) } })[fm.outputNames[0]!]!.data as Float32Array;
    assert.deepEqual(
      Array.from(exact),
      xs.map((v) => Math.fround(Math.max(0, v))),
    );
    const restored = withWeightsOf(model, fm.toModel());
    assert.equal(restored.graph.nodes.find((n) => n.name === 'act')!.opType, 'Relu');
    assert.equal(modelHash(restored), modelHash(model));
  } finally {
    fm.dispose();
  }
});
