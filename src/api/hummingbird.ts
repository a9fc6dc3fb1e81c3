/**
 * HummingBird: per-layer ReLU bit ranges for cheaper MPC comparisons. `search` finds ranges on a
 * calibration set under a bit budget; `check` validates a config against a model; the config file is
 * what {@link mpc.infer}'s `reluConfig` reads.
 */

import { DataError, firstLine, ModelError, OptionError, PrivmlError } from '../errors.js';
import type { HbConfig, HbMode } from '../hummingbird/config.js';
import type { SearchOptions as EngineOptions, SearchResult as EngineResult } from '../hummingbird/search.js';
import type { BitRange } from '../hummingbird/simulate.js';
import type { Dataset } from '../nn/data/index.js';
import type { Model } from '../onnx/ir.js';
import { loadModel, typed } from './core.js';
import { ensureWritable } from './files.js';

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
