/**
 * The two sides after obfuscation. `optimizeBundle` is the optimizer party's job (no key needed):
 * ORT-optimize every member into a new directory. `recover` is the owner's: check the optimized
 * bundle belongs to the key and is complete, pick the real members, check their I/O signatures,
 * stitch them back and verify the result against the key's reference outputs (or the original).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Model, Tensor } from '../onnx/ir.js';
import { ModelError } from '../onnx/ir.js';
import { ortSession, runOrt, toOrtTensor } from '../onnx/ort.js';
import { loadModel } from '../onnx/proto.js';
import type { ProteusKey, Signature } from './bundle.js';
import { fileHash, readManifest, signatureOf, tensorFromJson } from './bundle.js';
import { compileIslands } from './islands.js';
import type { OptLevel } from './optimize.js';
import { reassemble } from './reassemble.js';
import { NCHWC } from './seams.js';
import { maxRelativeError, randomFeeds } from './verify.js';

/** Options of `optimizeBundle`. */
export interface BundleOptimizeOptions {
  level?: OptLevel;
  onProgress?: (done: number, total: number) => void;
}

/** ORT-optimize every member of the bundle in `inDir` into `outDir` (same file names, manifest copied). */
export async function optimizeBundle(inDir: string, outDir: string, opts: BundleOptimizeOptions = {}): Promise<{ members: number; seconds: number }> {
  const manifest = readManifest(inDir);
  const level = opts.level ?? 'extended';
  if (!['basic', 'extended', 'all'].includes(level)) throw new ModelError(`unknown optimization level '${level}' (known: basic, extended, all)`);
  mkdirSync(outDir, { recursive: true });
  const t0 = performance.now();
  for (let i = 0; i < manifest.members.length; i++) {
    const f = manifest.members[i]!;
    const src = join(inDir, f);
    if (!existsSync(src)) throw new ModelError(`${src}: member listed in the manifest is missing`);
    await optimizeMember(src, join(outDir, f), { level, what: src });
    opts.onProgress?.(i + 1, manifest.members.length);
  }
  copyFileSync(join(inDir, 'manifest.json'), join(outDir, 'manifest.json'));
  return { members: manifest.members.length, seconds: (performance.now() - t0) / 1000 };
}

/**
 * ORT-optimize one member (a file path, or its bytes) into `outPath`: the session options of
 * `optimizeBundle`, so a member optimized alone (a queue worker's job) is byte-identical to the bundle
 * run's. `threads` sets ORT's intra-op pool, 1 unless given: the graph rewrite runs on one thread
 * whatever the pool, and ORT's default pool (one thread per core) only spin-waits — measured on the
 * 231 members of a resnet50 K = 20 bundle, 9.7–10.5 s of CPU and 8.4–11.1 s of wall with the default
 * pool against 4.2–5.2 s of CPU and 4.4–8.8 s of wall with one thread, identical output bytes.
 */
export async function optimizeMember(
  src: string | Uint8Array,
  outPath: string,
  opts: { level?: OptLevel; threads?: number; what?: string } = {},
): Promise<void> {
  const options: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: opts.level ?? 'extended',
    optimizedModelFilePath: outPath,
    logSeverityLevel: 3,
    intraOpNumThreads: opts.threads ?? 1,
    interOpNumThreads: 1,
  };
  try {
    const s = typeof src === 'string' ? await ort.InferenceSession.create(src, options) : await ort.InferenceSession.create(src, options);
    await s.release();
  } catch (e) {
    throw new ModelError(
      `${opts.what ?? (typeof src === 'string' ? src : 'member')}: onnxruntime could not optimize it: ${(e as Error).message.split('\n')[0]}`,
    );
  }
}

/** Options of `recover`. */
export interface RecoverOptions {
  /** The original model, to verify against (otherwise the key's reference pair is used). */
  original?: Model;
  /** The unoptimized bundle directory, to check every member's hash against the key. */
  bundleDir?: string;
  /** Largest accepted relative output error (default 1e-4). */
  tolerance?: number;
}

/** Result of `recover`. */
export interface RecoverResult {
  model: Model;
  /** Largest relative error of the recovered model's outputs vs the reference. */
  relError: number;
  /** Number of members whose original hash was checked (0 without `bundleDir`). */
  hashesChecked: number;
}

