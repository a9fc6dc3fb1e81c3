import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registerOp } from '../../src/nn/ops/index.js';
import { FloatModel } from '../../src/nn/runtime.js';
import { tf } from '../../src/nn/tf.js';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, int64Tensor, type Model, type Tensor } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';
import { buildZoo, zooNames } from '../../src/onnx/zoo/index.js';

/** Deterministic test inputs (not cryptographic). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function feedsFor(m: Model, batch: number, seed: number): Record<string, Tensor> {
  const r = lcg(seed);
  const feeds: Record<string, Tensor> = {};
  for (const v of m.graph.inputs) {
    if (m.graph.initializers.has(v.name)) continue;
    const dims = v.shape!.map((d) => (typeof d === 'number' ? d : batch));
    const n = dims.reduce((a, b) => a * b, 1);
    if (v.dtype === 'int64') {
      const gather = m.graph.nodes.find((x) => x.opType === 'Gather')!;
      const vocab = m.graph.initializers.get(gather.inputs[0]!)!.dims[0]!;
      feeds[v.name] = int64Tensor(
        dims,
        Array.from({ length: n }, () => Math.floor(r() * vocab)),
      );
    } else {
      feeds[v.name] = floatTensor(
        dims,
        Array.from({ length: n }, () => r() * 2 - 1),
      );
    }
  }
  return feeds;
}

/** max|a-b| / max|b|: relative to the output's scale, so near-zero entries do not dominate. */
function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-12);
}

async function compare(m: Model, batch: number, tol = 1e-4): Promise<number> {
  const feeds = feedsFor(m, batch, 42);
  const ref = await runOrt(m, feeds);
  const fm = await FloatModel.create(m, { source: m.graph.name });
  try {
    const out = fm.run(feeds);
    let worst = 0;
    for (const o of m.graph.outputs) {
      assert.deepEqual(out[o.name]!.dims, ref[o.name]!.dims, `${o.name} shape`);
      const e = relErr(out[o.name]!.data as Float32Array, ref[o.name]!.data as Float32Array);
      assert.ok(e <= tol, `${m.graph.name} output ${o.name}: relative error ${e.toExponential(2)} > ${tol}`);
      worst = Math.max(worst, e);
    }
    return worst;
  } finally {
    fm.dispose();
  }
}

// Every zoo model at its default options (the full-size networks), batch 1 or 2.
for (const name of zooNames) {
  test(`float runtime equals onnxruntime on zoo ${name} (defaults)`, { timeout: 300_000 }, async () => {
    await compare(buildZoo(name), name === 'fmnist-cnn' || name === 'lenet5' || name === 'resnet20' ? 4 : 1);
  });
}

const VARIANTS: [string, Record<string, string | number>][] = [
  ['fmnist-cnn', { pool: 'max' }],
  ['resnet20', { input: '3x32x32' }],
  ['mobilenetv2', { input: '3x64x64', width: 0.5, classes: 10 }],
  ['bert-base', { layers: 2, hidden: 64, heads: 4, seq: 8, vocab: 50 }],
];
for (const [name, opts] of VARIANTS) {
  test(`float runtime equals onnxruntime on zoo ${name} ${JSON.stringify(opts)}`, { timeout: 120_000 }, async () => {
    await compare(buildZoo(name, opts), 3);
  });
}

