/**
 * Model-level tasks of the public API, what `privml info`, `zoo`, `train` and `eval` do: describe and
 * validate a model, list and export the zoo, train or fine-tune on a data set, measure top-1 accuracy.
 * Heavy modules (tfjs, onnxruntime, the protobuf codec) load inside the calls.
 */
import { DataError, FileError, firstLine, ModelError, OptionError, PrivmlError } from '../errors.js';
import type { Dataset } from '../nn/data/index.js';
import type { EpochResult, EvalResult, StepProgress } from '../nn/train.js';
import type { ModelInfo } from '../onnx/info.js';
import type { Model } from '../onnx/ir.js';
import type { OptionSpec } from '../onnx/zoo/index.js';
import { typed } from './core.js';
import { loadDatasetSync } from './data.js';
import { ensureWritable } from './files.js';
import { resolveModel } from './model-ref.js';

export type { EpochResult, StepProgress } from '../nn/train.js';
export type { Problem } from '../onnx/canonical.js';

/** What {@link inspectModel} returns: where the model came from, and its summary with every problem found. */
export interface ModelReport {
  /** The file path, or `zoo:NAME`. */
  source: string;
  /** Ops, parameters, shapes, MACs; `problems` lists what no privml runtime can run (empty when valid). */
  info: ModelInfo;
}

/** Summarise and validate a model (an .onnx path or a zoo name): `privml info`. Problems are returned, not thrown. */
export async function inspectModel(ref: string, opts: { zoo?: Record<string, string> } = {}): Promise<ModelReport> {
  const { modelInfo } = await import('../onnx/info.js');
  const { validateModel } = await import('../onnx/canonical.js');
  const { listOps, registerStandardOps } = await import('../nn/ops/index.js');
  try {
    const { model, source } = resolveModel(ref, opts.zoo);
    const info = modelInfo(model);
    // Ops no privml runtime knows are problems too (the float runtime supports the most).
    registerStandardOps();
    const ops = listOps().map((d) => (d.domain && d.domain !== 'ai.onnx' ? `${d.domain}.${d.opType}` : d.opType));
    info.problems = validateModel(model, { ops, source });
    return { source, info };
  } catch (e) {
    return typed(e);
  }
}

/** The text `privml info` prints for a report (the summary table; `problems: true` the problem list instead). */
export async function formatModelReport(r: ModelReport, opts: { problems?: boolean } = {}): Promise<string> {
  const { formatInfo, formatInfoProblems } = await import('../onnx/info.js');
  return opts.problems ? formatInfoProblems(r.source, r.info) : formatInfo(r.info);
}

/** The ModelError a report's problems amount to: one line naming each problem, or `summary` ("N problems (listed above)"). */
export async function problemsError(r: ModelReport, opts: { summary?: boolean } = {}): Promise<ModelError> {
  const { formatProblems } = await import('../onnx/canonical.js');
  const n = r.info.problems.length;
  return new ModelError(opts.summary ? `${r.source}: ${n} problem${n > 1 ? 's' : ''} (listed above)` : formatProblems(r.source, r.info.problems));
}

/** One built-in zoo model: name, description and build options (`privml zoo list`). */
export interface ZooModel {
  name: string;
  description: string;
  options: OptionSpec[];
}

/** The built-in model zoo. */
export async function listZoo(): Promise<ZooModel[]> {
  const { listZoo: list } = await import('../onnx/zoo/index.js');
  return list().map((e) => ({ name: e.name, description: e.description, options: e.options }));
}

/** What {@link exportZoo} wrote. */
export interface ZooExport {
  name: string;
  output: string;
  /** Every initializer element, BN running statistics and constants included (what {@link inspectModel} counts). */
  parameters: number;
  /** Learned parameters only (PyTorch's sum of p.numel()). */
  learnedParameters: number;
}

/** Build zoo model `name` with `opts` and write it to `output` (checked writable first): `privml zoo export`. */
export async function exportZoo(name: string, output: string, opts: Record<string, string> = {}): Promise<ZooExport> {
  ensureWritable(output);
  const { buildZoo, paramCount } = await import('../onnx/zoo/index.js');
  const { saveModel } = await import('../onnx/proto.js');
  const { modelInfo } = await import('../onnx/info.js');
  let model: Model;
  try {
    model = buildZoo(name, opts);
  } catch (e) {
    // Unknown model names and bad build options, with the zoo's own message.
    throw new ModelError(firstLine(e));
  }
  try {
    saveModel(model, output);
  } catch (e) {
    throw new FileError(`${output}: ${firstLine(e)}`);
  }
  return { name, output, parameters: modelInfo(model).parameters, learnedParameters: paramCount(model) };
}

