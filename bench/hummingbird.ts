/**
 * HummingBird end-to-end benchmark: eco search, aggressive searches over a budget sweep (optionally
 * fine-tuned), then the report (private inference under LAN/WAN at batch 1 and 64 against the
 * 64-bit sign-only and CrypTen baselines). Needs the full Fashion-MNIST.
 *
 *   node --import tsx bench/hummingbird.ts --model models/fmnist-cnn.onnx --out bench-out/hb-fmnist-cnn
 *   node --import tsx bench/hummingbird.ts --model models/resnet20-fmnist.onnx --out bench-out/hb-resnet20 --budgets 6.4 --finetune 6.4:2
 *
 * Each step is the `privml hummingbird …` command run in-process, so its flags are the CLI's.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Command } from 'commander';
import { registerHummingbird } from '../src/cli/hummingbird.js';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/fmnist-cnn.onnx' },
    out: { type: 'string', default: 'bench-out/hummingbird' },
    'eco-budget': { type: 'string', default: '17.9' },
    budgets: { type: 'string', default: '6.4,5,4' },
    finetune: { type: 'string', default: '' }, // "budget:epochs,…" fine-tuned aggressive runs
    'finetune-limit': { type: 'string', default: '10000' },
    calib: { type: 'string', default: '1000' },
    'verify-mpc': { type: 'string', default: '500' },
    nets: { type: 'string', default: 'lan,wan' },
    batches: { type: 'string', default: '1,64' },
    reps: { type: 'string', default: '2' },
    'skip-search': { type: 'boolean', default: false },
  },
});

async function run(args: string[]): Promise<void> {
  process.stderr.write(`\n$ privml ${args.join(' ')}\n`);
  const program = new Command().name('privml').exitOverride();
  registerHummingbird(program);
  await program.parseAsync(['node', 'privml', ...args]);
}

const out = a.out!;
mkdirSync(out, { recursive: true });
const configs: string[] = [];
const eco = join(out, 'eco.json');
configs.push(eco);
if (!a['skip-search'])
  await run([
    'hummingbird',
    'search',
    a.model!,
    '--mode',
    'eco',
    '--budget',
    a['eco-budget']!,
    '--calib',
    a.calib!,
    '--verify-mpc',
    a['verify-mpc']!,
    '-o',
    eco,
  ]);
for (const b of a.budgets!.split(',').filter(Boolean)) {
  const p = join(out, `aggressive-${b}.json`);
  configs.push(p);
  if (!a['skip-search']) await run(['hummingbird', 'search', a.model!, '--mode', 'aggressive', '--budget', b, '--calib', a.calib!, '-o', p]);
}
for (const spec of a.finetune!.split(',').filter(Boolean)) {
  const [b, e] = spec.split(':');
  const p = join(out, `aggressive-${b}-ft${e}.json`);
  configs.push(p);
  if (!a['skip-search'])
    await run([
      'hummingbird',
      'search',
      a.model!,
      '--mode',
      'aggressive',
      '--budget',
      b!,
      '--calib',
      a.calib!,
      '--finetune-epochs',
      e ?? '1',
      '--finetune-limit',
      a['finetune-limit']!,
      '-o',
      p,
    ]);
}
await run([
  'hummingbird',
  'report',
  '--model',
  a.model!,
  '--configs',
  configs.join(','),
  '--nets',
  a.nets!,
  '--batches',
  a.batches!,
  '--reps',
  a.reps!,
  '-o',
  join(out, 'report.html'),
]);
