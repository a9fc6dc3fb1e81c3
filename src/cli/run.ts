/**
 * `privml run MODEL --input x.npy|x.json [-o y.npy] [--runtime float|ort] [--compare ort] [--json]`:
 * plaintext inference on the user's own tensors (NumPy .npy in and out), with an output summary
 * and, with --compare ort, the largest difference against onnxruntime.
 */
import type { Command } from 'commander';
import { printable, runFiles } from '../api/run-files.js';
import { printJson } from './common.js';

interface RunOptions {
  input: string[];
  output?: string;
  runtime: string;
  compare?: string;
  json?: boolean;
}

/** Register `run`. */
export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a model on your own tensors (.npy or JSON), print an output summary, optionally save .npy and compare with onnxruntime')
    .argument('<model>', 'path to an .onnx file, or a zoo model name')
    .requiredOption('--input <file...>', 'one .npy or .json per graph input, in order (or name=file)')
    .option('-o, --output <file.npy>', 'write the (first) output as .npy; other outputs go to FILE.<name>.npy')
    .option('--runtime <name>', 'float (privml) or ort (onnxruntime)', 'float')
    .option('--compare <runtime>', 'also run on this runtime (ort) and print the largest difference')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, o: RunOptions) => {
      const report = await runFiles(ref, o.input, { runtime: o.runtime, compare: o.compare, output: o.output });
      const { source } = report;
      const names = Object.keys(report.outputs);
      if (o.json) return printJson(report);
      const lines = [`${source} (${o.runtime}, ${report.ms} ms)`];
      for (const n of names) {
        const s = report.outputs[n]!;
        const num = (x: unknown): string => (typeof x === 'number' ? Number(x.toPrecision(6)).toString() : String(x));
        lines.push(
          `  ${printable(n)}: ${s.dtype} [${s.shape.join(', ')}]  min ${num(s.min)}  max ` +
            `${num(s.max)}  mean ${num(s.mean)}${s.argmax ? `  argmax ${s.argmax.join(' ')}` : ''}`,
        );
        if (o.compare) {
          const d = report.compare![n]!;
          lines.push(`    vs onnxruntime: max abs diff ${d.maxAbs.toExponential(2)}, max rel diff ${d.maxRel.toExponential(2)}`);
        }
      }
      if (o.output) lines.push(`saved ${o.output}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
