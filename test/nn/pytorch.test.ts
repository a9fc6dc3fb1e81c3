/** Real PyTorch exports (test/fixtures/pytorch, made by make.py there): float runtime = PyTorch = onnxruntime. */

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FloatModel } from '../../src/nn/runtime.js';
import { canonicalize } from '../../src/onnx/canonical.js';
import type { Tensor } from '../../src/onnx/ir.js';
import { loadNpy } from '../../src/onnx/npy.js';
import { runOrt } from '../../src/onnx/ort.js';
import { loadModel } from '../../src/onnx/proto.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'pytorch');
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.onnx'))
  .map((f) => f.slice(0, -5))
  .sort();

function maxRel(got: Tensor, want: Tensor): number {
  assert.deepEqual(got.dims, want.dims);
  const g = got.data as Float32Array;
  const w = want.data as Float32Array;
  let scale = 0;
  for (const v of w) scale = Math.max(scale, Math.abs(v));
  let d = 0;
  for (let i = 0; i < w.length; i++) d = Math.max(d, Math.abs(g[i]! - w[i]!));
  return d / Math.max(scale, 1e-12);
}

test('fixtures exist and cover opsets 9 to 17', () => {
  assert.ok(names.length >= 5, names.join());
  for (const v of ['op9', 'op11', 'op13', 'op17'])
    assert.ok(
      names.some((n) => n.endsWith(v)),
      v,
    );
});

for (const name of names) {
  test(`PyTorch export ${name}: float runtime and canonical form agree with PyTorch and onnxruntime, twice`, async () => {
    const model = loadModel(join(dir, `${name}.onnx`));
    const x = loadNpy(join(dir, `${name}.input.npy`));
    const want = loadNpy(join(dir, `${name}.output.npy`));
    const fm = await FloatModel.create(model, { source: name });
    const first = fm.run({ [fm.inputNames[0]!]: x })[fm.outputNames[0]!]!;
    const second = fm.run({ [fm.inputNames[0]!]: x })[fm.outputNames[0]!]!;
    fm.dispose();
    assert.ok(maxRel(first, want) < 1e-5, `float runtime vs PyTorch: ${maxRel(first, want)}`);
    assert.deepEqual(second.data, first.data, 'second run differs (a weight was freed?)');
    const ort = (await runOrt(model, { [model.graph.inputs[0]!.name]: x }))[model.graph.outputs[0]!.name]!;
    const canon = canonicalize(model, { source: name }).model;
    const ortCanon = (await runOrt(canon, { [canon.graph.inputs[0]!.name]: x }))[canon.graph.outputs[0]!.name]!;
    assert.ok(maxRel(ort, want) < 1e-5, `onnxruntime vs PyTorch: ${maxRel(ort, want)}`);
    assert.ok(maxRel(ortCanon, ort) < 1e-6, 'the canonical form changes what onnxruntime computes');
    assert.ok(!canon.graph.nodes.some((n) => n.opType === 'Constant'), 'Constant nodes left after canonicalisation');
  });
}
