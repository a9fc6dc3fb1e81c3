/**
 * Proteus over the queue: a job is `perJob` bundle members (1 by default; a few amortize the queue's
 * per-job cost over members of ~0.1 s each). The worker optimizes each with the library's
 * `proteus.optimizeMember` (the session options `privml proteus optimize` uses for every member), so a
 * member is optimized exactly as the local command would; the submitter writes the manifest like the
 * local command. The optimizer party sees members only, as it would locally.
 *
 * Members move one of two ways. Redis mode: member and result bytes are blobs in Redis (works for any
 * worker, but a resnet50 K=20 bundle is 2 GB each way through one Redis). Shared-storage mode
 * (`sharedDir`): bundle and output live on storage every worker mounts (NFS, a cluster volume); a job
 * names its members by path and carries a GMAC tag of each (the submitter reads every member once and
 * tags it under a key drawn for this run, carried in the payloads); the worker checks what it read
 * against the tag, writes the optimized member into the output directory (temporary name, then an
 * atomic rename, so a job retried after a kill leaves one complete file) and returns only its size,
 * which the submitter checks. Why GMAC and not the manifest's SHA-256: the check is the same guarantee
 * against whoever can change the shared storage but not the payloads (docs/scale-out.md, threat
 * model) at ~4× less CPU on the workers (0.43–0.48 s instead of 1.8–1.9 s for a 2.1 GB bundle), paid
 * for by the submitter reading the bundle once (0.6–0.7 s of CPU, streamed through a small buffer);
 * `memberCheck: 'sha256'` sends the manifest's hashes instead, so the submitter reads no member
 * (better when its link to the share is the slow one).
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, type Stats, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ensureWritableDir } from '../api/files.js';
import { type OptLevel, optimizeMember } from '../api/proteus.js';
import { gmacKey, gmacStream, gmacVerify, randomId } from '../crypto/index.js';
import { ModelError, OptionError } from '../errors.js';
import { dropBlobs, getBlob, putBlob, sha256Hex } from './blobs.js';
import type { QueueTarget } from './connection.js';
import { type JobPayload, type MemberCheck, memberNonce, type ProteusJob, type SharedMembers } from './jobs.js';
import { type ReadMember, readMember, recycle, streamFile } from './reader.js';
import { blobConnection, newRunId, type SubmitOptions, submitJobs } from './submit.js';
import type { HandlerContext } from './worker.js';

/** Manifest format of a bundle (checked again by the library when the worker optimizes). */
const MANIFEST_FORMAT = 'privml-proteus-bundle/1';

/** What a Proteus job returns: the optimized member as a blob (Redis mode) or its hash on the shared storage. */
export interface ProteusResult {
  /** ORT seconds for the job's members. */
  seconds: number;
  /** Redis mode: blob hash of each optimized member. */
  blobs?: string[];
  /** Shared-storage mode: size of each optimized member as written. */
  bytes?: number[];
}

/** Temporary names of members being written into a shared output directory (`.member-N.onnx.<random>.tmp`). */
const PARTIAL = /^\.member-\d+\.onnx\.[0-9a-f]+\.tmp$/;

/** A relative path inside the shared root (no absolute path, no '..'), so a payload cannot point a worker elsewhere. */
function inside(rel: unknown, what: string): string {
  if (typeof rel !== 'string' || isAbsolute(rel) || rel.split(/[\\/]/).includes('..'))
    throw new ModelError(`shared job: bad ${what} path ${JSON.stringify(rel)}`);
  return rel;
}

