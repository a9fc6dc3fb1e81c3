/** `privml info MODEL`: op histogram, parameters, input/output shapes and MACs of a model. */
import type { Command } from 'commander';
import { formatInfo, modelInfo } from '../onnx/info.js';
import { parseKeyValues, printJson, resolveModel } from './common.js';

/** Register `info`. */
export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('summarise an ONNX model (a file, or a zoo model name): ops, parameters, shapes, MACs')
    .argument('<model>', 'path to an .onnx file, or a zoo model name (see `privml zoo list`)')
    .option('--opt <key=value...>', 'zoo build options, e.g. --opt pool=max')
    .option('--json', 'machine-readable output')
    .action((ref: string, o: { opt?: string[]; json?: boolean }) => {
      const { model, source } = resolveModel(ref, parseKeyValues(o.opt));
      const info = modelInfo(model);
      if (o.json) printJson({ source, ...info });
      else process.stdout.write(`${source}\n${formatInfo(info)}\n`);
    });
}
