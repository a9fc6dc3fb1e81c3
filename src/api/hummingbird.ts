/**
 * HummingBird: per-layer ReLU bit ranges for cheaper MPC comparisons. `search` finds ranges on a
 * calibration set under a bit budget; `check` validates a config against a model; the config file is
 * what {@link mpc.infer}'s `reluConfig` reads.
 */

import { DataError, firstLine, ModelError, OptionError, PrivmlError } from '../errors.js';
import type { HbConfig, HbEval, HbMeta, HbMode } from '../hummingbird/config.js';
import type { SearchOptions as EngineOptions, SearchResult as EngineResult } from '../hummingbird/search.js';
import type { BitRange } from '../hummingbird/simulate.js';
import type { Dataset } from '../nn/data/index.js';
import type { Model } from '../onnx/ir.js';
import { loadModel, saveModel, typed } from './core.js';
import { loadDatasetSync } from './data.js';
import { ensureWritable } from './files.js';
import { resolveModel } from './model-ref.js';

export type { HbConfig, HbLevel, HbMeta, HbMode } from '../hummingbird/config.js';
export type { BitRange } from '../hummingbird/simulate.js';

/** Options of {@link search} (see `privml hummingbird search --help` for each one's meaning). */
export type SearchOptions = Omit<EngineOptions, 'mode' | 'budget'> & {
  /** 'eco' keeps every calibration prediction; 'aggressive' tolerates `maxDrop` accuracy loss (default eco). */
  mode?: HbMode;
  /** Average kept bits per ReLU element (> 0). */
  budget: number;
};

/** Outcome of {@link search}: the engine's result plus the ranges by node, ready for a config file. */
export type SearchResult = EngineResult & { ranges: Record<string, BitRange> };

/** Search per-level ReLU bit ranges of `model` on `calib` (take it from a TRAINING split) under `opts.budget`. */
export async function search(model: Model | string, calib: Dataset, opts: SearchOptions): Promise<SearchResult> {
  const mode = opts.mode ?? 'eco';
  if (mode !== 'eco' && mode !== 'aggressive') throw new OptionError(`mode must be eco or aggressive, got '${String(mode)}'`);
  if (!(opts.budget > 0)) throw new OptionError(`budget must be > 0 bits per ReLU element, got ${opts.budget}`);
  if (opts.levelsBy !== undefined && opts.levelsBy !== 'size' && opts.levelsBy !== 'layer')
    throw new OptionError(`levelsBy must be size or layer, got '${String(opts.levelsBy)}'`);
  if (calib.n === 0) throw new DataError('calibration set is empty');
  const m = typeof model === 'string' ? await loadModel(model) : model;
  const { searchRanges } = await import('../hummingbird/search.js');
  const { layersOf } = await import('../hummingbird/config.js');
  try {
    const res = await searchRanges(m, calib, { ...opts, mode, budget: opts.budget });
    return { ...res, ranges: layersOf(res.levels) };
  } catch (e) {
    if (e instanceof PrivmlError || (e as Error).name === 'ModelError') return typed(e);
    throw new ModelError(firstLine(e));
  }
}

/** Write a config file (the `--relu-config` format plus metadata), creating its folder. */
export async function writeConfig(path: string, cfg: HbConfig): Promise<void> {
  ensureWritable(path);
  const { writeConfig: write } = await import('../hummingbird/config.js');
  write(path, cfg);
}

/** Read a config file and check it against `model` (node names, ranges, model hash); returns the ranges by node. */
export async function check(configPath: string, model: Model | string): Promise<Record<string, BitRange>> {
  const m = typeof model === 'string' ? await loadModel(model) : model;
  const { readConfig, validateConfig } = await import('../hummingbird/config.js');
  try {
    return validateConfig(readConfig(configPath), m, configPath);
  } catch (e) {
    if (e instanceof PrivmlError) throw e;
    throw new ModelError(firstLine(e));
  }
}

/** Evaluate `ranges` on `data` for `model` (reduced) against `ref64` (the exact reference model). */
async function evalSplit(model: Model, ref64: Model, ranges: Record<string, BitRange>, data: Dataset, worst: boolean, seed: number): Promise<HbEval> {
  const { agreement, SimEvaluator } = await import('../hummingbird/evaluator.js');
  const ev64 = await SimEvaluator.create(ref64, data);
  let refPreds: Uint8Array;
  let acc64: number;
  try {
    refPreds = ev64.predict({}, 'none', 0)!;
    acc64 = ev64.accuracy(refPreds);
  } finally {
    ev64.dispose();
  }
  const ev = await SimEvaluator.create(model, data);
  try {
    const preds = ev.predict(ranges, 'random', seed)!;
    const out: HbEval = { dataset: data.name, n: data.n, accuracy64: acc64, accuracy: ev.accuracy(preds), agreement: agreement(preds, refPreds) };
    if (worst) out.agreementWorst = agreement(ev.predict(ranges, 'worst', 0)!, refPreds);
    return out;
  } finally {
    ev.dispose();
  }
}

