/** `privml info MODEL`: op histogram, parameters, input/output shapes and MACs of a model, after validating it. */
import type { Command } from 'commander';
import { formatModelReport, inspectModel, problemsError } from '../api/models.js';
import { parseKeyValues, printJson } from './common.js';

/** Register `info`. */
export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('summarise an ONNX model (a file, or a zoo model name): ops, parameters, shapes, MACs; exit 1 listing every problem')
    .argument('<model>', 'path to an .onnx file, or a zoo model name (see `privml zoo list`)')
    .option('--opt <key=value...>', 'zoo build options, e.g. --opt pool=max')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, o: { opt?: string[]; json?: boolean }) => {
      const r = await inspectModel(ref, { zoo: parseKeyValues(o.opt) });
      if (o.json) printJson({ source: r.source, ...r.info });
      else process.stdout.write(`${r.source}\n${await formatModelReport(r)}\n`);
      if (r.info.problems.length) {
        if (o.json) throw await problemsError(r);
        process.stderr.write(`${await formatModelReport(r, { problems: true })}\n`);
        throw await problemsError(r, { summary: true });
      }
    });
}
