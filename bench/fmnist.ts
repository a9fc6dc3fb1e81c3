/**
 * `npm run bench`: training and inference throughput of fmnist-cnn in the float runtime, next to
 * onnxruntime-node on the same model and images. Prints one JSON object on stdout.
 *
 *   npm run bench -- [--pool avg|max] [--batch 128] [--train-samples 8192] [--epochs 2]
 */
import { parseArgs } from 'node:util';
import { batches, type Dataset, gather, loadFashionMnistSample } from '../src/nn/data/index.js';
import { FloatModel } from '../src/nn/runtime.js';
import { tf } from '../src/nn/tf.js';
import { evaluate, train } from '../src/nn/train.js';
import { ortSession, runOrt } from '../src/onnx/ort.js';
import { buildZoo } from '../src/onnx/zoo/index.js';

const { values } = parseArgs({
  options: {
    pool: { type: 'string', default: 'avg' },
    batch: { type: 'string', default: '128' },
    'train-samples': { type: 'string', default: '8192' },
    epochs: { type: 'string', default: '2' },
  },
});
const pool = values.pool!;
const batch = Number(values.batch);
const nTrain = Number(values['train-samples']);
const epochs = Number(values.epochs);

const sample = loadFashionMnistSample();
// Real images, repeated to the requested size (throughput does not depend on which images).
const trainSet: Dataset = gather(
  sample,
  Array.from({ length: nTrain }, (_, i) => i % sample.n),
  'bench-train',
);
const model = buildZoo('fmnist-cnn', { pool });

const fm = await FloatModel.create(model, { source: 'fmnist-cnn' });
const history = await train(fm, trainSet, { epochs, batchSize: batch });
// The first epoch includes kernel warm-up; report the best epoch.
const trainSps = Math.max(...history.map((h) => h.samplesPerSecond));

function timeIt(f: () => void, reps: number): number {
  f();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  return (performance.now() - t0) / 1000 / reps;
}
const evalSeconds = timeIt(() => evaluate(fm, sample, { batchSize: 256 }), 3);
const one = tf.tensor4d(sample.images.subarray(0, 784), [1, 1, 28, 28]);
const floatLatency = timeIt(() => tf.tidy(() => fm.forward({ input: one }).logits!.dataSync()), 50);
one.dispose();
fm.dispose();

const session = await ortSession(model);
const ortBatches = async () => {
  for (const b of batches(sample, 256)) await runOrt(model, { input: { dtype: 'float32', dims: [b.n, 1, 28, 28], data: b.x } }, session);
};
await ortBatches();
let t0 = performance.now();
for (let i = 0; i < 3; i++) await ortBatches();
const ortSeconds = (performance.now() - t0) / 1000 / 3;
const oneFeed = { input: { dtype: 'float32' as const, dims: [1, 1, 28, 28], data: sample.images.slice(0, 784) } };
await runOrt(model, oneFeed, session);
t0 = performance.now();
for (let i = 0; i < 50; i++) await runOrt(model, oneFeed, session);
const ortLatency = (performance.now() - t0) / 1000 / 50;
await session.release();

process.stdout.write(
  JSON.stringify(
    {
      model: `fmnist-cnn (pool=${pool})`,
      backend: tf.getBackend(),
      train: {
        samplesPerSecond: Math.round(trainSps),
        batch,
        samples: nTrain,
        epochs: history.map((h) => ({ epoch: h.epoch, samplesPerSecond: Math.round(h.samplesPerSecond), seconds: +h.seconds.toFixed(2) })),
      },
      inference: {
        floatRuntime: { samplesPerSecond: Math.round(sample.n / evalSeconds), batch: 256, latencyMsBatch1: +(floatLatency * 1000).toFixed(3) },
        onnxruntime: { samplesPerSecond: Math.round(sample.n / ortSeconds), batch: 256, latencyMsBatch1: +(ortLatency * 1000).toFixed(3) },
      },
    },
    null,
    2,
  ) + '\n',
);
