/** `privml demo`: the main job on the embedded default (pretrained fmnist-cnn + 1,000-image sample), offline. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadFashionMnistSample } from '../nn/data/index.js';
import { FloatModel } from '../nn/runtime.js';
import { evaluate } from '../nn/train.js';
import { modelInfo } from '../onnx/info.js';
import { ortSession, runOrt } from '../onnx/ort.js';
import { loadModel } from '../onnx/proto.js';
import { CliError, defaultModelPath, nonNegInt, Progress, pct, posInt, printJson } from './common.js';
import { defaultJobFlags, type InferResult, privateInference } from './mpc.js';

/** The other pillars, pointed to so a user knows where to go next (too slow or too large for the demo). */
const NEXT = [
  'smartpaf: npx privml smartpaf models/fmnist-cnn-max.onnx --dataset fashion-mnist --paf f1sq-g1sq --techniques ct,pa,at,ss -o m.paf.onnx',
  'fhe: npx privml fhe run models/fmnist-cnn.onnx --paf f1g2 --dataset fashion-mnist-sample --limit 1 (CKKS, ~40 s per image)',
  'proteus: npx privml proteus obfuscate models/fmnist-cnn.onnx -k 20 -o bundle/ --key owner.key',
];

/** Register `demo`. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the default pipeline offline: pretrained fmnist-cnn on the committed Fashion-MNIST sample')
    .option('--model <file>', 'model to use instead of the committed default')
    .option('--limit <n>', 'use only the first N sample images', posInt('--limit'))
    .option('--private <n>', 'images to classify with two-party private inference (0 skips it)', nonNegInt('--private'), 20)
    .option('--json', 'machine-readable output')
    .action(async (o: { model?: string; limit?: number; private: number; json?: boolean }) => {
      const path = o.model ?? defaultModelPath();
      if (!existsSync(path)) throw new CliError(`${path}: model not found`);
      const model = loadModel(path);
      const info = modelInfo(model);
      const ds = loadFashionMnistSample({ limit: o.limit });
      const log = (s: string) => !o.json && process.stdout.write(s + '\n');
      log(`privml demo — model ${path}`);
      log(`  ${info.nodes} nodes, ${info.parameters.toLocaleString('en-US')} parameters, ${(info.macs / 1e6).toFixed(2)} M MACs per image`);
      const trained = model.metadata['privml.trained'];
      if (trained) log(`  trained: ${trained}`);

      const progress = new Progress(!o.json);
      const fm = await FloatModel.create(model, { source: path });
      progress.start('float runtime', ds.n);
      const t0 = performance.now();
      const r = evaluate(fm, ds, { onBatch: (n) => progress.update(n) });
      const floatSeconds = (performance.now() - t0) / 1000;
      progress.stop();
      fm.dispose();
      log(`  float runtime (tfjs-wasm): top-1 accuracy ${pct(r.accuracy)} on ${ds.n} test images (${(ds.n / floatSeconds).toFixed(0)} images/s)`);

      // Ground truth: onnxruntime on the same images must agree with the float runtime.
      const session = await ortSession(model);
      const input = model.graph.inputs[0]!.name;
      const output = model.graph.outputs[0]!.name;
      const t1 = performance.now();
      const ref = await runOrt(model, { [input]: { dtype: 'float32', dims: [ds.n, ...ds.shape], data: ds.images } }, session);
      const ortSeconds = (performance.now() - t1) / 1000;
      await session.release();
      const logits = ref[output]!.data as Float32Array;
      const k = ds.classes.length;
      let agree = 0;
      let ortCorrect = 0;
      for (let i = 0; i < ds.n; i++) {
        let best = 0;
        for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + best]!) best = j;
        if (best === r.predictions[i]) agree++;
        if (best === ds.labels[i]) ortCorrect++;
      }
      log(`  onnxruntime-node:          top-1 accuracy ${pct(ortCorrect / ds.n)}; predictions agree with the float runtime on ${agree}/${ds.n}`);
      let priv: InferResult | undefined;
      if (o.private > 0) {
        // The main job: the same images, classified without party 1 ever seeing them.
        const n = Math.min(o.private, ds.n);
        priv = await privateInference(path, defaultJobFlags({ dataset: 'fashion-mnist-sample', limit: n, batch: Math.min(10, n) }));
        log(
          `  private inference (dealer + 2 parties over TCP, sign-only ReLU): ${n} images, agreement with plaintext ${pct(priv.agreement)}, ` +
            `${priv.msPerBatch.toFixed(1)} ms per batch of ${priv.batch}, ` +
            `${(priv.bytesSentPerBatch[0]! / 1e6).toFixed(2)} MB sent per party per batch, ` +
            `${priv.roundsPerBatch} rounds`,
        );
      }
      log('  also try:');
      for (const n of NEXT) log(`    - ${n}`);
      if (o.json) {
        printJson({
          model: path,
          parameters: info.parameters,
          macs: info.macs,
          images: ds.n,
          floatRuntime: { accuracy: r.accuracy, imagesPerSecond: ds.n / floatSeconds, confusion: r.confusion },
          onnxruntime: { accuracy: ortCorrect / ds.n, imagesPerSecond: ds.n / ortSeconds, agreement: agree / ds.n },
          privateInference: priv && {
            images: priv.count,
            batch: priv.batch,
            agreement: priv.agreement,
            msPerBatch: priv.msPerBatch,
            bytesSentPerBatch: priv.bytesSentPerBatch,
            roundsPerBatch: priv.roundsPerBatch,
          },
          next: NEXT,
        });
      }
      if (agree !== ds.n) throw new CliError(`float runtime and onnxruntime disagree on ${ds.n - agree} of ${ds.n} images`);
      if (priv && priv.agreement < 1)
        throw new CliError(`private inference disagrees with the plaintext model on ${Math.round((1 - priv.agreement) * priv.count)} images`);
    });
}