test('window ops with explicit/asymmetric pads, strides, ceil_mode, groups match onnxruntime', async () => {
  const r = lcg(7);
  const rnd = (n: number) => Array.from({ length: n }, () => r() - 0.5);
  const b = new GraphBuilder('windows');
  const x = b.input('x', 'float32', ['batch', 4, 11, 9]);
  let h = b.op('Conv', [x, b.init('w', floatTensor([6, 2, 3, 3], rnd(108))), b.init('b', floatTensor([6], rnd(6)))], {
    pads: [1, 0, 2, 1],
    strides: [2, 1],
    group: 2,
  });
  h = b.op('Relu', [h]);
  h = b.op('MaxPool', [h], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 });
  const dw = b.op('Conv', [h, b.init('dw', floatTensor([6, 1, 3, 3], rnd(54)))], { group: 6, auto_pad: 'SAME_UPPER' });
  const a1 = b.op('AveragePool', [dw], { kernel_shape: [2, 2], strides: [1, 1], pads: [1, 1, 0, 0] });
  const a2 = b.op('AveragePool', [dw], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], count_include_pad: 1 });
  const s = b.op('Add', [a1, b.op('Mul', [a2, b.init('c', floatTensor([6, 1, 1], rnd(6)))])]);
  const bn = b.op(
    'BatchNormalization',
    [
      s,
      ...['g', 'be', 'm', 'v'].map((n, i) =>
        b.init(
          n,
          floatTensor(
            [6],
            rnd(6).map((v) => (i === 3 ? 1 + v : v)),
          ),
        ),
      ),
    ],
    {
      epsilon: float(1e-3),
    },
  );
  const p = b.op('Pad', [bn, b.init('pads', int64Tensor([8], [0, 0, 1, 2, 0, 0, 2, 1]))], { mode: 'reflect' });
  const cat = b.op('Concat', [p, p], { axis: 1 });
  const g = b.op('GlobalAveragePool', [cat]);
  const f = b.op('Flatten', [g]);
  b.output(f, 'float32');
  b.output(b.op('Softmax', [b.op('Transpose', [bn], { perm: [0, 2, 3, 1] })], { axis: 1 }), 'float32');
  await compare(b.build(), 2);
});

test('unsupported op is a one-line error naming op, node and source', async () => {
  const b = new GraphBuilder('bad');
  const x = b.input('x', 'float32', [1, 3]);
  b.output(b.op('NoSuchOp', [x], {}, { name: 'hm1' }), 'float32');
  await assert.rejects(FloatModel.create(b.build(), { source: 'bad.onnx' }), /^ModelProblems: bad\.onnx: node 'hm1' \(NoSuchOp\): unsupported op$/);
});

test('wrong input shape is a one-line error naming the input', async () => {
  const fm = await FloatModel.create(buildZoo('fmnist-cnn'), { source: 'm.onnx' });
  assert.throws(
    () => fm.run({ input: floatTensor([1, 1, 27, 28]) }),
    /m\.onnx: input 'input' expects shape \[\?,1,28,28\], got \[1,1,27,28\]|expects shape \[.*\], got \[1,1,27,28\]/,
  );
  fm.dispose();
});

test('custom ops register without touching src/nn and train with gradients', async () => {
  // A trainable polynomial activation a*x^2 + b*x, as a later pillar would register.
  registerOp(
    'TestPoly',
    (ctx) => {
      const x = ctx.inputs[0]!;
      const c = ctx.inputs[1]!.t;
      const y = tf.add(tf.mul(tf.mul(x.t, x.t), tf.slice(c, [0], [1])), tf.mul(x.t, tf.slice(c, [1], [1])));
      return [{ t: y, layout: x.layout }];
    },
    'test.privml',
  );
  const b = new GraphBuilder('poly');
  const x = b.input('x', 'float32', ['batch', 2]);
  const y = b.op('TestPoly', [x, b.init('coef', floatTensor([2], [0.1, 0.5]))], {}, { domain: 'test.privml' });
  b.output(y, 'float32');
  const fm = await FloatModel.create(b.build());
  const coef = fm.params.get('coef')!;
  assert.equal(coef.trainable, true);
  const xs = tf.tensor2d([
    [1, 2],
    [3, -1],
  ]);
  const { grads } = tf.variableGrads(() => tf.sum(fm.forward({ x: xs })[y]!) as tf.Scalar, [coef]);
  // d/da sum(x^2) = 1+4+9+1 = 15, d/db sum(x) = 5
  assert.deepEqual(Array.from(grads[coef.name]!.dataSync()), [15, 5]);
  const back = fm.toModel();
  assert.deepEqual(Array.from(back.graph.initializers.get('coef')!.data as Float32Array), [0.1, 0.5].map(Math.fround));
  fm.dispose();
});
