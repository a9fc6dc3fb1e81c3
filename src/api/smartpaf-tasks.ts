/**
 * What the `privml smartpaf` commands do, file in and file out: the PAF library with its plots
 * (`list`), the pipeline from a model file to a deployable model file (`run`), the paper's Table 3
 * (`report`) and the merge of separately run report columns (`report-merge`). Outputs are checked
 * writable before any training starts.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, FileError, firstLine, OptionError } from '../errors.js';
import type { Model } from '../onnx/ir.js';
import type { Paf } from '../smartpaf/paf.js';
import type { PafEvaluation } from '../smartpaf/pipeline.js';
import type { TableResult } from '../smartpaf/report.js';
import { saveModel } from './core.js';
import { loadDatasetSync } from './data.js';
import { ensureWritable, ensureWritableDir } from './files.js';
import { resolveModel } from './model-ref.js';
import { accuracy, checkExact, DEFAULTS, getPaf, type PipelineData, type RunOptions, type RunResult, run, splitData } from './smartpaf.js';

export type { TableColumn, TableResult } from '../smartpaf/report.js';
export { DEFAULTS } from './smartpaf.js';

/** |x| from which sign errors are reported (the approximations are poor closer to 0 by design). */
const SIGN_ERROR_FROM = 0.1;

/** One PAF as `privml smartpaf list --json` describes it: costs, per-stage coefficients, measured errors. */
export type PafDescription = Awaited<ReturnType<typeof describePaf>>;

