import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FloatModel } from '../../src/nn/runtime.js';
import { tf } from '../../src/nn/tf.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, type Model, type Tensor } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';
import {
  expandPafs,
  isPafCoefficient,
  META_PAF,
  META_PAF_LAYERS,
  META_PAF_SCALES,
  pafLayers,
  replaceActivations,
  withStaticScales,
} from '../../src/smartpaf/graph.js';
import { PafScaleRecorder, SMARTPAF_DOMAIN } from '../../src/smartpaf/ops.js';
import { getPaf, listPafs, PAF_NAMES } from '../../src/smartpaf/paf.js';

/** Deterministic test inputs (not cryptographic). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}
const rand = (dims: number[], seed: number, amp = 1): Tensor => {
  const r = lcg(seed);
  return floatTensor(
    dims,
    Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * amp),
  );
};

/** max|a−b| / max|b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-12);
}

function reluModel(shape: (number | string)[]): Model {
  const b = new GraphBuilder('relu');
  const x = b.input('x', 'float32', shape);
  b.output(b.op('Relu', [x], {}, { name: 'act' }), 'float32', shape);
  return b.build();
}

/** Conv → Relu → MaxPool(3×3/2, pads 1, ceil_mode) → Conv → Relu → MaxPool(2×2/2) → Flatten → Gemm. */
function cnn(): Model {
  const b = new GraphBuilder('pafcnn');
  const x = b.input('x', 'float32', ['batch', 2, 9, 9]);
  let h = b.op('Conv', [x, b.init('w1', rand([4, 2, 3, 3], 1, 0.5)), b.init('b1', rand([4], 2, 0.1))], { pads: [1, 1, 1, 1] });
  h = b.op('Relu', [h], {}, { name: 'relu_a' });
  h = b.op('MaxPool', [h], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }, { name: 'pool_a' });
  h = b.op('Conv', [h, b.init('w2', rand([3, 4, 3, 3], 3, 0.4))], { pads: [1, 1, 1, 1] });
  h = b.op('Relu', [h], {}, { name: 'relu_b' });
  h = b.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool_b' });
  h = b.op('Flatten', [h]);
  b.output(b.op('Gemm', [h, b.init('wf', rand([5, 12], 4, 0.3))], { transB: 1 }), 'float32');
  return b.build();
}

test('PafRelu with static scale equals the float64 PAF, and PAF ReLU approximates ReLU (per-PAF max error)', async () => {
  const s = 3;
  const n = 4001;
  const xs = floatTensor(
    [1, n],
    Array.from({ length: n }, (_, i) => -s + (2 * s * i) / (n - 1)),
  );
  const errors: Record<string, number> = {};
  for (const paf of listPafs()) {
    const m = replaceActivations(reluModel([1, n]), paf, { scaleMode: 'static', scales: { act: s } });
    const fm = await FloatModel.create(m);
    const y = fm.run({ x: xs })[m.graph.outputs[0]!.name]!.data as Float32Array;
    fm.dispose();
    let vsPaf = 0;
    let vsRelu = 0;
    for (let i = 0; i < n; i++) {
      const x = (xs.data as Float32Array)[i]!;
      vsPaf = Math.max(vsPaf, Math.abs(y[i]! - paf.relu(x, s)));
      vsRelu = Math.max(vsRelu, Math.abs(y[i]! - Math.max(x, 0)));
    }
    assert.ok(vsPaf <= 2e-5 * s, `${paf.name}: runtime vs float64 ${vsPaf}`);
    errors[paf.name] = vsRelu / s;
  }
  // Max |PAF ReLU − ReLU| on [−s, s], relative to s (measured: see the report); ordering is the point.
  const bound: Record<string, number> = { f1g2: 0.09, f2g2: 0.075, f2g3: 0.13, a7: 0.008, 'f1sq-g1sq': 0.05, minimax27: 1e-3 };
  for (const name of PAF_NAMES) assert.ok(errors[name]! <= bound[name]!, `${name}: ReLU error ${errors[name]} > ${bound[name]}`);
  assert.ok(errors['minimax27']! < errors['a7']! && errors['a7']! < errors['f1sq-g1sq']!);
});

test('dynamic scale divides by max|x| of the batch and records the running max while training', async () => {
  const paf = getPaf('a7');
  const m = replaceActivations(reluModel(['batch', 3]), paf);
  const rec = new PafScaleRecorder();
  const fm = await FloatModel.create(m, { options: { smartpaf: { recorder: rec } } });
  const x = tf.tensor2d([
    [-2, 0.5, 1],
    [0.25, -0.1, 1.5],
  ]);
  const y = fm.forward({ x })[m.graph.outputs[0]!.name]!.dataSync();
  const flat = [-2, 0.5, 1, 0.25, -0.1, 1.5];
  flat.forEach((v, i) => assert.ok(Math.abs(y[i]! - paf.relu(v, 2)) < 1e-5, `y[${i}]`));
  assert.equal(rec.runningMax.size, 0, 'inference does not record by default');
  fm.forward({ x: tf.mul(x, 3) }, { training: true });
  fm.forward({ x }, { training: true });
  assert.deepEqual(rec.scales(), { act: 6 });
  fm.dispose();
});

