/**
 * CKKS context, keys and files on node-seal 6.0.3.
 * - `FheParams` (N, prime bit sizes, scale) fully determine a context; their hash ties every key and
 *   ciphertext file to the parameters (and a key id ties ciphertexts to one key pair).
 * - `Arena` collects SEAL objects so every one is `.delete()`d: WASM memory is not garbage collected.
 * - Files start with a header (magic, version, kind, parameter hash, key id, SHA-256 of the payload)
 *   checked before SEAL sees the bytes: SEAL aborts the whole WASM module on malformed input. The
 *   SHA-256 detects corruption and truncation; it is not authentication (anyone can recompute it).
 * - A key set's params.fhe lists the SHA-256 of each of its key files (a manifest), checked on load:
 *   a key file from another key set, or modified with a recomputed header checksum, is refused.
 *   This is integrity, not authentication: whoever can rewrite params.fhe too can replace the whole
 *   key set (which only harms the client that owns the keys: its results would not decrypt).
 * - Keys written by `saveKeys` are SEAL's seeded serializable form (the uniform half of every
 *   key-switching ciphertext is replaced by a seed), zstd-compressed: about half the bytes.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sealModule from 'node-seal';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import { randomId } from '../crypto/index.js';
import { isRefreshPlan, type RefreshPlan } from './refresh.js';

/** The node-seal library object. */
export type Seal = SEALLibrary;
// node-seal is a UMD/CJS module whose typings declare an ES default export: cast once here.
const SEALFactory = sealModule as unknown as () => Promise<SEALLibrary>;
/** SEAL object types used here. */
export type Ciphertext = ReturnType<Seal['CipherText']>;
export type Plaintext = ReturnType<Seal['PlainText']>;
export type SealContext = ReturnType<Seal['Context']>;
export type GaloisKeys = ReturnType<Seal['GaloisKeys']>;
export type RelinKeys = ReturnType<Seal['RelinKeys']>;
export type PublicKey = ReturnType<Seal['PublicKey']>;
export type SecretKey = ReturnType<Seal['SecretKey']>;

let sealPromise: Promise<Seal> | undefined;
/** Load node-seal once per process. */
export function loadSeal(): Promise<Seal> {
  sealPromise ??= SEALFactory();
  return sealPromise;
}

/** CKKS parameters: ring degree, prime sizes (first = top data prime … last = special prime), scale. */
export interface FheParams {
  polyModulusDegree: number;
  /** Bit sizes of the coefficient-modulus primes, SEAL order (the last one is the special prime). */
  primeBits: number[];
  /** log2 of the encoding scale Δ. */
  scaleBits: number;
}

/** Max total coefficient-modulus bits at 128-bit classical security (SEAL's tc128 table). */
export const TC128_MAX_BITS: Record<number, number> = { 1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881 };

/** Number of rescalings (levels) a parameter set allows. */
export function levelsOf(p: FheParams): number {
  return p.primeBits.length - 2;
}

/** Check a parameter set is valid and 128-bit secure; throws a one-line Error otherwise. */
export function validateParams(p: FheParams): void {
  const max = TC128_MAX_BITS[p.polyModulusDegree];
  if (max === undefined) throw new Error(`CKKS: poly modulus degree ${p.polyModulusDegree} not supported (use ${Object.keys(TC128_MAX_BITS).join(', ')})`);
  const total = p.primeBits.reduce((a, b) => a + b, 0);
  if (total > max) throw new Error(`CKKS: ${total} modulus bits exceed the 128-bit security bound ${max} for N=${p.polyModulusDegree}`);
  if (p.primeBits.length < 2) throw new Error('CKKS: need at least two primes');
  if (p.primeBits.some((b) => b < 20 || b > 60)) throw new Error('CKKS: prime sizes must be 20..60 bits');
}

/** Stable hash of a parameter set (hex, 16 chars), written into every file header. */
export function paramsHash(p: FheParams): string {
  const s = JSON.stringify({ n: p.polyModulusDegree, q: p.primeBits, d: p.scaleBits });
  return createHash('sha256').update(s).digest('hex').slice(0, 16);
}