/** Describe one PAF (costs, stages, max ReLU error, max sign error from |x| ≥ 0.1). */
export async function describePaf(paf: Paf) {
  const { measureSign } = await import('../smartpaf/remez.js');
  const { MINIMAX27_EPS } = await import('../smartpaf/paf.js');
  const { oddCost, oddDegree } = await import('../smartpaf/poly.js');
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

/** Every PAF of the library described; with `svgDir`, one SVG plot per PAF (sign and ReLU vs exact) written there. */
export async function listPafs(opts: { svgDir?: string } = {}): Promise<{ pafs: PafDescription[]; svg: string[] }> {
  const { listPafs: list } = await import('../smartpaf/paf.js');
  const { pafSvg } = await import('../smartpaf/plot.js');
  const pafs = list();
  const rows: PafDescription[] = [];
  for (const p of pafs) rows.push(await describePaf(p));
  const svg: string[] = [];
  if (opts.svgDir) {
    try {
      mkdirSync(opts.svgDir, { recursive: true });
      for (const p of pafs) {
        const f = join(opts.svgDir, `${p.name}.svg`);
        writeFileSync(f, pafSvg(p));
        svg.push(f);
      }
    } catch (e) {
      throw new FileError(`--svg ${opts.svgDir}: ${firstLine(e)}`);
    }
  }
  return { pafs: rows, svg };
}

/** Where the pipeline's data come from (the flags `privml smartpaf run|report` share). */
export interface DataOptions {
  /** Data set (default fashion-mnist). */
  dataset?: string;
  dataDir?: string;
  /** Fine-tune on only N training examples (after holding out the validation split). */
  limit?: number;
  /** Training examples used for profiling and static-scale recording (default: all used). */
  calib?: number;
  /** Evaluate on the first N test examples only. */
  testLimit?: number;
  /** Fraction of the training examples held out for validation (default 0.1). */
  valFraction?: number;
  /** Shuffle seed (default 0). */
  seed?: number;
}

/**
 * Training data: the validation split is taken from the whole training set exactly as `privml train`
 * takes it (same valFraction and seed), so it is held out from the pretrained model too; then `limit`
 * keeps the first N of the remaining examples for fine-tuning.
 */
export async function loadPipelineData(o: DataOptions): Promise<PipelineData> {
  const dataset = o.dataset ?? 'fashion-mnist';
  const full = loadDatasetSync(dataset, { split: 'train', dataDir: o.dataDir });
  const test = loadDatasetSync(dataset, { split: 'test', dataDir: o.dataDir, limit: o.testLimit });
  return splitData(full, test, { valFraction: o.valFraction, seed: o.seed, limit: o.limit, calib: o.calib });
}

/** The exact ReLU model `ref` (file or zoo name), refused when it has nothing to replace. */
export async function loadExactModel(ref: string): Promise<{ model: Model; source: string }> {
  const { model, source } = resolveModel(ref);
  await checkExact(model, source);
  return { model, source };
}

/** `privml smartpaf run`: check PAF, techniques and output, run the pipeline on `ref`, write the deployable model to `output`. */
export async function runFile(ref: string, output: string, o: Omit<RunOptions, 'source'> & DataOptions): Promise<RunResult & { source: string }> {
  await getPaf(o.paf);
  const { parseTechniques } = await import('../smartpaf/pipeline.js');
  try {
    parseTechniques(o.techniques ?? DEFAULTS.techniques);
  } catch (e) {
    throw new OptionError(`--techniques: ${firstLine(e)}`);
  }
  ensureWritable(output);
  const { model, source } = await loadExactModel(ref);
  const data = await loadPipelineData(o);
  const res = await run(model, data, { ...o, source });
  await saveModel(res.model, output);
  return { ...res, source };
}

/** Options of {@link table}. */
export interface TableOptions extends DataOptions {
  /** PAF columns (default f1sq-g1sq, a7). */
  pafs?: string[];
  /** Also write each SmartPAF model (deployable ONNX) as DIR/<paf>.paf.onnx. */
  saveModels?: string;
  epochsPerGroup?: number;
  maxGroups?: number;
  ctEpochs?: number;
  ctSamples?: number;
  rates?: RunOptions['rates'];
  batchSize?: number;
  log?: (line: string) => void;
  onStep?: RunOptions['onStep'];
}

/** `privml smartpaf report`: the paper's Table 3 for one model (technique rows × PAF columns), written as HTML to `output` and JSON next to it. */
export async function table(ref: string, output: string, o: TableOptions = {}): Promise<{ table: TableResult; json: string; source: string }> {
  const pafs = o.pafs ?? [...DEFAULTS.pafs];
  if (pafs.length === 0) throw new OptionError('--pafs: no PAF named');
  for (const p of pafs) await getPaf(p);
  const jsonFile = output.replace(/\.html?$/i, '') + '.json';
  ensureWritable(output);
  ensureWritable(jsonFile);
  if (o.saveModels) ensureWritableDir(o.saveModels);
  const { model, source } = await loadExactModel(ref);
  const data = await loadPipelineData(o);
  const log = o.log ?? (() => {});
  const relu = await accuracy(model, data.test, source);
  log(`${source}: ReLU model ${pct(relu)}`);
  const { runTable, tableHtml } = await import('../smartpaf/report.js');
  const { deployModel } = await import('../smartpaf/pipeline.js');
  const { saveModel: save } = await import('../onnx/proto.js');
  const t = await runTable(model, relu, {
    pafs,
    ...data,
    epochsPerGroup: o.epochsPerGroup ?? DEFAULTS.epochsPerGroup,
    maxGroups: o.maxGroups ?? DEFAULTS.maxGroups,
    ctEpochs: o.ctEpochs ?? DEFAULTS.ctEpochs,
    ctSamples: o.ctSamples ?? DEFAULTS.ctSamples,
    rates: o.rates ?? {},
    batchSize: o.batchSize ?? DEFAULTS.batchSize,
    seed: o.seed ?? DEFAULTS.seed,
    source,
    log,
    onStep: o.onStep,
    onSmartPaf: (name, res) => {
      if (!o.saveModels) return;
      const file = join(o.saveModels, `${name}.paf.onnx`);
      try {
        mkdirSync(o.saveModels, { recursive: true });
        save(deployModel(res.staticModel!, { 'privml.paf.techniques': res.techniques.join(',') }, source), file);
      } catch (e) {
        throw new FileError(`${file}: ${firstLine(e)}`);
      }
      log(`  wrote ${file}`);
    },
  });
  try {
    writeFileSync(output, tableHtml(t));
    writeFileSync(jsonFile, JSON.stringify(t, null, 2) + '\n');
  } catch (e) {
    throw new FileError(`${output}: ${firstLine(e)}`);
  }
  return { table: t, json: jsonFile, source };
}

/** Read one `smartpaf report` JSON file, checking the fields merging needs (a one-line error otherwise). */
function readTable(file: string): TableResult {
  let t: Partial<TableResult>;
  try {
    t = JSON.parse(readFileSync(file, 'utf8')) as Partial<TableResult>;
  } catch (e) {
    throw new FileError(`report-merge: ${file}: cannot read report JSON (${firstLine(e)})`);
  }
  const ok =
    t !== null &&
    typeof t === 'object' &&
    typeof t.model === 'string' &&
    typeof t.testN === 'number' &&
    typeof t.reluAccuracy === 'number' &&
    Array.isArray(t.columns);
  if (!ok) throw new DataError(`report-merge: ${file}: not a smartpaf report JSON (needs model, testN, reluAccuracy and columns)`);
  return t as TableResult;
}

/** `privml smartpaf report-merge`: merge report JSON files of one model (PAF columns run apart) into one HTML + JSON report. */
export async function mergeReports(files: string[], output: string): Promise<{ table: TableResult; json: string }> {
  const jsonFile = output.replace(/\.html?$/i, '') + '.json';
  ensureWritable(output);
  ensureWritable(jsonFile);
  const { mergeTables, tableHtml } = await import('../smartpaf/report.js');
  const tables = files.map(readTable);
  let merged: TableResult;
  try {
    merged = mergeTables(tables);
  } catch (e) {
    throw new DataError(`report-merge: ${firstLine(e)}`);
  }
  writeFileSync(output, tableHtml(merged));
  writeFileSync(jsonFile, JSON.stringify(merged, null, 2) + '\n');
  return { table: merged, json: jsonFile };
}

/** Rows of Table 3 (key and label), in order. */
export async function tableRows(): Promise<readonly { key: string; label: string }[]> {
  return (await import('../smartpaf/report.js')).TABLE_ROWS;
}

/** One-line summary of the activation ranges a PAF model saw (what `smartpaf run` prints). */
export async function formatRange(range: PafEvaluation['range']): Promise<string> {
  return (await import('../smartpaf/pipeline.js')).rangeSummary(range);
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
