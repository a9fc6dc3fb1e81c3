/**
 * A server's encoded model plaintexts (the PlainCache: linear-layer diagonals, PAF constants) saved
 * to a file and loaded by a later server process, so a new client's first image does not pay for
 * encoding the model (most of a first image's time: ~600 encodes at N = 16384). The plaintexts
 * depend on the model, the parameters and the lowering, never on a client's keys; the file is
 * bound to all three by a digest of what gets encoded (`programDigest`), and refused on mismatch.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { type FheContext, FILE_VERSION, MAGIC, type Plaintext } from './context.js';
import { type Lowered, sourcesOf } from './lower.js';
import type { PlainCache } from './ops.js';

/**
 * The default plaintext file of a model file and plan: beside the model, named by the plan's digest, so
 * each (model, PAF, parameters, lowering) has its own file and a changed model never meets an old one.
 */
export function plainFileBeside(modelFile: string, digest: string): string {
  return `${modelFile}.${digest.slice(0, 16)}.fheplain`;
}

/** SHA-256 (hex) of everything a lowered program encodes as model plaintexts, with the parameters (and the segment's first step). */
export function programDigest(ctx: FheContext, l: Lowered, fromStep = 0): string {
  const h = createHash('sha256');
  const f64 = (v: Float64Array) => h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  // fromStep: a split-flow process that resumes at a refresh step encodes only the steps after it.
  h.update(JSON.stringify({ params: ctx.hash, slots: l.slots, batch: l.batch ?? 1, ...(fromStep ? { fromStep } : {}) }));
  for (const s of l.steps) {
    h.update(`|${s.kind}:${s.name}`);
    if (s.kind === 'linear') {
      h.update(`:${s.clientBabies ? 1 : 0}`);
      for (const p of s.plans) {
        h.update(JSON.stringify({ n1: p.n1, g: p.giants, h: p.horner, c: p.giantChain, r: p.reduce }));
        f64(p.bias);
        for (const src of sourcesOf(p)) {
          h.update(JSON.stringify({ i: src.input, b: src.babies }));
          for (const k of [...src.diags.keys()].sort((a, b) => a - b)) {
            h.update(`d${k}`);
            f64(src.diags.get(k)!);
          }
        }
      }
    } else if (s.kind === 'paf') h.update(JSON.stringify(s.src.stages));
    else if (s.kind === 'maxlevel') {
      h.update(JSON.stringify({ st: s.stages, sh: s.shift }));
      f64(s.mask);
    } else if (s.kind === 'scale') h.update(String(s.factor));
    else if (s.kind === 'sumpool') h.update(JSON.stringify(s.shifts));
    else h.update(JSON.stringify({ m: s.maskLog2, r: s.resumeLevel }));
  }
  return h.digest('hex');
}

/**
 * Save the cache's plaintexts to `path` (a temporary file, then renamed) in the FHE file format
 * (src/fhe/context.ts: magic, header, SHA-256, payload of `packPayloads`). Streamed one plaintext at a
 * time — each serialized again per pass rather than held — so saving hundreds of MB does not double the
 * process's memory (`fhe infer` keeps its RSS bound). Returns bytes written.
 */
