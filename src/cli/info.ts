/** `privml info MODEL`: op histogram, parameters, input/output shapes and MACs of a model, after validating it. */
import type { Command } from 'commander';
import { listOps, registerStandardOps } from '../nn/ops/index.js';
import { formatProblems, validateModel } from '../onnx/canonical.js';
import { formatInfo, formatInfoProblems, modelInfo } from '../onnx/info.js';
import { CliError, parseKeyValues, printJson, resolveModel } from './common.js';

/** Register `info`. */
export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('summarise an ONNX model (a file, or a zoo model name): ops, parameters, shapes, MACs; exit 1 listing every problem')
    .argument('<model>', 'path to an .onnx file, or a zoo model name (see `privml zoo list`)')
    .option('--opt <key=value...>', 'zoo build options, e.g. --opt pool=max')
    .option('--json', 'machine-readable output')
    .action((ref: string, o: { opt?: string[]; json?: boolean }) => {
      const { model, source } = resolveModel(ref, parseKeyValues(o.opt));
      const info = modelInfo(model);
      // Ops no privml runtime knows are problems too (the float runtime supports the most).
      registerStandardOps();
      const ops = listOps().map((d) => (d.domain && d.domain !== 'ai.onnx' ? `${d.domain}.${d.opType}` : d.opType));
      const problems = validateModel(model, { ops, source });
      info.problems = problems;
      if (o.json) printJson({ source, ...info });
      else process.stdout.write(`${source}\n${formatInfo(info)}\n`);
      if (problems.length) {
        if (o.json) throw new CliError(formatProblems(source, problems));
        process.stderr.write(`${formatInfoProblems(source, info)}\n`);
        throw new CliError(`${source}: ${problems.length} problem${problems.length > 1 ? 's' : ''} (listed above)`);
      }
    });
}