/** Collects SEAL objects and deletes them together; `keep` removes one from the arena. */
export class Arena {
  private readonly objs: { delete(): void }[] = [];
  /** Register an object for deletion; returns it. */
  add<T extends { delete(): void }>(o: T): T {
    this.objs.push(o);
    return o;
  }
  /** Stop tracking `o` (the caller now owns it). */
  keep<T extends { delete(): void }>(o: T): T {
    const i = this.objs.indexOf(o);
    if (i >= 0) this.objs.splice(i, 1);
    return o;
  }
  /** Delete every tracked object. */
  dispose(): void {
    for (const o of this.objs.splice(0)) o.delete();
  }
}

/** Run `f` with a fresh arena that is disposed afterwards (also on error). */
export function withArena<T>(f: (a: Arena) => T): T {
  const a = new Arena();
  try {
    return f(a);
  } finally {
    a.dispose();
  }
}

/** A SEAL context plus encoder and evaluator; no keys. Call `dispose()`. */
export class FheContext {
  readonly seal: Seal;
  readonly params: FheParams;
  readonly hash: string;
  readonly context: SealContext;
  readonly encoder: ReturnType<Seal['CKKSEncoder']>;
  readonly evaluator: ReturnType<Seal['Evaluator']>;
  readonly slots: number;
  readonly scale: number;
  /** Primes in SEAL order (data primes then special), as numbers. */
  readonly primes: number[];

  private constructor(seal: Seal, params: FheParams) {
    validateParams(params);
    this.seal = seal;
    this.params = params;
    this.hash = paramsHash(params);
    const parms = seal.EncryptionParameters(seal.SchemeType.ckks);
    parms.setPolyModulusDegree(params.polyModulusDegree);
    const cm = seal.CoeffModulus.Create(params.polyModulusDegree, Int32Array.from(params.primeBits));
    parms.setCoeffModulus(cm);
    this.primes = Array.from(parms.coeffModulus, (q) => Number(q));
    this.context = seal.Context(parms, true, seal.SecurityLevel.tc128);
    cm.delete();
    parms.delete();
    if (!this.context.parametersSet()) throw new Error(`CKKS: SEAL rejected parameters N=${params.polyModulusDegree} primes [${params.primeBits}]`);
    this.encoder = seal.CKKSEncoder(this.context);
    this.evaluator = seal.Evaluator(this.context);
    this.slots = this.encoder.slotCount;
    this.scale = 2 ** params.scaleBits;
  }

  /** Create a context for `params`. */
  static async create(params: FheParams): Promise<FheContext> {
    return new FheContext(await loadSeal(), params);
  }

  /** Levels left in a ciphertext (0 = no rescale possible any more). */
  level(ct: Ciphertext): number {
    const cd = this.context.getContextData(ct.parmsId);
    const l = cd.chainIndex;
    cd.delete();
    return l;
  }

  /** Prime that the next rescale of a ciphertext at `level` divides by. */
  primeAt(level: number): number {
    return this.primes[level]!;
  }

  /** Remaining modulus bits at a ciphertext's level. */
  modulusBits(ct: Ciphertext): number {
    const cd = this.context.getContextData(ct.parmsId);
    const b = cd.totalCoeffModulusBitCount;
    cd.delete();
    return b;
  }

  /** Encode values (padded with zeros) at `scale`, at the level of `like` (default: top). */
  encode(values: ArrayLike<number>, scale: number, like?: Ciphertext): Plaintext {
    const v = new Float64Array(this.slots);
    v.set(values.length > this.slots ? Array.prototype.slice.call(values, 0, this.slots) : (values as ArrayLike<number>));
    const pt = this.encoder.encode(v, scale) as Plaintext;
    if (like) this.evaluator.plainModSwitchTo(pt, like.parmsId, pt);
    return pt;
  }