test('gradients reach the PAF coefficients and the input', async () => {
  for (const name of ['f1g2', 'minimax27']) {
    const paf = getPaf(name);
    const m = replaceActivations(cnn(), paf);
    const coefNames = [...m.graph.initializers.keys()].filter((k) => isPafCoefficient(k, m));
    assert.equal(coefNames.length, 4 * paf.stages.length, 'one coefficient tensor per stage per layer');
    const fm = await FloatModel.create(m);
    const vars = coefNames.map((k) => fm.params.get(k)!);
    assert.ok(
      vars.every((v) => v.trainable),
      'coefficients are trainable variables',
    );
    const x = tf.tensor(Array.from(rand([2, 2, 9, 9], 11).data as Float32Array), [2, 2, 9, 9]);
    const out = m.graph.outputs[0]!.name;
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(fm.forward({ x }, { training: true })[out]!)) as tf.Scalar, vars);
    for (const v of vars) {
      const g = grads[v.name]!.dataSync();
      assert.ok(g.every(Number.isFinite), `${name} ${v.name}: finite gradient`);
      assert.ok(
        g.some((e) => e !== 0),
        `${name} ${v.name}: nonzero gradient`,
      );
    }
    const gx = tf
      .grad((xi: tf.Tensor) => tf.sum(fm.forward({ x: xi })[out]!))(x)
      .dataSync();
    assert.ok(gx.every(Number.isFinite) && gx.some((e) => e !== 0), `${name}: gradient w.r.t. x`);
    // Trained coefficients are written back as initializers.
    vars[0]!.assign(tf.add(vars[0]!, 0.01));
    const back = pafLayers(fm.toModel());
    assert.ok(Math.abs(back[0]!.stages[0]![0]! - (paf.stages[0]![0]! + 0.01)) < 1e-5);
    fm.dispose();
  }
});

