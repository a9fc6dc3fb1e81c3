/**
 * Proteus: have a third party optimize a model graph without learning its architecture. The owner
 * `obfuscate`s (real subgraphs hidden among sentinels, a key file kept private), the optimizer runs
 * `optimize` on the bundle (no key needed), the owner `recover`s the optimized model with the key.
 */

import { existsSync } from 'node:fs';
import { firstLine, KeyError, ModelError, OptionError, PrivmlError } from '../errors.js';
import type { Model } from '../onnx/ir.js';
import type { OptLevel, ProteusKey, RecoverResult } from '../proteus/index.js';
import { loadModel } from './core.js';
import { ensureWritable, ensureWritableDir } from './files.js';
import { resolveModel } from './model-ref.js';

export type { OptLevel, ProteusKey, RecoverResult } from '../proteus/index.js';

function wrap(e: unknown, make: (m: string) => PrivmlError = (m) => new ModelError(m)): never {
  if (e instanceof PrivmlError) throw e;
  throw make(firstLine(e));
}

/**
 * Give graph inputs static shapes from `NAME=1x3x224x224` specs; with `check`, refuse inputs whose
 * non-batch dims stay symbolic (sentinels need static shapes), naming the spec to pass.
 */
export function withInputShapes(model: Model, specs: readonly string[], source: string, check = true): Model {
  for (const spec of specs) {
    const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(spec);
    if (!m) throw new OptionError(`--input-shape expects NAME=1x3x224x224 (got '${spec}')`);
    const v = model.graph.inputs.find((i) => i.name === m[1]);
    if (!v) throw new OptionError(`--input-shape: ${source} has no input '${m[1]}' (inputs: ${model.graph.inputs.map((i) => i.name).join(', ')})`);
    const dims = m[2]!.split('x').map(Number);
    if (v.shape && v.shape.length !== dims.length)
      throw new OptionError(`--input-shape: input '${v.name}' of ${source} has rank ${v.shape.length}, got ${dims.length} dims`);
    v.shape?.forEach((d, i) => {
      if (typeof d === 'number' && d !== dims[i])
        throw new OptionError(`--input-shape: input '${v.name}' of ${source} has static dim ${i} = ${d}, got ${dims[i]}`);
    });
    v.shape = dims;
  }
  for (const v of check ? model.graph.inputs : []) {
    const sym = (v.shape ?? []).slice(1).filter((d) => typeof d !== 'number');
    if (sym.length)
      throw new OptionError(
        `${source}: input '${v.name}' has symbolic dims ${sym.join(', ')}: sentinels need static shapes; pass ` +
          `--input-shape ${v.name}=${(v.shape ?? []).map((d) => (typeof d === 'number' ? d : 'N')).join('x')}`,
      );
  }
  return model;
}