  /** Delete the SEAL objects of this context. */
  dispose(): void {
    this.encoder.delete();
    this.evaluator.delete();
    this.context.delete();
  }
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

export const MAGIC = 'PRIVMLHE';
/** File format version. */
export const FILE_VERSION = 1;
/** Kinds of FHE files. */
export type FheFileKind = 'params' | 'secret' | 'public' | 'relin' | 'galois' | 'ciphertext' | 'refresh-state' | 'plaintexts';

/** Header of every privml FHE file. */
export interface FheFileHeader {
  version: number;
  kind: FheFileKind;
  paramsHash: string;
  /** Random id of the key pair (ciphertexts name the key that encrypted them). */
  keyId: string;
  /** Free-form metadata (tensor layout of a ciphertext, rotation step of a Galois key, …). */
  meta: Record<string, unknown>;
}

/** Serialize header + payload: MAGIC, u32 header length, header JSON, 32-byte SHA-256, payload. */
export function encodeFheFile(h: FheFileHeader, payload: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify({ ...h, payloadBytes: payload.length }), 'utf8');
  const digest = createHash('sha256').update(json).update(payload).digest();
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  return Buffer.concat([Buffer.from(MAGIC, 'ascii'), len, json, digest, payload]);
}

/** Parse and verify a privml FHE file; clear errors for wrong magic, truncation and tampering. */
export function decodeFheFile(bytes: Uint8Array, path: string, expectKind?: FheFileKind): { header: FheFileHeader; payload: Uint8Array } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 12 || b.toString('ascii', 0, 8) !== MAGIC) throw new Error(`${path}: not a privml FHE file (bad magic)`);
  const n = b.readUInt32LE(8);
  if (b.length < 12 + n + 32) throw new Error(`${path}: truncated file (header incomplete)`);
  let h: FheFileHeader & { payloadBytes: number };
  try {
    h = JSON.parse(b.toString('utf8', 12, 12 + n));
  } catch {
    throw new Error(`${path}: corrupt header`);
  }
  // Valid JSON is not yet a header: `null`, a number or an array would crash the field reads below.
  if (h === null || typeof h !== 'object' || Array.isArray(h)) throw new Error(`${path}: corrupt header (not a JSON object)`);
  if (h.version !== FILE_VERSION) throw new Error(`${path}: file version ${h.version}, this privml reads version ${FILE_VERSION}`);
  const payload = b.subarray(12 + n + 32);
  if (payload.length !== h.payloadBytes) throw new Error(`${path}: truncated file (${payload.length} of ${h.payloadBytes} payload bytes)`);
  const digest = createHash('sha256')
    .update(b.subarray(12, 12 + n))
    .update(payload)
    .digest();
  if (!digest.equals(b.subarray(12 + n, 12 + n + 32)))
    throw new Error(`${path}: checksum mismatch (file corrupted or modified; the SHA-256 detects corruption, it does not authenticate)`);
  if (expectKind && h.kind !== expectKind) throw new Error(`${path}: expected a ${expectKind} file, found ${h.kind}`);
  const { payloadBytes: _pb, ...header } = h;
  return { header, payload: new Uint8Array(payload) };
}

/** Read and verify an FHE file. */
export function readFheFile(path: string, expectKind?: FheFileKind): { header: FheFileHeader; payload: Uint8Array } {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  return decodeFheFile(readFileSync(path), path, expectKind);
}

