/** `privml eval`: top-1 accuracy and confusion matrix of a model on a data set. */
import type { Command } from 'commander';
import { batches, type Dataset } from '../nn/data/index.js';
import { FloatModel } from '../nn/runtime.js';
import { classifierIo, type EvalResult, evaluate } from '../nn/train.js';
import type { Model } from '../onnx/ir.js';
import { ortSession, runOrt } from '../onnx/ort.js';
import { CliError, loadDataset, Progress, parseKeyValues, pct, posInt, printJson, resolveModel } from './common.js';

/** Evaluate with onnxruntime instead of the float runtime (ground truth). */
async function evaluateOrt(model: Model, fm: FloatModel, ds: Dataset, onBatch: (n: number) => void): Promise<EvalResult> {
  const { input, output } = classifierIo(fm, ds);
  const k = ds.classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const predictions = new Uint8Array(ds.n);
  const session = await ortSession(model);
  let done = 0;
  let correct = 0;
  try {
    for (const b of batches(ds, 256)) {
      const out = await runOrt(model, { [input]: { dtype: 'float32', dims: [b.n, ...ds.shape], data: b.x } }, session);
      const logits = out[output]!.data as Float32Array;
      for (let i = 0; i < b.n; i++) {
        let best = 0;
        for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + best]!) best = j;
        predictions[done + i] = best;
        confusion[b.y[i]!]![best]!++;
        if (best === b.y[i]) correct++;
      }
      done += b.n;
      onBatch(done);
    }
  } finally {
    await session.release();
  }
  return { n: ds.n, correct, accuracy: ds.n ? correct / ds.n : 0, confusion, predictions };
}

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
      if (o.split !== 'test' && o.split !== 'train') throw new CliError(`--split must be test or train, got '${o.split}'`, 2);
      if (o.runtime !== 'float' && o.runtime !== 'ort') throw new CliError(`--runtime must be float or ort, got '${o.runtime}'`, 2);
      const { model, source } = resolveModel(ref, parseKeyValues(o.opt));
      const ds = loadDataset({ dataset: o.dataset, dataDir: o.dataDir, limit: o.limit }, o.split);
      const fm = await FloatModel.create(model, { source });
      const progress = new Progress(!o.json);
      progress.start('eval', ds.n);
      const t0 = performance.now();
      const r = o.runtime === 'ort' ? await evaluateOrt(model, fm, ds, (n) => progress.update(n)) : evaluate(fm, ds, { onBatch: (n) => progress.update(n) });
      const seconds = (performance.now() - t0) / 1000;
      progress.stop();
      fm.dispose();
      const result = {
        model: source,
        dataset: ds.name,
        runtime: o.runtime,
        n: r.n,
        correct: r.correct,
        accuracy: r.accuracy,
        seconds,
        classes: ds.classes,
        confusion: r.confusion,
      };
      if (o.json) return printJson(result);
      process.stdout.write(`${source} on ${ds.name}: top-1 accuracy ${pct(r.accuracy)} (${r.correct}/${r.n}), ${o.runtime} runtime, ${seconds.toFixed(2)} s\n`);
      process.stdout.write(formatConfusion(ds.classes, r.confusion));
    });
}

/** Confusion matrix as a fixed-width table (rows: true class, columns: predicted). */
export function formatConfusion(classes: string[], m: number[][]): string {
  const w = Math.max(5, ...m.flat().map((v) => String(v).length + 1));
  const head = ''.padEnd(14) + classes.map((_, j) => String(j).padStart(w)).join('') + '\n';
  const rows = m.map((row, i) => `${i} ${classes[i]!.slice(0, 11).padEnd(12)}` + row.map((v) => String(v).padStart(w)).join('')).join('\n');
  return `confusion (rows: true, columns: predicted)\n${head}${rows}\n`;
}