/** Options of {@link obfuscate}. */
export interface ObfuscateOptions {
  /** Sentinels per real subgraph (default 20, at most 1000). */
  k?: number;
  /** Target operators per subgraph (default 16). */
  size?: number;
  /** Extra models whose operator statistics the sentinels are drawn from (besides the zoo's). */
  corpus?: (Model | string)[];
  /** Where to write the owner key (mode 0600); without it the key is only returned. */
  keyFile?: string;
  /** Replace an existing key file and the bundle files in a non-empty bundle folder. */
  force?: boolean;
  /** Static shapes for inputs with symbolic dims, `NAME=1x3x224x224`. */
  inputShapes?: string[];
  /** Decoy generators running at once, as worker threads (default: the cores, at most 4). */
  threads?: number;
  /** Names the model in messages (default: the path, or the graph's name). */
  source?: string;
  /** The bundle's estimated size and the disk's free bytes, before anything is written. */
  onEstimate?: (bytes: number, free: number) => void;
  /** Sentinel-generation progress. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@link obfuscate} returns. */
export interface ObfuscateResult {
  /** The model's name in messages: its path, `zoo:NAME`, or `opts.source`. */
  source: string;
  key: ProteusKey;
  members: number;
  subgraphs: number;
  /** Bytes written to the bundle folder. */
  bytes: number;
  /** Sentinels that failed onnxruntime's load check and were drawn again. */
  regenerated: number;
  /** Groups whose real member is the unique largest or smallest file. */
  sizeExtremes: number;
  /** Sentinels with their real piece's architecture (`architectureOf`): those pieces are shown to the optimizer. */
  architectureCopies: number;
  sentinelSeconds: number;
  /** log10 of the number of candidate models a uniform guess must pick from (no adversary). */
  log10SearchSpace: number;
  /** True when few pieces hide little (log10 search space < 6, or size gives a quarter of the groups away). */
  weak: boolean;
}

/**
 * Owner: cut `model` into subgraphs (after the canonical pass, on static input shapes), hide each among
 * `k` sentinels and write the shuffled bundle into `bundleDir`; returns the key (keep it private).
 */
export async function obfuscate(model: Model | string, bundleDir: string, opts: ObfuscateOptions = {}): Promise<ObfuscateResult> {
  const p = await import('../proteus/index.js');
  const k = opts.k ?? 20;
  if (!(Number.isInteger(k) && k >= 1)) throw new OptionError(`k must be a positive integer, got ${opts.k}`);
  if (k > p.MAX_K)
    throw new OptionError(
      `-k ${k}: at most ${p.MAX_K} sentinels per subgraph (time, memory and disk grow linearly with K; ` + `the search space only by log10(K) per piece)`,
    );
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1))
    throw new OptionError(`threads must be a positive integer, got ${opts.threads}`);
  if (opts.keyFile && existsSync(opts.keyFile) && !opts.force)
    throw new OptionError(`${opts.keyFile}: key file exists (its bundle could no longer be recovered); pass --force to replace it`);
  ensureWritableDir(bundleDir);
  if (opts.keyFile) ensureWritable(opts.keyFile);
  const r = typeof model === 'string' ? resolveModel(model) : { model, source: model.graph.name };
  const m = r.model;
  const source = opts.source ?? r.source;
  const { canonicalize } = await import('../onnx/canonical.js');
  // Third-party graphs: the canonical form (Constant-node weights folded, one opset), static input shapes
  // (shapes first, so the canonical pass folds Shape arithmetic on them into constants).
  let g: Model;
  try {
    g = withInputShapes(canonicalize(withInputShapes(m, opts.inputShapes ?? [], source, false), { source }).model, [], source);
  } catch (e) {
    return wrap(e);
  }
  const symbolic = m.graph.inputs.filter((v) => (v.shape ?? []).some((d) => typeof d !== 'number'));
  const corpus = (opts.corpus ?? []).map((c) => (typeof c === 'string' ? resolveModel(c).model : c));
  let res;
  try {
    res = await p.obfuscate(g, {
      k,
      size: opts.size,
      threads: opts.threads,
      stats: p.corpusStats(corpus),
      outDir: bundleDir,
      force: opts.force,
      onEstimate: opts.onEstimate,
      onProgress: opts.onProgress,
    });
  } catch (e) {
    if (!symbolic.length || opts.inputShapes?.length) return wrap(e);
    // Shape arithmetic left in the graph by symbolic dims is the likely cause: say which flag fixes it.
    const dims = symbolic[0]!.shape!.map((d) => (typeof d === 'number' ? d : 1)).join('x');
    const hint = `symbolic input dims keep shape arithmetic in the graph: try --input-shape ${symbolic[0]!.name}=${dims}`;
    throw new ModelError(`${firstLine(e)}; ${hint}`);
  }
  try {
    if (opts.keyFile) p.writeKey(res.key, opts.keyFile, opts.force);
  } catch (e) {
    return wrap(e, (msg) => new KeyError(msg));
  }
  const n = res.key.groups.length;
  const log10SearchSpace = p.log10SearchSpace(0, k, n);
  return {
    source,
    key: res.key,
    members: res.manifest.members.length,
    subgraphs: n,
    bytes: res.bytes,
    regenerated: res.regenerated,
    sizeExtremes: res.sizeExtremes,
    architectureCopies: res.architectureCopies,
    sentinelSeconds: res.sentinelSeconds,
    log10SearchSpace,
    weak: log10SearchSpace < 6 || res.sizeExtremes > n / 4,
  };
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
  // Whatever is wrong with a key file (missing, edited, foreign) is a key problem, whichever layer noticed it.
  const k = typeof key === 'string' ? await readKey(key) : key;
  const original = typeof opts.original === 'string' ? await loadModel(opts.original) : opts.original;
  try {
    return await p.recover(optimizedDir, k, { original, bundleDir: opts.bundleDir, tolerance: opts.tolerance });
  } catch (e) {
    return wrap(e);
  }
}

/** Read an owner key file; KeyError naming the file when it is missing, edited or not a key. */
export async function readKey(path: string): Promise<ProteusKey> {
  const p = await import('../proteus/index.js');
  try {
    return p.readKey(path);
  } catch (e) {
    throw e instanceof KeyError ? e : new KeyError(firstLine(e));
  }
}

/**
 * Median onnxruntime latency (1 thread, `runs` timed runs) of the original model unoptimized and
 * whole-graph optimized, and of the recovered model: what Proteus's optimization is worth.
 */
export async function compareLatency(original: Model, recovered: Model, opts: { runs?: number; level?: OptLevel } = {}) {
  const { compareLatency: compare } = await import('../proteus/index.js');
  try {
    return await compare(original, recovered, { runs: opts.runs ?? 10, level: opts.level });
  } catch (e) {
    return wrap(e);
  }
}

export type { AttackOptions, AttackReport, ReportOptions, SearchSpaceRow } from './proteus-attack.js';
export { attack, report } from './proteus-attack.js';
