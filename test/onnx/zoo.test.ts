import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { Model } from '../../src/onnx/ir.js';
import { encodeModel } from '../../src/onnx/proto.js';
import { buildZoo, listZoo, paramCount, zooNames } from '../../src/onnx/zoo/index.js';
import { SeededRng } from '../../src/seeded-rng.js';

const BATCH = 2;
const ALLOWED_OPS = new Set(
  'Conv Gemm MatMul Add Sub Mul Div Relu Sigmoid Tanh Erf MaxPool AveragePool GlobalAveragePool BatchNormalization Flatten Reshape Transpose Concat Softmax LayerNormalization Pad Identity Constant Clip Gather'.split(
    ' ',
  ),
);
const SMALL_TF = { layers: 2, hidden: 128, heads: 4, seq: 16, vocab: 1000 };

/** Small configurations that run in ORT in well under a second each. */
const RUN_CASES: [string, Record<string, string | number>][] = [
  ['fmnist-cnn', {}],
  ['fmnist-cnn', { pool: 'max' }],
  ['lenet5', {}],
  ['lenet5', { pool: 'avg' }],
  ['resnet20', {}],
  ['resnet20', { input: '3x32x32', width: 8, classes: 100 }],
  ['resnet18', { input: '3x32x32', classes: 10 }],
  ['resnet50', { input: '3x32x32', classes: 10 }],
  ['vgg16', { input: '3x32x32', classes: 10 }],
  ['mobilenetv2', { input: '3x32x32', classes: 10 }],
  ['mobilenetv2', { input: '3x64x64', classes: 10, width: 0.5 }],
  ['bert-base', { ...SMALL_TF, classes: 3 }],
  ['gpt2-small', SMALL_TF],
];

/** Standard parameter counts (learned parameters only) at default options. */
const DEFAULT_PARAMS: Record<string, number> = {
  'fmnist-cnn': 20_490,
  lenet5: 61_706,
  // 269,722 in He et al.'s option-A ResNet-20 on 3 channels; here 1×1 projections (+2,752) and 1 input channel (−288).
  resnet20: 272_186,
  resnet18: 11_689_512,
  resnet50: 25_557_032,
  vgg16: 138_357_544,
  mobilenetv2: 3_504_872,
  // HF BertModel 109,482,240 − token-type embeddings (1,536) − 384 unused positions (294,912) + classifier (1,538).
  'bert-base': 109_187_330,
  // GPT-2 small 124,439,808 with 1024 positions; seq 64 keeps 64 of them (−737,280).
  'gpt2-small': 123_702_528,
};

function concreteDims(shape: (number | string | null)[] | undefined, batch: number): number[] {
  assert.ok(shape, 'declared shape');
  return shape.map((d) => (d === 'batch' ? batch : (d as number)));
}

function randomFeeds(m: Model, rng: SeededRng, batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const inp of m.graph.inputs) {
    const dims = concreteDims(inp.shape, batch);
    const n = dims.reduce((a, b) => a * b, 1);
    if (inp.dtype === 'int64') {
      const vocab = m.graph.initializers.get(m.graph.nodes.find((x) => x.opType === 'Gather')!.inputs[0]!)!.dims[0]!;
      feeds[inp.name] = new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, () => BigInt(rng.u32() % vocab)),
        dims,
      );
    } else {
      feeds[inp.name] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: n }, () => rng.normal()),
        dims,
      );
    }
  }
  return feeds;
}

