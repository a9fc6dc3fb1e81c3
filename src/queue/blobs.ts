/**
 * Content-addressed blobs in Redis: large job inputs and results (ONNX members, ciphertexts, public
 * keys) are stored once under their SHA-256 and named by hash in job payloads, so a payload stays a
 * few hundred bytes and a worker fetches a public key set once and caches it by hash.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ProtocolError } from '../errors.js';

/** Key prefix of blobs (the queue's own keys live under `bull:`). */
export const BLOB_PREFIX = 'privml:blob:';

/** Default lifetime of a blob: long enough for a slow batch, short enough that leftovers expire. */
export const BLOB_TTL_SECONDS = 24 * 3600;

/** SHA-256 of `bytes` in hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Store `bytes` (if not already there) and return its hash; the lifetime is refreshed either way. */
export async function putBlob(redis: Redis, bytes: Uint8Array, ttlSeconds = BLOB_TTL_SECONDS): Promise<string> {
  const h = sha256Hex(bytes);
  await redis.set(BLOB_PREFIX + h, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'EX', ttlSeconds);
  return h;
}

/** Fetch a blob and check its hash; ProtocolError when it is missing (expired, other Redis) or altered. */
export async function getBlob(redis: Redis, hash: string): Promise<Buffer> {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new ProtocolError(`blob name '${String(hash).slice(0, 80)}' is not a SHA-256`);
  const b = await redis.getBuffer(BLOB_PREFIX + hash);
  if (!b) throw new ProtocolError(`blob ${hash.slice(0, 12)}… is not in Redis (expired or never uploaded)`);
  if (sha256Hex(b) !== hash) throw new ProtocolError(`blob ${hash.slice(0, 12)}… does not match its hash`);
  return b;
}

/** Delete blobs (the submitter's clean-up once results are gathered). */
export async function dropBlobs(redis: Redis, hashes: Iterable<string>): Promise<void> {
  const keys = [...new Set(hashes)].map((h) => BLOB_PREFIX + h);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
}

/** A per-worker cache of fetched blobs (public key sets, models), bounded by bytes, evicting the oldest. */
export class BlobCache {
  private readonly map = new Map<string, Promise<Buffer>>();
  private bytes = 0;
  /** Blobs fetched from Redis (not served from the cache). */
  fetched = 0;
  constructor(private readonly maxBytes = 512 * 2 ** 20) {}

  /** The blob named `hash`, fetched at most once while it stays cached (concurrent callers share the fetch). */
  get(redis: Redis, hash: string): Promise<Buffer> {
    const hit = this.map.get(hash);
    if (hit) return hit;
    this.fetched++;
    const p = getBlob(redis, hash).then((b) => {
      this.bytes += b.length;
      for (const [k, v] of this.map) {
        if (this.bytes <= this.maxBytes || k === hash) break;
        this.map.delete(k);
        void v.then((old) => (this.bytes -= old.length));
      }
      return b;
    });
    p.catch(() => this.map.delete(hash));
    this.map.set(hash, p);
    return p;
  }
}
