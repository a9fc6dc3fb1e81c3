/** `privml train`: train (or fine-tune) a model on a data set and write it back as ONNX. */
import type { Command } from 'commander';
import { train } from '../api/models.js';
import { Progress, parseKeyValues, pct, posInt, posNum, printJson } from './common.js';

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
      const progress = new Progress(!o.json);
      const summary = await train(o.model, o.output, {
        dataset: o.dataset,
        dataDir: o.dataDir,
        epochs: o.epochs,
        batchSize: o.batchSize,
        optimizer: o.optimizer,
        lr: o.lr,
        weightDecay: o.weightDecay,
        limit: o.limit,
        valFraction: o.valFraction,
        seed: o.seed,
        zoo: parseKeyValues(o.opt),
        log: (s) => !o.json && process.stderr.write(s + '\n'),
        onStep: (p) => {
          if (p.step === 1) progress.start(`epoch ${p.epoch}/${o.epochs}`, p.steps);
          progress.update(p.step, `loss ${p.loss.toFixed(4)}`);
          if (p.step === p.steps) progress.stop();
        },
      });
      if (o.json) printJson(summary);
      else
        process.stdout.write(
          `test accuracy ${pct(summary.testAccuracy)} on ${summary.testExamples} images; wrote ${o.output} (${summary.seconds.toFixed(1)} s)\n`,
        );
    });
}
