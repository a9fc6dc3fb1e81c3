import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readReluConfig } from '../../src/cli/mpc.js';
import { type HbConfig, layersOf, modelHash, readConfig, searchRanges, validateConfig, writeConfig } from '../../src/hummingbird/index.js';
import { type BitRange, prepareWeights, runPlan } from '../../src/mpc/executor.js';
import { runTwoParty } from '../../src/mpc/local.js';
import { planModel } from '../../src/mpc/plan.js';
import { reveal, shareInput } from '../../src/mpc/protocols/arith.js';
import { decodeFixed, encodeFixed } from '../../src/mpc/ring.js';
import { loadFashionMnistSample } from '../../src/nn/data/index.js';
import type { Model } from '../../src/onnx/ir.js';
import { loadModel } from '../../src/onnx/proto.js';

const MODEL = join(import.meta.dirname, '..', '..', 'models', 'fmnist-cnn.onnx');

/** Predicted classes of private inference (in-process parties and dealer) with optional bit ranges. */
async function privatePredictions(model: Model, images: Float32Array, n: number, batch: number, reluConfig?: Record<string, BitRange>): Promise<number[]> {
  const plan = planModel(model, batch);
  const per = images.length / n;
  const preds: number[] = [];
  await runTwoParty(async (ctx) => {
    const w = await prepareWeights(ctx, plan, 'public');
    for (let s = 0; s < n; s += batch) {
      const chunk = images.subarray(s * per, (s + batch) * per);
      const x = await shareInput(ctx, 0, ctx.party === 0 ? encodeFixed(chunk, ctx.fracBits) : undefined, chunk.length);
      const { output } = await runPlan(ctx, plan, w, x, { weights: 'public', reluConfig });
      const y = await reveal(ctx, output, 0);
      if (y) {
        const v = decodeFixed(y, ctx.fracBits);
        for (let i = 0; i < batch; i++) {
          let best = 0;
          for (let j = 1; j < 10; j++) if (v[i * 10 + j]! > v[i * 10 + best]!) best = j;
          preds.push(best);
        }
      }
    }
  });
  return preds;
}

test('eco search on 200 images yields a config the MPC engine accepts, with private predictions equal to the 64-bit ones', async () => {
  const model = loadModel(MODEL);
  const calib = loadFashionMnistSample({ limit: 200 });
  const res = await searchRanges(model, calib, { mode: 'eco', budget: 32 });
  assert.ok(res.ok, res.note);
  assert.equal(res.levels.length, 2, 'two feature-map sizes: 28x28 and 14x14');
  assert.deepEqual(
    res.levels.map((l) => l.nodes),
    [['relu_1'], ['relu_2']],
  );
  for (const l of res.levels) {
    assert.ok(l.msb <= 64 && l.lsb < l.msb, `level ${l.name} [${l.lsb}, ${l.msb})`);
    assert.ok(l.lsb > 0, 'eco should drop some low bits on fmnist-cnn');
  }
  assert.ok(res.bitsKept < 20, `bits kept ${res.bitsKept}`);
  assert.equal(res.calibration.agreement, 1);
  assert.equal(res.calibration.agreementWorst, 1);

  const dir = mkdtempSync(join(tmpdir(), 'hb-search-'));
  try {
    const path = join(dir, 'eco.json');
    const cfg: HbConfig = {
      layers: layersOf(res.levels),
      hummingbird: {
        version: 1,
        model: MODEL,
        modelHash: modelHash(model),
        mode: 'eco',
        budget: 32,
        fracBits: 16,
        levels: res.levels,
        bitsKept: res.bitsKept,
        bitsDiscarded: 1 - res.bitsKept / 64,
        calibration: { ...res.calibration, seed: 1 },
      },
    };
    writeConfig(path, cfg);
    const ranges = readReluConfig(path, model);
    assert.deepEqual(ranges, validateConfig(readConfig(path), model, path));
    const full = await privatePredictions(model, calib.images, calib.n, 100);
    const reduced = await privatePredictions(model, calib.images, calib.n, 100, ranges);
    assert.equal(full.length, calib.n);
    assert.deepEqual(reduced, full, 'reduced-ring private predictions on the calibration images equal the 64-bit private ones');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('aggressive search respects the budget and the branch and bound keeps the best assignment found', async () => {
  const model = loadModel(MODEL);
  const calib = loadFashionMnistSample({ limit: 150 });
  const res = await searchRanges(model, calib, { mode: 'aggressive', budget: 6.5, widths: [64, 16, 8, 6, 4, 2], maxEvals: 30 });
  assert.ok(res.bitsKept <= 6.5 + 1e-9, `bits kept ${res.bitsKept}`);
  assert.ok(res.sweep && res.sweep.length > 0);
  // every level's single-level sweep at b = 64 is the exact model
  for (const s of res.sweep!.filter((x) => x.b === 64)) assert.equal(s.accuracy, res.calibration.accuracy64);
  assert.ok(res.calibration.accuracy >= res.calibration.accuracy64 - 0.1, `accuracy ${res.calibration.accuracy} vs ${res.calibration.accuracy64}`);
  await assert.rejects(searchRanges(model, calib, { mode: 'eco', budget: 0 }), /budget must be > 0/);
});
