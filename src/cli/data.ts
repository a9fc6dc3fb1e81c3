/** `privml data where|download`: locate or fetch data sets. */
import { homedir } from 'node:os';
import type { Command } from 'commander';
import { defaultCacheDir, defaultDataSearchDirs, downloadFashionMnist, findFashionMnist } from '../nn/data/index.js';
import { CliError, printJson } from './common.js';

/** Register `data`. */
export function registerData(program: Command): void {
  const data = program.command('data').description('locate or download data sets');
  data
    .command('where')
    .description('show where privml looks for Fashion-MNIST and which directory it would use')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      const dirs = defaultDataSearchDirs(process.env, homedir(), 'fashion-mnist');
      const found = findFashionMnist({ searchDirs: dirs });
      if (o.json) return printJson({ dataset: 'fashion-mnist', searchDirs: dirs, found: found ?? null });
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
      if (name !== 'fashion-mnist') throw new CliError(`cannot download '${name}' (only fashion-mnist; CIFAR-10 must be placed by hand)`, 2);
      const dest = o.dir ?? defaultCacheDir(homedir(), 'fashion-mnist');
      const r = await downloadFashionMnist(dest, {
        onProgress: o.json
          ? undefined
          : (p) => process.stderr.write(`\r${p.file}: ${(p.received / 1e6).toFixed(1)}${p.total ? ` / ${(p.total / 1e6).toFixed(1)}` : ''} MB   `),
      });
      if (o.json) return printJson(r);
      process.stderr.write('\n');
      process.stdout.write(`Fashion-MNIST in ${r.dir} (downloaded ${r.downloaded.length}, already present ${r.skipped.length})\n`);
    });
}
