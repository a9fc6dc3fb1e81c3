/**
 * `privml smartpaf …`: the PAF library (`list`), the accuracy-recovery pipeline
 * (`smartpaf MODEL.onnx --paf … --techniques ct,pa,at,ss -o out.onnx`, the default subcommand `run`)
 * and the Table-3 report (`report`).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ensureWritable, ensureWritableDir } from '../api/files.js';
import * as api from '../api/smartpaf.js';
import type { Model } from '../onnx/ir.js';
import { saveModel } from '../onnx/proto.js';
import { nonlinearLayers } from '../smartpaf/layers.js';
import { getPaf, listPafs, MINIMAX27_EPS, type Paf } from '../smartpaf/paf.js';
import { deployModel, parseTechniques, rangeSummary } from '../smartpaf/pipeline.js';
import { pafSvg } from '../smartpaf/plot.js';
import { oddCost, oddDegree } from '../smartpaf/poly.js';
import { measureSign } from '../smartpaf/remez.js';
import { mergeTables, runTable, TABLE_ROWS, type TableResult, tableHtml } from '../smartpaf/report.js';
import { CliError, loadDataset, Progress, pct, posInt, posNum, printJson, resolveModel } from './common.js';

/** |x| from which sign errors are reported (the approximations are poor closer to 0 by design). */
const SIGN_ERROR_FROM = 0.1;

/** JSON description of one PAF, as printed by `smartpaf list --json`. */
export function describePaf(paf: Paf) {
  const m = measureSign(paf.stages, SIGN_ERROR_FROM, 4000);
  const minimax = paf.name === 'minimax27' ? { eps: MINIMAX27_EPS, signMaxErrorFromEps: measureSign(paf.stages, MINIMAX27_EPS, 4000).signError } : {};
  return {
    name: paf.name,
    title: paf.title,
    degree: paf.degree,
    algebraicDegree: paf.algebraicDegree,
    depth: paf.cost.depth,
    mults: paf.cost.mults,
    scalarMults: paf.cost.scalarMults,
    adds: paf.cost.adds,
    relu: { depth: paf.reluCost.depth, mults: paf.reluCost.mults },
    stages: paf.stages.map((c, i) => {
      const cost = oddCost(c);
      return { name: paf.stageNames[i]!, degree: oddDegree(c), depth: cost.depth, mults: cost.mults, coefficients: c };
    }),
    reluMaxError: m.reluError,
    signMaxError: { from: SIGN_ERROR_FROM, value: m.signError },
    ...minimax,
  };
}