/** Check a file header belongs to these parameters (and this key pair when `keyId` is given). */
export function checkHeader(h: FheFileHeader, path: string, ctx: FheContext, keyId?: string): void {
  if (h.paramsHash !== ctx.hash) throw new Error(`${path}: made under other CKKS parameters (hash ${h.paramsHash}, keys have ${ctx.hash})`);
  if (keyId !== undefined && h.keyId !== keyId) throw new Error(`${path}: made under another key pair (key id ${h.keyId}, keys have ${keyId})`);
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/** Where a Galois key for each rotation step comes from (generated in memory or loaded from files). */
export interface GaloisSource {
  /** A GaloisKeys object holding the key for `step` (owned by the source: do not delete). */
  get(step: number): GaloisKeys;
  /** Steps this source can provide. */
  readonly steps: number[];
  /** Seconds spent generating or loading keys so far. */
  readonly seconds: number;
  /** Delete every cached key. */
  dispose(): void;
}

/** Normalise a rotation step to (0, slots). */
export function normStep(step: number, slots: number): number {
  return ((step % slots) + slots) % slots;
}

/**
 * Galois keys one step per object, cached (LRU, `maxCached` objects) so a model with many steps
 * never holds all keys at once: at N=32768 one key is ~200 MB and WASM has 4 GB.
 */
export class CachedGalois implements GaloisSource {
  private readonly cache = new Map<number, GaloisKeys>();
  private secs = 0;
  constructor(
    readonly steps: number[],
    private readonly make: (step: number) => GaloisKeys,
    private readonly maxCached = 8,
  ) {}
  get seconds(): number {
    return this.secs;
  }
  get(step: number): GaloisKeys {
    const hit = this.cache.get(step);
    if (hit) {
      this.cache.delete(step);
      this.cache.set(step, hit);
      return hit;
    }
    if (!this.steps.includes(step)) throw new Error(`no Galois key for rotation step ${step} (keys hold steps ${this.steps.join(', ') || 'none'})`);
    const t = performance.now();
    const k = this.make(step);
    this.secs += (performance.now() - t) / 1000;
    this.cache.set(step, k);
    while (this.cache.size > this.maxCached) {
      const [old, key] = this.cache.entries().next().value as [number, GaloisKeys];
      key.delete();
      this.cache.delete(old);
    }
    return k;
  }
  dispose(): void {
    for (const k of this.cache.values()) k.delete();
    this.cache.clear();
  }
}

/** Bytes of one Galois key (one rotation step): (primes − 1) key-switching ciphertexts of 2 polynomials over all primes. */
export function galoisKeyBytes(p: FheParams): number {
  const k = p.primeBits.length;
  return (k - 1) * 2 * p.polyModulusDegree * k * 8;
}

/** WASM's linear memory limit (4 GB). */
export const WASM_MEMORY_BYTES = 4.0e9;

/**
 * How many Galois keys to keep cached (at least 2). Besides the cached keys, WASM holds the
 * relinearisation key and SEAL's memory pools (which keep freed ciphertext/plaintext buffers of
 * every level for reuse, never returning them); measured at N=32768 with 21 primes, that is about
 * 7 key-sizes, so 10 key-sizes are reserved and the rest of the 4 GB goes to Galois keys.
 */
export function galoisCacheSize(p: FheParams, memory = WASM_MEMORY_BYTES): number {
  return Math.max(2, Math.floor(memory / galoisKeyBytes(p)) - 10);
}

/** Server-side key material: public, relinearisation and Galois keys. No secret key. */
export interface ServerKeys {
  keyId: string;
  publicKey: PublicKey;
  relinKeys: RelinKeys;
  galois: GaloisSource;
}

/** Client-side keys: everything, including the secret key. */
export interface ClientKeys extends ServerKeys {
  secretKey: SecretKey;
  /** Seeded (half-size) serializations of fresh server keys for the same secret key, when available. */
  seeded?: { publicKey(): Uint8Array; relinKeys(): Uint8Array; galois(step: number): Uint8Array };
}

/** Generate a key pair for `ctx`; Galois keys for `steps` are generated lazily (or eagerly by `saveKeys`). */
export function generateKeys(ctx: FheContext, steps: number[], maxCachedGalois = 8): ClientKeys & { dispose(): void } {
  const kg = ctx.seal.KeyGenerator(ctx.context);
  const secretKey = kg.secretKey();
  const publicKey = kg.createPublicKey();
  const relinKeys = kg.createRelinKeys();
  const norm = [...new Set(steps.map((s) => normStep(s, ctx.slots)))].filter((s) => s !== 0).sort((a, b) => a - b);
  const galois = new CachedGalois(norm, (s) => kg.createGaloisKeys(Int32Array.from([s])), maxCachedGalois);
  const keyId = randomId(8);
  const cmp = ctx.seal.ComprModeType.zstd;
  // Serializable objects hold the seed instead of the uniform polynomials; SEAL expands it on load.
  const save = (o: { saveArray(c: typeof cmp): Uint8Array; delete(): void }): Uint8Array => {
    try {
      return o.saveArray(cmp);
    } finally {
      o.delete();
    }
  };
  return {
    keyId,
    secretKey,
    publicKey,
    relinKeys,
    galois,
    seeded: {
      publicKey: () => save(kg.createPublicKeySerializable()),
      relinKeys: () => save(kg.createRelinKeysSerializable()),
      galois: (step) => save(kg.createGaloisKeysSerializable(Int32Array.from([step]))),
    },
    dispose() {
      galois.dispose();
      relinKeys.delete();
      publicKey.delete();
      secretKey.delete();
      kg.delete();
    },
  };
}

/** Layout of a key directory: `params.fhe`, `secret.key`, `public/{params.fhe,public.key,relin.key,galois-<step>.key}`. */
export const KEY_FILES = { params: 'params.fhe', secret: 'secret.key', publicDir: 'public', public: 'public.key', relin: 'relin.key' } as const;

function paramsFile(ctx: FheContext, keyId: string, steps: number[], files: Record<string, string>, batch = 1, refresh?: RefreshPlan): Uint8Array {
  // `batch` (images per ciphertext, src/fhe/batch.ts) decides the input packing and rotation steps; absent = 1.
  // `refresh` (absent: none) decides where the server's program stops for the client.
  const meta = { params: ctx.params, steps, files, ...(batch > 1 ? { batch } : {}), ...(refresh?.before.length ? { refresh } : {}) };
  return encodeFheFile({ version: FILE_VERSION, kind: 'params', paramsHash: ctx.hash, keyId, meta }, new Uint8Array(0));
}

/** SHA-256 (hex) of a whole key file, as listed in the key set's manifest. */
export function fileDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Write client keys to `dir` (secret key at top level, server keys under `dir/public`). The secret
 * key file is created exclusively with mode 0600 (an existing key is never overwritten); server keys
 * are the seeded serializable form when the keys come from `generateKeys`.
 */
export function saveKeys(
  ctx: FheContext,
  keys: ClientKeys,
  dir: string,
  opts: { batch?: number; refresh?: RefreshPlan } = {},
): { files: string[]; bytes: number; serverBytes: number } {
  const pub = join(dir, KEY_FILES.publicDir);
  const secretPath = join(dir, KEY_FILES.secret);
  if (existsSync(secretPath)) throw new Error(`${secretPath}: a secret key already exists; refusing to overwrite it (use a new directory)`);
  mkdirSync(pub, { recursive: true, mode: 0o700 });
  const files: string[] = [];
  let bytes = 0;
  let serverBytes = 0;
  const put = (path: string, data: Uint8Array, secret = false) => {
    if (secret) writeFileSync(path, data, { mode: 0o600, flag: 'wx' });
    else writeFileSync(path, data);
    files.push(path);
    bytes += data.length;
    if (path.startsWith(pub)) serverBytes += data.length;
  };
  const head = (kind: FheFileKind, meta: Record<string, unknown> = {}): FheFileHeader => ({
    version: FILE_VERSION,
    kind,
    paramsHash: ctx.hash,
    keyId: keys.keyId,
    meta,
  });
  const cmp = ctx.seal.ComprModeType.zstd;
  // Manifest: the SHA-256 of every key file goes into params.fhe (written last), so a key file that
  // was swapped in from another key set or modified with a recomputed header checksum is refused.
  const manifest: Record<string, string> = {};
  const key = (name: string, data: Uint8Array, secret = false) => {
    manifest[name] = fileDigest(data);
    put(secret ? join(dir, name) : join(pub, name), data, secret);
  };
  key(KEY_FILES.secret, encodeFheFile(head('secret'), keys.secretKey.saveArray(cmp)), true);
  const sd = keys.seeded;
  key(KEY_FILES.public, encodeFheFile(head('public'), sd ? sd.publicKey() : keys.publicKey.saveArray(cmp)));
  key(KEY_FILES.relin, encodeFheFile(head('relin'), sd ? sd.relinKeys() : keys.relinKeys.saveArray(cmp)));
  for (const s of keys.galois.steps) key(`galois-${s}.key`, encodeFheFile(head('galois', { step: s }), sd ? sd.galois(s) : keys.galois.get(s).saveArray(cmp)));
  // The server's copy does not name the secret key's digest (it never sees that file).
  const { [KEY_FILES.secret]: _secretDigest, ...serverManifest } = manifest;
  put(join(dir, KEY_FILES.params), paramsFile(ctx, keys.keyId, keys.galois.steps, manifest, opts.batch, opts.refresh));
  put(join(pub, KEY_FILES.params), paramsFile(ctx, keys.keyId, keys.galois.steps, serverManifest, opts.batch, opts.refresh));
  return { files, bytes, serverBytes };
}

/** Read the parameters (and key id, Galois steps) of a key directory or its `public` part. */
export function readKeyParams(dir: string): {
  params: FheParams;
  keyId: string;
  steps: number[];
  files: Record<string, string>;
  batch: number;
  refresh?: RefreshPlan;
} {
  const path = join(dir, KEY_FILES.params);
  const { header } = readFheFile(path, 'params');
  const meta = header.meta as { params: FheParams; steps: number[]; files?: Record<string, string>; batch?: number; refresh?: RefreshPlan };
  if (!meta || typeof meta !== 'object' || !meta.params || !Array.isArray(meta.steps))
    throw new Error(`${path}: corrupt parameter file (no parameters or rotation steps)`);
  const batch = meta.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1 || (batch & (batch - 1)) !== 0) throw new Error(`${path}: corrupt parameter file (batch ${batch})`);
  const r = meta.refresh;
  if (r !== undefined && !isRefreshPlan(r)) throw new Error(`${path}: corrupt parameter file (refresh plan)`);
  const files = meta.files && typeof meta.files === 'object' ? meta.files : {};
  return { params: meta.params, keyId: header.keyId, steps: meta.steps, files, batch, ...(r ? { refresh: { before: r.before, maskBits: r.maskBits } } : {}) };
}

