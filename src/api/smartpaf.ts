/**
 * SmartPAF: replace ReLU/MaxPool by polynomial activation functions (PAFs) and recover the accuracy
 * (Coefficient Tuning, Progressive Approximation, Alternate Training, Static Scaling). The result is a
 * plain-ONNX model that {@link fhe} evaluates under CKKS.
 */

import { DataError, firstLine, ModelError, OptionError, PrivmlError } from '../errors.js';
import type { Dataset } from '../nn/data/index.js';
import type { StepProgress } from '../nn/train.js';
import type { Model } from '../onnx/ir.js';
import type { Paf } from '../smartpaf/paf.js';
import type { PafEvaluation, PipelineResult, Technique } from '../smartpaf/pipeline.js';
import { loadModel, typed } from './core.js';

/** The pipeline's defaults, used by {@link run}, `smartpaf.table` and the CLI's flags alike. */
export const DEFAULTS = {
  techniques: 'ct,pa,at,ss',
  epochsPerGroup: 1,
  maxGroups: 3,
  fineTuneEpochs: 0,
  ctEpochs: 40,
  ctSamples: 256,
  batchSize: 64,
  seed: 0,
  valFraction: 0.1,
  pafs: ['f1sq-g1sq', 'a7'],
} as const;

export type { Paf } from '../smartpaf/paf.js';
export type { Technique } from '../smartpaf/pipeline.js';

/** Names of the PAFs in the library (`f1g2`, `f1sq-g1sq`, `a7`, `minimax27`, …). */
export async function pafNames(): Promise<string[]> {
  const { listPafs } = await import('../smartpaf/paf.js');
  return listPafs().map((p) => p.name);
}

/** A PAF by name (coefficients per stage, degree, depth, cost); OptionError for an unknown name. */
export async function getPaf(name: string): Promise<Paf> {
  const { getPaf: get } = await import('../smartpaf/paf.js');
  try {
    return get(name);
  } catch (e) {
    throw new OptionError(firstLine(e));
  }
}

/** The four data splits of the pipeline. */
export interface PipelineData {
  /** Fine-tuning examples. */
  train: Dataset;
  /** Held out from `train`; AT keeps the best weights on it. */
  validation: Dataset;
  /** Profiling (CT) and static-scale recording examples. */
  calib: Dataset;
  /** Reported accuracies. */
  test: Dataset;
}

/** Options of {@link splitData}. */
export interface SplitOptions {
  /** Fraction of the training set held out for validation, in (0, 1) (default 0.1). */
  valFraction?: number;
  /** Shuffle seed of the split (default 0; `privml train` uses the same split). */
  seed?: number;
  /** Fine-tune on only the first N remaining examples (validation cut to max(1000, N·f/(1−f))). */
  limit?: number;
  /** Calibration examples (default: all fine-tuning examples). */
  calib?: number;
}

/** Split a training set into train/validation/calibration the way `privml smartpaf` does. */
export async function splitData(full: Dataset, test: Dataset, o: SplitOptions = {}): Promise<PipelineData> {
  const valFraction = o.valFraction ?? DEFAULTS.valFraction;
  if (!(valFraction > 0 && valFraction < 1)) throw new OptionError(`--val-fraction must be in (0,1), got '${valFraction}'`);
  const { split, subset } = await import('../nn/data/index.js');
  let { a: validation, b: train } = split(full, valFraction, o.seed ?? DEFAULTS.seed);
  if (o.limit !== undefined) {
    train = subset(train, 0, Math.min(o.limit, train.n));
    const nVal = Math.max(1000, Math.round((o.limit * valFraction) / (1 - valFraction)));
    validation = subset(validation, 0, Math.min(nVal, validation.n));
  }
  if (validation.n === 0 || train.n === 0) throw new DataError(`too few training examples (${full.n}) to hold out a validation split`);
  const calib = o.calib ? subset(train, 0, Math.min(o.calib, train.n)) : train;
  return { train, validation, calib, test };
}

/** Options of {@link run}; defaults are {@link DEFAULTS}. */
export interface RunOptions {
  /** PAF name, e.g. 'f1sq-g1sq'. */
  paf: string;
  /** Comma-separated subset of ct,pa,at,ss, or 'none' (default 'ct,pa,at,ss'). */
  techniques?: string;
  /** Epochs per training group (default 1). */
  epochsPerGroup?: number;
  /** Training groups per replaced layer (default 3). */
  maxGroups?: number;
  /** Without pa/at: fine-tune all weights this many epochs (default 0). */
  fineTuneEpochs?: number;
  /** Coefficient Tuning epochs and profiled examples (default 40 and 256). */
  ct?: { epochs?: number; samples?: number };
  /** Learning rates (defaults: PAF 1e-3, linear 1e-4, all 1e-3). */
  rates?: { pafLr?: number; linearLr?: number; allLr?: number };
  /** Mini-batch size (default 64). */
  batchSize?: number;
  /** Seed (default 0). */
  seed?: number;
  /** Name used in messages (default: the path, or the graph name). */
  source?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Per-step training progress. */
  onStep?: (label: string, p: StepProgress) => void;
}

/** Outcome of {@link run}. */
export interface RunResult {
  /** Deployable plain-ONNX model: PAFs expanded, static scales baked in, accuracies in its metadata. */
  model: Model;
  paf: string;
  techniques: Technique[];
  reluAccuracy: number;
  dynamicScaleAccuracy: number;
  staticScaleAccuracy: number;
  testN: number;
  scales: Record<string, number>;
  range: PafEvaluation['range'];
  /** The pipeline's own record (CT fits, fine-tuning groups, epochs). */
  pipeline: PipelineResult;
  /** Largest |onnxruntime − float runtime| logit difference of the deployed model on 64 test examples. */
  ortMaxAbsDiff: number;
  seconds: number;
}

