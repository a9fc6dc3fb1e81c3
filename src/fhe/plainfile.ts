/**
 * A server's encoded model plaintexts (the PlainCache: linear-layer diagonals, PAF constants) saved
 * to a file and loaded by a later server process, so a new client's first image does not pay for
 * encoding the model (most of a first image's time: ~600 encodes at N = 16384). The plaintexts
 * depend on the model, the parameters and the lowering, never on a client's keys; the file is
 * bound to all three by a digest of what gets encoded (`programDigest`), and refused on mismatch.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { decodeFheFile, encodeFheFile, type FheContext, FILE_VERSION } from './context.js';
import { type Lowered, sourcesOf } from './lower.js';
import type { PlainCache } from './ops.js';
import { packPayloads, unpackPayloads } from './refresh.js';

/**
 * The default plaintext file of a model file and plan: beside the model, named by the plan's digest, so
 * each (model, PAF, parameters, lowering) has its own file and a changed model never meets an old one.
 */
export function plainFileBeside(modelFile: string, digest: string): string {
  return `${modelFile}.${digest.slice(0, 16)}.fheplain`;
}

/** SHA-256 (hex) of everything a lowered program encodes as model plaintexts, with the parameters. */
export function programDigest(ctx: FheContext, l: Lowered): string {
  const h = createHash('sha256');
  const f64 = (v: Float64Array) => h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  h.update(JSON.stringify({ params: ctx.hash, slots: l.slots, batch: l.batch ?? 1 }));
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

/** Save the cache's plaintexts to `path` (written to a temporary file, then renamed). Returns bytes written. */
export function savePlainCache(ctx: FheContext, cache: PlainCache, digest: string, path: string): number {
  const keys: string[] = [];
  const parts: Uint8Array[] = [];
  for (const [k, pt] of cache.entries()) {
    keys.push(k);
    // NTT-form coefficients are uniform-looking: compression would cost time and save nothing.
    parts.push(pt.saveArray(ctx.seal.ComprModeType.none));
  }
  const bytes = encodeFheFile({ version: FILE_VERSION, kind: 'plaintexts', paramsHash: ctx.hash, keyId: '', meta: { digest, keys } }, packPayloads(parts));
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
  return bytes.length;
}

/**
 * Load plaintexts saved by `savePlainCache` into `cache`; returns how many, or undefined (with the
 * reason in `why`) when there is no file or it was made for another model, parameters or lowering.
 */
export function loadPlainCache(ctx: FheContext, cache: PlainCache, digest: string, path: string): { loaded: number } | { why: string } {
  if (!existsSync(path)) return { why: `${path}: no such file (it is written after this run)` };
  const { header, payload } = decodeFheFile(readFileSync(path), path, 'plaintexts');
  const meta = header.meta as { digest?: string; keys?: string[] };
  if (header.paramsHash !== ctx.hash || meta.digest !== digest)
    return { why: `${path}: made for another model, parameters or plan (rewritten after this run)` };
  const parts = unpackPayloads(payload, path, 1 << 20);
  if (!Array.isArray(meta.keys) || meta.keys.length !== parts.length)
    throw new Error(`${path}: corrupt plaintext file (${parts.length} plaintexts, ${meta.keys?.length} keys)`);
  let loaded = 0;
  parts.forEach((p, i) => {
    const key = meta.keys![i]!;
    const level = Number(/@(\d+)$/.exec(key)?.[1] ?? ctx.params.primeBits.length - 2);
    const pt = ctx.seal.PlainText();
    try {
      pt.loadArray(ctx.context, p);
    } catch (e) {
      pt.delete();
      throw new Error(`${path}: SEAL could not load plaintext ${i} (${String(e).slice(0, 80)})`);
    }
    if (cache.put(key, pt, (level + 1) * ctx.params.polyModulusDegree * 8)) loaded++;
    else pt.delete();
  });
  return { loaded };
}
