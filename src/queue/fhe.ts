/**
 * CKKS inference over the queue (`privml fhe run --queue`). The submitter is the client: it keeps the
 * secret key, uploads the model (the model owner's weights), the public key set and the input
 * ciphertexts as blobs, and decrypts the output ciphertexts. A worker is the server: it fetches a
 * model + key set once (cached by hash, so a batch of many jobs pays the key transfer and the SEAL
 * context once) and runs `fhe.openServer(...).infer`, the code `privml fhe infer` runs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../api/core.js';
import { type FheClient, type FheServer, openServer } from '../api/fhe.js';
import { DataError, OptionError, ProtocolError } from '../errors.js';
import { dropBlobs, getBlob, putBlob } from './blobs.js';
import type { QueueTarget } from './connection.js';
import type { FheJob, JobPayload } from './jobs.js';
import { blobConnection, newRunId, type SubmitOptions, submitJobs } from './submit.js';
import type { HandlerContext } from './worker.js';

/** A key set in Redis: one blob per key file (a Galois key is ~56 MB at N = 32768; a Redis string holds at most 512 MB), named by this manifest. */
interface KeySetManifest {
  format: 'privml-fhe-keyset/1';
  keyId: string;
  files: Record<string, string>;
}

/** One job's outcome: an output ciphertext blob and the server's seconds per image. */
export interface FheJobResult {
  outputs: string[];
  seconds: number[];
  computeSeconds: number[];
  /** Seconds waiting for this worker's server of the batch (fetching and loading model and key set: the first job only). */
  setupSeconds?: number;
}

/** Servers this worker holds, by model + key-set hash, with the jobs using each. */
const servers = new Map<string, { server: Promise<FheServer>; dir: string; users: number }>();

async function acquire(ctx: HandlerContext, p: FheJob): Promise<{ server: FheServer; release(): void }> {
  const key = `${p.model}:${p.keys}`;
  let e = servers.get(key);
  if (!e) {
    // One key set at a time fits WASM's 4 GB at N = 32768: drop idle servers of other batches first.
    for (const [k, old] of servers) {
      if (old.users > 0) continue;
      servers.delete(k);
      void old.server
        .then(
          (s) => s.dispose(),
          () => {},
        )
        .finally(() => rmSync(old.dir, { recursive: true, force: true }));
    }
    const dir = mkdtempSync(join(tmpdir(), 'privml-qf-'));
    const load = async (): Promise<FheServer> => {
      const manifest = JSON.parse((await ctx.cache.get(ctx.redis, p.keys)).toString('utf8')) as KeySetManifest;
      if (manifest.format !== 'privml-fhe-keyset/1' || typeof manifest.files !== 'object')
        throw new ProtocolError('key set blob is not a privml-fhe-keyset/1 manifest');
      if (manifest.keyId !== p.keyId) throw new ProtocolError(`key set ${manifest.keyId} does not match the job's key id ${p.keyId}`);
      for (const [name, hash] of Object.entries(manifest.files)) {
        if (!/^(params\.fhe|public\.key|relin\.key|galois-\d+\.key)$/.test(name))
          throw new ProtocolError(`key set names an unexpected file '${name.slice(0, 40)}' (only public key files travel)`);
        // Key files go straight to disk; only the small manifest and the model stay in the blob cache.
        writeFileSync(join(dir, name), await getBlob(ctx.redis, hash));
      }
      // The model travels too (the model owner's own weights), so any worker serves any batch.
      writeFileSync(join(dir, 'model.onnx'), await ctx.cache.get(ctx.redis, p.model));
      const model = await loadModel(join(dir, 'model.onnx'));
      return openServer(model, model.graph.name || 'model', dir);
    };
    e = { server: load(), dir, users: 0 };
    const entry = e;
    entry.server.catch(() => {
      servers.delete(key);
      rmSync(dir, { recursive: true, force: true });
    });
    servers.set(key, e);
  }
  e.users++;
  const entry = e;
  try {
    return { server: await entry.server, release: () => void entry.users-- };
  } catch (err) {
    entry.users--;
    throw err;
  }
}

/** Worker side: run the model on each input ciphertext of the job. */
export async function fheHandler(payload: JobPayload, ctx: HandlerContext): Promise<FheJobResult> {
  const p = payload as FheJob;
  if (!Array.isArray(p.inputs) || p.inputs.length === 0) throw new DataError('fhe job has no input ciphertexts');
  const t0 = performance.now();
  const { server, release } = await acquire(ctx, p);
  try {
    const out: FheJobResult = { outputs: [], seconds: [], computeSeconds: [], setupSeconds: (performance.now() - t0) / 1000 };
    for (let i = 0; i < p.inputs.length; i++) {
      const r = await server.infer(await getBlob(ctx.redis, p.inputs[i]!), `job ${p.index} input ${i}`);
      out.outputs.push(await putBlob(ctx.redis, r.bytes));
      out.seconds.push(r.seconds);
      out.computeSeconds.push(r.computeSeconds);
      await ctx.progress(Math.round((100 * (i + 1)) / p.inputs.length));
    }
    return out;
  } finally {
    release();
  }
}

