/**
 * Proteus: have a third party optimize a model graph without learning its architecture. The owner
 * `obfuscate`s (real subgraphs hidden among sentinels, a key file kept private), the optimizer runs
 * `optimize` on the bundle (no key needed), the owner `recover`s the optimized model with the key.
 */

import { firstLine, KeyError, ModelError, OptionError, PrivmlError } from '../errors.js';
import type { Model } from '../onnx/ir.js';
import type { OptLevel, ProteusKey, RecoverResult } from '../proteus/index.js';
import { loadModel } from './core.js';
import { ensureWritable, ensureWritableDir } from './files.js';

export type { OptLevel, ProteusKey, RecoverResult } from '../proteus/index.js';

function wrap(e: unknown, make: (m: string) => PrivmlError = (m) => new ModelError(m)): never {
  if (e instanceof PrivmlError) throw e;
  throw make(firstLine(e));
}

/** Options of {@link obfuscate}. */
export interface ObfuscateOptions {
  /** Sentinels per real subgraph (default 20). */
  k?: number;
  /** Target operators per subgraph (default 16). */
  size?: number;
  /** Extra models whose operator statistics the sentinels are drawn from (besides the zoo's). */
  corpus?: Model[];
  /** Where to write the owner key (mode 0600); without it the key is only returned. */
  keyFile?: string;
  /** Sentinel-generation progress. */
  onProgress?: (done: number, total: number) => void;
}

/** Owner: write the obfuscated bundle of `model` into `bundleDir`; returns the key (keep it private). */
export async function obfuscate(
  model: Model | string,
  bundleDir: string,
  opts: ObfuscateOptions = {},
): Promise<{ key: ProteusKey; members: number; subgraphs: number; sentinelSeconds: number }> {
  if (opts.k !== undefined && !(Number.isInteger(opts.k) && opts.k >= 1)) throw new OptionError(`k must be a positive integer, got ${opts.k}`);
  ensureWritableDir(bundleDir);
  if (opts.keyFile) ensureWritable(opts.keyFile);
  const m = typeof model === 'string' ? await loadModel(model) : model;
  const p = await import('../proteus/index.js');
  try {
    const res = await p.obfuscate(m, { k: opts.k, size: opts.size, stats: p.corpusStats(opts.corpus ?? []), outDir: bundleDir, onProgress: opts.onProgress });
    if (opts.keyFile) p.writeKey(res.key, opts.keyFile);
    return { key: res.key, members: res.manifest.members.length, subgraphs: res.key.groups.length, sentinelSeconds: res.sentinelSeconds };
  } catch (e) {
    return wrap(e);
  }
}

/** Optimizer party: optimize every member of a bundle with onnxruntime into `outDir`; needs no key. */
export async function optimize(
  bundleDir: string,
  outDir: string,
  opts: { level?: OptLevel; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ members: number; seconds: number }> {
  if (opts.level !== undefined && !['basic', 'extended', 'all'].includes(opts.level))
    throw new OptionError(`level must be basic, extended or all (got '${opts.level}')`);
  ensureWritableDir(outDir);
  const { optimizeBundle } = await import('../proteus/index.js');
  try {
    return await optimizeBundle(bundleDir, outDir, opts);
  } catch (e) {
    return wrap(e);
  }
}

/**
 * Optimizer party, one member at a time (a queue worker's job): ORT-optimize `member` (its path or
 * bytes) into `outPath` exactly as {@link optimize} does each member of a bundle. `threads` caps ORT's
 * intra-op threads (e.g. 1 when several workers share a machine's cores).
 */
export async function optimizeMember(
  member: string | Uint8Array,
  outPath: string,
  opts: { level?: OptLevel; threads?: number; what?: string } = {},
): Promise<void> {
  if (opts.level !== undefined && !['basic', 'extended', 'all'].includes(opts.level))
    throw new OptionError(`level must be basic, extended or all (got '${opts.level}')`);
  const { optimizeMember } = await import('../proteus/index.js');
  try {
    await optimizeMember(member, outPath, opts);
  } catch (e) {
    wrap(e);
  }
}

/** Owner: pick the real optimized subgraphs with the key (object or key file), stitch them back and verify. */
export async function recover(
  optimizedDir: string,
  key: ProteusKey | string,
  opts: { original?: Model | string; bundleDir?: string; tolerance?: number } = {},
): Promise<RecoverResult> {
  const p = await import('../proteus/index.js');
  let k: ProteusKey;
  try {
    k = typeof key === 'string' ? p.readKey(key) : key;
  } catch (e) {
    // Whatever is wrong with a key file (missing, edited, foreign) is a key problem, whichever layer noticed it.
    throw e instanceof KeyError ? e : new KeyError(firstLine(e));
  }
  const original = typeof opts.original === 'string' ? await loadModel(opts.original) : opts.original;
  try {
    return await p.recover(optimizedDir, k, { original, bundleDir: opts.bundleDir, tolerance: opts.tolerance });
  } catch (e) {
    return wrap(e);
  }
}