test('PafMaxPool is a PAF max tree over edge-padded windows (exact-max semantics with an exact sign)', async () => {
  // A 'PAF' whose sign is exact enough (minimax27) must reproduce MaxPool, pads and ceil_mode included.
  const b = new GraphBuilder('pool');
  const x = b.input('x', 'float32', [1, 2, 7, 6]);
  b.output(b.op('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 0, 1, 1], ceil_mode: 1 }, { name: 'mp' }), 'float32');
  const m0 = b.build();
  const feeds = { x: rand([1, 2, 7, 6], 5, 2) };
  const ref = (await runOrt(m0, feeds))[m0.graph.outputs[0]!.name]!;
  const paf = getPaf('minimax27');
  const m = replaceActivations(m0, paf, { scaleMode: 'static', scales: { mp: 4 } });
  const fm = await FloatModel.create(m);
  const y = fm.run(feeds)[m.graph.outputs[0]!.name]!;
  fm.dispose();
  assert.deepEqual(y.dims, ref.dims);
  assert.ok(relErr(y.data as Float32Array, ref.data as Float32Array) < 0.01, 'close to the exact MaxPool');
  // Exactly the float64 tree: window row-major, pairwise levels, edge padding.
  const xd = feeds.x.data as Float32Array;
  const at = (c: number, i: number, j: number) => xd[c * 42 + Math.min(Math.max(i, 0), 6) * 6 + Math.min(Math.max(j, 0), 5)]!;
  const [oh, ow] = [y.dims[2]!, y.dims[3]!];
  for (let c = 0; c < 2; c++) {
    for (let r = 0; r < oh; r++) {
      for (let q = 0; q < ow; q++) {
        let vals: number[] = [];
        for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) vals.push(at(c, r * 2 - 1 + i, q * 2 + j));
        while (vals.length > 1) {
          const next: number[] = [];
          for (let k = 0; k + 1 < vals.length; k += 2) next.push(paf.max(vals[k]!, vals[k + 1]!, 4));
          if (vals.length % 2) next.push(vals[vals.length - 1]!);
          vals = next;
        }
        const got = (y.data as Float32Array)[(c * oh + r) * ow + q]!;
        assert.ok(Math.abs(got - vals[0]!) < 1e-4, `(${c},${r},${q}): ${got} vs ${vals[0]}`);
      }
    }
  }
});

test('expanded model in onnxruntime equals the runtime ops with static scale (1e-4 relative)', async () => {
  const feeds = { x: rand([3, 2, 9, 9], 21, 1.5) };
  for (const name of PAF_NAMES) {
    const paf = getPaf(name);
    const dyn = replaceActivations(cnn(), paf);
    const rec = new PafScaleRecorder();
    const fd = await FloatModel.create(dyn, { options: { smartpaf: { recorder: rec, recordInInference: true } } });
    fd.run(feeds);
    fd.dispose();
    const scales = rec.scales();
    assert.deepEqual(Object.keys(scales).sort(), ['pool_a', 'pool_b', 'relu_a', 'relu_b']);
    const stat = withStaticScales(dyn, scales);
    const fm = await FloatModel.create(stat);
    const want = fm.run(feeds)[stat.graph.outputs[0]!.name]!;
    fm.dispose();
    const exp = expandPafs(stat);
    assert.ok(!exp.graph.nodes.some((n) => n.domain === SMARTPAF_DOMAIN), 'no custom ops left');
    assert.ok(!exp.opsetImports.some((o) => o.domain === SMARTPAF_DOMAIN));
    assert.equal(exp.metadata[META_PAF], name);
    assert.deepEqual(JSON.parse(exp.metadata[META_PAF_SCALES]!), scales);
    const layers = JSON.parse(exp.metadata[META_PAF_LAYERS]!) as { node: string; stages: number[][]; kind: string }[];
    assert.deepEqual(
      layers.map((l) => [l.node, l.kind]),
      [
        ['relu_a', 'relu'],
        ['pool_a', 'maxpool'],
        ['relu_b', 'relu'],
        ['pool_b', 'maxpool'],
      ],
    );
    assert.equal(layers[0]!.stages.length, paf.stages.length);
    const got = (await runOrt(exp, feeds))[exp.graph.outputs[0]!.name]!;
    const e = relErr(got.data as Float32Array, want.data as Float32Array);
    assert.ok(e <= 1e-4, `${name}: ORT vs runtime relative error ${e}`);
  }
});

test('static scale reports inputs outside [−s, s]', async () => {
  const m = replaceActivations(reluModel([1, 4]), getPaf('f1g2'), { scaleMode: 'static', scales: { act: 1 } });
  const rec = new PafScaleRecorder();
  const fm = await FloatModel.create(m, { options: { smartpaf: { recorder: rec } } });
  fm.run({ x: floatTensor([1, 4], [0.5, -1.5, 3, 0.9]) });
  fm.dispose();
  assert.deepEqual(rec.range.get('act'), { outside: 2, total: 4, maxRatio: 3 });
  // The static scale may also come from an input (here an initializer) instead of the attribute.
  const n = m.graph.nodes[0]!;
  m.graph.initializers.set('s', floatTensor([], [2]));
  n.inputs.push('s');
  delete n.attrs['scale'];
  const fs = await FloatModel.create(m);
  const y = fs.run({ x: floatTensor([1, 4], [0.5, -1.5, 3, 0.9]) })[m.graph.outputs[0]!.name]!.data as Float32Array;
  fs.dispose();
  [0.5, -1.5, 3, 0.9].forEach((v, i) => assert.ok(Math.abs(y[i]! - getPaf('f1g2').relu(v, 2)) < 1e-5));
  assert.equal(pafLayers(m)[0]!.scale, 2);
});

test('bad input: clear one-line errors', async () => {
  const noAct = new GraphBuilder('plain');
  const x = noAct.input('x', 'float32', [1, 2]);
  noAct.output(noAct.op('Sigmoid', [x]), 'float32');
  assert.throws(() => replaceActivations(noAct.build(), getPaf('a7'), { source: 'plain.onnx' }), /plain\.onnx: no Relu or MaxPool node to replace with a PAF/);
  assert.throws(
    () => replaceActivations(cnn(), getPaf('a7'), { scaleMode: 'static', scales: { relu_a: 2 } }),
    /node 'pool_a': static scale mode needs a positive scale/,
  );
  assert.throws(() => replaceActivations(cnn(), getPaf('a7'), { nodes: ['relu_z'] }), /no Relu\/MaxPool node named 'relu_z'/);
  const dyn = replaceActivations(cnn(), getPaf('a7'));
  assert.throws(() => expandPafs(dyn, { source: 'm.onnx' }), /m\.onnx: node 'relu_a' has dynamic scale and no static scale was given/);
  assert.throws(() => withStaticScales(dyn, { relu_a: 1 }), /node 'pool_a' \(PafMaxPool\): no positive static scale/);
  // Progressive Approximation: one layer at a time keeps the rest exact.
  const one = replaceActivations(cnn(), getPaf('a7'), { nodes: ['relu_b'] });
  assert.deepEqual(
    pafLayers(one).map((l) => l.node),
    ['relu_b'],
  );
  assert.equal(one.graph.nodes.filter((n) => n.opType === 'Relu').length, 1);
  const tuned = replaceActivations(cnn(), getPaf('f1g2'), {
    maxPool: false,
    coefficients: {
      relu_a: [
        [1, -0.25],
        [3, -5, 3],
      ],
    },
  });
  assert.deepEqual(pafLayers(tuned)[0]!.stages, [
    [1, -0.25],
    [3, -5, 3],
  ]);
  assert.equal(tuned.graph.nodes.filter((n) => n.opType === 'MaxPool').length, 2);
});