/** True when `dir` holds a secret key (server processes must refuse it). */
export function hasSecretKey(dir: string): boolean {
  return existsSync(join(dir, KEY_FILES.secret)) || (existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('secret.key')));
}

/**
 * Load a key file into `obj` after checking it against the manifest digest of its key set (`digest`;
 * a key set written before manifests existed has none and is checked by its own header only).
 */
function loadInto<T extends { loadArray(ctx: SealContext, a: Uint8Array): void; delete(): void }>(
  obj: T,
  ctx: FheContext,
  path: string,
  kind: FheFileKind,
  keyId: string,
  digest?: string,
): T {
  let parsed: { header: FheFileHeader; payload: Uint8Array };
  try {
    if (!existsSync(path)) throw new Error(`${path}: no such file`);
    const bytes = readFileSync(path);
    // The file's own header first (names truncation or corruption precisely), then the manifest.
    parsed = decodeFheFile(bytes, path, kind);
    if (digest !== undefined && fileDigest(bytes) !== digest)
      throw new Error(`${path}: does not match the SHA-256 listed in its key set's params.fhe (modified or from another key set)`);
  } catch (e) {
    obj.delete();
    throw e;
  }
  const { header, payload } = parsed;
  checkHeader(header, path, ctx, keyId);
  try {
    obj.loadArray(ctx.context, payload);
  } catch (e) {
    obj.delete();
    throw new Error(`${path}: SEAL could not load the ${kind} key (${String(e).slice(0, 80)})`);
  }
  return obj;
}

