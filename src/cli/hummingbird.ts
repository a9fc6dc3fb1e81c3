/** `privml hummingbird …`: reduced-ring ReLU search (eco / aggressive), config check, HTML/JSON report. */
import type { Command } from 'commander';
import * as api from '../api/hummingbird.js';
import { DEFAULT_WIDTHS, report as hbReport } from '../api/hummingbird-report.js';
import { CliError, Progress, pct, posInt, posNum, printJson } from './common.js';

interface SearchFlags {
  dataset: string;
  dataDir?: string;
  budget: number;
  mode: string;
  output: string;
  levels: string;
  calib: number;
  seed: number;
  margin: number;
  lsbMargin: number;
  draws: number;
  widths?: string;
  window: number;
  maxDrop: number;
  maxEvals: number;
  finetuneEpochs: number;
  finetuneLimit: number;
  finetuneLr: number;
  finetunedModel?: string;
  testLimit?: number;
  verifyMpc?: number;
  json?: boolean;
}

function parseMode(v: string): api.HbMode {
  if (v !== 'eco' && v !== 'aggressive') throw new CliError(`--mode must be eco or aggressive, got '${v}'`, 2);
  return v;
}

function parseList(v: string | undefined, what: string): number[] | undefined {
  if (v === undefined) return undefined;
  const out = v.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 0 || n > 64))
    throw new CliError(`${what} must be a comma-separated list of integers in 0..64, got '${v}'`, 2);
  return out;
}