/** Register `smartpaf` with its `list` subcommand; returns the command so the pipeline can extend it. */
export function registerSmartpaf(program: Command): Command {
  const sp = program.command('smartpaf').description('polynomial activation functions (PAFs) for CKKS inference');
  sp.command('list')
    .description('list the PAFs: coefficients per stage, degree, multiplicative depth, multiplication count')
    .option('--json', 'machine-readable output')
    .option('--svg <dir>', 'also write one SVG plot per PAF (sign and ReLU vs exact) into this directory')
    .action((o: { json?: boolean; svg?: string }) => {
      const pafs = listPafs();
      const rows = pafs.map(describePaf);
      const files: string[] = [];
      if (o.svg) {
        try {
          mkdirSync(o.svg, { recursive: true });
          for (const p of pafs) {
            const f = join(o.svg, `${p.name}.svg`);
            writeFileSync(f, pafSvg(p));
            files.push(f);
          }
        } catch (e) {
          throw new CliError(`--svg ${o.svg}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
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
    .action((files: string[], o: { output: string }) => {
      const jsonFile = o.output.replace(/\.html?$/i, '') + '.json';
      ensureWritable(o.output);
      ensureWritable(jsonFile);
      let merged: TableResult;
      try {
        merged = mergeTables(files.map(readTable));
      } catch (e) {
        throw new CliError(`report-merge: ${(e as Error).message.split('\n')[0]}`);
      }
      writeFileSync(o.output, tableHtml(merged));
      writeFileSync(jsonFile, JSON.stringify(merged, null, 2) + '\n');
      process.stdout.write(`wrote ${o.output} and ${jsonFile} (${merged.columns.map((c) => c.paf).join(', ')})\n`);
    });
  return sp;
}

/** Read one `smartpaf report` JSON file, checking the fields merging needs (a one-line error otherwise). */
function readTable(file: string): TableResult {
  let t: Partial<TableResult>;
  try {
    t = JSON.parse(readFileSync(file, 'utf8')) as Partial<TableResult>;
  } catch (e) {
    throw new Error(`${file}: cannot read report JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const ok =
    t !== null &&
    typeof t === 'object' &&
    typeof t.model === 'string' &&
    typeof t.testN === 'number' &&
    typeof t.reluAccuracy === 'number' &&
    Array.isArray(t.columns);
  if (!ok) throw new Error(`${file}: not a smartpaf report JSON (needs model, testN, reluAccuracy and columns)`);
  return t as TableResult;
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
    .option('--val-fraction <x>', 'fraction of the training examples held out for validation', Number, 0.1)
    .option('--seed <n>', 'shuffle seed', Number, 0)
    .option('--epochs-per-group <n>', 'epochs per training group (AT alternation unit)', posInt('--epochs-per-group'), 1)
    .option('--max-groups <n>', 'training groups per replaced layer (budget)', posInt('--max-groups'), 3)
    .option('--ct-epochs <n>', 'Coefficient Tuning epochs over the profiled activations', posInt('--ct-epochs'), 40)
    .option('--ct-samples <n>', 'training examples whose activations CT profiles', posInt('--ct-samples'), 256)
    .option('--paf-lr <x>', 'AT learning rate of PAF coefficients (default 1e-3)', posNum('--paf-lr'))
    .option('--linear-lr <x>', 'AT learning rate of linear layers (default 1e-4)', posNum('--linear-lr'))
    .option('--all-lr <x>', 'fine-tune-all learning rate (default 1e-3)', posNum('--all-lr'))
    .option('--batch-size <n>', 'mini-batch size', posInt('--batch-size'), 64)
    .option('--json', 'machine-readable output');
}

/**
 * Training data: the validation split is taken from the whole training set exactly as `privml train`
 * takes it (same --val-fraction and --seed), so it is held out from the pretrained model too; then
 * --limit keeps the first N of the remaining examples for fine-tuning (and the validation set is
 * cut to max(1000, N·fraction/(1 − fraction)) examples).
 */
async function loadData(o: DataCliOptions): Promise<api.PipelineData> {
  const full = loadDataset({ dataset: o.dataset, dataDir: o.dataDir }, 'train');
  const test = loadDataset({ dataset: o.dataset, dataDir: o.dataDir, limit: o.testLimit }, 'test');
  return api.splitData(full, test, { valFraction: o.valFraction, seed: o.seed, limit: o.limit, calib: o.calib });
}

function rates(o: DataCliOptions) {
  const r: Record<string, number> = {};
  if (o.pafLr) r['pafLr'] = o.pafLr;
  if (o.linearLr) r['linearLr'] = o.linearLr;
  if (o.allLr) r['allLr'] = o.allLr;
  return r;
}

/** The exact model with a one-line error when it has nothing to replace. */
function loadExact(ref: string): { model: Model; source: string } {
  const { model, source } = resolveModel(ref);
  try {
    const layers = nonlinearLayers(model, { source });
    if (layers.some((l) => l.replaced)) throw new CliError(`${source}: already has PAF layers; start from the ReLU model`);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError((e as Error).message.split('\n')[0]!);
  }
  return { model, source };
}

function pafOrFail(name: string): Paf {
  try {
    return getPaf(name);
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
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
    .option('--techniques <list>', 'comma-separated subset of ct,pa,at,ss (or none)', 'ct,pa,at,ss')
    .option('--fine-tune-epochs <n>', 'without pa/at: fine-tune all weights this many epochs', Number, 0);
  dataOptions(run)
    .requiredOption('-o, --output <file>', 'where to write the deployable .onnx model')
    .action(async (ref: string, o: DataCliOptions & { paf: string; techniques: string; fineTuneEpochs: number; output: string }) => {
      pafOrFail(o.paf);
      try {
        parseTechniques(o.techniques);
      } catch (e) {
        throw new CliError(`--techniques: ${(e as Error).message}`, 2);
      }
      ensureWritable(o.output);
      const { model, source } = loadExact(ref);
      const data = await loadData(o);
      const progress = new Progress(!o.json);
      const res = await api.run(model, data, {
        paf: o.paf,
        techniques: o.techniques,
        epochsPerGroup: o.epochsPerGroup,
        maxGroups: o.maxGroups,
        fineTuneEpochs: o.fineTuneEpochs,
        rates: rates(o),
        batchSize: o.batchSize,
        seed: o.seed,
        ct: { epochs: o.ctEpochs, samples: o.ctSamples },
        source,
        log: makeLog(o.json),
        onStep: stepProgress(progress),
      });
      try {
        saveModel(res.model, o.output);
      } catch (e) {
        throw new CliError(`${o.output}: ${(e as Error).message.split('\n')[0]}`);
      }
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
        `PAF, static scale  ${pct(res.staticScaleAccuracy)}  (${rangeSummary(res.range)})`,
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
    .option('--pafs <list>', 'comma-separated PAF names', 'f1sq-g1sq,a7')
    .option('--save-models <dir>', 'also write each SmartPAF model (deployable ONNX) as DIR/<paf>.paf.onnx');
  dataOptions(rep)
    .requiredOption('-o, --output <file>', 'HTML report file (the JSON goes next to it, .json)')
    .action(async (ref: string, o: DataCliOptions & { pafs: string; output: string; saveModels?: string }) => {
      const pafs = o.pafs
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (pafs.length === 0) throw new CliError('--pafs: no PAF named', 2);
      for (const p of pafs) pafOrFail(p);
      const jsonFile = o.output.replace(/\.html?$/i, '') + '.json';
      ensureWritable(o.output);
      ensureWritable(jsonFile);
      if (o.saveModels) ensureWritableDir(o.saveModels);
      const { model, source } = loadExact(ref);
      const data = await loadData(o);
      const log = makeLog(o.json);
      const progress = new Progress(!o.json);
      const relu = await api.accuracy(model, data.test, source);
      log(`${source}: ReLU model ${pct(relu)}`);
      const table = await runTable(model, relu, {
        pafs,
        ...data,
        epochsPerGroup: o.epochsPerGroup,
        maxGroups: o.maxGroups,
        ctEpochs: o.ctEpochs,
        ctSamples: o.ctSamples,
        rates: rates(o),
        batchSize: o.batchSize,
        seed: o.seed,
        source,
        log,
        onStep: stepProgress(progress),
        onSmartPaf: (name, res) => {
          if (!o.saveModels) return;
          const file = join(o.saveModels, `${name}.paf.onnx`);
          try {
            mkdirSync(o.saveModels, { recursive: true });
            saveModel(deployModel(res.staticModel!, { 'privml.paf.techniques': res.techniques.join(',') }, source), file);
          } catch (e) {
            throw new CliError(`${file}: ${(e as Error).message.split('\n')[0]}`);
          }
          log(`  wrote ${file}`);
        },
      });
      try {
        writeFileSync(o.output, tableHtml(table));
        writeFileSync(jsonFile, JSON.stringify(table, null, 2) + '\n');
      } catch (e) {
        throw new CliError(`${o.output}: ${(e as Error).message.split('\n')[0]}`);
      }
      if (o.json) return printJson(table);
      const w = 34;
      const out = [
        `${'technique'.padEnd(w)}${pafs.map((p) => p.padStart(11)).join('')}`,
        `${'ReLU model'.padEnd(w)}${pafs.map(() => pct(relu).padStart(11)).join('')}`,
      ];
      for (const row of TABLE_ROWS) out.push(`${row.label.padEnd(w)}${table.columns.map((c) => pct(c.cells[row.key].accuracy).padStart(11)).join('')}`);
      out.push(`wrote ${o.output} and ${jsonFile}`);
      process.stdout.write(out.join('\n') + '\n');
    });
}
