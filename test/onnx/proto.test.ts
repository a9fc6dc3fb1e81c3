import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pkg from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { float, floats, GraphBuilder } from '../../src/onnx/builder.js';
import type { Model, Tensor } from '../../src/onnx/ir.js';
import { floatTensor, int64Tensor, ModelError } from '../../src/onnx/ir.js';
import { decodeModel, encodeModel, loadModel, saveModel } from '../../src/onnx/proto.js';

const { onnx } = pkg;

/** Drop undefined-valued keys so `{a: undefined}` equals `{}` (the builder is not consistent about it). */
function strip(v: unknown): unknown {
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, strip(x)]));
  if (Array.isArray(v)) return v.map(strip);
  if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => [k, strip(x)]),
    );
  }
  return v;
}

/** A model using every attribute kind, every dtype, symbolic/unknown dims, metadata and doc strings. */
function richModel(): Model {
  const sub = new GraphBuilder('then_branch');
  const c = sub.op('Constant', [], { value: floatTensor([2], [1, 2]) });
  sub.output(c, 'float32', [2]);
  const els = new GraphBuilder('else_branch');
  const d = els.op('Constant', [], { value: floatTensor([2], [3, 4]) });
  els.output(d, 'float32', [2]);

  const b = new GraphBuilder('rich');
  const x = b.input('x', 'float32', ['batch', 3, null, 4]);
  const cond = b.input('cond', 'bool', []);
  const tensors: Tensor[] = [
    { dtype: 'float64', dims: [2], data: new Float64Array([Math.PI, -1e300]) },
    { dtype: 'int64', dims: [3], data: new BigInt64Array([-(2n ** 62n), 0n, 2n ** 60n + 1n]) },
    { dtype: 'int32', dims: [2], data: new Int32Array([-7, 2 ** 30]) },
    { dtype: 'int16', dims: [2], data: new Int16Array([-300, 300]) },
    { dtype: 'int8', dims: [3], data: new Int8Array([-128, 0, 127]) },
    { dtype: 'uint8', dims: [1, 2], data: new Uint8Array([0, 255]) },
    { dtype: 'bool', dims: [2], data: new Uint8Array([1, 0]) },
    { dtype: 'float32', dims: [], data: new Float32Array([0.5]) },
  ];
  for (const t of tensors) b.init(`w_${t.dtype}`, t);
  const w = b.init(
    'w',
    floatTensor(
      [4, 4],
      Array.from({ length: 16 }, (_, i) => i / 8),
    ),
  );
  const y = b.op('MatMul', [x, w], {}, { name: 'mm' });
  const z = b.op('LeakyRelu', [y], { alpha: float(0.25) });
  const s = b.op(
    'Custom',
    [z, ''],
    { ints: [1, -2, 2 ** 40], floats: floats([0.5, -1.5]), mode: 'edge', names: ['a', 'é'], t: int64Tensor([2], [5, -6]) },
    { domain: 'com.example' },
  );
  const br = b.op('If', [cond], { then_branch: { kind: 'graph', value: sub.graph() }, else_branch: { kind: 'graph', value: els.graph() } });
  b.output(s, 'float32', ['batch', 3, null, 4]);
  b.output(br, 'float32');
  const m = b.build({ author: 'test', licence: 'MIT' });
  m.docString = 'a model';
  m.domain = 'org.privml';
  m.modelVersion = 7;
  m.graph.docString = 'graph doc';
  m.graph.nodes[0]!.docString = 'node doc';
  m.graph.inputs[0]!.docString = 'input doc';
  m.graph.valueInfo.push({ name: y, dtype: 'float32', shape: ['batch', 3, null, 4] }, { name: z, dtype: 'float32' });
  // A graph input that is also an initializer (legal: an overridable default).
  m.graph.inputs.push({ name: w, dtype: 'float32', shape: [4, 4] });
  return m;
}

test('round trip keeps every field', () => {
  const m = richModel();
  const bytes = encodeModel(m);
  const back = decodeModel(bytes, 'rich.onnx');
  assert.deepEqual(strip(back), strip(m));
  assert.ok(back.graph.initializers.get('w_int64')!.data instanceof BigInt64Array);
  // Re-encoding the decoded model gives identical bytes.
  assert.deepEqual(encodeModel(back), bytes);
});

test('decodes typed-field tensor data and Long attributes', () => {
  const bytes = onnx.ModelProto.encode({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'g',
      initializer: [
        { name: 'f', dims: [2], dataType: 1, floatData: [1.5, -2] },
        { name: 'i8', dims: [2], dataType: 3, int32Data: [-5, 6] },
        { name: 'b', dims: [3], dataType: 9, int32Data: [1, 0, 1] },
        { name: 'i64', dims: [2], dataType: 7, int64Data: [-3, 9007199254740993n.toString() as unknown as number] },
        { name: 'd', dims: [1], dataType: 11, doubleData: [0.1] },
      ],
      node: [{ name: 'n', opType: 'Foo', attribute: [{ name: 'k', type: 2, i: -(2 ** 40) }] }],
      output: [{ name: 'f', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }] } } } }],
    },
  }).finish();
  const m = decodeModel(bytes, 'typed.onnx');
  const init = m.graph.initializers;
  assert.deepEqual(init.get('f')!.data, new Float32Array([1.5, -2]));
  assert.deepEqual(init.get('i8')!.data, new Int8Array([-5, 6]));
  assert.deepEqual(init.get('b')!.data, new Uint8Array([1, 0, 1]));
  assert.deepEqual(init.get('i64')!.data, new BigInt64Array([-3n, 9007199254740993n]));
  assert.deepEqual(init.get('d')!.data, new Float64Array([0.1]));
  assert.deepEqual(m.graph.nodes[0]!.attrs.k, { kind: 'int', value: -(2 ** 40) });
  assert.deepEqual(m.graph.outputs[0]!.shape, [2]);
});

