/**
 * Proteus over the queue: each bundle member is one job. The worker optimizes it with the library's
 * `proteus.optimize` (the code `privml proteus optimize` runs) on a one-member bundle, so a member is
 * optimized exactly as the local command would; the submitter writes the optimized members and the
 * manifest like the local command. The optimizer party sees members only, as it would locally.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureWritableDir } from '../api/files.js';
import { type OptLevel, optimize } from '../api/proteus.js';
import { ModelError, OptionError } from '../errors.js';
import { dropBlobs, getBlob, putBlob } from './blobs.js';
import type { QueueTarget } from './connection.js';
import type { JobPayload, ProteusJob } from './jobs.js';
import { blobConnection, newRunId, type SubmitOptions, submitJobs } from './submit.js';
import type { HandlerContext } from './worker.js';

/** Manifest format of a bundle (checked again by the library when the worker optimizes). */
const MANIFEST_FORMAT = 'privml-proteus-bundle/1';

/** Worker side: optimize one member; returns the blob hash of the optimized bytes. */
export async function proteusHandler(payload: JobPayload, ctx: HandlerContext): Promise<{ blob: string; seconds: number }> {
  const p = payload as ProteusJob;
  if (typeof p.member !== 'string' || !/^member-\d+\.onnx$/.test(p.member)) throw new ModelError(`bad member name ${JSON.stringify(p.member)}`);
  const bytes = await getBlob(ctx.redis, p.blob);
  const dir = mkdtempSync(join(tmpdir(), 'privml-qp-'));
  try {
    const inDir = join(dir, 'in');
    const outDir = join(dir, 'out');
    ensureWritableDir(inDir);
    writeFileSync(join(inDir, p.member), bytes);
    writeFileSync(join(inDir, 'manifest.json'), JSON.stringify({ format: MANIFEST_FORMAT, bundleId: `queue-${p.run}`, members: [p.member] }));
    const t0 = performance.now();
    await optimize(inDir, outDir, { level: p.level });
    const seconds = (performance.now() - t0) / 1000;
    return { blob: await putBlob(ctx.redis, readFileSync(join(outDir, p.member))), seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Submitter side of `privml proteus optimize BUNDLE --queue URL`: same output directory as the local command. */
export async function optimizeOverQueue(
  target: QueueTarget,
  bundleDir: string,
  outDir: string,
  opts: { level?: OptLevel } & SubmitOptions = {},
): Promise<{ members: number; seconds: number; computeSeconds: number; optimizeSeconds: number; attempts: number[]; workers: string[] }> {
  const level = opts.level ?? 'extended';
  if (!['basic', 'extended', 'all'].includes(level)) throw new OptionError(`level must be basic, extended or all (got '${level}')`);
  let manifest: { format?: string; members?: unknown };
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
  ensureWritableDir(outDir);
  const redis = await blobConnection(target);
  const run = newRunId();
  const live = new Set<string>();
  // Input blob per job still in flight (two members with equal bytes share one blob).
  const inputs = new Map<number, string>();
  try {
    const g = await submitJobs<ProteusJob, { blob: string; seconds: number }>(
      target,
      'proteus',
      run,
      members.length,
      async (i) => {
        const f = members[i]!;
        let bytes: Buffer;
        try {
          bytes = readFileSync(join(bundleDir, f));
        } catch {
          throw new ModelError(`${join(bundleDir, f)}: member listed in the manifest is missing`);
        }
        const blob = await putBlob(redis, bytes);
        live.add(blob);
        inputs.set(i, blob);
        return { member: f, blob, level };
      },
      {
        ...opts,
        // Each result is written as it arrives and its blobs dropped, so Redis holds only the jobs in flight.
        onResult: async (i, r) => {
          live.add(r.result.blob);
          writeFileSync(join(outDir, members[i]!), await getBlob(redis, r.result.blob));
          const input = inputs.get(i)!;
          inputs.delete(i);
          const unused = [r.result.blob, ...([...inputs.values()].includes(input) ? [] : [input])];
          await dropBlobs(redis, unused);
          for (const h of unused) live.delete(h);
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
    };
  } finally {
    await dropBlobs(redis, live).catch(() => {});
    redis.disconnect();
  }
}
