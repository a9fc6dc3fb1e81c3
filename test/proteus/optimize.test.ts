import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ModelError } from '../../src/onnx/ir.js';
import { encodeModel, loadModel, saveModel } from '../../src/onnx/proto.js';
import { buildZoo } from '../../src/onnx/zoo/index.js';
import { maxRelativeError, mergeOpsets, optimizeModel, randomFeeds } from '../../src/proteus/index.js';
import { opHistogram, runPlain } from './configs.js';

const model = buildZoo('resnet20', { width: 4 });

test('extended level: FusedConv in the com.microsoft domain, read back by the proto loader, same outputs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'proteus-opt-'));
  try {
    const out = join(dir, 'opt.onnx');
    const opt = await optimizeModel(encodeModel(model), { level: 'extended', outPath: out });
    assert.ok(existsSync(out));
    const h = opHistogram(opt);
    assert.ok(h['com.microsoft.FusedConv']! > 0);
    assert.equal(h.BatchNormalization, undefined);
    assert.ok(opt.opsetImports.some((o) => o.domain === 'com.microsoft'));
    assert.deepEqual(opHistogram(loadModel(out)), h);
    const feeds = randomFeeds(model, { batch: 3, seed: 1 });
    const ref = await runPlain(model, feeds);
    assert.ok(maxRelativeError(await runPlain(opt, feeds), ref) <= 1e-4);
    // A path works as input too.
    const src = join(dir, 'src.onnx');
    saveModel(model, src);
    assert.deepEqual(opHistogram(await optimizeModel(src)), h);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('basic folds BatchNorm without com.microsoft fusions; all uses nchwc layouts', async () => {
  const basic = opHistogram(await optimizeModel(model, { level: 'basic' }));
  assert.equal(basic.BatchNormalization, undefined);
  assert.equal(basic['com.microsoft.FusedConv'], undefined);
  const all = opHistogram(await optimizeModel(model, { level: 'all' }));
  assert.ok(Object.keys(all).some((k) => k.startsWith('com.microsoft.nchwc.')));
});

test('bad input: unknown level, garbage bytes, missing file', async () => {
  await assert.rejects(optimizeModel(model, { level: 'max' as never }), ModelError);
  await assert.rejects(optimizeModel(new Uint8Array([1, 2, 3, 4])), ModelError);
  await assert.rejects(optimizeModel('/nonexistent/model.onnx'), ModelError);
});

test('opset merge keeps one entry per domain at the highest version and rejects default-opset conflicts', () => {
  assert.deepEqual(
    mergeOpsets([
      [{ domain: '', version: 17 }],
      [
        { domain: 'ai.onnx', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
      [
        { domain: 'ai.onnx.ml', version: 3 },
        { domain: 'ai.onnx.ml', version: 5 },
      ],
    ]),
    [
      { domain: '', version: 17 },
      { domain: 'com.microsoft', version: 1 },
      { domain: 'ai.onnx.ml', version: 5 },
    ],
  );
  assert.throws(() => mergeOpsets([[{ domain: '', version: 13 }], [{ domain: '', version: 17 }]]), ModelError);
});
