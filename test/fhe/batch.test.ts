/**
 * Slot batching (src/fhe/batch.ts): B images interleaved in one ciphertext. On the slot emulator the
 * interleaved program must give every image exactly its own float64 reference (spilled channels,
 * reduce-mode gemm, MaxPool masks, empty lanes); under CKKS a batch of images must classify each as
 * the single-image program does.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { interleave, packBatch, unpackBatch } from '../../src/fhe/batch.js';
import { compileModel, simulateProgram } from '../../src/fhe/compile.js';
import { FheContext, generateKeys } from '../../src/fhe/context.js';
import { decryptBatch, encryptBatch, inferEncrypted, outputMeta, precisionProbe } from '../../src/fhe/executor.js';
import { lowerProgram } from '../../src/fhe/lower.js';
import { planFhe } from '../../src/fhe/planner.js';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, type Model } from '../../src/onnx/ir.js';
import { expandPafs, replaceActivations } from '../../src/smartpaf/graph.js';
import { makePaf } from '../../src/smartpaf/paf.js';
import { emulateSlots } from './emulate.js';
import { rand, tinyMaxPafModels, tinyPafModels } from './fixtures.js';

/** conv(1→C, 3×3, pad 1) → ReLU → avgpool 2 → conv(C→C2) → ReLU → avgpool 2 → flatten → gemm(→4) on 1×8×8. */
function twoConv(C: number, C2: number): Model {
  const b = new GraphBuilder(`batch-${C}-${C2}`);
  const x = b.input('input', 'float32', ['batch', 1, 8, 8]);
  const conv = (t: string, w: string, cin: number, cout: number, seed: number, name: string) =>
    b.op(
      'Conv',
      [t, b.init(`${w}.w`, floatTensor([cout, cin, 3, 3], rand(cout * cin * 9, seed, 0.4))), b.init(`${w}.b`, floatTensor([cout], rand(cout, seed + 1, 0.1)))],
      { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
      { name },
    );
  const pool = (t: string, name: string) => b.op('AveragePool', [t], { kernel_shape: [2, 2], strides: [2, 2] }, { name });
  const t1 = pool(b.op('Relu', [conv(x, 'c1', 1, C, 3, 'c1')], {}, { name: 'r1' }), 'p1');
  const t2 = pool(b.op('Relu', [conv(t1, 'c2', C, C2, 5, 'c2')], {}, { name: 'r2' }), 'p2');
  const f = b.op('Flatten', [t2], { axis: 1 }, { name: 'flatten' });
  const w3 = b.init('fc.w', floatTensor([4, C2 * 4], rand(4 * C2 * 4, 7, 0.2)));
  b.output(
    b.op('Gemm', [f, w3, b.init('fc.b', floatTensor([4], [0.01, 0.02, -0.03, 0.04]))], { transB: 1, alpha: float(1) }, { name: 'fc', output: 'logits' }),
    'float32',
    ['batch', 4],
  );
  return expandPafs(replaceActivations(b.build(), makePaf('f1', [[1.5, -0.5]]), { scaleMode: 'static', scales: { r1: 3, r2: 3 } }));
}

test('interleaved batches on the slot emulator: every image gets its own reference (spilled channels, MaxPool masks, empty lanes)', () => {
  const cases: [Model, number, number, number][] = [
    [twoConv(6, 5), 1024, 4, 3],
    [twoConv(6, 5), 256, 2, 2],
    [tinyPafModels().expanded, 512, 8, 5],
    [tinyMaxPafModels().expanded, 256, 4, 4],
  ];
  for (const [model, slots, bt, count] of cases) {
    const prog = compileModel(model);
    const single = lowerProgram(prog, slots / bt);
    const l = interleave(single, bt);
    assert.equal(l.slots, slots);
    assert.equal(l.batch, bt);
    assert.equal(l.rotations, single.rotations, 'batching adds no rotation');
    const xs = Array.from({ length: count }, (_, b) => Array.from(rand(64, 20 + b)));
    const out = emulateSlots(l, packBatch(l.input, xs, slots, bt));
    const all = new Float64Array(out.length * slots);
    out.forEach((c, i) => all.set(c, i * slots));
    const got = unpackBatch(l.output, all, l.outputGain, count);
    xs.forEach((x, b) => {
      const want = simulateProgram(prog, x).at(-1)!;
      const err = Math.max(...Array.from(want, (v, i) => Math.abs(v - got[b]![i]!)));
      assert.ok(err < 1e-9, `${prog.source} at ${slots} slots, batch ${bt}, image ${b}: max error ${err}`);
    });
  }
});

test('planner with a batch: lowered for N/2/batch slots, rotation steps scaled, an odd batch refused', () => {
  const prog = compileModel(tinyMaxPafModels().expanded);
  const p1 = planFhe(prog, { degrees: [16384] });
  const p4 = planFhe(prog, { degrees: [16384], batch: 4 });
  assert.equal(p4.lowered.batch, 4);
  assert.equal(p4.lowered.slots, 8192);
  assert.equal(p4.depth, p1.depth);
  for (const r of p4.lowered.rotationSteps) assert.equal(r % 4, 0);
  assert.throws(() => planFhe(prog, { degrees: [16384], batch: 3 }), /not a power of two/);
});

test('a batch of 4 images under CKKS (N=8192) classifies each image as its float64 reference', async () => {
  // One f1 stage (depth 3 per PAF): conv, PAF ReLU, average pool, gemm in 5 levels.
  const prog = compileModel(tinyPafModels(makePaf('f1', [[1.5, -0.5]])).expanded);
  const l = interleave(lowerProgram(prog, 1024), 4);
  const ctx = await FheContext.create({ polyModulusDegree: 8192, primeBits: [38, 28, 28, 28, 28, 28, 38], scaleBits: 28 });
  const keys = generateKeys(ctx, l.rotationSteps);
  const { secretKey, ...server } = keys;
  try {
    const xs = Array.from({ length: 3 }, (_, b) => Array.from(rand(64, 40 + b)));
    const { ct, meta } = encryptBatch(ctx, keys.publicKey, l, xs);
    assert.equal(meta['images'], 3);
    const errs: number[] = [];
    const res = await inferEncrypted(ctx, server, l, ct, {
      onStep: (i, r, cts) => {
        precisionProbe(ctx, secretKey, prog, l, xs)(i, r, cts);
        if (r.maxAbsError !== undefined) errs.push(r.maxAbsError / Math.max(1, r.maxAbsRef ?? 1));
      },
    });
    ct.delete();
    const ys = decryptBatch(ctx, secretKey, res.ct, outputMeta(l, 'tiny', xs.length));
    res.ct.delete();
    assert.equal(ys.length, 3);
    assert.ok(errs.length > 0 && errs.every((e) => e < 0.1), `per-step errors ${errs}`);
    xs.forEach((x, b) => {
      const want = simulateProgram(prog, x).at(-1)!;
      const err = Math.max(...Array.from(want, (v, i) => Math.abs(v - ys[b]![i]!)));
      // 28-bit scale: the single-image program shows the same absolute noise (up to 6e-3 on these logits).
      assert.ok(err < 2e-2, `image ${b}: max error ${err} vs ${Array.from(want)}`);
    });
  } finally {
    keys.dispose();
    ctx.dispose();
  }
});

test('split flow with a batch: keygen --batch 4, one ciphertext of 3 images, infer, decrypt every image; a batch of 5 refused', async () => {
  const { keygen, encryptImages, infer, decryptAll } = await import('../../src/api/fhe.js');
  const model = tinyPafModels(makePaf('f1', [[1.5, -0.5]])).expanded;
  const prog = compileModel(model);
  const dir = mkdtempSync(join(tmpdir(), 'privml-fhe-batch-'));
  try {
    const k = await keygen(model, join(dir, 'keys'), { batch: 4 });
    const xs = Array.from({ length: 3 }, (_, b) => Array.from(rand(64, 60 + b)));
    await assert.rejects(encryptImages(join(dir, 'keys'), [...xs, xs[0]!, xs[1]!], [1, 8, 8], join(dir, 'x5.ct')), /take 4 images per ciphertext, got 5/);
    const e = await encryptImages(join(dir, 'keys'), xs, [1, 8, 8], join(dir, 'x.ct'), { labels: [1, 2, 3] });
    assert.deepEqual([e.images, e.batch], [3, 4]);
    await infer(model, join(dir, 'x.ct'), k.publicDir, join(dir, 'y.ct'));
    const ys = await decryptAll(join(dir, 'y.ct'), join(dir, 'keys'));
    assert.equal(ys.length, 3);
    xs.forEach((x, b) => {
      const want = simulateProgram(prog, x).at(-1)!;
      const err = Math.max(...Array.from(want, (v, i) => Math.abs(v - ys[b]![i]!)));
      assert.ok(err < 2e-2, `image ${b}: max error ${err}`);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