/** Worker side: optimize the job's members; returns their optimized bytes as blobs, or (shared storage) their sizes. */
export async function proteusHandler(payload: JobPayload, ctx: HandlerContext): Promise<ProteusResult> {
  const p = payload as ProteusJob;
  if (!Array.isArray(p.members) || !p.members.length || p.members.some((m) => typeof m !== 'string' || !/^member-\d+\.onnx$/.test(m)))
    throw new ModelError(`bad member names ${JSON.stringify(p.members)?.slice(0, 120)}`);
  const sources = p.shared ? (p.shared.sha256 ?? p.shared.mac?.tags) : p.blobs;
  if (!Array.isArray(sources) || sources.length !== p.members.length) throw new ModelError(`job names ${p.members.length} members but not one source each`);
  const r: ProteusResult = { seconds: 0 };
  // Shared mode reads the next member (thread pool) while ORT works on this one.
  let next = p.shared ? readShared(p, 0, p.shared, ctx) : undefined;
  for (let k = 0; k < p.members.length; k++) {
    if (p.shared) {
      const got = next!;
      next = k + 1 < p.members.length ? readShared(p, k + 1, p.shared, ctx) : undefined;
      next?.catch(() => {}); // its error surfaces when its turn comes
      const read = await got;
      try {
        (r.bytes ??= []).push(await sharedMember(p, k, p.shared, read, ctx, r));
      } finally {
        // ORT has parsed the bytes into its own session (released by now): the buffer can take the next member.
        recycle(read);
      }
    } else (r.blobs ??= []).push(await blobMember(p, k, ctx, r));
    if (p.members.length > 1) await ctx.progress(Math.round((100 * (k + 1)) / p.members.length));
  }
  return r;
}