export function savePlainCache(ctx: FheContext, cache: PlainCache, digest: string, path: string): number {
  const entries = [...cache.entries()];
  // NTT-form coefficients are uniform-looking: compression would cost time and save nothing.
  const ser = (pt: Plaintext) => pt.saveArray(ctx.seal.ComprModeType.none);
  // The serialized size depends only on the level (the key's @level): one serialization per level to
  // learn it (each is checked when written), not a first pass over every plaintext.
  const byLevel = new Map<string, number>();
  const lengths = entries.map(([k, pt]) => {
    const lv = /@(\d+)$/.exec(k)?.[1] ?? k;
    let n = byLevel.get(lv);
    if (n === undefined) byLevel.set(lv, (n = ser(pt).length));
    return n;
  });
  const head = Buffer.alloc(4 * (lengths.length + 1));
  head.writeUInt32LE(lengths.length, 0);
  lengths.forEach((n, i) => head.writeUInt32LE(n, 4 * (i + 1)));
  const payloadBytes = head.length + lengths.reduce((a, b) => a + b, 0);
  const h = { version: FILE_VERSION, kind: 'plaintexts', paramsHash: ctx.hash, keyId: '', meta: { digest, keys: entries.map(([k]) => k) } };
  const json = Buffer.from(JSON.stringify({ ...h, payloadBytes }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const sha = createHash('sha256').update(json).update(head);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let at = MAGIC.length + 4 + json.length + 32;
    writeSync(fd, head, 0, head.length, at);
    at += head.length;
    entries.forEach(([, pt], i) => {
      const b = ser(pt);
      if (b.length !== lengths[i]) throw new Error(`${path}: plaintext ${i} changed size while saving`);
      sha.update(b);
      writeSync(fd, b, 0, b.length, at);
      at += b.length;
    });
    const top = Buffer.concat([Buffer.from(MAGIC, 'ascii'), len, json, sha.digest()]);
    writeSync(fd, top, 0, top.length, 0);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  return MAGIC.length + 4 + json.length + 32 + payloadBytes;
}

/**
 * Writes the plaintexts a run encodes to a file as they are made (for a process that keeps none of them
 * in memory: `fhe infer`, whose RSS must stay bounded): parts go to a temporary file, `finish` writes
 * the `savePlainCache` format (header, SHA-256, lengths, parts, copied in chunks) and renames it.
 */
export class PlainRecorder {
  private readonly keys: string[] = [];
  private readonly lengths: number[] = [];
  private readonly partsPath: string;
  private fd: number;
  constructor(
    private readonly ctx: FheContext,
    private readonly path: string,
  ) {
    this.partsPath = `${path}.parts-${process.pid}`;
    this.fd = openSync(this.partsPath, 'w');
  }
  /** Record one plaintext (a PlainCache `record` hook). */
  add = (key: string, pt: Plaintext): void => {
    if (this.keys.includes(key)) return;
    const b = pt.saveArray(this.ctx.seal.ComprModeType.none);
    writeSync(this.fd, b);
    this.keys.push(key);
    this.lengths.push(b.length);
  };
  /** Write the file (nothing when nothing was recorded); returns bytes written. */
  finish(digest: string): number {
    closeSync(this.fd);
    this.fd = -1;
    try {
      if (!this.keys.length) return 0;
      const head = Buffer.alloc(4 * (this.lengths.length + 1));
      head.writeUInt32LE(this.lengths.length, 0);
      this.lengths.forEach((n, i) => head.writeUInt32LE(n, 4 * (i + 1)));
      const payloadBytes = head.length + this.lengths.reduce((a, b) => a + b, 0);
      const h = { version: FILE_VERSION, kind: 'plaintexts', paramsHash: this.ctx.hash, keyId: '', meta: { digest, keys: this.keys } };
      const json = Buffer.from(JSON.stringify({ ...h, payloadBytes }), 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(json.length);
      const chunk = Buffer.allocUnsafe(1 << 22);
      const parts = openSync(this.partsPath, 'r');
      const tmp = `${this.path}.tmp-${process.pid}`;
      const out = openSync(tmp, 'w');
      try {
        const sha = createHash('sha256').update(json).update(head);
        for (let n; (n = readSync(parts, chunk, 0, chunk.length, null)) > 0; ) sha.update(chunk.subarray(0, n));
        writeSync(out, Buffer.concat([Buffer.from(MAGIC, 'ascii'), len, json, sha.digest(), head]));
        for (let at = 0, n; (n = readSync(parts, chunk, 0, chunk.length, at)) > 0; at += n) writeSync(out, chunk, 0, n);
      } catch (e) {
        closeSync(out);
        rmSync(tmp, { force: true });
        throw e;
      } finally {
        closeSync(parts);
      }
      closeSync(out);
      renameSync(tmp, this.path);
      return MAGIC.length + 4 + json.length + 32 + payloadBytes;
    } finally {
      rmSync(this.partsPath, { force: true });
    }
  }
  /** Drop the temporary parts (a run that failed). */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.partsPath, { force: true });
  }
}

/**
 * Load plaintexts saved by `savePlainCache` into `cache`, streamed from the file one plaintext at a
 * time (the SHA-256 is checked at the end; on a mismatch every loaded plaintext is dropped). Returns
 * how many, or the reason (`why`) when there is no file or it was made for another model, parameters or
 * lowering; throws on a corrupt file.
 */
export function loadPlainCache(ctx: FheContext, cache: PlainCache, digest: string, path: string): { loaded: number } | { why: string } {
  if (!existsSync(path)) return { why: `${path}: no such file (it is written after this run)` };
  const fd = openSync(path, 'r');
  const added: string[] = [];
  try {
    const size = fstatSync(fd).size;
    let at = 0;
    const read = (n: number, what: string): Buffer => {
      if (at + n > size) throw new Error(`${path}: truncated file (${what})`);
      const b = Buffer.allocUnsafe(n);
      if (n > 0 && readSync(fd, b, 0, n, at) !== n) throw new Error(`${path}: short read (${what})`);
      at += n;
      return b;
    };
    const top = read(MAGIC.length + 4, 'header');
    if (top.toString('ascii', 0, MAGIC.length) !== MAGIC) throw new Error(`${path}: not a privml FHE file (bad magic)`);
    const json = read(top.readUInt32LE(MAGIC.length), 'header');
    let h: { version?: number; kind?: string; paramsHash?: string; payloadBytes?: number; meta?: { digest?: string; keys?: string[] } };
    try {
      h = JSON.parse(json.toString('utf8'));
    } catch {
      throw new Error(`${path}: corrupt header`);
    }
    if (h === null || typeof h !== 'object' || Array.isArray(h)) throw new Error(`${path}: corrupt header (not a JSON object)`);
    if (h.version !== FILE_VERSION) throw new Error(`${path}: file version ${h.version}, this privml reads version ${FILE_VERSION}`);
    if (h.kind !== 'plaintexts') throw new Error(`${path}: expected a plaintexts file, found ${h.kind}`);
    if (h.paramsHash !== ctx.hash || h.meta?.digest !== digest)
      return { why: `${path}: made for another model, parameters or plan (rewritten after this run)` };
    const want = read(32, 'checksum');
    if (size - at !== h.payloadBytes) throw new Error(`${path}: truncated file (${size - at} of ${h.payloadBytes} payload bytes)`);
    const keys = h.meta.keys;
    const sha = createHash('sha256').update(json);
    const n0 = read(4, 'plaintext list');
    const n = n0.readUInt32LE(0);
    if (!Array.isArray(keys) || keys.length !== n || n > 1 << 20) throw new Error(`${path}: corrupt plaintext file (${n} plaintexts, ${keys?.length} keys)`);
    const lens = read(4 * n, 'plaintext list');
    sha.update(n0).update(lens);
    for (let i = 0; i < n; i++) {
      const p = read(lens.readUInt32LE(4 * i), `plaintext ${i}`);
      sha.update(p);
      const key = keys[i]!;
      const level = Number(/@(\d+)$/.exec(key)?.[1] ?? ctx.params.primeBits.length - 2);
      const pt = ctx.seal.PlainText();
      try {
        pt.loadArray(ctx.context, p);
      } catch (e) {
        pt.delete();
        throw new Error(`${path}: SEAL could not load plaintext ${i} (${String(e).slice(0, 80)})`);
      }
      if (cache.put(key, pt, (level + 1) * ctx.params.polyModulusDegree * 8)) added.push(key);
      else pt.delete();
    }
    if (at !== size) throw new Error(`${path}: corrupt plaintext file (${size - at} trailing bytes)`);
    if (!sha.digest().equals(want))
      throw new Error(`${path}: checksum mismatch (file corrupted or modified; the SHA-256 detects corruption, it does not authenticate)`);
    return { loaded: added.length };
  } catch (e) {
    // Nothing from a file that failed its checks stays in the cache.
    cache.drop(added);
    throw e;
  } finally {
    closeSync(fd);
  }
}
