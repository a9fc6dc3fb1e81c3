/** `privml zoo list|export`: the built-in model zoo. */
import type { Command } from 'commander';
import { exportZoo, listZoo } from '../api/models.js';
import { parseKeyValues, printJson } from './common.js';

/** Register `zoo`. */
export function registerZoo(program: Command): void {
  const zoo = program.command('zoo').description('list or export the built-in model zoo');
  zoo
    .command('list')
    .description('list zoo models with their build options')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const entries = await listZoo();
      if (o.json) return printJson(entries);
      for (const e of entries) {
        const opts = e.options.map((s) => `${s.name}=${s.default}`).join(' ');
        process.stdout.write(`${e.name.padEnd(13)} ${e.description}\n${''.padEnd(14)}options: ${opts || '(none)'}\n`);
      }
    });
  zoo
    .command('export')
    .description('write a zoo model as an .onnx file')
    .argument('<name>', 'zoo model name')
    .requiredOption('-o, --output <file>', 'output .onnx path')
    .option('--opt <key=value...>', 'build options, e.g. --opt pool=max input=3x32x32')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { output: string; opt?: string[]; json?: boolean }) => {
      // `parameters` is what `privml info` counts (every initializer element, BN running statistics and
      // constants included); `learnedParameters` leaves those out (PyTorch's sum of p.numel()).
      const summary = await exportZoo(name, o.output, parseKeyValues(o.opt));
      if (o.json) printJson(summary);
      else {
        const learned = summary.learnedParameters === summary.parameters ? '' : `, ${summary.learnedParameters.toLocaleString('en-US')} learned`;
        process.stdout.write(`wrote ${o.output} (${summary.parameters.toLocaleString('en-US')} parameters${learned})\n`);
      }
    });
}
