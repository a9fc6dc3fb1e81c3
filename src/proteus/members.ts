/**
 * Decoy members of a bundle, generated, checked and written one at a time: a sentinel is drawn,
 * encoded, loaded in onnxruntime at the bundle's opset (an invalid decoy would point at the real
 * member, so it is regenerated, never written), written to its file and hashed, then dropped — so
 * memory holds one member per generator, not a whole group. The same code runs in the calling
 * thread or as a `WorkerPool` function module (`setup` + `handle`), where each worker draws from
 * its own fresh secret stream: sentinel weight sampling is most of `obfuscate`'s time and the
 * groups are independent, so the cores share it.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../onnx/ir.js';
import { ModelError } from '../onnx/ir.js';
import { encodeModel } from '../onnx/proto.js';
import type { MemberHeader } from './anonymize.js';
import { anonymize } from './anonymize.js';
import type { Rng } from './rng.js';
import { secretRng } from './rng.js';
import { generateSentinels } from './sentinel.js';
import type { OpStats } from './stats.js';
import { ortLoadError } from './validity.js';
import { WeightPool } from './weights.js';

/** What every generator of one bundle shares. */
export interface MemberInit {
  /** The real subgraphs of the model (sentinels copy their interface and resample their weights). */
  parts: Model[];
  header: MemberHeader;
  stats: OpStats;
  /** Op types of the whole model. */
  modelOps: string[];
  /** The bundle's opset (named in refusals). */
  opset: number;
  /** Folder the member files are written into. */
  dir: string;
  /** Secret key of the bundle's hidden pools (`hiddenPool`): every generator must draw from the same ones. */
  poolKey: Uint8Array;
}

/** One unit of work: decoys of subgraph `part`, one per file name. */
export interface MemberJob {
  part: number;
  names: string[];
  /** The group's secret place of the real weight count among its decoys' (`SentinelOptions.position`). */
  position: number;
  /** The group's secret places of the real duplicate fraction, exponent entropy and structural shares among its decoys' (`SentinelOptions.mix`). */
  mix: number[];
}

/** What a job wrote: SHA-256 and size per file, decoys rejected by onnxruntime, generation time. */
export interface MemberResult {
  hashes: Record<string, string>;
  sizes: Record<string, number>;
  rejected: number;
  sentinelMs: number;
  /** Decoys with the real piece's architecture (`architectureOf`). */
  copies: number;
  /** A refusal (one line) instead of results. */
  error?: string;
}

/** A generator of checked decoys over one model's parts, drawing from `rng`. */
export class MemberWriter {
  private readonly pool: WeightPool;
  private readonly modelOps: Set<string>;

  constructor(
    private readonly init: MemberInit,
    private readonly rng: Rng,
  ) {
    this.pool = new WeightPool(init.parts, init.poolKey);
    this.modelOps = new Set(init.modelOps);
  }

  /** Generate, check, write and hash one decoy per name of `job`; refuses when decoys keep failing to load. */
  async write(job: MemberJob): Promise<MemberResult> {
    const res: MemberResult = { hashes: {}, sizes: {}, rejected: 0, sentinelMs: 0, copies: 0 };
    const real = this.init.parts[job.part];
    if (!real) throw new ModelError(`no subgraph ${job.part}`);
    // The job's decoys avoid each other's designs (a group is one job wherever the cores allow).
    const designs = new Map<string, number>();
    const wirings = new Map<string, number>();
    for (const name of job.names) {
      for (;;) {
        const t0 = performance.now();
        const [m] = generateSentinels(real, 1, {
          stats: this.init.stats,
          rng: this.rng,
          modelOps: this.modelOps,
          pool: this.pool,
          position: job.position,
          mix: job.mix,
          designs,
          wirings,
          onCopies: (n) => {
            res.copies += n;
          },
        });
        res.sentinelMs += performance.now() - t0;
        const b = encodeModel(anonymize(m!, this.init.header));
        const err = await ortLoadError(b);
        if (err === undefined) {
          writeFileSync(join(this.init.dir, name), b);
          res.hashes[name] = createHash('sha256').update(b).digest('hex');
          res.sizes[name] = b.length;
          break;
        }
        if (++res.rejected > 4 * job.names.length + 8)
          throw new ModelError(
            `subgraph ${job.part}: ${res.rejected} decoys failed to load in onnxruntime at opset ${this.init.opset} (last: ${err}); ` +
              'refusing to write a bundle whose decoys give the real member away',
          );
      }
    }
    return res;
  }
}

// WorkerPool function module: one writer per worker, on the worker's own fresh secret stream.
let writer: MemberWriter | undefined;

/** Worker setup: index the model's weights once. */
export function setup(init: MemberInit): void {
  writer = new MemberWriter(init, secretRng());
}

/** Worker entry: a job's results, or its one-line refusal (a worker's stack trace says nothing to a user). */
export async function handle(job: MemberJob): Promise<MemberResult> {
  if (!writer) throw new Error('members: setup() was not called');
  try {
    return await writer.write(job);
  } catch (e) {
    if (e instanceof ModelError) return { hashes: {}, sizes: {}, rejected: 0, sentinelMs: 0, copies: 0, error: e.message };
    throw e;
  }
}
