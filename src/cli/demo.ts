/** `privml demo`: the main job on the embedded default (pretrained fmnist-cnn + 1,000-image sample), offline. */
import type { Command } from 'commander';
import { checkDemo, demo } from '../api/demo.js';
import { nonNegInt, Progress, posInt, printJson } from './common.js';

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
      const progress = new Progress(!o.json);
      let started = false;
      const r = await demo({
        model: o.model,
        limit: o.limit,
        private: o.private,
        log: (s) => !o.json && process.stdout.write(s + '\n'),
        onProgress: (n, total) => {
          if (!started) progress.start('float runtime', total);
          started = true;
          progress.update(n);
          if (n === total) progress.stop();
        },
      }).finally(() => progress.stop());
      if (o.json) printJson(r);
      checkDemo(r);
    });
}
