import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as privml from '../../src/index.js';
import { DataError, FileError, fhe, hummingbird, KeyError, loadDataset, loadModel, ModelError, mpc, OptionError, proteus, smartpaf } from '../../src/index.js';
import { rejects } from './typed.js';

const root = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'privml-api-'));
const CNN = join(root, 'models', 'fmnist-cnn.onnx');

test('the public surface: pillar namespaces and typed errors', () => {
  for (const [name, ns] of Object.entries({
    mpc: privml.mpc,
    hummingbird: privml.hummingbird,
    smartpaf: privml.smartpaf,
    fhe: privml.fhe,
    proteus: privml.proteus,
  })) {
    assert.equal(typeof ns, 'object', name);
  }
  assert.equal(typeof mpc.infer, 'function');
  assert.equal(typeof hummingbird.search, 'function');
  assert.equal(typeof smartpaf.run, 'function');
  for (const f of ['keygen', 'encrypt', 'infer', 'decrypt'] as const) assert.equal(typeof fhe[f], 'function');
  for (const f of ['obfuscate', 'optimize', 'recover'] as const) assert.equal(typeof proteus[f], 'function');
  assert.equal(new OptionError('x').exitCode, 2);
  assert.equal(new ModelError('x').name, 'ModelError');
});

test('bad input gives typed one-line errors with the CLI messages', async () => {
  await rejects(loadModel(join(tmp, 'nope.onnx')), ModelError, /nope\.onnx: no such model file \(nor a zoo model/);
  const corrupt = join(tmp, 'corrupt.onnx');
  writeFileSync(corrupt, 'not a protobuf');
  await rejects(loadModel(corrupt), ModelError, /corrupt\.onnx/);
  assert.throws(
    () => loadDataset('mnist' as never),
    (e: Error) => e instanceof OptionError && /unknown dataset 'mnist'/.test(e.message),
  );
  assert.throws(() => loadDataset('fashion-mnist-sample', { split: 'train' }), DataError);
  await rejects(smartpaf.getPaf('relu9'), OptionError, /relu9/);
  await rejects(fhe.decrypt(join(tmp, 'y.ct'), tmp), KeyError, /no secret key/);
  await rejects(proteus.recover(tmp, join(tmp, 'owner.key')), KeyError, /owner\.key: no such key file/);
  await rejects(proteus.obfuscate(CNN, join(tmp, 'b'), { k: 0 }), OptionError, /k must be a positive integer/);
  // An output under a regular file cannot be created: refused before any work.
  await rejects(privml.saveModel(await loadModel(CNN), join(corrupt, 'm.onnx')), FileError, /corrupt\.onnx/);
  await rejects(mpc.infer(CNN, { weights: 'shared' as never, limit: 1 }), OptionError, /--weights must be public or secret/);
  await rejects(hummingbird.search(CNN, loadDataset('fashion-mnist-sample', { limit: 10 }), { budget: 0 }), OptionError, /budget must be > 0/);
});

test('FloatSession and InferenceSession agree on sample images; a HummingBird config checks against its model', async () => {
  const model = await loadModel(CNN);
  const ds = loadDataset('fashion-mnist-sample', { limit: 4 });
  const x = privml.tensor([ds.n, ...ds.shape], ds.images.subarray(0, ds.n * 784));
  const a = await privml.FloatSession.create(model);
  const b = await privml.InferenceSession.create(model);
  const ya = (await a.run({ [a.inputNames[0]!]: x }))[a.outputNames[0]!]!.data as Float32Array;
  const yb = (await b.run({ [b.inputNames[0]!]: x }))[b.outputNames[0]!]!.data as Float32Array;
  await a.release();
  await b.release();
  assert.equal(ya.length, 40);
  for (let i = 0; i < ya.length; i++) assert.ok(Math.abs(ya[i]! - yb[i]!) < 1e-3, `logit ${i}: ${ya[i]} vs ${yb[i]}`);
  const info = await privml.modelInfo(model);
  assert.ok(info.parameters > 10_000);
  const ranges = await hummingbird.check(join(root, 'models', 'hummingbird', 'fmnist-cnn', 'eco.json'), model);
  assert.ok(Object.keys(ranges).length >= 2);
  await rejects(hummingbird.check(join(root, 'models', 'hummingbird', 'fmnist-cnn', 'eco.json'), 'resnet20'), ModelError, /eco\.json/);
});
