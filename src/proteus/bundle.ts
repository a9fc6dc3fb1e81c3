/**
 * The Proteus bundle and the owner's key. `obfuscate` partitions a model, hides each real subgraph
 * among K sentinels, anonymises all (K+1)·N members identically and shuffles them (node:crypto)
 * into `member-XXXX.onnx` files plus a manifest listing only file names. The key (owner only)
 * records which member is real in each group, the wiring with original names, the original I/O,
 * a SHA-256 of every member file and a reference input/output pair for verification.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelError } from '../onnx/ir.js';
import type { Dim, DType, Model, Tensor, ValueInfo } from '../onnx/ir.js';
import { ortSession, runOrt } from '../onnx/ort.js';
import { encodeModel } from '../onnx/proto.js';
import { anonymize } from './anonymize.js';
import { extractParts } from './extract.js';
import type { Wiring } from './extract.js';
import { partitionModel } from './partition.js';
import type { Partition } from './partition.js';
import { Prng } from './rng.js';
import { generateSentinels } from './sentinel.js';
import type { OpStats } from './stats.js';
import { randomFeeds } from './verify.js';

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
  /** Seed for partition and sentinel structure (tests); shuffling always uses node:crypto. */
  seed?: number;
  /** Operator statistics the sentinels are drawn from. */
  stats: OpStats;
  /** Directory to write `member-XXXX.onnx` and `manifest.json` into (created). */
  outDir: string;
  /** Store a reference input/output pair in the key (default true). */
  reference?: boolean;
  /** Called after each group is written. */
  onProgress?: (done: number, total: number) => void;
}

/** Result of `obfuscate`. */
export interface ObfuscateResult {
  key: ProteusKey;
  manifest: Manifest;
  /** Seconds spent generating sentinels. */
  sentinelSeconds: number;
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
  const ctor = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array, int16: Int16Array, int8: Int8Array, uint8: Uint8Array, bool: Uint8Array }[j.dtype];
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
  for (let i = n - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** Partition, generate sentinels, anonymise, shuffle and write the bundle; returns the owner's key. */
export async function obfuscate(model: Model, opts: ObfuscateOptions): Promise<ObfuscateResult> {
  const k = opts.k ?? 20;
  const size = opts.size ?? 16;
  if (!Number.isInteger(k) || k < 1) throw new ModelError(`sentinel count k must be a positive integer (got ${k})`);
  const partition = partitionModel(model, { size, seed: opts.seed });
  const { models: parts, wiring } = extractParts(model, partition);
  const n = parts.length;
  const total = (k + 1) * n;
  const digits = Math.max(4, String(total - 1).length);
  const files = cryptoPermutation(total).map((i) => `member-${String(i).padStart(digits, '0')}.onnx`);
  const header = { irVersion: model.irVersion, opsetImports: model.opsetImports.filter((o) => o.domain === '' || o.domain === 'ai.onnx').map((o) => ({ domain: '', version: o.version })) };
  mkdirSync(opts.outDir, { recursive: true });
  const rng = new Prng(opts.seed);
  const modelOps = new Set(model.graph.nodes.map((n) => n.opType));
  const groups: ProteusKey['groups'] = [];
  const hashes: Record<string, string> = {};
  let sentinelMs = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const fakes = generateSentinels(parts[i]!, k, { stats: opts.stats, rng, modelOps });
    sentinelMs += performance.now() - t0;
    const realAt = randomInt(k + 1);
    const members = [...fakes];
    members.splice(realAt, 0, parts[i]!);
    const names = files.slice(i * (k + 1), (i + 1) * (k + 1));
    members.forEach((m, j) => {
      const bytes = encodeModel(anonymize(m, header));
      writeFileSync(join(opts.outDir, names[j]!), bytes);
      hashes[names[j]!] = sha256(bytes);
    });
    groups.push({ real: names[realAt]!, members: [...names].sort(), signature: signatureOf(parts[i]!) });
    opts.onProgress?.(i + 1, n);
  }
  const manifest: Manifest = { format: MANIFEST_FORMAT, bundleId: randomBytes(16).toString('hex'), members: [...files].sort() };
  writeFileSync(join(opts.outDir, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
  let reference: ProteusKey['reference'];
  if (opts.reference !== false) {
    const feeds = randomFeeds(model, { batch: 1 });
    const s = await ortSession(model, { graphOptimizationLevel: 'disabled' });
    try {
      const outs = await runOrt(model, feeds, s);
      reference = {
        feeds: Object.fromEntries(Object.entries(feeds).map(([nm, t]) => [nm, tensorToJson(t)])),
        outputs: Object.fromEntries(Object.entries(outs).map(([nm, t]) => [nm, tensorToJson(t)])),
      };
    } finally {
      await s.release();
    }
  }
  const body = { format: KEY_FORMAT, bundleId: manifest.bundleId, k, size, groups, hashes, wiring, partition, reference };
  const key: ProteusKey = { ...body, digest: keyDigest(body) };
  return { key, manifest, sentinelSeconds: sentinelMs / 1000 };
}

/** Read and check a manifest (`dir/manifest.json`). */
export function readManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) throw new ModelError(`${path}: no manifest (not a Proteus bundle directory)`);
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (e) {
    throw new ModelError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (m.format !== MANIFEST_FORMAT || !Array.isArray(m.members)) throw new ModelError(`${path}: not a ${MANIFEST_FORMAT} manifest`);
  for (const f of m.members) if (!/^member-\d+\.onnx$/.test(f)) throw new ModelError(`${path}: bad member name '${f}'`);
  return m;
}

/** Write a key file (JSON, mode 0600: owner only). */
export function writeKey(key: ProteusKey, path: string): void {
  writeFileSync(path, JSON.stringify(key) + '\n', { mode: 0o600 });
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
  if (key.format !== KEY_FORMAT) throw new ModelError(`${path}: not a ${KEY_FORMAT} key`);
  if (keyDigest(key) !== key.digest) throw new ModelError(`${path}: key digest mismatch: the key was modified or corrupted`);
  return key;
}

/** SHA-256 of a file's bytes. */
export function fileHash(path: string): string {
  return sha256(readFileSync(path));
}