function sameSignature(a: Signature, b: Signature): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Pick the real optimized members, stitch them back and verify the outputs. */
export async function recover(optDir: string, key: ProteusKey, opts: RecoverOptions = {}): Promise<RecoverResult> {
  const manifest = readManifest(optDir);
  if (manifest.bundleId !== key.bundleId)
    throw new ModelError(`${optDir}: bundle ${manifest.bundleId} does not belong to this key (key is for bundle ${key.bundleId})`);
  const listed = new Set(manifest.members);
  for (const g of key.groups) {
    for (const f of g.members) {
      if (!listed.has(f)) throw new ModelError(`${optDir}: manifest lacks member ${f} named by the key`);
      if (!existsSync(join(optDir, f))) throw new ModelError(`${join(optDir, f)}: member is missing`);
    }
  }
  let hashesChecked = 0;
  if (opts.bundleDir) {
    for (const [f, h] of Object.entries(key.hashes)) {
      const p = join(opts.bundleDir, f);
      if (!existsSync(p)) throw new ModelError(`${p}: member is missing from the bundle`);
      if (fileHash(p) !== h) throw new ModelError(`${p}: hash differs from the key (member modified)`);
      hashesChecked++;
    }
  }
  const parts = key.groups.map((g, i) => {
    const p = join(optDir, g.real);
    let m: Model;
    try {
      m = loadModel(p);
    } catch (e) {
      throw new ModelError(`${p}: real member of subgraph ${i} is not a loadable model: ${(e as Error).message}`);
    }
    if (!sameSignature(signatureOf(m), g.signature))
      throw new ModelError(`${p}: I/O signature differs from the key's subgraph ${i} (wrong key or tampered member)`);
    return m;
  });
  const model = reassemble(parts, key.wiring);
  await compileIslands(model);
  let feeds: Record<string, Tensor>;
  let expected: Record<string, Tensor>;
  if (opts.original) {
    feeds = randomFeeds(opts.original, { batch: 1 });
    expected = await runPlain(opts.original, feeds);
  } else if (key.reference) {
    feeds = Object.fromEntries(Object.entries(key.reference.feeds).map(([k, v]) => [k, tensorFromJson(v)]));
    expected = Object.fromEntries(Object.entries(key.reference.outputs).map(([k, v]) => [k, tensorFromJson(v)]));
  } else {
    throw new ModelError('cannot verify the recovered model: the key holds no reference outputs and no original model was given');
  }
  const got = await runPlain(model, feeds);
  const relError = maxRelativeError(got, expected);
  const tol = opts.tolerance ?? 1e-4;
  if (!(relError <= tol))
    throw new ModelError(`recovered model's outputs differ from the original's (relative error ${relError} > ${tol}): wrong key or tampered members`);
  return { model, relError, hashesChecked };
}

async function runPlain(m: Model, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const s = await ortSession(m, { graphOptimizationLevel: 'disabled' });
  try {
    return await runOrt(m, feeds, s);
  } finally {
    await s.release();
  }
}

/** Latency comparison of recovery. */
export interface LatencyReport {
  /** ORT level the whole graph was optimized at (the members' level). */
  level: OptLevel;
  msUnoptimized: number;
  msWholeOptimized: number;
  msRecovered: number;
  ratioRecoveredToWhole: number;
  /** Whole-graph optimization gain: unoptimized / whole-graph-optimized latency. */
  gain: number;
  /** Share of the time whole-graph optimization saves that the recovered model saves too (1 = all). */
  gainKept: number;
}

/** Gain and kept share from the three latencies (`gainKept` is noise when the gain is near 1). */
export function gainOf(msUnoptimized: number, msWholeOptimized: number, msRecovered: number): { gain: number; gainKept: number } {
  return { gain: msUnoptimized / msWholeOptimized, gainKept: (msUnoptimized - msRecovered) / (msUnoptimized - msWholeOptimized) };
}

/** The level a recovered model's members were optimized at, read from its ops: 'all' writes blocked-layout ones. */
export function levelOf(recovered: Model): OptLevel {
  return recovered.graph.nodes.some((n) => n.domain === NCHWC) ? 'all' : 'extended';
}

/**
 * Median latency of: the original with optimization disabled, the original optimized whole by ORT
 * (at `level`, default `levelOf(recovered)`, in the session), and the recovered model (optimization
 * disabled: it is already optimized). Sessions run round-robin so load drift hits all alike (as
 * bench/proteus.ts does).
 */
export async function compareLatency(
  original: Model,
  recovered: Model,
  opts: { runs?: number; warmup?: number; batch?: number; threads?: number; level?: OptLevel } = {},
): Promise<LatencyReport> {
  const runs = opts.runs ?? 10;
  const warmup = opts.warmup ?? 2;
  const level = opts.level ?? levelOf(recovered);
  const th = { intraOpNumThreads: opts.threads ?? 1, interOpNumThreads: 1 };
  const sessions = [
    await ortSession(original, { ...th, graphOptimizationLevel: 'disabled' }),
    await ortSession(original, { ...th, graphOptimizationLevel: level }),
    await ortSession(recovered, { ...th, graphOptimizationLevel: 'disabled' }),
  ];
  try {
    const feeds = randomFeeds(original, { batch: opts.batch ?? 1, seed: 7 });
    const f = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toOrtTensor(v)]));
    for (let r = 0; r < warmup; r++) for (const s of sessions) await s.run(f);
    const times: number[][] = sessions.map(() => []);
    for (let r = 0; r < runs; r++) {
      for (let i = 0; i < sessions.length; i++) {
        const t0 = performance.now();
        await sessions[i]!.run(f);
        times[i]!.push(performance.now() - t0);
      }
    }
    const [a, b, c] = times.map(median) as [number, number, number];
    return { level, msUnoptimized: a, msWholeOptimized: b, msRecovered: c, ratioRecoveredToWhole: c / b, ...gainOf(a, b, c) };
  } finally {
    for (const s of sessions) await s.release();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