async function run(m: Model, feeds: Record<string, ort.Tensor>): Promise<ort.InferenceSession.OnnxValueMapType> {
  const s = await ort.InferenceSession.create(encodeModel(m));
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

/** Default-size models cheap enough (< ~1 s) to also run in ORT; vgg16, bert-base, gpt2-small are only built. */
const RUN_AT_DEFAULTS = new Set(['fmnist-cnn', 'lenet5', 'resnet20', 'resnet18', 'resnet50', 'mobilenetv2']);

/** Run `m` on random input and check every declared output: shape, finiteness, batch dependence. */
async function checkOutputs(m: Model, batch: number, seed: number): Promise<void> {
  const out = await run(m, randomFeeds(m, new SeededRng(seed), batch));
  for (const decl of m.graph.outputs) {
    const t = out[decl.name];
    assert.ok(t, `output ${decl.name}`);
    assert.equal(decl.dtype, 'float32');
    assert.equal(decl.shape?.[0], 'batch');
    assert.deepEqual([...t.dims], concreteDims(decl.shape, batch), `${decl.name} shape`);
    const data = t.data as Float32Array;
    assert.ok(data.every(Number.isFinite), `${decl.name} has non-finite values`);
    if (batch > 1) {
      // Different random samples must give different outputs (the network is not degenerate).
      const per = data.length / batch;
      assert.ok(
        data.subarray(0, per).some((v, i) => v !== data[per + i]),
        `${decl.name} identical across the batch`,
      );
    }
  }
}

for (const [name, opts] of RUN_CASES) {
  test(`zoo ${name} ${JSON.stringify(opts)} runs in ORT with finite outputs of the declared shape`, async () => {
    const m = buildZoo(name, opts);
    assert.deepEqual(m.opsetImports, [{ domain: '', version: 17 }]);
    for (const n of m.graph.nodes) assert.ok(ALLOWED_OPS.has(n.opType), `op ${n.opType} (${n.name}) not in the zoo op set`);
    assert.ok(m.graph.outputs.some((o) => o.name === 'logits'));
    await checkOutputs(m, BATCH, 7);
  });
}

for (const entry of listZoo()) {
  test(`zoo ${entry.name} at default options has the standard parameter count`, async () => {
    const m = entry.build();
    assert.equal(paramCount(m), DEFAULT_PARAMS[entry.name]);
    assert.equal(m.metadata['privml.zoo.model'], entry.name);
    assert.deepEqual(m.opsetImports, [{ domain: '', version: 17 }]);
    for (const n of m.graph.nodes) assert.ok(ALLOWED_OPS.has(n.opType), `op ${n.opType} (${n.name}) not in the zoo op set`);
    if (RUN_AT_DEFAULTS.has(entry.name)) await checkOutputs(m, 1, 3);
  });
}

test('gpt2-small attention is causal: changing the last token leaves earlier logits unchanged', async () => {
  const m = buildZoo('gpt2-small', SMALL_TF);
  const ids = BigInt64Array.from({ length: SMALL_TF.seq }, (_, i) => BigInt((i * 31) % SMALL_TF.vocab));
  const ids2 = ids.slice();
  ids2[SMALL_TF.seq - 1] = 999n;
  const dims = [1, SMALL_TF.seq];
  const a = (await run(m, { input_ids: new ort.Tensor('int64', ids, dims) })).logits!.data as Float32Array;
  const b = (await run(m, { input_ids: new ort.Tensor('int64', ids2, dims) })).logits!.data as Float32Array;
  const upTo = (SMALL_TF.seq - 1) * SMALL_TF.vocab;
  for (let i = 0; i < upTo; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-4, `logit ${i} changed`);
  assert.ok(
    a.subarray(upTo).some((v, i) => Math.abs(v - b[upTo + i]!) > 1e-4),
    'last position should change',
  );
});

test('bert-base attention is bidirectional: changing the last token changes the [CLS] logits', async () => {
  const m = buildZoo('bert-base', SMALL_TF);
  const ids = BigInt64Array.from({ length: SMALL_TF.seq }, (_, i) => BigInt((i * 31) % SMALL_TF.vocab));
  const ids2 = ids.slice();
  ids2[SMALL_TF.seq - 1] = 999n;
  const dims = [1, SMALL_TF.seq];
  const a = (await run(m, { input_ids: new ort.Tensor('int64', ids, dims) })).logits!.data as Float32Array;
  const b = (await run(m, { input_ids: new ort.Tensor('int64', ids2, dims) })).logits!.data as Float32Array;
  assert.ok(a.some((v, i) => Math.abs(v - b[i]!) > 1e-5));
});

test('zoo weights are deterministic in the seed', () => {
  const a = buildZoo('resnet20');
  const b = buildZoo('resnet20', { seed: 0 });
  const c = buildZoo('resnet20', { seed: '1' });
  const w = (m: Model): Float32Array => m.graph.initializers.get('layer1.0.1.conv.weight')!.data as Float32Array;
  assert.deepEqual(w(a), w(b));
  assert.notDeepEqual(w(a), w(c));
  // He-normal std √(2 / fan_in) for a 16×16×3×3 conv.
  const v = w(a);
  const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  assert.ok(Math.abs(std - Math.sqrt(2 / 144)) < 0.01, `std ${std}`);
  const variance = a.graph.initializers.get('layer1.0.1.bn.running_var')!.data as Float32Array;
  assert.ok(variance.every((x) => x >= 0.9 && x <= 1.1) && variance.some((x) => x !== 1));
});

test('pool option selects the pooling op', () => {
  const ops = (m: Model): string[] => m.graph.nodes.map((n) => n.opType);
  assert.ok(ops(buildZoo('fmnist-cnn')).includes('AveragePool'));
  assert.ok(!ops(buildZoo('fmnist-cnn', { pool: 'max' })).includes('AveragePool'));
  assert.ok(ops(buildZoo('lenet5')).includes('MaxPool'));
});

test('zoo errors name the model and option', () => {
  assert.throws(
    () => buildZoo('alexnet'),
    (e: Error) => e.message === `unknown zoo model 'alexnet' (known: ${zooNames.join(', ')})`,
  );
  assert.throws(() => buildZoo('fmnist-cnn', { pool: 'min' }), /option 'pool' must be one of avg, max/);
  assert.throws(() => buildZoo('resnet20', { input: '28x28' }), /option 'input'/);
  assert.throws(() => buildZoo('resnet20', { classes: 0 }), /option 'classes' must be >= 1/);
  assert.throws(() => buildZoo('mobilenetv2', { width: 'wide' }), /option 'width' must be a number/);
  assert.throws(() => buildZoo('bert-base', { hidden: 100, heads: 12 }), /option 'heads'/);
  assert.throws(() => buildZoo('lenet5', { depth: 3 }), /unknown option 'depth'/);
  for (const e of listZoo()) for (const o of e.options) assert.ok(o.description && o.default !== undefined);
});

test('option weights=zero builds the same graph as the drawn weights (nodes, initializer shapes, constants), float weights all zero', () => {
  for (const name of zooNames) {
    const small: Record<string, string | number> = /^(bert|gpt)/.test(name)
      ? { layers: 1, hidden: 32, heads: 2, seq: 4, vocab: 50 }
      : /^(resnet(18|50)|vgg|mobilenet)/.test(name)
        ? { input: '3x32x32' }
        : {};
    const drawn = buildZoo(name, small);
    const bare = buildZoo(name, { ...small, weights: 'zero' });
    assert.deepEqual(
      bare.graph.nodes.map((n) => [n.opType, n.inputs, n.outputs]),
      drawn.graph.nodes.map((n) => [n.opType, n.inputs, n.outputs]),
      name,
    );
    assert.deepEqual([...bare.graph.initializers.keys()], [...drawn.graph.initializers.keys()], name);
    let drawnNonzero = 0;
    for (const [k, t] of bare.graph.initializers) {
      const d = drawn.graph.initializers.get(k)!;
      assert.deepEqual(t.dims, d.dims, `${name} ${k}`);
      // Learned parameters are zero; constants (shapes, Clip bounds, masks, scalars) are the drawn graph's own.
      if (k.startsWith('const.'))
        assert.deepEqual(Array.from(t.data as ArrayLike<number | bigint>), Array.from(d.data as ArrayLike<number | bigint>), `${name} ${k}`);
      else if (t.dtype === 'float32') {
        assert.ok(
          (t.data as Float32Array).every((v) => v === 0),
          `${name} ${k} not zero`,
        );
        drawnNonzero += (d.data as Float32Array).some((v) => v !== 0) ? 1 : 0;
      }
    }
    assert.ok(drawnNonzero > 0, `${name}: the drawn model has weights`);
  }
});
