/** `privml train`: train (or fine-tune) a model on a data set and write it back as ONNX. */
import type { Command } from 'commander';
import { ensureWritable } from '../api/files.js';
import { split } from '../nn/data/index.js';
import { FloatModel } from '../nn/runtime.js';
import { evaluate, type OptimizerName, train } from '../nn/train.js';
import { saveModel } from '../onnx/proto.js';
import { CliError, loadDataset, Progress, parseKeyValues, pct, posInt, posNum, printJson, resolveModel } from './common.js';

interface TrainCliOptions {
  model: string;
  dataset: string;
  dataDir?: string;
  epochs: number;
  batchSize: number;
  optimizer: string;
  lr?: number;
  weightDecay?: number;
  limit?: number;
  valFraction: number;
  seed: number;
  opt?: string[];
  output: string;
  json?: boolean;
}

/** Register `train`. */
export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a zoo model (or fine-tune an .onnx file) on a data set; writes the trained ONNX model')
    .requiredOption('--model <name|file>', 'zoo model name or .onnx file to fine-tune')
    .option('--dataset <name>', 'fashion-mnist | cifar10', 'fashion-mnist')
    .option('--data-dir <dir>', 'read the data set from this directory (default: $PRIVML_DATA, Debian package, ~/.cache/privml)')
    .option('--epochs <n>', 'epochs', posInt('--epochs'), 5)
    .option('--batch-size <n>', 'mini-batch size', posInt('--batch-size'), 64)
    .option('--optimizer <name>', 'adam | sgd', 'adam')
    .option('--lr <x>', 'learning rate (default 1e-3 adam, 0.05 sgd; cosine decay)', posNum('--lr'))
    .option('--weight-decay <x>', 'decoupled weight decay', posNum('--weight-decay'))
    .option('--limit <n>', 'use only the first N training examples', posInt('--limit'))
    .option('--val-fraction <x>', 'fraction of the training set held out for per-epoch validation', Number, 0.1)
    .option('--seed <n>', 'shuffle seed', Number, 0)
    .option('--opt <key=value...>', 'zoo build options, e.g. --opt pool=max')
    .requiredOption('-o, --output <file>', 'where to write the trained .onnx model')
    .option('--json', 'machine-readable output')
    .action(async (o: TrainCliOptions) => {
      if (o.optimizer !== 'adam' && o.optimizer !== 'sgd') throw new CliError(`--optimizer must be adam or sgd, got '${o.optimizer}'`, 2);
      if (!(o.valFraction >= 0 && o.valFraction < 1)) throw new CliError(`--val-fraction must be in [0,1), got '${o.valFraction}'`, 2);
      ensureWritable(o.output);
      const { model, source } = resolveModel(o.model, parseKeyValues(o.opt));
      const full = loadDataset({ dataset: o.dataset, dataDir: o.dataDir, limit: o.limit }, 'train');
      const test = loadDataset({ dataset: o.dataset, dataDir: o.dataDir }, 'test');
      const { a: val, b: trainSet } = o.valFraction > 0 ? split(full, o.valFraction, o.seed) : { a: undefined, b: full };
      const fm = await FloatModel.create(model, { source });
      const progress = new Progress(!o.json);
      const log = (s: string) => {
        if (!o.json) process.stderr.write(s + '\n');
      };
      log(
        `training ${source} on ${trainSet.n} examples of ${o.dataset} ` +
          `(${val ? `${val.n} held out for validation, ` : ''}${o.epochs} epochs, ${o.optimizer}, batch ` +
          `${o.batchSize})`,
      );
      const t0 = performance.now();
      const history = await train(fm, trainSet, {
        epochs: o.epochs,
        batchSize: o.batchSize,
        optimizer: o.optimizer as OptimizerName,
        lr: o.lr,
        weightDecay: o.weightDecay,
        seed: o.seed,
        validation: val,
        onStep: (p) => {
          if (p.step === 1) progress.start(`epoch ${p.epoch}/${o.epochs}`, p.steps);
          progress.update(p.step, `loss ${p.loss.toFixed(4)}`);
          if (p.step === p.steps) progress.stop();
        },
        onEpoch: (e) =>
          log(
            `epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, train acc ${pct(e.trainAccuracy)}` +
              (e.valAccuracy !== undefined ? `, val acc ${pct(e.valAccuracy)}` : '') +
              `, ${e.samplesPerSecond.toFixed(0)} samples/s`,
          ),
      });
      const seconds = (performance.now() - t0) / 1000;
      const testResult = evaluate(fm, test);
      const out = fm.toModel();
      out.metadata['privml.trained'] = JSON.stringify({
        dataset: o.dataset,
        examples: trainSet.n,
        epochs: o.epochs,
        optimizer: o.optimizer,
        batchSize: o.batchSize,
        seed: o.seed,
        testAccuracy: Number(testResult.accuracy.toFixed(4)),
      });
      saveModel(out, o.output);
      fm.dispose();
      const summary = { model: source, output: o.output, trainExamples: trainSet.n, seconds, history, testAccuracy: testResult.accuracy, testExamples: test.n };
      if (o.json) printJson(summary);
      else process.stdout.write(`test accuracy ${pct(testResult.accuracy)} on ${test.n} images; wrote ${o.output} (${seconds.toFixed(1)} s)\n`);
    });
}