async function runSearch(ref: string, o: SearchFlags): Promise<void> {
  const mode = parseMode(o.mode);
  if (!(o.budget > 0)) throw new CliError(`--budget must be > 0 bits per ReLU element, got ${o.budget}`, 2);
  if (o.levels !== 'size' && o.levels !== 'layer') throw new CliError(`--levels must be size or layer, got '${o.levels}'`, 2);
  const widths = parseList(o.widths, '--widths');
  const progress = new Progress(!o.json);
  let phase = '';
  const t0 = performance.now();
  const log = (s: string) => !o.json && process.stderr.write(s + '\n');
  const { config, ok } = await api
    .searchConfig(ref, o.output, {
      mode,
      budget: o.budget,
      levelsBy: o.levels,
      margin: o.margin,
      lsbMargin: o.lsbMargin,
      draws: o.draws,
      widths,
      window: o.window,
      maxDrop: o.maxDrop / 100,
      maxEvals: o.maxEvals,
      seed: o.seed,
      dataset: o.dataset,
      dataDir: o.dataDir,
      calib: o.calib,
      testLimit: o.testLimit,
      finetune: { epochs: o.finetuneEpochs, lr: o.finetuneLr, limit: o.finetuneLimit, modelPath: o.finetunedModel },
      verifyMpc: o.verifyMpc,
      log,
      onProgress: (p, done, total, note) => {
        if (p !== phase) {
          if (phase) progress.stop();
          if (!process.stderr.isTTY && !p.startsWith('finetune')) log(`phase ${p} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
          progress.start(p, total);
          phase = p;
        }
        progress.update(Math.min(done, total), note);
      },
    })
    .finally(() => phase && progress.stop());
  const meta = config.hummingbird!;
  const test = meta.test!;
  if (o.json) printJson({ config: o.output, ok, ...config });
  else
    process.stdout.write(
      `wrote ${o.output}: ${pct(meta.bitsDiscarded)} of ReLU bits discarded (${meta.bitsKept.toFixed(2)} kept ` +
        `per element), test agreement ${pct(test.agreement)}, test accuracy ${pct(test.accuracy)} ` +
        `(64-bit ${pct(test.accuracy64)})\n`,
    );
}

interface ReportFlags {
  configs?: string;
  from?: string;
  model?: string;
  output: string;
  nets: string;
  batches: string;
  baselines: string;
  reps: number;
  mpc: boolean;
  json?: boolean;
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

async function runReport(o: ReportFlags): Promise<void> {
  const batches = o.batches.split(',').map((s) => Number(s.trim()));
  if (batches.some((b) => !Number.isInteger(b) || b < 1)) throw new CliError(`--batches must be positive integers, got '${o.batches}'`, 2);
  const progress = new Progress(!o.json);
  let started = false;
  const { report, json } = await hbReport({
    output: o.output,
    configs: o.configs === undefined ? undefined : list(o.configs),
    from: o.from,
    model: o.model,
    nets: list(o.nets),
    batches,
    baselines: list(o.baselines),
    reps: o.reps,
    mpc: o.mpc,
    onProgress: (done, total, note) => {
      if (!started) progress.start('private inference', total);
      started = true;
      progress.update(done, note);
    },
  }).finally(() => progress.stop());
  if (o.json) return printJson(report);
  if (!json) return;
  process.stderr.write(`wrote ${o.output} and ${json}\n`);
  for (const r of report.runs) {
    process.stdout.write(
      `${r.label.padEnd(28)} ${r.net.padEnd(4)} batch ${String(r.batch).padStart(3)}: ` +
        `${r.msPerBatch.toFixed(1).padStart(9)} ms, ${(r.bytesPerBatch / 1e6).toFixed(2).padStart(9)} MB, ` +
        `${r.rounds} rounds\n`,
    );
  }
}

/** Register `hummingbird`. */
export function registerHummingbird(program: Command): void {
  const hb = program.command('hummingbird').description('HummingBird: reduced-ring ReLU bit ranges for MPC inference (search, check, report)');

  hb.command('search')
    .description('search per-level ReLU bit ranges under a budget on a calibration split of the TRAINING set; writes a --relu-config file')
    .argument('<model>', '.onnx model')
    .option('--dataset <name>', 'data set (calibration from its training split, verification on its test split)', 'fashion-mnist')
    .option('--data-dir <dir>', 'read the data set from this directory')
    .requiredOption('--budget <bits>', 'average kept bits per ReLU element (weighted by element counts), > 0', Number)
    .option('--mode <mode>', 'eco (predictions unchanged) | aggressive (≤ --max-drop points lost)', 'eco')
    .requiredOption('-o, --output <file>', 'config file to write (relu-config format plus metadata)')
    .option('--levels <by>', 'group ReLU layers by feature-map size (size) or search each layer (layer)', 'size')
    .option('--calib <n>', 'calibration images taken from the training split', posInt('--calib'), 1000)
    .option('--seed <n>', 'seed of the calibration split and of the simulated shares', Number, 1)
    .option('--margin <bits>', 'eco: headroom bits above the profiled activation range', Number, 1)
    .option('--lsb-margin <bits>', 'eco: keep this many bits below the largest lsb that kept every calibration prediction', Number, 3)
    .option('--draws <n>', 'eco: random-share draws each candidate must pass (besides adversarial shares)', Number, 2)
    .option('--widths <list>', `aggressive: candidate widths b (default ${DEFAULT_WIDTHS.join(',')})`)
    .option('--window <bits>', 'aggressive: msb candidates below the profiled range', Number, 3)
    .option('--max-drop <points>', 'aggressive: calibration accuracy drop tolerated, in points', Number, 1)
    .option('--max-evals <n>', 'aggressive: cap on branch-and-bound evaluations', posInt('--max-evals'), 200)
    .option('--finetune-epochs <n>', 'aggressive: fine-tune with the simulator in the loop afterwards', Number, 0)
    .option('--finetune-limit <n>', 'training images used for fine-tuning', posInt('--finetune-limit'), 10000)
    .option('--finetune-lr <x>', 'fine-tuning learning rate (adam, cosine)', posNum('--finetune-lr'), 2e-4)
    .option('--finetuned-model <file>', 'where to write the fine-tuned model (default: the config path with .onnx)')
    .option('--test-limit <n>', 'verify on only the first N test images', posInt('--test-limit'))
    .option('--verify-mpc <n>', 'also run private inference (64-bit and reduced) on N test images and compare', posInt('--verify-mpc'))
    .option('--json', 'machine-readable output')
    .action(runSearch);

  hb.command('check')
    .description('check a config against a model (layer names, ranges, model hash) without running anything')
    .argument('<config>', 'config file')
    .requiredOption('--model <file>', '.onnx model')
    .action(async (path: string, o: { model: string }) => {
      const ranges = await api.check(path, o.model);
      process.stdout.write(`${path}: ok for ${o.model} (${Object.keys(ranges).length} layers)\n`);
    });

  hb.command('report')
    .description('HTML report (SVG plots) and JSON: accuracy vs budget, bits kept per layer, communication and time under LAN/WAN against the 64-bit baselines')
    .option('--configs <list>', 'comma-separated config files from `hummingbird search`')
    .option('--from <json>', 're-render the HTML from a previous report JSON instead of measuring')
    .option('--model <file>', '64-bit baseline model (default: the model of the first config that was not fine-tuned)')
    .requiredOption('-o, --output <file>', 'HTML file to write (the JSON goes next to it)')
    .option('--nets <list>', 'network emulations to measure', 'lan,wan')
    .option('--batches <list>', 'batch sizes to measure', '1,64')
    .option('--baselines <list>', '64-bit baselines: signonly, crypten', 'signonly,crypten')
    .option('--reps <n>', 'batches per measurement', posInt('--reps'), 1)
    .option('--no-mpc', 'skip private inference (plots from the configs only)')
    .option('--json', 'print the report JSON on stdout')
    .action(runReport);
}