/** Redis-mode member k: fetch its blob, optimize, store the result as a blob. */
async function blobMember(p: ProteusJob, k: number, ctx: HandlerContext, r: ProteusResult): Promise<string> {
  const bytes = await getBlob(ctx.redis, p.blobs![k]!);
  const dir = mkdtempSync(join(tmpdir(), 'privml-qp-'));
  try {
    const out = join(dir, p.members[k]!);
    const t0 = performance.now();
    await optimizeMember(bytes, out, { level: p.level, threads: ctx.ortThreads, what: p.members[k] });
    r.seconds += (performance.now() - t0) / 1000;
    return await putBlob(ctx.redis, readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Shared-storage member k as read: its path and bytes (one read into a recycled buffer). */
async function readShared(p: ProteusJob, k: number, s: SharedMembers, ctx: HandlerContext): Promise<ReadMember & { src: string }> {
  const root = ctx.sharedDir ?? s.root;
  if (typeof root !== 'string' || !isAbsolute(root)) throw new ModelError('shared job: no absolute shared root');
  const src = join(root, inside(s.bundle, 'bundle'), p.members[k]!);
  try {
    const r = await readMember(src);
    return { src, ...r };
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ModelError(`${src}: this worker cannot read the member (${why}); mount the shared storage at ${s.root} or give the worker --shared-dir`);
  }
}

/** Shared-storage member k: check what was read against its tag, optimize it into the shared output directory, return its size. */
async function sharedMember(
  p: ProteusJob,
  k: number,
  s: SharedMembers,
  read: ReadMember & { src: string },
  ctx: HandlerContext,
  r: ProteusResult,
): Promise<number> {
  const member = p.members[k]!;
  const { src, bytes } = read;
  const outDir = join(ctx.sharedDir ?? s.root, inside(s.out, 'output'));
  if (s.sha256) {
    const want = s.sha256[k];
    if (typeof want !== 'string' || !/^[0-9a-f]{64}$/.test(want)) throw new ModelError(`shared job: no SHA-256 of ${member}`);
    const got = sha256Hex(bytes);
    if (got !== want)
      throw new ModelError(
        `${src}: read SHA-256 ${got.slice(0, 12)}…, the job expects ${want.slice(0, 12)}… ` +
          '(another share mounted here, or the member changed since it was hashed)',
      );
  } else {
    const key = Buffer.from(typeof s.mac?.key === 'string' ? s.mac.key : '', 'base64');
    const tag = Buffer.from(typeof s.mac?.tags[k] === 'string' ? s.mac.tags[k] : '', 'base64');
    if (key.length !== 32 || tag.length !== 16) throw new ModelError(`shared job: no MAC key or tag for ${member}`);
    // The tag computed here is never reported: with the submitter's tag of other bytes under the same nonce it would give the key's GHASH part away.
    if (!gmacVerify(key, memberNonce(p.index, k), bytes, tag))
      throw new ModelError(
        `${src}: the bytes read differ from what the submitter read and tagged (member changed since submission, or another share mounted here)`,
      );
  }
  // A fresh temporary name per attempt: a killed attempt's partial file is never renamed into place.
  const tmp = join(outDir, `.${member}.${randomId(6)}.tmp`);
  try {
    const t0 = performance.now();
    await optimizeMember(bytes, tmp, { level: p.level, threads: ctx.ortThreads, what: src });
    r.seconds += (performance.now() - t0) / 1000;
    const size = statSync(tmp).size;
    renameSync(tmp, join(outDir, member));
    return size;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** `stat` of a path, undefined when it does not exist. */
function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** File names in `dir`, none if it is gone. */
function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Submitter's paths of a shared-storage run: bundle and output relative to the shared root. */
function sharedPaths(sharedDir: string, bundleDir: string, outDir: string): { root: string; bundle: string; out: string } {
  const root = resolve(sharedDir);
  const rel = (dir: string, what: string) => {
    const r = relative(root, resolve(dir));
    if (r === '..' || r.startsWith(`..${sep}`) || isAbsolute(r)) throw new OptionError(`--shared-dir ${sharedDir}: the ${what} ${dir} is not inside it`);
    return r;
  };
  return { root, bundle: rel(bundleDir, 'bundle'), out: rel(outDir, 'output directory') };
}

/** Result of {@link optimizeOverQueue}. */
export interface QueuedOptimize {
  members: number;
  seconds: number;
  computeSeconds: number;
  optimizeSeconds: number;
  attempts: number[];
  workers: string[];
  /** How members moved: through Redis, or by path on shared storage. */
  mode: 'redis' | 'shared';
}

/** Submitter side of `privml proteus optimize BUNDLE --queue URL [--shared-dir DIR]`: same output directory as the local command. */
export async function optimizeOverQueue(
  target: QueueTarget,
  bundleDir: string,
  outDir: string,
  opts: { level?: OptLevel; sharedDir?: string; perJob?: number; memberCheck?: MemberCheck } & SubmitOptions = {},
): Promise<QueuedOptimize> {
  const level = opts.level ?? 'extended';
  const perJob = opts.perJob ?? 1;
  if (!Number.isInteger(perJob) || perJob < 1) throw new OptionError(`--per-job must be a positive integer (got ${perJob})`);
  if (!['basic', 'extended', 'all'].includes(level)) throw new OptionError(`level must be basic, extended or all (got '${level}')`);
  const check = opts.memberCheck ?? 'mac';
  if (check !== 'mac' && check !== 'sha256') throw new OptionError(`member check must be mac or sha256 (got '${check}')`);
  let manifest: { format?: string; members?: unknown; sha256?: Record<string, unknown> };
  try {
    manifest = JSON.parse(readFileSync(join(bundleDir, 'manifest.json'), 'utf8')) as typeof manifest;
  } catch (e) {
    throw new ModelError(`${join(bundleDir, 'manifest.json')}: no readable manifest (not a Proteus bundle directory): ${(e as Error).message.split('\n')[0]}`);
  }
  if (manifest?.format !== MANIFEST_FORMAT || !Array.isArray(manifest.members))
    throw new ModelError(`${join(bundleDir, 'manifest.json')}: not a ${MANIFEST_FORMAT} manifest`);
  const members = manifest.members as string[];
  for (const f of members)
    if (typeof f !== 'string' || !/^member-\d+\.onnx$/.test(f)) throw new ModelError(`${join(bundleDir, 'manifest.json')}: bad member name '${String(f)}'`);
  const shared = opts.sharedDir === undefined ? undefined : sharedPaths(opts.sharedDir, bundleDir, outDir);
  ensureWritableDir(outDir);
  // Shared mode: workers write the members here; old ones go first so none can pass for a worker's output.
  if (shared) for (const f of members) rmSync(join(outDir, f), { force: true });
  const read = (f: string): Buffer => {
    try {
      return readFileSync(join(bundleDir, f));
    } catch {
      throw new ModelError(`${join(bundleDir, f)}: member listed in the manifest is missing`);
    }
  };
  const redis = await blobConnection(target);
  const run = newRunId();
  // Shared mode: this run's MAC key (a fresh one per run, so no nonce is ever reused under it across runs).
  const macKey = shared && check === 'mac' ? gmacKey() : undefined;
  const jobs = Math.ceil(members.length / perJob);
  const names = (i: number) => members.slice(i * perJob, (i + 1) * perJob);
  const live = new Set<string>();
  // Input blobs (Redis mode) per job still in flight (two members with equal bytes share one blob).
  const inputs = new Map<number, string[]>();
  let done = 0;
  try {
    const g = await submitJobs<ProteusJob, ProteusResult>(
      target,
      'proteus',
      run,
      jobs,
      async (i) => {
        const fs = names(i);
        if (shared && check === 'sha256') {
          // The bundle's own hashes when its manifest lists them (written at obfuscation): the submitter reads no member.
          const sha256 = fs.map((f) => {
            const listed = manifest.sha256?.[f];
            return typeof listed === 'string' && /^[0-9a-f]{64}$/.test(listed) ? listed : sha256Hex(read(f));
          });
          return { members: fs, shared: { ...shared, sha256 }, level };
        }
        if (shared) {
          // Tags of the bytes read here, now: the workers then optimize exactly what this command would have
          // read locally. (The manifest's SHA-256 list, --member-check sha256, spares this read of the whole
          // bundle, but checking a SHA-256 costs a worker ~5× a GMAC's CPU.)
          const tags: string[] = [];
          for (const [k, f] of fs.entries()) {
            // Streamed through a small buffer: the tag needs each byte once, not the member in memory.
            const mac = gmacStream(macKey!, memberNonce(i, k));
            await streamFile(join(bundleDir, f), mac.update).catch((e: NodeJS.ErrnoException) => {
              throw new ModelError(
                `${join(bundleDir, f)}: member listed in the manifest ${e.code === 'ENOENT' ? 'is missing' : `cannot be read (${e.code ?? e.message})`}`,
              );
            });
            tags.push(mac.tag().toString('base64'));
          }
          return { members: fs, shared: { ...shared, mac: { key: Buffer.from(macKey!).toString('base64'), tags } }, level };
        }
        const blobs: string[] = [];
        for (const f of fs) blobs.push(await putBlob(redis, read(f)));
        for (const b of blobs) live.add(b);
        inputs.set(i, blobs);
        return { members: fs, blobs, level };
      },
      {
        ...opts,
        // Redis mode: Redis holds ~16 members in flight whatever the job size. Shared mode: jobs are a few
        // hundred bytes, so all go in at once and a worker never waits for the submitter to top the queue up.
        window: opts.window ?? (shared ? jobs : Math.max(2, Math.ceil(16 / perJob))),
        onProgress: undefined,
        // Each result is written (Redis) or checked (shared) as it arrives, so Redis holds only the jobs in flight.
        onResult: async (i, r) => {
          const res = r.result;
          const fs = names(i);
          if (shared) {
            // The old members were removed before submitting, so a file of the reported size here is the
            // worker's (re-hashing 2 GB of output on the submitter would cost as much as the optimization).
            fs.forEach((f, k) => {
              const path = join(outDir, f);
              const size = statOrUndefined(path)?.size;
              if (size === undefined || size !== res.bytes?.[k])
                throw new ModelError(
                  `${path}: the worker reported ${res.bytes?.[k]} bytes written here, found ${size ?? 'no file'} (is its --shared-dir the same storage?)`,
                );
            });
          } else {
            if (res.blobs?.length !== fs.length) throw new ModelError(`proteus job ${i}: ${res.blobs?.length ?? 0} results for ${fs.length} members`);
            for (const b of res.blobs) live.add(b);
            for (let k = 0; k < fs.length; k++) writeFileSync(join(outDir, fs[k]!), await getBlob(redis, res.blobs[k]!));
            const input = inputs.get(i)!;
            inputs.delete(i);
            const still = new Set([...inputs.values()].flat());
            const unused = [...res.blobs, ...input.filter((b) => !still.has(b))];
            await dropBlobs(redis, unused);
            for (const h of unused) live.delete(h);
          }
          done += fs.length;
          opts.onProgress?.(done, members.length);
        },
      },
    );
    copyFileSync(join(bundleDir, 'manifest.json'), join(outDir, 'manifest.json'));
    return {
      members: members.length,
      seconds: g.seconds,
      computeSeconds: g.results.reduce((a, r) => a + r.computeSeconds, 0),
      optimizeSeconds: g.results.reduce((a, r) => a + r.result.seconds, 0),
      attempts: g.attempts,
      workers: [...new Set(g.results.map((r) => r.worker))],
      mode: shared ? 'shared' : 'redis',
    };
  } finally {
    // Partial files of attempts killed mid-write (their retries wrote the member under its own name).
    if (shared) for (const f of listDir(outDir)) if (PARTIAL.test(f)) rmSync(join(outDir, f), { force: true });
    await dropBlobs(redis, live).catch(() => {});
    redis.disconnect();
  }
}
