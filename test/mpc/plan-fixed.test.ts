import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultJobFlags, privateInference } from '../../src/cli/mpc.js';
import { MIN_FRAC_BITS, maxFracBits, planModel } from '../../src/mpc/plan.js';
import { loadFashionMnistSample } from '../../src/nn/data/index.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, type Model } from '../../src/onnx/ir.js';
import { loadModel, saveModel } from '../../src/onnx/proto.js';
import { ortOut, twoParty } from './plan-helpers.js';

const MODEL = join(import.meta.dirname, '..', '..', 'models', 'fmnist-cnn.onnx');

const argmax = (v: Float32Array, k: number, i: number): number => {
  let b = 0;
  for (let j = 1; j < k; j++) if (v[i * k + j]! > v[i * k + b]!) b = j;
  return b;
};

test('every --frac-bits the headroom check accepts for fmnist-cnn agrees with onnxruntime on the sample', async () => {
  const model = loadModel(MODEL);
  const n = 16;
  const ds = loadFashionMnistSample({ limit: n });
  const want = await ortOut(model, ds.images, [n, 1, 28, 28]);
  const max = maxFracBits(planModel(model, n));
  assert.ok(max >= 16 && max <= 21, `max ${max}: the default 16 must be accepted; 22 measured 98 % on 100 images`);
  for (let f = MIN_FRAC_BITS; f <= max; f++) {
    const got = await twoParty(model, model, ds.images, n, 'public', f);
    let agree = 0;
    for (let i = 0; i < n; i++) if (argmax(got, 10, i) === argmax(want, 10, i)) agree++;
    assert.ok(agree / n >= 0.99, `--frac-bits ${f}: agreement ${agree}/${n}`);
  }
});

/** fmnist-cnn with one weight replaced. */
function withWeight(model: Model, v: number): Model {
  const inits = new Map(model.graph.initializers);
  const [name, t] = [...inits].find(([, t]) => t.dtype === 'float32' && t.dims.length === 4)!;
  const data = Float32Array.from(t.data as Float32Array);
  data[3] = v;
  inits.set(name, floatTensor(t.dims, data));
  return { ...model, graph: { ...model.graph, initializers: inits } };
}

test('mpc infer refuses, before any process starts: frac-bits outside the headroom, NaN/Inf/huge weights, shape or class mismatch, relu-config with crypten', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-fixed-'));
  const model = loadModel(MODEL);
  const flags = (over: Parameters<typeof defaultJobFlags>[0]) => defaultJobFlags({ dataset: 'fashion-mnist-sample', limit: 2, ...over });
  try {
    await assert.rejects(privateInference(MODEL, flags({ fracBits: 32 })), /--frac-bits must be an integer in \[10, 19\]/);
    await assert.rejects(privateInference(MODEL, flags({ fracBits: 4 })), /--frac-bits must be an integer in \[10, 19\]/);
    for (const [v, re] of [
      [NaN, /non-finite/],
      [Infinity, /non-finite/],
      [1e7, /exceeds 4096/],
    ] as const) {
      const f = join(dir, `w${v}.onnx`);
      saveModel(withWeight(model, v), f);
      await assert.rejects(privateInference(f, flags({})), re);
    }
    // Same value count, other shape; and a 5-class head.
    const linear = (shape: number[], classes: number): Model => {
      const b = new GraphBuilder('linear');
      const x = b.input('x', 'float32', ['N', ...shape]);
      const y = b.op('Gemm', [b.op('Flatten', [x], { axis: 1 }), b.init('w', floatTensor([784, classes], new Array(784 * classes).fill(0.01)))]);
      b.output(y, 'float32', ['N', classes]);
      return b.build();
    };
    const fs = join(dir, 'shape.onnx');
    saveModel(linear([1, 14, 56], 10), fs);
    await assert.rejects(privateInference(fs, flags({})), /images are \[1,28,28\], the model's input is \[1,14,56\]/);
    const fc = join(dir, 'classes.onnx');
    saveModel(linear([1, 28, 28], 5), fc);
    await assert.rejects(privateInference(fc, flags({})), /has 10 classes, the model outputs 5 values per image/);
    const cfg = join(dir, 'relu.json');
    writeFileSync(cfg, JSON.stringify({ layers: {} }));
    await assert.rejects(privateInference(MODEL, flags({ reluConfig: cfg, reluProtocol: 'crypten' })), /cannot be used with --relu-protocol crypten/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