/** Load server keys from `publicDir` (Galois keys loaded per step on demand). Refuses a directory with a secret key. */
export function loadServerKeys(ctx: FheContext, publicDir: string, maxCachedGalois = 8): ServerKeys & { dispose(): void } {
  if (hasSecretKey(publicDir)) throw new Error(`${publicDir}: holds a secret key; the server must only get the public keys (pass the 'public' subdirectory)`);
  const { keyId, steps, params, files } = readKeyParams(publicDir);
  if (paramsHash(params) !== ctx.hash) throw new Error(`${publicDir}: keys are for other CKKS parameters`);
  const publicKey = loadInto(ctx.seal.PublicKey(), ctx, join(publicDir, KEY_FILES.public), 'public', keyId, files[KEY_FILES.public]);
  let relinKeys: RelinKeys;
  try {
    relinKeys = loadInto(ctx.seal.RelinKeys(), ctx, join(publicDir, KEY_FILES.relin), 'relin', keyId, files[KEY_FILES.relin]);
  } catch (e) {
    publicKey.delete();
    throw e;
  }
  const galois = new CachedGalois(
    steps,
    (s) => loadInto(ctx.seal.GaloisKeys(), ctx, join(publicDir, `galois-${s}.key`), 'galois', keyId, files[`galois-${s}.key`]),
    maxCachedGalois,
  );
  return {
    keyId,
    publicKey,
    relinKeys,
    galois,
    dispose() {
      galois.dispose();
      relinKeys.delete();
      publicKey.delete();
    },
  };
}

