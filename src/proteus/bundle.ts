/**
 * The Proteus bundle and the owner's key. `obfuscate` partitions a model, hides each real subgraph
 * among K sentinels, anonymises all (K+1)·N members identically and shuffles them (node:crypto)
 * into `member-XXXX.onnx` files plus a manifest listing only file names. The key (owner only)
 * records which member is real in each group, the wiring with original names, the original I/O,
 * a SHA-256 of every member file and a reference input/output pair for verification.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CryptoRng, randomId, secretBytes } from '../crypto/index.js';
import { WorkerPool } from '../nn/kernels/parallel.js';
import type { Dim, DType, Model, Tensor, ValueInfo } from '../onnx/ir.js';
import { ModelError } from '../onnx/ir.js';
import { ortSession, runOrt } from '../onnx/ort.js';
import { encodeModel } from '../onnx/proto.js';
import { anonymize } from './anonymize.js';
import type { Wiring } from './extract.js';
import { extractParts } from './extract.js';
import type { MemberInit, MemberJob, MemberResult } from './members.js';
import { MemberWriter } from './members.js';
import type { Partition } from './partition.js';
import { partitionModel } from './partition.js';
import { secretRng } from './rng.js';
import { MIX_PLACES, opsetOf } from './sentinel.js';
import type { OpStats } from './stats.js';
import { ortLoadError } from './validity.js';
import { randomFeeds } from './verify.js';

/** Largest accepted K: each group costs K sentinels of the piece's size in time, memory and disk. */
export const MAX_K = 1000;

/** Format tags written into the manifest and key. */
export const MANIFEST_FORMAT = 'privml-proteus-bundle/1';
export const KEY_FORMAT = 'privml-proteus-key/1';

/** What the optimizer party receives besides the member files. */
export interface Manifest {
  format: string;
  /** Random identifier tying the bundle (and its optimized copy) to its key. */
  bundleId: string;
  /** Member file names, sorted. */
  members: string[];
  /**
   * SHA-256 of each (unoptimized) member by name, in name order (an order by group would tell which members belong
   * together). Optional (older bundles lack it); lets an optimizer's queue workers check the members they
   * read from shared storage without the submitter re-reading the whole bundle. Derivable from the
   * members, so it tells the optimizer nothing new. An optimized copy keeps the bundle's manifest as is.
   */
  sha256?: Record<string, string>;
}

/** I/O signature of a member: dtypes and shapes by position. */
export interface Signature {
  inputs: { dtype: DType; shape: Dim[] }[];
  outputs: { dtype: DType; shape: Dim[] }[];
}

/** A tensor in JSON: dtype, dims, little-endian bytes as base64. */
export interface JsonTensor {
  dtype: DType;
  dims: number[];
  base64: string;
}

/** The owner's key; JSON. */
export interface ProteusKey {
  format: string;
  bundleId: string;
  k: number;
  size: number;
  /** Per subgraph (wiring order): the real member, all members of its group, the real I/O signature. */
  groups: { real: string; members: string[]; signature: Signature }[];
  /** SHA-256 (hex) of every member file as written to the bundle. */
  hashes: Record<string, string>;
  wiring: Wiring;
  partition: Partition;
  /** Random inputs and the original model's outputs on them (batch 1), for recovery checks. */
  reference?: { feeds: Record<string, JsonTensor>; outputs: Record<string, JsonTensor> };
  /** SHA-256 of the key's canonical JSON without this field: detects edits and truncation. */
  digest: string;
}

/** Options of `obfuscate`. */
export interface ObfuscateOptions {
  /** Sentinels per real subgraph (default 20). */
  k?: number;
  /** Target operators per subgraph (default 16). */
  size?: number;
  /** Replace the bundle files of a non-empty `outDir` (default: refuse). */
  force?: boolean;
  /** Told the estimated bundle size and the free space before anything is written. */
  onEstimate?: (bytes: number, free: number) => void;
  /** Operator statistics the sentinels are drawn from. */
  stats: OpStats;
  /** Directory to write `member-XXXX.onnx` and `manifest.json` into (created). */
  outDir: string;
  /** Store a reference input/output pair in the key (default true). */
  reference?: boolean;
  /** Decoy generators running at once (worker threads when > 1; default: the cores, at most 4). */
  threads?: number;
  /** Called after each group is written. */
  onProgress?: (done: number, total: number) => void;
}

