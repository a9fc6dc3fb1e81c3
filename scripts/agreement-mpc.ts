/**
 * Agreement campaign of issues 14 and 15 over real processes (`privml mpc infer`'s code path):
 * every run compares the private predictions with plaintext onnxruntime on the same inputs.
 *   - secret weights, party 0 holding `mpc export-architecture` output (every weight zero-filled):
 *     fmnist-cnn, resnet20-fmnist, and a generated model with a standalone BatchNormalization and
 *     MatMul + Add biases (seeded random weights);
 *   - FSS on the full 64-bit window (fss2 and fss): agreement with plaintext;
 *   - the eco HummingBird config: signonly, fss and fss2 predictions compared image by image.
 * One JSON line per run is appended to OUT (default agreement-results.jsonl) as it finishes, then
 * a summary. Runs are sequential (2-core machine). Usage:
 *   node --import tsx scripts/agreement-mpc.ts [--limit 1000] [--out file] [--only name,name]
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultJobFlags, type InferResult, privateInference } from '../src/api/mpc-session.js';
import { stripWeights } from '../src/mpc/arch.js';
import { float, GraphBuilder } from '../src/onnx/builder.js';
import { loadModel, saveModel } from '../src/onnx/proto.js';
import { lcg, randTensor } from '../test/mpc/plan-helpers.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const limit = Number(arg('limit', '1000'));
const out = arg('out', 'agreement-results.jsonl');
const only = arg('only', '').split(',').filter(Boolean);
const root = new URL('..', import.meta.url).pathname;
const eco = join(root, 'models/hummingbird/fmnist-cnn/eco.json');
const dir = mkdtempSync(join(tmpdir(), 'privml-agree-'));

/** A model with a standalone BN (not after a conv/linear layer) and MatMul + Add biases, on 28×28 inputs. */
function bnMatMulModel(): string {
  const r = lcg(14);
  const b = new GraphBuilder('bn-matmul-add');
  const x = b.input('x', 'float32', ['N', 1, 28, 28]);
  const fl = b.op('Flatten', [x], {});
  const bn = b.op(
    'BatchNormalization',
    [
      fl,
      b.init('g', randTensor(r, [784], 0.5, 2)),
      b.init('be', randTensor(r, [784], -0.5, 0.5)),
      b.init('m', randTensor(r, [784], 0, 0.5)),
      b.init('v', randTensor(r, [784], 0.05, 0.3)),
    ],
    { epsilon: float(1e-5) },
  );
  const h = b.op('Relu', [
    b.op('Add', [b.op('MatMul', [bn, b.init('w1', randTensor(r, [784, 32], -0.05, 0.05))]), b.init('b1', randTensor(r, [32], -0.5, 0.5))]),
  ]);
  const y = b.op('Add', [b.op('MatMul', [h, b.init('w2', randTensor(r, [32, 10], -0.3, 0.3))]), b.init('b2', randTensor(r, [10], -0.5, 0.5))]);
  b.output(y, 'float32', ['N', 10]);
  const path = join(dir, 'bn-matmul-add.onnx');
  saveModel(b.build(), path);
  return path;
}

/** Party 0's file for --weights secret: the model with every weight zero-filled (`mpc export-architecture`). */
function architecture(model: string): string {
  const path = join(dir, `arch-${model.split('/').pop()}`);
  saveModel(stripWeights(loadModel(model)), path);
  return path;
}

const bnModel = bnMatMulModel();
const data = { dataset: 'fashion-mnist-sample' as const, limit };
const runs: { name: string; model: string; flags: Parameters<typeof defaultJobFlags>[0] }[] = [
  {
    name: 'secret-fmnist-cnn',
    model: join(root, 'models/fmnist-cnn.onnx'),
    flags: { ...data, batch: 100, weights: 'secret', architecture: architecture(join(root, 'models/fmnist-cnn.onnx')) },
  },
  { name: 'secret-bn-matmul-add', model: bnModel, flags: { ...data, batch: 250, weights: 'secret', architecture: architecture(bnModel) } },
  { name: 'signonly-eco', model: join(root, 'models/fmnist-cnn.onnx'), flags: { ...data, batch: 100, reluConfig: eco } },
  { name: 'fss2-eco', model: join(root, 'models/fmnist-cnn.onnx'), flags: { ...data, batch: 50, reluProtocol: 'fss2', reluConfig: eco } },
  { name: 'fss-eco', model: join(root, 'models/fmnist-cnn.onnx'), flags: { ...data, batch: 50, reluProtocol: 'fss', reluConfig: eco } },
  { name: 'fss2-64', model: join(root, 'models/fmnist-cnn.onnx'), flags: { ...data, batch: 50, reluProtocol: 'fss2' } },
  {
    name: 'secret-resnet20',
    model: join(root, 'models/resnet20-fmnist.onnx'),
    flags: { ...data, batch: 50, weights: 'secret', architecture: architecture(join(root, 'models/resnet20-fmnist.onnx')), connectTimeout: '300' },
  },
  { name: 'fss-64', model: join(root, 'models/fmnist-cnn.onnx'), flags: { ...data, batch: 50, reluProtocol: 'fss' } },
];

const results = new Map<string, InferResult>();
try {
  for (const run of runs) {
    if (only.length && !only.includes(run.name)) continue;
    const t0 = performance.now();
    try {
      const r = await privateInference(run.model, defaultJobFlags(run.flags));
      results.set(run.name, r);
      const line = {
        run: run.name,
        count: r.count,
        agreement: r.agreement,
        agreeing: Math.round(r.agreement * r.count),
        accuracy: r.accuracy,
        maxLogitDiff: r.maxLogitDiff,
        seconds: Math.round((performance.now() - t0) / 1000),
        predictions: r.predictions,
      };
      appendFileSync(out, JSON.stringify(line) + '\n');
      console.log(
        `${run.name}: agreement ${line.agreeing}/${r.count}, accuracy ${r.accuracy}, max |logit diff| ${r.maxLogitDiff.toExponential(2)}, ${line.seconds} s`,
      );
    } catch (e) {
      appendFileSync(out, JSON.stringify({ run: run.name, error: (e as Error).message, seconds: Math.round((performance.now() - t0) / 1000) }) + '\n');
      console.log(`${run.name}: FAILED ${(e as Error).message}`);
    }
  }
  const base = results.get('signonly-eco');
  for (const p of ['fss-eco', 'fss2-eco']) {
    const r = results.get(p);
    if (!base || !r) continue;
    const same = r.predictions.filter((v, i) => v === base.predictions[i]).length;
    const line = { compare: `${p} vs signonly-eco`, identical: same, count: r.count };
    appendFileSync(out, JSON.stringify(line) + '\n');
    console.log(`${p} predictions identical to signonly-eco: ${same}/${r.count}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  writeFileSync(out + '.done', new Date().toISOString() + '\n');
}
