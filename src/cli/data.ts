/** `privml data where|download`: locate or fetch data sets. */
import type { Command } from 'commander';
import { downloadDataset, whereDataset } from '../api/data.js';
import { printJson } from './common.js';

/** Register `data`. */
export function registerData(program: Command): void {
  const data = program.command('data').description('locate or download data sets');
  data
    .command('where')
    .description('show where privml looks for Fashion-MNIST and which directory it would use')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      const w = whereDataset();
      const { searchDirs: dirs, found } = w;
      if (o.json) return printJson(w);
      process.stdout.write(`search order:\n${dirs.map((d) => `  ${d}${d === found ? '   <- found' : ''}`).join('\n')}\n`);
      if (!found) process.stdout.write('not found: apt-get install dataset-fashion-mnist, set PRIVML_DATA, or run `privml data download fashion-mnist`\n');
    });
  data
    .command('download')
    .description('download a data set into the user cache (needs internet)')
    .argument('<dataset>', 'fashion-mnist')
    .option('--dir <dir>', 'destination directory (default ~/.cache/privml/fashion-mnist)')
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { dir?: string; json?: boolean }) => {
      const r = await downloadDataset(name, {
        dir: o.dir,
        onProgress: o.json
          ? undefined
          : (p) => process.stderr.write(`\r${p.file}: ${(p.received / 1e6).toFixed(1)}${p.total ? ` / ${(p.total / 1e6).toFixed(1)}` : ''} MB   `),
      });
      if (o.json) return printJson(r);
      process.stderr.write('\n');
      process.stdout.write(`Fashion-MNIST in ${r.dir} (downloaded ${r.downloaded.length}, already present ${r.skipped.length})\n`);
    });
}