test('an int64 attribute beyond 2^53 is a ModelError naming node and attribute', () => {
  const bytes = onnx.ModelProto.encode({
    irVersion: 8,
    graph: { node: [{ name: 'big', opType: 'Foo', attribute: [{ name: 'k', type: 2, i: '9007199254740993' as unknown as number }] }] },
  }).finish();
  assert.throws(
    () => decodeModel(bytes, 'big.onnx'),
    (e: Error) => e instanceof ModelError && /big\.onnx: node 'big' \(Foo\) attribute 'k'.*does not fit/.test(e.message),
  );
});

test('unsupported content is a one-line ModelError naming file and tensor', () => {
  const enc = (graph: object) => onnx.ModelProto.encode({ irVersion: 8, graph }).finish();
  const cases: [Uint8Array, RegExp][] = [
    [
      enc({ initializer: [{ name: 'h', dims: [1], dataType: 10, rawData: new Uint8Array(2) }] }),
      /^m\.onnx: initializer 'h': unsupported element type float16$/,
    ],
    [
      enc({ initializer: [{ name: 'e', dims: [1], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: 'w.bin' }] }] }),
      /^m\.onnx: initializer 'e': external tensor data/,
    ],
    [enc({ initializer: [{ name: 'r', dims: [3], dataType: 1, rawData: new Uint8Array(8) }] }), /^m\.onnx: initializer 'r': raw_data has 8 bytes/],
    // Found by `npm run fuzz` (seed 14): dims whose product cannot be allocated, with no data, crashed with a RangeError.
    [enc({ initializer: [{ name: 'z', dims: [990000, 125912549, 26, 71], dataType: 1 }] }), /^m\.onnx: initializer 'z': has 0 elements, shape/],
    [enc({ initializer: [{ name: 'n', dims: [-4], dataType: 1, floatData: [1] }] }), /^m\.onnx: initializer 'n': has 1 elements, shape \[-4\]/],
    [enc({ input: [{ name: 's', type: { tensorType: { elemType: 8 } } }] }), /^m\.onnx: input 's': unsupported element type string$/],
    [
      enc({ node: [{ name: 'c', opType: 'Constant', attribute: [{ name: 'sparse_value', type: 11 }] }] }),
      /^m\.onnx: node 'c' \(Constant\) attribute 'sparse_value'.*not supported$/,
    ],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(
      () => decodeModel(bytes, 'm.onnx'),
      (e: Error) => e instanceof ModelError && re.test(e.message) && !e.message.includes('\n'),
      re.source,
    );
  }
});

test('truncated or garbage bytes give "not a valid ONNX model"', () => {
  const bytes = encodeModel(richModel());
  const bad = (b: Uint8Array) =>
    assert.throws(
      () => decodeModel(b, 'bad.onnx'),
      (e: Error) => e instanceof ModelError && /^bad\.onnx: not a valid ONNX model \(.+\)$/.test(e.message),
    );
  for (const cut of [1, 10, bytes.length >> 1, bytes.length - 3]) bad(bytes.subarray(0, cut));
  bad(new Uint8Array(0));
  let s = 12345;
  for (let k = 0; k < 50; k++) {
    const g = new Uint8Array(64 + k * 13);
    for (let i = 0; i < g.length; i++) g[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    bad(g);
  }
});

test('loadModel / saveModel round trip; a missing file is named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-proto-'));
  try {
    const p = join(dir, 'm.onnx');
    const m = richModel();
    saveModel(m, p);
    assert.deepEqual(strip(loadModel(p)), strip(m));
    const missing = join(dir, 'nope.onnx');
    assert.throws(() => loadModel(missing), new ModelError(`${missing}: no such file`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('onnxruntime runs an encoded Gemm+Relu model', async () => {
  const b = new GraphBuilder('gemm_relu');
  const x = b.input('x', 'float32', ['batch', 3]);
  const w = b.init('w', floatTensor([2, 3], [1, 0, -1, 0.5, 2, 0]));
  const bias = b.init('b', floatTensor([2], [0.25, -10]));
  const y = b.op('Relu', [b.op('Gemm', [x, w, bias], { transB: 1, alpha: float(2) })], {}, { output: 'y' });
  b.output(y, 'float32', ['batch', 2]);
  const sess = await ort.InferenceSession.create(encodeModel(b.build()));
  const xs = [1, 2, 3, -1, 4, -2];
  const out = await sess.run({ x: new ort.Tensor('float32', Float32Array.from(xs), [2, 3]) });
  // y = relu(2 * x @ w^T + b)
  const exp: number[] = [];
  for (let r = 0; r < 2; r++) {
    const [a0, a1, a2] = xs.slice(r * 3, r * 3 + 3) as [number, number, number];
    exp.push(Math.max(0, 2 * (a0 - a2) + 0.25), Math.max(0, 2 * (0.5 * a0 + 2 * a1) - 10));
  }
  assert.deepEqual(out.y!.dims, [2, 2]);
  assert.deepEqual(Array.from(out.y!.data as Float32Array), exp);
});