/** Options of {@link searchConfig}: the search's, where its data come from, and what follows it. */
export interface SearchConfigOptions extends Omit<SearchOptions, 'onProgress'> {
  /** Data set whose TRAINING split gives the calibration images (the test split only verifies). */
  dataset: string;
  dataDir?: string;
  /** Calibration images drawn from the training split (the rest may fine-tune). */
  calib: number;
  /** Test images to verify on (default: the whole test split). */
  testLimit?: number;
  /** Aggressive mode only: fine-tune the model with the simulator in the loop, written to `modelPath` (default: the config's path with .onnx). */
  finetune?: { epochs: number; lr: number; limit: number; modelPath?: string };
  /** Check the config with real private inference on this many test images (64-bit vs reduced). */
  verifyMpc?: number;
  /** Progress lines (what `privml hummingbird search` prints on stderr). */
  log?: (line: string) => void;
  /** Phase progress: search phases, then `finetune E/N` per epoch. */
  onProgress?: (phase: string, done: number, total: number, note?: string) => void;
}

/**
 * `privml hummingbird search`: search ranges on calibration images from a training split, optionally
 * fine-tune (aggressive mode), verify on the test split (and with private inference), and write the
 * config to `output`; returns the config and whether the search met its constraint.
 */
export async function searchConfig(model: string, output: string, opts: SearchConfigOptions): Promise<{ config: HbConfig; ok: boolean }> {
  const mode = opts.mode ?? 'eco';
  const seed = opts.seed ?? 0;
  const log = opts.log ?? (() => {});
  const ft = opts.finetune && opts.finetune.epochs > 0 ? opts.finetune : undefined;
  if (ft && mode !== 'aggressive') throw new OptionError('--finetune-epochs applies to --mode aggressive (eco keeps the model unchanged)');
  // Outputs are checked before minutes of search and fine-tuning.
  ensureWritable(output);
  const ftPath = ft ? (ft.modelPath ?? output.replace(/\.json$/i, '') + '.onnx') : undefined;
  if (ftPath) ensureWritable(ftPath);
  const { model: m, source } = resolveModel(model);
  // Calibration comes from the TRAINING split only; the test split is touched only for verification.
  if (opts.dataset === 'fashion-mnist-sample')
    throw new OptionError('calibration comes from a training split; fashion-mnist-sample holds only test images (use --dataset fashion-mnist)');
  const train = loadDatasetSync(opts.dataset, { split: 'train', dataDir: opts.dataDir });
  if (opts.calib >= train.n) throw new OptionError(`--calib ${opts.calib} must be below the ${train.n} training images`);
  const { split, subset } = await import('../nn/data/index.js');
  const { a: calib, b: rest } = split(train, opts.calib / train.n, seed);
  log(
    `hummingbird ${mode} search of ${source}: budget ${opts.budget} bits per ReLU element, ${calib.n} calibration ` +
      `images from ${train.name}, levels by ${opts.levelsBy ?? 'size'}`,
  );
  const t0 = performance.now();
  const { dataset: _d, dataDir: _dd, calib: _c, testLimit: _t, finetune: _f, verifyMpc: _v, log: _l, ...searchOpts } = opts;
  const res = await search(m, calib, { ...searchOpts, mode, seed });
  log(
    `search: ${res.levels.map((l) => `${l.name} [${l.lsb}, ${l.msb})`).join(', ')} → ` +
      `${res.bitsKept.toFixed(2)} bits kept per ReLU element (${pct(1 - res.bitsKept / 64)} discarded), ` +
      `calibration accuracy ${pct(res.calibration.accuracy)} vs ${pct(res.calibration.accuracy64)} (64-bit), ` +
      `${res.evals} passes in ${res.seconds.toFixed(1)} s`,
  );
  if (res.note) log(`note: ${res.note}`);

  let outModel = m;
  let outModelPath = source;
  const ranges = res.ranges;
  let finetuneMeta: HbMeta['finetune'];
  if (ft && ftPath) {
    const data = subset(rest, 0, Math.min(ft.limit, rest.n));
    log(`fine-tuning with the simulator in the loop: ${ft.epochs} epochs on ${data.n} training images ` + `(calibration images excluded), lr ${ft.lr}`);
    const t1 = performance.now();
    const { finetune } = await import('../hummingbird/finetune.js');
    const tuned = await finetune(m, ranges, data, {
      epochs: ft.epochs,
      lr: ft.lr,
      seed,
      onStep: (p) => opts.onProgress?.(`finetune ${p.epoch}/${ft.epochs}`, p.step, p.steps, `loss ${p.loss.toFixed(4)}`),
    });
    outModel = tuned.model;
    outModelPath = ftPath;
    outModel.metadata['privml.hummingbird.finetuned'] = JSON.stringify({ from: source, epochs: ft.epochs, examples: data.n, ranges });
    await saveModel(outModel, outModelPath);
    const before = res.calibration.accuracy;
    res.calibration = await evalSplit(outModel, m, ranges, calib, false, seed + 1000);
    finetuneMeta = { epochs: ft.epochs, examples: data.n, lr: ft.lr, calibrationAccuracyBefore: before, seconds: (performance.now() - t1) / 1000 };
    log(
      `fine-tuned model written to ${outModelPath}; calibration accuracy ${pct(before)} → ` +
        `${pct(res.calibration.accuracy)} (64-bit original ${pct(res.calibration.accuracy64)})`,
    );
  }

  // Verification on the test split (never used by the search).
  const test = loadDatasetSync(opts.dataset, { dataDir: opts.dataDir, limit: opts.testLimit });
  const testEval = await evalSplit(outModel, m, ranges, test, mode === 'eco', seed + 2000);
  const differ = (a: number) => Math.round((1 - a) * test.n);
  log(
    `test (${test.n} images): accuracy ${pct(testEval.accuracy)} vs ${pct(testEval.accuracy64)} (64-bit); ` +
      `predictions differing from the 64-bit model: ${differ(testEval.agreement)}` +
      (testEval.agreementWorst !== undefined ? ` (adversarial shares: ${differ(testEval.agreementWorst)})` : ''),
  );
  const { modelHash } = await import('../hummingbird/index.js');
  const meta: HbMeta = {
    version: 1,
    model: outModelPath,
    modelHash: modelHash(outModel),
    mode,
    budget: opts.budget,
    fracBits: 16,
    levels: res.levels,
    bitsKept: res.bitsKept,
    bitsDiscarded: 1 - res.bitsKept / 64,
    calibration: { ...res.calibration, seed },
    test: testEval,
    finetune: finetuneMeta,
    search: { evals: res.evals, seconds: (performance.now() - t0) / 1000, levelsBy: opts.levelsBy ?? 'size', note: res.note },
  };
  const config: HbConfig = { layers: ranges, hummingbird: meta };
  await writeConfig(output, config);

  if (opts.verifyMpc) {
    const n = Math.min(opts.verifyMpc, test.n);
    log(`verifying with private inference on ${n} test images (64-bit and reduced)…`);
    const { defaultJobFlags, privateInference } = await import('./mpc-session.js');
    const flags = defaultJobFlags({ dataset: opts.dataset, dataDir: opts.dataDir, limit: n, batch: Math.min(64, n) });
    const base = await privateInference(outModelPath, flags);
    const red = await privateInference(outModelPath, { ...flags, reluConfig: output });
    const identical = base.predictions.filter((p, i) => p === red.predictions[i]).length;
    meta.mpcCheck = { n, identical, accuracy64: base.accuracy, accuracy: red.accuracy };
    await writeConfig(output, config);
    log(
      `private inference: ${identical}/${n} predictions identical to the 64-bit private model; accuracy ` +
        `${base.accuracy !== undefined ? pct(base.accuracy) : '?'} → ` +
        `${red.accuracy !== undefined ? pct(red.accuracy) : '?'}`,
    );
  }
  return { config, ok: res.ok };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

export type { HbReport, ReportOptions, ReportResult } from './hummingbird-report.js';

/** `privml hummingbird report`: check configs, measure private inference with each against the 64-bit baselines, write HTML + JSON. */
export async function report(opts: import('./hummingbird-report.js').ReportOptions): Promise<import('./hummingbird-report.js').ReportResult> {
  const { report: run } = await import('./hummingbird-report.js');
  return run(opts);
}
