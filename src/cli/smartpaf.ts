/**
 * `privml smartpaf …`: the PAF library (`list`), the accuracy-recovery pipeline
 * (`smartpaf MODEL.onnx --paf … --techniques ct,pa,at,ss -o out.onnx`, the default subcommand `run`)
 * and the Table-3 report (`report`).
 */
import type { Command } from 'commander';
import * as api from '../api/smartpaf-tasks.js';
import { Progress, pct, posInt, posNum, printJson } from './common.js';

/** Register `smartpaf` with its `list` subcommand; returns the command so the pipeline can extend it. */
export function registerSmartpaf(program: Command): Command {
  const sp = program.command('smartpaf').description('polynomial activation functions (PAFs) for CKKS inference');
  sp.command('list')
    .description('list the PAFs: coefficients per stage, degree, multiplicative depth, multiplication count')
    .option('--json', 'machine-readable output')
    .option('--svg <dir>', 'also write one SVG plot per PAF (sign and ReLU vs exact) into this directory')
    .action(async (o: { json?: boolean; svg?: string }) => {
      const { pafs: rows, svg: files } = await api.listPafs({ svgDir: o.svg });
      if (o.json) return printJson(o.svg ? { pafs: rows, svg: files } : rows);
      const out: string[] = ['name        degree (alg.)  depth  mults  relu-err  stages'];
      for (const r of rows) {
        out.push(
          `${r.name.padEnd(11)} ${String(r.degree).padStart(6)} (${String(r.algebraicDegree).padStart(3)})  ` +
            `${String(r.depth).padStart(5)}  ${String(r.mults).padStart(5)}  ${r.reluMaxError.toExponential(2)}  ` +
            `${r.title}`,
        );
        for (const s of r.stages)
          out.push(`${''.padEnd(14)}${s.name.padEnd(4)} deg ${s.degree}: ${s.coefficients.map((c) => Number(c.toPrecision(10))).join(', ')}`);
      }
      out.push("degree = sum of stage degrees (papers' convention); alg. = degree of the composed polynomial.");
      out.push('depth/mults: sign(x) with minimal-depth power-basis evaluation (see src/smartpaf/poly.ts); ReLU adds 1 and 1.');
      for (const f of files) out.push(`wrote ${f}`);
      process.stdout.write(out.join('\n') + '\n');
    });
  registerRun(sp);
  registerReport(sp);
  sp.command('report-merge <json...>')
    .description('merge report JSON files of the same model (PAF columns run separately) into one HTML + JSON report')
    .requiredOption('-o, --output <file>', 'HTML report file (the JSON goes next to it, .json)')
    .action(async (files: string[], o: { output: string }) => {
      const { table, json } = await api.mergeReports(files, o.output);
      process.stdout.write(`wrote ${o.output} and ${json} (${table.columns.map((c) => c.paf).join(', ')})\n`);
    });
  return sp;
}

/** Options shared by `run` and `report`. */
interface DataCliOptions {
  dataset: string;
  dataDir?: string;
  limit?: number;
  calib?: number;
  testLimit?: number;
  valFraction: number;
  seed: number;
  epochsPerGroup: number;
  maxGroups: number;
  ctEpochs: number;
  ctSamples: number;
  pafLr?: number;
  linearLr?: number;
  allLr?: number;
  batchSize: number;
  json?: boolean;
}

function dataOptions(c: Command): Command {
  return c
    .option('--dataset <name>', 'fashion-mnist | cifar10', 'fashion-mnist')
    .option('--data-dir <dir>', 'read the data set from this directory')
    .option('--limit <n>', 'fine-tune on only N training examples (after holding out the validation split)', posInt('--limit'))
    .option('--calib <n>', 'training examples used for profiling and static-scale recording (default: all training examples used)', posInt('--calib'))
    .option('--test-limit <n>', 'evaluate on the first N test examples only', posInt('--test-limit'))
    .option('--val-fraction <x>', 'fraction of the training examples held out for validation', Number, api.DEFAULTS.valFraction)
    .option('--seed <n>', 'shuffle seed', Number, api.DEFAULTS.seed)
    .option('--epochs-per-group <n>', 'epochs per training group (AT alternation unit)', posInt('--epochs-per-group'), api.DEFAULTS.epochsPerGroup)
    .option('--max-groups <n>', 'training groups per replaced layer (budget)', posInt('--max-groups'), api.DEFAULTS.maxGroups)
    .option('--ct-epochs <n>', 'Coefficient Tuning epochs over the profiled activations', posInt('--ct-epochs'), api.DEFAULTS.ctEpochs)
    .option('--ct-samples <n>', 'training examples whose activations CT profiles', posInt('--ct-samples'), api.DEFAULTS.ctSamples)
    .option('--paf-lr <x>', 'AT learning rate of PAF coefficients (default 1e-3)', posNum('--paf-lr'))
    .option('--linear-lr <x>', 'AT learning rate of linear layers (default 1e-4)', posNum('--linear-lr'))
    .option('--all-lr <x>', 'fine-tune-all learning rate (default 1e-3)', posNum('--all-lr'))
    .option('--batch-size <n>', 'mini-batch size', posInt('--batch-size'), api.DEFAULTS.batchSize)
    .option('--json', 'machine-readable output');
}

/** The data flags as the API's data options. */
function dataOf(o: DataCliOptions): api.DataOptions {
  return { dataset: o.dataset, dataDir: o.dataDir, limit: o.limit, calib: o.calib, testLimit: o.testLimit, valFraction: o.valFraction, seed: o.seed };
}

function rates(o: DataCliOptions) {
  const r: Record<string, number> = {};
  if (o.pafLr) r['pafLr'] = o.pafLr;
  if (o.linearLr) r['linearLr'] = o.linearLr;
  if (o.allLr) r['allLr'] = o.allLr;
  return r;
}