/** Load the client's secret and public key from a key directory (no relin/Galois keys needed to en/decrypt). */
export function loadClientKeys(ctx: FheContext, dir: string): { keyId: string; secretKey: SecretKey; publicKey: PublicKey; dispose(): void } {
  const { keyId, files } = readKeyParams(dir);
  const secretKey = loadInto(ctx.seal.SecretKey(), ctx, join(dir, KEY_FILES.secret), 'secret', keyId, files[KEY_FILES.secret]);
  let publicKey: PublicKey;
  try {
    publicKey = loadInto(ctx.seal.PublicKey(), ctx, join(dir, KEY_FILES.publicDir, KEY_FILES.public), 'public', keyId, files[KEY_FILES.public]);
  } catch (e) {
    secretKey.delete();
    throw e;
  }
  return {
    keyId,
    secretKey,
    publicKey,
    dispose() {
      secretKey.delete();
      publicKey.delete();
    },
  };
}

/** Serialize a ciphertext with its header (`meta` carries the tensor layout). */
export function encodeCiphertext(ctx: FheContext, keyId: string, ct: Ciphertext, meta: Record<string, unknown>): Uint8Array {
  return encodeFheFile({ version: FILE_VERSION, kind: 'ciphertext', paramsHash: ctx.hash, keyId, meta }, ct.saveArray(ctx.seal.ComprModeType.zstd));
}

/** A ciphertext file from an already serialized (e.g. seeded) SEAL ciphertext. */
export function encodeCiphertextPayload(ctx: FheContext, keyId: string, payload: Uint8Array, meta: Record<string, unknown>): Uint8Array {
  return encodeFheFile({ version: FILE_VERSION, kind: 'ciphertext', paramsHash: ctx.hash, keyId, meta }, payload);
}

/** Load a ciphertext file made under these parameters and key pair. */
export function decodeCiphertext(ctx: FheContext, keyId: string, bytes: Uint8Array, path: string): { ct: Ciphertext; meta: Record<string, unknown> } {
  const { header, payload } = decodeFheFile(bytes, path, 'ciphertext');
  checkHeader(header, path, ctx, keyId);
  const ct = ctx.seal.CipherText();
  try {
    ct.loadArray(ctx.context, payload);
  } catch (e) {
    ct.delete();
    throw new Error(`${path}: SEAL could not load the ciphertext (${String(e).slice(0, 80)})`);
  }
  return { ct, meta: header.meta };
}

/** Read only the header of an FHE file (to find its parameters before building a context). */
export function peekHeader(path: string): FheFileHeader {
  return readFheFile(path).header;
}
