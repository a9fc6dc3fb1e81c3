/**
 * Proteus on models privml did not write: the real PyTorch exports of test/fixtures/pytorch, the
 * onnx.helper model of test/fixtures/onnx-helper and the CNTK export of test/fixtures/cntk go through obfuscate → optimize (onnxruntime) →
 * recover, as `privml proteus` runs them (canonical form on static input shapes first), and the
 * recovered model still computes PyTorch's output on the committed input and has every fused op
 * that onnxruntime writes when it optimizes the whole graph (the cuts cost no fusion).
 */

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { canonicalize } from '../../src/onnx/canonical.js';
import type { Model, Tensor } from '../../src/onnx/ir.js';
import { loadNpy } from '../../src/onnx/npy.js';
import { runOrt } from '../../src/onnx/ort.js';
import { loadModel } from '../../src/onnx/proto.js';
import { corpusStats, obfuscate, optimizeBundle, optimizeModel, recover } from '../../src/proteus/index.js';

const fx = join(import.meta.dirname, '..', 'fixtures');
const stats = corpusStats();

/** The model with its one input's dims fixed to those of `x` (what --input-shape does). */
function withShape(m: Model, x: Tensor): Model {
  const inputs = m.graph.inputs.map((v, i) => (i === 0 ? { ...v, shape: [...x.dims] } : v));
  return { ...m, graph: { ...m.graph, inputs } };
}

/** Count of each op outside the default domain: what onnxruntime's fusions wrote. */
function fusedOps(m: Model): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of m.graph.nodes) if (n.domain && n.domain !== 'ai.onnx') h[`${n.domain}.${n.opType}`] = (h[`${n.domain}.${n.opType}`] ?? 0) + 1;
  return h;
}

function maxRel(got: Tensor, want: Tensor): number {
  assert.deepEqual(got.dims, want.dims);
  const g = got.data as Float32Array;
  const w = want.data as Float32Array;
  let scale = 0;
  let d = 0;
  for (let i = 0; i < w.length; i++) {
    scale = Math.max(scale, Math.abs(w[i]!));
    d = Math.max(d, Math.abs(g[i]! - w[i]!));
  }
  return d / Math.max(scale, 1e-12);
}

for (const [dir, name] of [
  ['pytorch', 'tinyresnet_op13'],
  ['pytorch', 'tinysqueeze_op9'],
  ['pytorch', 'bertlike_op13'],
  ['pytorch', 'gpt2like_op13'],
  ['onnx-helper', 'oldopset7'],
  ['cntk', 'mnist8'],
] as const) {
  test(`proteus obfuscate → optimize → recover on the ${dir} export ${name}: recovered model = original`, async () => {
    const original = loadModel(join(fx, dir, `${name}.onnx`));
    const x = loadNpy(join(fx, dir, `${name}.input.npy`));
    const inName = original.graph.inputs[0]!.name;
    const outName = original.graph.outputs[0]!.name;
    const outFile = join(fx, dir, `${name}.output.npy`);
    // PyTorch's own output where committed; onnx.helper's model has onnxruntime's as the reference.
    const want = existsSync(outFile) ? loadNpy(outFile) : (await runOrt(original, { [inName]: x }))[outName]!;
    const model = canonicalize(withShape(original, x), { source: name }).model;
    const tmp = mkdtempSync(join(tmpdir(), 'privml-proteus-pt-'));
    try {
      const res = await obfuscate(model, { k: 3, size: 8, stats, outDir: join(tmp, 'b') });
      assert.equal(res.manifest.members.length, 4 * res.key.groups.length);
      await optimizeBundle(join(tmp, 'b'), join(tmp, 'o'));
      const r = await recover(join(tmp, 'o'), res.key, { original: model, bundleDir: join(tmp, 'b') });
      assert.equal(r.hashesChecked, res.manifest.members.length);
      const got = (await runOrt(r.model, { [inName]: x }))[outName]!;
      assert.ok(maxRel(got, want) < 1e-5, `recovered vs reference: ${maxRel(got, want)}`);
      assert.deepEqual(fusedOps(r.model), fusedOps(await optimizeModel(model)), 'a cut cost a fusion');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}