function makeLog(json: boolean | undefined): (s: string) => void {
  return (s) => {
    if (!json) process.stderr.write(s + '\n');
  };
}

function stepProgress(progress: Progress) {
  return (label: string, p: { epoch: number; step: number; steps: number; loss: number }) => {
    if (p.step === 1) progress.start(label, p.steps);
    progress.update(p.step, `loss ${p.loss.toFixed(4)}`);
    if (p.step === p.steps) progress.stop();
  };
}

function registerRun(sp: Command): void {
  const run = sp
    .command('run <model>', { isDefault: true })
    .description('replace ReLU/MaxPool by a PAF and recover accuracy (CT, PA, AT, SS); writes a plain-ONNX model (PAFs expanded, static scales baked in)')
    .requiredOption('--paf <name>', 'f1g2 | f2g2 | f2g3 | a7 | f1sq-g1sq | minimax27')
    .option('--techniques <list>', 'comma-separated subset of ct,pa,at,ss (or none)', api.DEFAULTS.techniques)
    .option('--fine-tune-epochs <n>', 'without pa/at: fine-tune all weights this many epochs', Number, api.DEFAULTS.fineTuneEpochs);
  dataOptions(run)
    .requiredOption('-o, --output <file>', 'where to write the deployable .onnx model')
    .action(async (ref: string, o: DataCliOptions & { paf: string; techniques: string; fineTuneEpochs: number; output: string }) => {
      const progress = new Progress(!o.json);
      const res = await api.runFile(ref, o.output, {
        ...dataOf(o),
        paf: o.paf,
        techniques: o.techniques,
        epochsPerGroup: o.epochsPerGroup,
        maxGroups: o.maxGroups,
        fineTuneEpochs: o.fineTuneEpochs,
        rates: rates(o),
        batchSize: o.batchSize,
        ct: { epochs: o.ctEpochs, samples: o.ctSamples },
        log: makeLog(o.json),
        onStep: stepProgress(progress),
      });
      const source = res.source;
      const p = res.pipeline;
      const summary = {
        model: source,
        paf: res.paf,
        techniques: res.techniques,
        reluAccuracy: res.reluAccuracy,
        dynamicScaleAccuracy: res.dynamicScaleAccuracy,
        staticScaleAccuracy: res.staticScaleAccuracy,
        testN: res.testN,
        scales: res.scales,
        range: res.range,
        ct: p.ct?.map((r) => ({ node: r.node, kind: r.kind, mseBefore: r.mseBefore, mseAfter: r.mseAfter, stages: r.stages })),
        fineTune: p.fineTune.map((f) => ({
          node: f.node,
          startValAccuracy: f.startValAccuracy,
          bestValAccuracy: f.bestValAccuracy,
          groups: f.groups.map((g) => ({ group: g.group, valAccuracy: g.valAccuracy, improved: g.improved })),
        })),
        epochs: p.epochs,
        output: o.output,
        ortMaxAbsDiff: res.ortMaxAbsDiff,
        seconds: res.seconds,
      };
      if (o.json) return printJson(summary);
      const lines = [
        `ReLU model        ${pct(res.reluAccuracy)}`,
        `PAF, dynamic scale ${pct(res.dynamicScaleAccuracy)}`,
        `PAF, static scale  ${pct(res.staticScaleAccuracy)}  (${await api.formatRange(res.range)})`,
        `wrote ${o.output} (plain ONNX, ${res.model.graph.nodes.length} nodes; onnxruntime vs float runtime ` +
          `max |Δlogit| ${res.ortMaxAbsDiff.toExponential(2)}) in ${res.seconds.toFixed(0)} s`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}

function registerReport(sp: Command): void {
  const rep = sp
    .command('report <model>')
    .description("the paper's Table 3 for one model: technique rows × PAF columns, plus the ReLU accuracy (HTML with SVG, and JSON)")
    .option('--pafs <list>', 'comma-separated PAF names', api.DEFAULTS.pafs.join(','))
    .option('--save-models <dir>', 'also write each SmartPAF model (deployable ONNX) as DIR/<paf>.paf.onnx');
  dataOptions(rep)
    .requiredOption('-o, --output <file>', 'HTML report file (the JSON goes next to it, .json)')
    .action(async (ref: string, o: DataCliOptions & { pafs: string; output: string; saveModels?: string }) => {
      const pafs = o.pafs
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const progress = new Progress(!o.json);
      const { table, json: jsonFile } = await api.table(ref, o.output, {
        ...dataOf(o),
        pafs,
        saveModels: o.saveModels,
        epochsPerGroup: o.epochsPerGroup,
        maxGroups: o.maxGroups,
        ctEpochs: o.ctEpochs,
        ctSamples: o.ctSamples,
        rates: rates(o),
        batchSize: o.batchSize,
        log: makeLog(o.json),
        onStep: stepProgress(progress),
      });
      const relu = table.reluAccuracy;
      if (o.json) return printJson(table);
      const w = 34;
      const out = [
        `${'technique'.padEnd(w)}${pafs.map((p) => p.padStart(11)).join('')}`,
        `${'ReLU model'.padEnd(w)}${pafs.map(() => pct(relu).padStart(11)).join('')}`,
      ];
      for (const row of await api.tableRows())
        out.push(`${row.label.padEnd(w)}${table.columns.map((c) => pct(c.cells[row.key as keyof typeof c.cells].accuracy).padStart(11)).join('')}`);
      out.push(`wrote ${o.output} and ${jsonFile}`);
      process.stdout.write(out.join('\n') + '\n');
    });
}