/** Top-1 accuracy of a plain model on `test` in the float runtime. */
export async function accuracy(model: Model, test: Dataset, source?: string): Promise<number> {
  const { FloatModel } = await import('../nn/runtime.js');
  const { evaluate } = await import('../nn/train.js');
  const fm = await FloatModel.create(model, { source });
  try {
    return evaluate(fm, test).accuracy;
  } finally {
    fm.dispose();
  }
}

/** Largest |ORT − float runtime| over the logits of the first `n` test examples. */
async function ortCheck(model: Model, test: Dataset, n = 64): Promise<number> {
  const { subset } = await import('../nn/data/index.js');
  const { FloatModel } = await import('../nn/runtime.js');
  const { classifierIo } = await import('../nn/train.js');
  const { runOrt } = await import('../onnx/ort.js');
  const ds = subset(test, 0, Math.min(n, test.n));
  const fm = await FloatModel.create(model);
  try {
    const { input, output } = classifierIo(fm, ds);
    const feed = { [input]: { dtype: 'float32' as const, dims: [ds.n, ...ds.shape], data: ds.images } };
    const a = fm.run(feed)[output]!.data as Float32Array;
    const b = (await runOrt(model, feed))[output]!.data as Float32Array;
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
    return d;
  } finally {
    fm.dispose();
  }
}

/** Check up front that `model` is a plain ReLU model the pipeline can work on. */
export async function checkExact(model: Model, source: string): Promise<void> {
  const { nonlinearLayers } = await import('../smartpaf/layers.js');
  let layers;
  try {
    layers = nonlinearLayers(model, { source });
  } catch (e) {
    throw new ModelError(firstLine(e));
  }
  if (layers.some((l) => l.replaced)) throw new ModelError(`${source}: already has PAF layers; start from the ReLU model`);
}

/** Run the SmartPAF pipeline on a ReLU model and return the deployable PAF model with its accuracies. */
export async function run(model: Model | string, data: PipelineData, o: RunOptions): Promise<RunResult> {
  const source = o.source ?? (typeof model === 'string' ? model : model.graph.name);
  const m = typeof model === 'string' ? await loadModel(model) : model;
  const paf = await getPaf(o.paf);
  const pipeline = await import('../smartpaf/pipeline.js');
  const { withStaticScales } = await import('../smartpaf/graph.js');
  let techniques: Set<Technique>;
  try {
    techniques = pipeline.parseTechniques(o.techniques ?? DEFAULTS.techniques);
  } catch (e) {
    throw new OptionError(`--techniques: ${firstLine(e)}`);
  }
  await checkExact(m, source);
  try {
    const t0 = performance.now();
    const relu = await accuracy(m, data.test, source);
    o.log?.(
      `${source}: ReLU model ${(100 * relu).toFixed(1)}% on ${data.test.n} test examples; PAF ${paf.name} ` +
        `(${paf.title}), techniques ${[...techniques].join(',') || 'none'}; ${data.train.n} train / ` +
        `${data.validation.n} validation examples`,
    );
    const res = await pipeline.runPipeline(m, {
      paf,
      techniques,
      ...data,
      epochsPerGroup: o.epochsPerGroup ?? DEFAULTS.epochsPerGroup,
      maxGroups: o.maxGroups ?? DEFAULTS.maxGroups,
      fineTuneEpochs: o.fineTuneEpochs ?? DEFAULTS.fineTuneEpochs,
      rates: o.rates ?? {},
      batchSize: o.batchSize ?? DEFAULTS.batchSize,
      seed: o.seed ?? DEFAULTS.seed,
      ct: { epochs: o.ct?.epochs ?? DEFAULTS.ctEpochs, samples: o.ct?.samples ?? DEFAULTS.ctSamples },
      source,
      log: o.log,
      onStep: o.onStep,
    });
    const dyn = await pipeline.evaluatePaf(res.dynamicModel, data.test, source);
    // Deployment always needs static scales; without 'ss' they are recorded only for the export.
    const scales = res.scales ?? (await pipeline.recordScales(res.dynamicModel, data.calib, source));
    const staticModel = res.staticModel ?? withStaticScales(res.dynamicModel, scales, source);
    const stat = await pipeline.evaluatePaf(staticModel, data.test, source);
    const deployed = pipeline.deployModel(
      staticModel,
      {
        'privml.paf.techniques': res.techniques.join(','),
        'privml.paf.accuracy': JSON.stringify({ relu, dynamic: dyn.accuracy, static: stat.accuracy, testN: data.test.n }),
      },
      source,
    );
    const ortMaxAbsDiff = await ortCheck(deployed, data.test);
    return {
      model: deployed,
      paf: paf.name,
      techniques: res.techniques,
      reluAccuracy: relu,
      dynamicScaleAccuracy: dyn.accuracy,
      staticScaleAccuracy: stat.accuracy,
      testN: data.test.n,
      scales,
      range: stat.range,
      pipeline: res,
      ortMaxAbsDiff,
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    if (e instanceof PrivmlError || (e as Error).name === 'ModelError') return typed(e);
    throw e;
  }
}

export type { DataOptions, PafDescription, TableColumn, TableOptions, TableResult } from './smartpaf-tasks.js';
export { describePaf, formatRange, listPafs, loadExactModel, loadPipelineData, mergeReports, runFile, table, tableRows } from './smartpaf-tasks.js';