/** Options of {@link runOverQueue}. */
export interface FheQueueOptions extends SubmitOptions {
  /** Images per job (default 1: an image is seconds to minutes of server time). */
  perJob?: number;
  /** Labels stored in the input ciphertexts' headers (as `fhe encrypt` does). */
  labels?: ArrayLike<number>;
}

/**
 * Submitter side of `privml fhe run --queue URL`: encrypt `n` images (each `size` floats of `images`)
 * with `client`'s keys, run them on the workers, and return the decrypted logits in order.
 */
export async function runOverQueue(
  target: QueueTarget,
  client: FheClient,
  modelBytes: Uint8Array,
  images: Float32Array,
  n: number,
  o: FheQueueOptions = {},
): Promise<{
  logits: Float64Array[];
  serverSeconds: number[];
  serverComputeSeconds: number[];
  seconds: number;
  computeSeconds: number;
  uploadSeconds: number;
  /** Handler seconds spent loading model and key set (once per worker), within computeSeconds. */
  setupSeconds: number;
  attempts: number[];
  workers: string[];
}> {
  if (client.refreshes > 0)
    throw new OptionError(
      `${client.source}: the plan needs ${client.refreshes} client-aided refresh round trip(s) per image, ` +
        `which a queued job cannot make; use --no-refresh (a plan without refresh) or run without --queue`,
    );
  const per = o.perJob ?? 1;
  if (!(Number.isInteger(per) && per >= 1)) throw new OptionError(`--per-job must be a positive integer, got ${per}`);
  const size = images.length / n;
  const redis = await blobConnection(target);
  const shared: string[] = [];
  const inFlight = new Map<number, string[]>();
  const logits: Float64Array[] = new Array(n);
  const serverSeconds: number[] = new Array(n);
  const serverComputeSeconds: number[] = new Array(n);
  try {
    const t0 = performance.now();
    const model = await putBlob(redis, modelBytes);
    const files: Record<string, string> = {};
    for (const [name, bytes] of client.serverKeyFiles()) files[name] = await putBlob(redis, bytes);
    const manifest: KeySetManifest = { format: 'privml-fhe-keyset/1', keyId: client.keyId, files };
    const keys = await putBlob(redis, Buffer.from(JSON.stringify(manifest)));
    shared.push(model, keys, ...Object.values(files));
    const uploadSeconds = (performance.now() - t0) / 1000;
    const jobs = Math.ceil(n / per);
    const g = await submitJobs<FheJob, FheJobResult>(
      target,
      'fhe',
      newRunId(),
      jobs,
      async (j) => {
        const inputs: string[] = [];
        for (let i = j * per; i < Math.min(n, (j + 1) * per); i++)
          inputs.push(await putBlob(redis, client.encrypt(images.subarray(i * size, (i + 1) * size), { label: o.labels?.[i] })));
        inFlight.set(j, inputs);
        return { model, keys, keyId: client.keyId, inputs };
      },
      {
        ...o,
        onResult: async (j, r) => {
          const outs = r.result.outputs;
          const want = Math.min(n, (j + 1) * per) - j * per;
          if (outs.length !== want) throw new ProtocolError(`worker returned ${outs.length} outputs for ${want} inputs`);
          for (let k = 0; k < outs.length; k++) {
            const i = j * per + k;
            logits[i] = client.decrypt(await getBlob(redis, outs[k]!), `output of image ${i}`);
            serverSeconds[i] = r.result.seconds[k]!;
            serverComputeSeconds[i] = r.result.computeSeconds[k]!;
          }
          await dropBlobs(redis, [...(inFlight.get(j) ?? []), ...outs]);
          inFlight.delete(j);
        },
      },
    );
    return {
      logits,
      serverSeconds,
      serverComputeSeconds,
      seconds: g.seconds,
      computeSeconds: g.results.reduce((a, r) => a + r.computeSeconds, 0),
      uploadSeconds,
      setupSeconds: g.results.reduce((a, r) => a + (r.result.setupSeconds ?? 0), 0),
      attempts: g.attempts,
      workers: [...new Set(g.results.map((r) => r.worker))],
    };
  } finally {
    await dropBlobs(redis, [...shared, ...[...inFlight.values()].flat()]).catch(() => {});
    redis.disconnect();
  }
}
