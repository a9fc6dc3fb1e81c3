/** `privml mpc export-architecture`: the file party 0 receives for `--weights secret` (weights zero-filled). */
import type { Command } from 'commander';
import { architectureConstants, architectureHash, stripWeights } from '../mpc/arch.js';
import { planModel } from '../mpc/plan.js';
import { saveModel } from '../onnx/proto.js';
import { CliError, resolveModel } from './common.js';

/** Register `mpc export-architecture` under the `mpc` command. */
export function registerMpcArchitecture(mpc: Command): void {
  mpc
    .command('export-architecture')
    .description('write what party 0 needs for --weights secret: the model with every weight zero-filled (shapes, ops and architecture constants kept)')
    .argument('<model>', '.onnx model (or zoo name)')
    .requiredOption('-o, --output <file>', 'where to write the architecture (.onnx)')
    .action((ref: string, o: { output: string }) => {
      const { model, source } = resolveModel(ref);
      // Refuse a model that cannot run privately before handing it out (names every offending node).
      try {
        planModel(model, 1, source);
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      const arch = stripWeights(model);
      saveModel(arch, o.output);
      const kept = architectureConstants(arch).size;
      const zeroed = arch.graph.initializers.size - kept;
      process.stdout.write(
        `${o.output}: ${zeroed} weight tensors zero-filled, ${kept} architecture constants kept; architecture ` +
          `sha256 ${architectureHash(arch).slice(0, 16)}…\n`,
      );
    });
}