/** Result of `obfuscate`. */
export interface ObfuscateResult {
  key: ProteusKey;
  manifest: Manifest;
  /** Seconds spent generating sentinels. */
  sentinelSeconds: number;
  /** Decoys that failed to load in onnxruntime and were regenerated (never written). */
  regenerated: number;
  /** Bytes written (members and manifest). */
  bytes: number;
  /** What file sizes alone give away: groups whose real member is the unique largest or smallest file. */
  sizeExtremes: number;
  /** Decoys with their real piece's architecture (`architectureOf`): those pieces are shown to the optimizer. */
  architectureCopies: number;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Canonical digest of a key (every field but `digest`). */
export function keyDigest(key: Omit<ProteusKey, 'digest'> & { digest?: string }): string {
  const { digest: _d, ...rest } = key;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

/** Tensor → JSON. */
export function tensorToJson(t: Tensor): JsonTensor {
  return { dtype: t.dtype, dims: [...t.dims], base64: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64') };
}

/** JSON → tensor. */
export function tensorFromJson(j: JsonTensor): Tensor {
  const buf = Buffer.from(j.base64, 'base64');
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  const ctor = {
    float32: Float32Array,
    float64: Float64Array,
    int64: BigInt64Array,
    int32: Int32Array,
    int16: Int16Array,
    int8: Int8Array,
    uint8: Uint8Array,
    bool: Uint8Array,
  }[j.dtype];
  return { dtype: j.dtype, dims: [...j.dims], data: new ctor(bytes.buffer) };
}

/** I/O signature of a model. */
export function signatureOf(m: Model): Signature {
  const f = (v: ValueInfo) => ({ dtype: v.dtype, shape: (v.shape ?? []).slice() });
  return { inputs: m.graph.inputs.map(f), outputs: m.graph.outputs.map(f) };
}

/** Uniformly random permutation of [0, n) from node:crypto (Fisher–Yates). */
export function cryptoPermutation(n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  const rng = new CryptoRng();
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** Bundle files (manifest and members) in `dir`: what a new bundle replaces. */
function bundleFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f === 'manifest.json' || /^member-\d+\.onnx$/.test(f));
}

/** Refuse an output folder that holds anything (unless `force`, which replaces an old bundle's files). */
function checkOutDir(dir: string, force: boolean): void {
  if (!existsSync(dir)) return;
  const files = readdirSync(dir);
  if (files.length === 0) return;
  if (!force) throw new ModelError(`${dir}: output folder is not empty (${files.length} entries); pass --force to replace the bundle in it`);
  const other = files.filter((f) => !bundleFiles(dir).includes(f));
  if (other.length) throw new ModelError(`${dir}: holds files that are not a Proteus bundle (e.g. '${other[0]}'); refusing to write into it even with --force`);
}

/** Partition, generate sentinels, anonymise, shuffle and write the bundle; returns the owner's key. */
export async function obfuscate(model: Model, opts: ObfuscateOptions): Promise<ObfuscateResult> {
  const k = opts.k ?? 20;
  const size = opts.size ?? 16;
  if (!Number.isInteger(k) || k < 1) throw new ModelError(`sentinel count k must be a positive integer (got ${k})`);
  if (k > MAX_K)
    throw new ModelError(
      `sentinel count k = ${k} exceeds ${MAX_K}: every group would hold ${k} decoys of its piece (time, memory ` +
        `and disk grow linearly); past ~100 the search space grows only by log10(K) per piece`,
    );
  const threads = opts.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new ModelError(`threads must be a positive integer (got ${threads})`);
  checkOutDir(opts.outDir, opts.force === true);
  const partition = partitionModel(model, { size });
  const { models: parts, wiring } = extractParts(model, partition);
  const n = parts.length;
  const total = (k + 1) * n;
  const digits = Math.max(4, String(total - 1).length);
  const files = cryptoPermutation(total).map((i) => `member-${String(i).padStart(digits, '0')}.onnx`);
  const header = {
    irVersion: model.irVersion,
    opsetImports: model.opsetImports.filter((o) => o.domain === '' || o.domain === 'ai.onnx').map((o) => ({ domain: '', version: o.version })),
  };
  const opset = opsetOf(model);
  // Disk: sentinels keep to about the real piece's weight count (budget up to 1.3×, 1.15× on average).
  const realBytes = parts.map((p) => encodeModel(anonymize(p, header)).length);
  const estimate = Math.round(realBytes.reduce((a, b) => a + b, 0) * (1 + 1.3 * k)) + 4096;
  const parent = resolve(opts.outDir, '..');
  mkdirSync(parent, { recursive: true });
  const fs = statfsSync(parent);
  const free = Number(fs.bavail) * Number(fs.bsize);
  opts.onEstimate?.(estimate, free);
  if (estimate > free)
    throw new ModelError(`${opts.outDir}: the bundle needs about ${(estimate / 2 ** 20).toFixed(1)} MiB, the disk has ${(free / 2 ** 20).toFixed(1)} MiB free`);
  // Everything goes to a sibling folder first and is moved in when complete: nothing half-written.
  const tmp = join(dirname(resolve(opts.outDir)), `.proteus-partial-${randomId(6)}`);
  mkdirSync(tmp, { recursive: true });
  try {
    // A bundle always draws from a fresh secret stream: there is deliberately no seed option (whoever
    // guessed a seed would regenerate the sentinels and find the real members).
    const rng = secretRng();
    const groups: ProteusKey['groups'] = [];
    const hashes: Record<string, string> = {};
    const sizes: Record<string, number> = {};
    const jobs: MemberJob[] = [];
    const left: number[] = [];
    // Real members first (checked, placed at a secret position and written here); their decoys become jobs.
    for (let i = 0; i < n; i++) {
      const real = encodeModel(anonymize(parts[i]!, header));
      const err = await ortLoadError(real);
      if (err) throw new ModelError(`subgraph ${i} of the model does not load in onnxruntime at opset ${opset}: ${err}`);
      const realAt = rng.int(k + 1);
      const names = files.slice(i * (k + 1), (i + 1) * (k + 1));
      writeFileSync(join(tmp, names[realAt]!), real);
      hashes[names[realAt]!] = sha256(real);
      sizes[names[realAt]!] = real.length;
      groups.push({ real: names[realAt]!, members: [...names].sort(), signature: signatureOf(parts[i]!) });
      const fakes = names.filter((_, j) => j !== realAt);
      // One job per group, so that its decoys avoid each other's designs (`SentinelOptions.designs`);
      // split only when there are fewer groups than generators.
      const chunk = n >= threads ? k : Math.max(1, Math.ceil((k * n) / threads));
      const position = rng.normal();
      const mix = Array.from({ length: MIX_PLACES }, () => rng.normal());
      for (let j = 0; j < fakes.length; j += chunk) jobs.push({ part: i, names: fakes.slice(j, j + chunk), position, mix });
      left.push(Math.ceil(fakes.length / chunk));
    }
    const init: MemberInit = {
      parts,
      header,
      stats: opts.stats,
      modelOps: [...new Set(model.graph.nodes.map((nd) => nd.opType))],
      opset,
      dir: tmp,
      poolKey: secretBytes(16),
    };
    let sentinelMs = 0;
    let regenerated = 0;
    let architectureCopies = 0;
    let doneGroups = 0;
    await writeMembers(init, jobs, threads, (job, r) => {
      Object.assign(hashes, r.hashes);
      Object.assign(sizes, r.sizes);
      sentinelMs += r.sentinelMs;
      regenerated += r.rejected;
      architectureCopies += r.copies;
      if (--left[job.part]! === 0) opts.onProgress?.(++doneGroups, n);
    });
    let bytes = 0;
    for (const f of files) bytes += sizes[f]!;
    let sizeExtremes = 0;
    groups.forEach((g) => {
      const own = sizes[g.real]!;
      const all = g.members.map((f) => sizes[f]!);
      if (all.filter((x) => x >= own).length === 1 || all.filter((x) => x <= own).length === 1) sizeExtremes++;
    });
    const sorted = [...files].sort();
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      bundleId: randomId(16),
      members: sorted,
      sha256: Object.fromEntries(sorted.map((f) => [f, hashes[f]!])),
    };
    writeFileSync(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
    let reference: ProteusKey['reference'];
    if (opts.reference !== false) {
      const feeds = randomFeeds(model, { batch: 1 });
      const sess = await ortSession(model, { graphOptimizationLevel: 'disabled' });
      try {
        const outs = await runOrt(model, feeds, sess);
        reference = {
          feeds: Object.fromEntries(Object.entries(feeds).map(([nm, t]) => [nm, tensorToJson(t)])),
          outputs: Object.fromEntries(Object.entries(outs).map(([nm, t]) => [nm, tensorToJson(t)])),
        };
      } finally {
        await sess.release();
      }
    }
    const body = { format: KEY_FORMAT, bundleId: manifest.bundleId, k, size, groups, hashes, wiring, partition, reference };
    const key: ProteusKey = { ...body, digest: keyDigest(body) };
    mkdirSync(opts.outDir, { recursive: true });
    for (const f of bundleFiles(opts.outDir)) rmSync(join(opts.outDir, f));
    for (const f of readdirSync(tmp)) renameSync(join(tmp, f), join(opts.outDir, f));
    return { key, manifest, sentinelSeconds: sentinelMs / 1000, regenerated, bytes, sizeExtremes, architectureCopies };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Read and check a manifest (`dir/manifest.json`). */
/** Default generator threads: the cores available, at most 4 (each holds its own index of the model's weights). */
function defaultThreads(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/**
 * Run the decoy jobs on `threads` generators (worker threads when more than one, each pulling the
 * next job when free), reporting each job's result as it lands; the first refusal stops the rest.
 */
async function writeMembers(init: MemberInit, jobs: MemberJob[], threads: number, done: (job: MemberJob, r: MemberResult) => void): Promise<void> {
  if (threads === 1 || jobs.length <= 1) {
    const w = new MemberWriter(init, secretRng());
    for (const j of jobs) done(j, await w.write(j));
    return;
  }
  // Under tsx the sources are .ts; from dist/ they are .js.
  const url = new URL(`./members${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  const pool = await WorkerPool.create<MemberJob, MemberResult>(url, { size: Math.min(threads, jobs.length), init });
  let next = 0;
  let failed = false;
  try {
    await Promise.all(
      Array.from({ length: pool.size }, async (_, w) => {
        while (!failed && next < jobs.length) {
          const job = jobs[next++]!;
          const r = await pool.run(w, job).catch((e: Error) => ({ error: e.message.split('\n')[0] }) as MemberResult);
          if (r.error) {
            failed = true;
            throw new ModelError(r.error);
          }
          done(job, r);
        }
      }),
    );
  } finally {
    await pool.close();
  }
}

export function readManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) throw new ModelError(`${path}: no manifest (not a Proteus bundle directory)`);
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (e) {
    throw new ModelError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (m === null || typeof m !== 'object' || m.format !== MANIFEST_FORMAT || !Array.isArray(m.members))
    throw new ModelError(`${path}: not a ${MANIFEST_FORMAT} manifest`);
  for (const f of m.members) if (!/^member-\d+\.onnx$/.test(f)) throw new ModelError(`${path}: bad member name '${f}'`);
  if (m.sha256 !== undefined && (m.sha256 === null || typeof m.sha256 !== 'object' || m.members.some((f) => !/^[0-9a-f]{64}$/.test(String(m.sha256![f])))))
    throw new ModelError(`${path}: sha256 must give every member's SHA-256 in hex`);
  return m;
}

/** Write a key file (JSON, mode 0600: owner only), refusing to replace one unless `force`; written whole or not at all. */
export function writeKey(key: ProteusKey, path: string, force = false): void {
  if (existsSync(path) && !force) throw new ModelError(`${path}: key file exists (its bundle could no longer be recovered); pass --force to replace it`);
  const tmp = `${path}.partial-${randomId(6)}`;
  writeFileSync(tmp, JSON.stringify(key) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

/** Read a key file and check its format and digest (a clear error when edited, truncated or foreign). */
export function readKey(path: string): ProteusKey {
  if (!existsSync(path)) throw new ModelError(`${path}: no such key file`);
  let key: ProteusKey;
  try {
    key = JSON.parse(readFileSync(path, 'utf8')) as ProteusKey;
  } catch (e) {
    throw new ModelError(`${path}: key is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (key === null || typeof key !== 'object' || key.format !== KEY_FORMAT) throw new ModelError(`${path}: not a ${KEY_FORMAT} key`);
  if (keyDigest(key) !== key.digest) throw new ModelError(`${path}: key digest mismatch: the key was modified or corrupted`);
  return key;
}

/** SHA-256 of a file's bytes. */
export function fileHash(path: string): string {
  return sha256(readFileSync(path));
}