/** Options of {@link train}; the CLI's flags of `privml train` (flag names in the error messages). */
export interface TrainOptions {
  /** Data set to train on (default fashion-mnist; fashion-mnist-sample has no training split). */
  dataset?: string;
  /** Read the data set from this directory instead of the search path. */
  dataDir?: string;
  /** Epochs (default 5). */
  epochs?: number;
  /** Mini-batch size (default 64). */
  batchSize?: number;
  /** 'adam' (default) or 'sgd'. */
  optimizer?: string;
  /** Learning rate (default 1e-3 adam, 0.05 sgd; cosine decay). */
  lr?: number;
  /** Decoupled weight decay. */
  weightDecay?: number;
  /** Use only the first N training examples. */
  limit?: number;
  /** Fraction of the training set held out for per-epoch validation, in [0, 1) (default 0.1). */
  valFraction?: number;
  /** Shuffle seed (default 0). */
  seed?: number;
  /** Zoo build options when the model is a zoo name. */
  zoo?: Record<string, string>;
  /** Progress lines (start, one per epoch). */
  log?: (line: string) => void;
  /** Called after every training step. */
  onStep?: (p: StepProgress) => void;
}

/** What {@link train} returns (the JSON `privml train --json` prints). */
export interface TrainResult {
  model: string;
  output: string;
  trainExamples: number;
  seconds: number;
  history: EpochResult[];
  testAccuracy: number;
  testExamples: number;
}

