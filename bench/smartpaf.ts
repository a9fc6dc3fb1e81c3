/**
 * SmartPAF throughput: training and inference samples/s of fmnist-cnn (MaxPool) with every PAF
 * replacing its ReLU/MaxPool layers, next to the exact model, in the float runtime. Used to size
 * the pipeline's epoch budget. Prints one JSON object on stdout.
 *
 *   node --import tsx bench/smartpaf.ts [--model models/fmnist-cnn-max.onnx] [--train-samples 2048] [--pafs f1sq-g1sq,a7]
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Dataset, gather, loadFashionMnistSample } from '../src/nn/data/index.js';
import { FloatModel } from '../src/nn/runtime.js';
import { evaluate, train } from '../src/nn/train.js';
import { loadModel } from '../src/onnx/proto.js';
import { buildZoo } from '../src/onnx/zoo/index.js';
import { replaceActivations } from '../src/smartpaf/graph.js';
import { getPaf, PAF_NAMES } from '../src/smartpaf/paf.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/fmnist-cnn-max.onnx' },
    'train-samples': { type: 'string', default: '2048' },
    pafs: { type: 'string', default: PAF_NAMES.join(',') },
  },
});
const model = existsSync(values.model!) ? loadModel(values.model!) : buildZoo('fmnist-cnn', { pool: 'max' });
const sample = loadFashionMnistSample();
const n = Number(values['train-samples']);
const ds: Dataset = gather(
  sample,
  Array.from({ length: n }, (_, i) => i % sample.n),
  'bench-train',
);

async function measure(m: typeof model) {
  const fm = await FloatModel.create(m, { options: { batchNorm: 'frozen' } });
  const [e] = await train(fm, ds, { epochs: 1, batchSize: 64 });
  const t0 = performance.now();
  evaluate(fm, ds);
  const inferSps = ds.n / ((performance.now() - t0) / 1000);
  fm.dispose();
  return { trainSamplesPerSecond: Math.round(e!.samplesPerSecond), inferSamplesPerSecond: Math.round(inferSps) };
}

const rows: Record<string, unknown> = { exact: await measure(model) };
for (const name of values.pafs!.split(',')) rows[name] = await measure(replaceActivations(model, getPaf(name)));
process.stdout.write(JSON.stringify({ samples: n, rows }, null, 2) + '\n');
