/** `privml eval`: top-1 accuracy and confusion matrix of a model on a data set. */
import type { Command } from 'commander';
import { evaluate, formatConfusion } from '../api/models.js';
import { Progress, parseKeyValues, pct, posInt, printJson } from './common.js';

/** Register `eval`. */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('top-1 accuracy and confusion matrix of a classifier on a data set')
    .argument('<model>', '.onnx file (or zoo model name)')
    .option('--dataset <name>', 'fashion-mnist | fashion-mnist-sample | cifar10', 'fashion-mnist')
    .option('--data-dir <dir>', 'read the data set from this directory')
    .option('--split <split>', 'test | train', 'test')
    .option('--limit <n>', 'evaluate only the first N examples', posInt('--limit'))
    .option('--runtime <name>', 'float (privml float runtime) | ort (onnxruntime-node)', 'float')
    .option('--opt <key=value...>', 'zoo build options')
    .option('--json', 'machine-readable output (includes the confusion matrix)')
    .action(async (ref: string, o: { dataset: string; dataDir?: string; split: string; limit?: number; runtime: string; opt?: string[]; json?: boolean }) => {
      const progress = new Progress(!o.json);
      let started = false;
      const r = await evaluate(ref, {
        dataset: o.dataset,
        dataDir: o.dataDir,
        split: o.split,
        limit: o.limit,
        runtime: o.runtime,
        zoo: parseKeyValues(o.opt),
        onProgress: (n, total) => {
          if (!started) progress.start('eval', total);
          started = true;
          progress.update(n);
        },
      }).finally(() => progress.stop());
      if (o.json) return printJson(r);
      process.stdout.write(
        `${r.model} on ${r.dataset}: top-1 accuracy ${pct(r.accuracy)} (${r.correct}/${r.n}), ${r.runtime} runtime, ${r.seconds.toFixed(2)} s\n`,
      );
      process.stdout.write(formatConfusion(r.classes, r.confusion));
    });
}