/** Train a zoo model (or fine-tune an .onnx file) and write the trained model to `output` (checked first): `privml train`. */
export async function train(ref: string, output: string, opts: TrainOptions = {}): Promise<TrainResult> {
  const o = { dataset: 'fashion-mnist', epochs: 5, batchSize: 64, optimizer: 'adam', valFraction: 0.1, seed: 0, ...opts };
  const log = opts.log ?? (() => {});
  if (o.optimizer !== 'adam' && o.optimizer !== 'sgd') throw new OptionError(`--optimizer must be adam or sgd, got '${o.optimizer}'`);
  if (!(o.valFraction >= 0 && o.valFraction < 1)) throw new OptionError(`--val-fraction must be in [0,1), got '${o.valFraction}'`);
  for (const [flag, v] of [
    ['--epochs', o.epochs],
    ['--batch-size', o.batchSize],
  ] as const)
    if (!(Number.isInteger(v) && v >= 1)) throw new OptionError(`${flag} must be a positive integer, got '${v}'`);
  ensureWritable(output);
  const { model, source } = resolveModel(ref, o.zoo);
  const full = loadDatasetSync(o.dataset, { split: 'train', dataDir: o.dataDir, limit: o.limit });
  const test = loadDatasetSync(o.dataset, { split: 'test', dataDir: o.dataDir });
  const { split } = await import('../nn/data/index.js');
  const { FloatModel } = await import('../nn/runtime.js');
  const { evaluate, train: fit } = await import('../nn/train.js');
  const { saveModel } = await import('../onnx/proto.js');
  const { a: val, b: trainSet } = o.valFraction > 0 ? split(full, o.valFraction, o.seed) : { a: undefined, b: full };
  const fm = await FloatModel.create(model, { source }).catch(typed);
  try {
    log(
      `training ${source} on ${trainSet.n} examples of ${o.dataset} ` +
        `(${val ? `${val.n} held out for validation, ` : ''}${o.epochs} epochs, ${o.optimizer}, batch ` +
        `${o.batchSize})`,
    );
    const t0 = performance.now();
    const history = await fit(fm, trainSet, {
      epochs: o.epochs,
      batchSize: o.batchSize,
      optimizer: o.optimizer,
      lr: o.lr,
      weightDecay: o.weightDecay,
      seed: o.seed,
      validation: val,
      onStep: opts.onStep,
      onEpoch: (e) =>
        log(
          `epoch ${e.epoch}: loss ${e.loss.toFixed(4)}, train acc ${pct(e.trainAccuracy)}` +
            (e.valAccuracy !== undefined ? `, val acc ${pct(e.valAccuracy)}` : '') +
            `, ${e.samplesPerSecond.toFixed(0)} samples/s`,
        ),
    }).catch(typed);
    const seconds = (performance.now() - t0) / 1000;
    const testResult = evaluate(fm, test);
    const out = fm.toModel();
    out.metadata['privml.trained'] = JSON.stringify({
      dataset: o.dataset,
      examples: trainSet.n,
      epochs: o.epochs,
      optimizer: o.optimizer,
      batchSize: o.batchSize,
      seed: o.seed,
      testAccuracy: Number(testResult.accuracy.toFixed(4)),
    });
    saveModel(out, output);
    return { model: source, output, trainExamples: trainSet.n, seconds, history, testAccuracy: testResult.accuracy, testExamples: test.n };
  } finally {
    fm.dispose();
  }
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** Data set (default fashion-mnist). */
  dataset?: string;
  dataDir?: string;
  /** 'test' (default) or 'train'. */
  split?: string;
  /** Evaluate only the first N examples. */
  limit?: number;
  /** 'float' (privml's float runtime, default) or 'ort' (onnxruntime-node, the ground truth). */
  runtime?: string;
  /** Zoo build options when the model is a zoo name. */
  zoo?: Record<string, string>;
  /** Called with the number of examples done so far. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@link evaluate} returns (the JSON `privml eval --json` prints). */
export interface EvaluateResult {
  model: string;
  dataset: string;
  runtime: 'float' | 'ort';
  n: number;
  correct: number;
  accuracy: number;
  seconds: number;
  classes: string[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

/** Top-1 accuracy and confusion matrix of a classifier on a data set: `privml eval`. */
export async function evaluate(ref: string | Model, opts: EvaluateOptions = {}): Promise<EvaluateResult> {
  const split = opts.split ?? 'test';
  const runtime = opts.runtime ?? 'float';
  if (split !== 'test' && split !== 'train') throw new OptionError(`--split must be test or train, got '${split}'`);
  if (runtime !== 'float' && runtime !== 'ort') throw new OptionError(`--runtime must be float or ort, got '${runtime}'`);
  const { model, source } = typeof ref === 'string' ? resolveModel(ref, opts.zoo) : { model: ref, source: ref.graph.name || 'model' };
  const ds = loadDatasetSync(opts.dataset ?? 'fashion-mnist', { split, dataDir: opts.dataDir, limit: opts.limit });
  const { FloatModel } = await import('../nn/runtime.js');
  const { evaluate: evalFloat } = await import('../nn/train.js');
  const fm = await FloatModel.create(model, { source }).catch(typed);
  const onBatch = (n: number) => opts.onProgress?.(n, ds.n);
  try {
    const t0 = performance.now();
    const r = runtime === 'ort' ? await evaluateOrt(model, fm, ds, onBatch) : evalFloat(fm, ds, { onBatch });
    const seconds = (performance.now() - t0) / 1000;
    return { model: source, dataset: ds.name, runtime, n: r.n, correct: r.correct, accuracy: r.accuracy, seconds, classes: ds.classes, confusion: r.confusion };
  } catch (e) {
    if (e instanceof PrivmlError || (e as Error)?.name === 'ModelError') return typed(e);
    throw new DataError(firstLine(e));
  } finally {
    fm.dispose();
  }
}

/** Evaluate with onnxruntime instead of the float runtime (ground truth). */
async function evaluateOrt(model: Model, fm: import('../nn/runtime.js').FloatModel, ds: Dataset, onBatch: (n: number) => void): Promise<EvalResult> {
  const { batches } = await import('../nn/data/index.js');
  const { classifierIo } = await import('../nn/train.js');
  const { ortSession, runOrt } = await import('../onnx/ort.js');
  const { input, output } = classifierIo(fm, ds);
  const k = ds.classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const predictions = new Uint8Array(ds.n);
  const session = await ortSession(model);
  let done = 0;
  let correct = 0;
  try {
    for (const b of batches(ds, 256)) {
      const out = await runOrt(model, { [input]: { dtype: 'float32', dims: [b.n, ...ds.shape], data: b.x } }, session);
      const logits = out[output]!.data as Float32Array;
      for (let i = 0; i < b.n; i++) {
        let best = 0;
        for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + best]!) best = j;
        predictions[done + i] = best;
        confusion[b.y[i]!]![best]!++;
        if (best === b.y[i]) correct++;
      }
      done += b.n;
      onBatch(done);
    }
  } finally {
    await session.release();
  }
  return { n: ds.n, correct, accuracy: ds.n ? correct / ds.n : 0, confusion, predictions };
}

/** Confusion matrix as the fixed-width table `privml eval` prints (rows: true class, columns: predicted). */
export function formatConfusion(classes: string[], m: number[][]): string {
  const w = Math.max(5, ...m.flat().map((v) => String(v).length + 1));
  const head = ''.padEnd(14) + classes.map((_, j) => String(j).padStart(w)).join('') + '\n';
  const rows = m.map((row, i) => `${i} ${classes[i]!.slice(0, 11).padEnd(12)}` + row.map((v) => String(v).padStart(w)).join('')).join('\n');
  return `confusion (rows: true, columns: predicted)\n${head}${rows}\n`;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
