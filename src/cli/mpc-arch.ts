/** `privml mpc export-architecture`: the file party 0 receives for `--weights secret` (weights zero-filled). */
import type { Command } from 'commander';
import { exportArchitecture } from '../api/mpc-roles.js';

/** Register `mpc export-architecture` under the `mpc` command. */
export function registerMpcArchitecture(mpc: Command): void {
  mpc
    .command('export-architecture')
    .description('write what party 0 needs for --weights secret: the model with every weight zero-filled (shapes, ops and architecture constants kept)')
    .argument('<model>', '.onnx model (or zoo name)')
    .requiredOption('-o, --output <file>', 'where to write the architecture (.onnx)')
    .action(async (ref: string, o: { output: string }) => {
      const r = await exportArchitecture(ref, o.output);
      process.stdout.write(
        `${o.output}: ${r.zeroed} weight tensors zero-filled, ${r.kept} architecture constants kept; architecture ` + `sha256 ${r.hash.slice(0, 16)}…\n`,
      );
    });
}
