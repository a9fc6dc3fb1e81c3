/** `privml hummingbird …`: reduced-ring ReLU search (eco / aggressive), config check, HTML/JSON report. */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ensureWritable } from '../api/files.js';
import * as api from '../api/hummingbird.js';
import { bitsKept, type HbConfig, type HbMode, modelHash, readConfig, validateConfig } from '../hummingbird/index.js';
import { computeSpeedups, type HbReport, type ReportConfig, type ReportRun, renderReport } from '../hummingbird/report.js';
import { DEFAULT_WIDTHS } from '../hummingbird/search.js';
import type { BitRange } from '../hummingbird/simulate.js';
import { reluCost } from '../mpc/protocols/compare.js';
import type { Model } from '../onnx/ir.js';
import { CliError, Progress, pct, posInt, posNum, printJson, resolveModel } from './common.js';
import { defaultJobFlags, type InferResult, privateInference } from './mpc.js';

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

function parseMode(v: string): HbMode {
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

/** Load, check and summarise one config for the report. */
function reportConfig(path: string, fallbackModel?: string): { rc: ReportConfig; modelPath: string; model: Model } {
  let cfg: HbConfig;
  try {
    cfg = readConfig(path);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const modelPath = cfg.hummingbird?.model ?? fallbackModel;
  if (!modelPath) throw new CliError(`${path}: no model recorded in the config; give --model`, 2);
  const { model } = resolveModel(modelPath);
  try {
    validateConfig(cfg, model, path);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const m = cfg.hummingbird;
  // Element counts per node from the config's levels (when present) for the per-layer plot.
  const elems = new Map<string, number>();
  for (const l of m?.levels ?? []) for (const n of l.nodes) elems.set(n, l.elements / l.nodes.length);
  const layers = Object.entries(cfg.layers).map(([node, r]) => ({ node, msb: r.msb, lsb: r.lsb, bits: r.msb - r.lsb, elements: elems.get(node) }));
  const kept = m?.bitsKept ?? (m?.levels ? bitsKept(m.levels) : layers.reduce((a, l) => a + l.bits, 0) / Math.max(1, layers.length));
  return {
    rc: {
      name: path.replace(/^.*\//, '').replace(/\.json$/i, ''),
      path,
      model: modelPath,
      mode: m?.mode,
      budget: m?.budget,
      bitsKept: kept,
      bitsDiscarded: 1 - kept / 64,
      calibration: m?.calibration,
      test: m?.test,
      mpcCheck: m?.mpcCheck,
      finetuned: !!m?.finetune,
      layers,
    },
    modelPath,
    model,
  };
}

function runOf(label: string, kind: ReportRun['kind'], r: InferResult, netName: string, config?: string): ReportRun {
  const relu = r.layers.filter((l) => l.op === 'Relu' || l.op === 'MaxPool');
  return {
    label,
    kind,
    config,
    net: netName,
    batch: r.batch,
    msPerBatch: r.msPerBatch,
    bytesPerBatch: r.bytesSentPerBatch[0]! + r.bytesSentPerBatch[1]!,
    reluBytesPerBatch: relu.reduce((a, l) => a + l.bytesSent[0]! + l.bytesSent[1]!, 0),
    rounds: r.roundsPerBatch,
    modeledMs: r.modeledMsPerBatch,
    agreement: r.agreement,
  };
}

async function runReport(o: ReportFlags): Promise<void> {
  // Create the output folder first, so minutes of measurement are never lost to a missing directory.
  ensureWritable(o.output);
  ensureWritable(o.output.replace(/\.html?$/i, '') + '.json');
  if (o.from) {
    // Re-render a previous report's JSON (no private inference).
    let data: HbReport;
    try {
      data = JSON.parse(readFileSync(o.from, 'utf8')) as HbReport;
    } catch (e) {
      throw new CliError(`${o.from}: cannot read report JSON (${(e as Error).message.split('\n')[0]})`);
    }
    if (!Array.isArray(data.configs) || !Array.isArray(data.runs)) throw new CliError(`${o.from}: not a hummingbird report JSON`);
    writeFileSync(o.output, renderReport(data));
    if (o.json) printJson(data);
    return;
  }
  if (!o.configs) throw new CliError('give --configs (or --from a report JSON)', 2);
  const paths = o.configs
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (paths.length === 0) throw new CliError('--configs needs at least one config file', 2);
  const nets = o.nets
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of nets) if (n !== 'lan' && n !== 'wan' && n !== 'none') throw new CliError(`--nets entries must be lan, wan or none, got '${n}'`, 2);
  const batches = o.batches.split(',').map((s) => Number(s.trim()));
  if (batches.some((b) => !Number.isInteger(b) || b < 1)) throw new CliError(`--batches must be positive integers, got '${o.batches}'`, 2);
  const baselines = o.baselines
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const b of baselines) if (b !== 'signonly' && b !== 'crypten') throw new CliError(`--baselines entries must be signonly or crypten, got '${b}'`, 2);
  // Every config is checked (layers, ranges, model hash) before any party starts.
  const loaded = paths.map((p) => reportConfig(p, o.model));
  const baseModel = o.model ?? loaded.find((l) => !l.rc.finetuned)?.modelPath ?? loaded[0]!.modelPath;
  const { model: bm } = resolveModel(baseModel);
  const log = (s: string) => !o.json && process.stderr.write(s + '\n');
  const runs: ReportRun[] = [];
  if (o.mpc) {
    const jobs: { label: string; kind: ReportRun['kind']; model: string; protocol: 'signonly' | 'crypten'; config?: string; net: string; batch: number }[] = [];
    for (const net of nets) {
      for (const batch of batches) {
        for (const b of baselines)
          jobs.push({
            label: b === 'crypten' ? 'CrypTen 64-bit' : 'sign-only 64-bit',
            kind: b === 'crypten' ? 'crypten' : 'signonly',
            model: baseModel,
            protocol: b as 'signonly' | 'crypten',
            net,
            batch,
          });
        for (const l of loaded) jobs.push({ label: l.rc.name, kind: 'config', model: l.modelPath, protocol: 'signonly', config: l.rc.path, net, batch });
      }
    }
    const progress = new Progress(!o.json);
    progress.start('private inference', jobs.length);
    for (const [i, j] of jobs.entries()) {
      progress.update(i, `${j.label} ${j.net} batch ${j.batch}`);
      // An untimed warm-up batch (JIT, allocator) matters for small batches; at batch 64 it would only double the run.
      const flags = defaultJobFlags({
        dataset: 'fashion-mnist-sample',
        limit: j.batch * o.reps,
        batch: j.batch,
        warmup: j.batch <= 8,
        net: j.net,
        reluProtocol: j.protocol,
        reluConfig: j.config,
      });
      const r = await privateInference(j.model, flags);
      runs.push(runOf(j.label, j.kind, r, j.net, j.config));
    }
    progress.stop();
  }
  // Exact per-element ReLU costs (bits, rounds) as computed by the engine's cost model, for reference.
  const costs = loaded.map((l) => ({
    config: l.rc.name,
    bitsPerElement: weightedCost(l.rc.layers, (r) => reluCost(r.msb - r.lsb === 0 ? { msb: 0, lsb: 0 } : r).bits),
  }));
  const report: HbReport = {
    model: baseModel,
    modelHash: modelHash(bm),
    generated: new Date().toISOString(),
    configs: loaded.map((l) => l.rc),
    runs,
    reluCost: { signonly64: reluCost().bits, crypten: reluCost({ protocol: 'crypten' }).bits, configs: costs },
    speedups: computeSpeedups(runs),
  };
  writeFileSync(o.output, renderReport(report));
  const jsonPath = o.output.replace(/\.html?$/i, '') + '.json';
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n');
  if (o.json) return printJson(report);
  log(`wrote ${o.output} and ${jsonPath}`);
  for (const r of runs) {
    process.stdout.write(
      `${r.label.padEnd(28)} ${r.net.padEnd(4)} batch ${String(r.batch).padStart(3)}: ` +
        `${r.msPerBatch.toFixed(1).padStart(9)} ms, ${(r.bytesPerBatch / 1e6).toFixed(2).padStart(9)} MB, ` +
        `${r.rounds} rounds\n`,
    );
  }
}

/** Element-weighted mean of `f` over a config's layers (plain mean when element counts are unknown). */
function weightedCost(layers: ReportConfig['layers'], f: (r: BitRange) => number): number {
  let w = 0,
    s = 0;
  for (const l of layers) {
    const e = l.elements ?? 1;
    w += e;
    s += e * f(l);
  }
  return w ? s / w : 0;
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
    .action((path: string, o: { model: string }) => {
      const { model } = resolveModel(o.model);
      let ranges: Record<string, BitRange>;
      try {
        ranges = validateConfig(readConfig(path), model, path);
      } catch (e) {
        throw new CliError((e as Error).message);
      }
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
