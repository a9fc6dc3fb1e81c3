/**
 * Queue names and versioned job payloads. One BullMQ queue per job kind, so a worker serves only the
 * kinds it has models and memory for. Payloads are small JSON naming blobs by hash (see blobs.ts); by
 * design none holds a secret key or a plaintext input (FHE: ciphertexts + a public key set; MPC: indices
 * into a data set the worker already holds; Proteus: bundle members, which the optimizer sees anyway).
 */
import type { OptLevel } from '../api/proteus.js';
import { OptionError } from '../errors.js';

/** Job kinds a worker can run. */
export const JOB_KINDS = ['fhe', 'mpc', 'proteus'] as const;

/** One job kind. */
export type JobKind = (typeof JOB_KINDS)[number];

/** Payload format version; a worker refuses (fails the job, no retry) any other. */
export const PAYLOAD_VERSION = 3;

/** Prefix of privml's BullMQ queues. */
export const QUEUE_PREFIX = 'privml';

/** The BullMQ queue name of a job kind. */
export function queueName(kind: JobKind): string {
  return `${QUEUE_PREFIX}-${kind}`;
}

/** Fields every payload has. */
export interface JobBase {
  /** Payload format version ({@link PAYLOAD_VERSION}). */
  v: number;
  kind: JobKind;
  /** Submitter's run id (random), to group and clean up one batch. */
  run: string;
  /** Position of the job's result in the gathered output. */
  index: number;
}

/**
 * Optimize Proteus bundle members with onnxruntime (`--per-job` of them, one after another). The members
 * travel one of two ways: as blobs through Redis (`blobs`), or by path on storage the submitter and the
 * workers both mount (`shared`: an NFS export, a cluster volume), where the worker reads each member,
 * checks its MAC, writes the optimized member next to the others and returns only its size.
 */
export interface ProteusJob extends JobBase {
  kind: 'proteus';
  /** Member file names (member-N.onnx), kept so the results land under the same names. */
  members: string[];
  /** Redis mode: blob hash of each member's ONNX bytes. */
  blobs?: string[];
  /** Shared-storage mode (instead of `blobs`). */
  shared?: SharedMembers;
  level: OptLevel;
}

/** Where a shared-storage Proteus job reads and writes, relative to the shared directory's root. */
export interface SharedMembers {
  /** The submitter's path of the shared root (used by workers that mount it at the same path and have no --shared-dir). */
  root: string;
  /** Bundle and output directories relative to the root (no '..'). */
  bundle: string;
  out: string;
  /** GMAC of each member's bytes as the submitter read them, under a key drawn for this run only (the default check)… */
  mac?: MemberMacs;
  /** …or each member's SHA-256 from the bundle's manifest (`--member-check sha256`: the submitter reads no member). */
  sha256?: string[];
}

/** How a shared-storage worker checks the member it read: a per-run GMAC of the submitter's read, or the manifest's SHA-256. */
export type MemberCheck = 'mac' | 'sha256';

/**
 * The run's GMAC key and one tag per member of the job (base64). Member k of job i is tagged with the
 * nonce {@link memberNonce}(i, k), unique within the run; the key is never used for another run.
 */
export interface MemberMacs {
  key: string;
  tags: string[];
}

/** The 12-byte GMAC nonce of member k of job `index` (job index and position: distinct for every member of a run). */
export function memberNonce(index: number, k: number): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(0, index);
  v.setUint32(4, k);
  return n;
}

/** Run a PAF model on a batch of CKKS ciphertexts with the client's public (evaluation) keys. */
export interface FheJob extends JobBase {
  kind: 'fhe';
  /** Blob hash of the PAF model (the model owner's own weights). */
  model: string;
  /** Blob hash of the public key set (parameters, relinearization and Galois keys; never a secret key). */
  keys: string;
  /** The key set's key id (ciphertexts carry it too; checked on the worker). */
  keyId: string;
  /** Blob hashes of the input ciphertexts. */
  inputs: string[];
}

/** A data owner's offline MPC batch: dealer and both parties run on the worker over loopback. */
export interface MpcJob extends JobBase {
  kind: 'mpc';
  /** Model: a zoo name or a file path that exists on every worker. */
  model: string;
  /** Data set on the worker (a name, plus an optional directory on the worker). */
  dataset: string;
  dataDir?: string;
  /** First image and number of images of this job. */
  start: number;
  count: number;
  /** Protocol settings, as in `privml mpc infer`. */
  batch: number;
  weights: 'public' | 'secret';
  reluProtocol: 'signonly' | 'crypten';
  fracBits: number;
}

/** Any job payload. */
export type JobPayload = ProteusJob | FheJob | MpcJob;

/** What every job returns: the kind's result plus the worker's compute time (for overhead accounting). */
export interface JobResult<R = unknown> {
  /** Seconds the handler spent (excludes queue wait and transfer). */
  computeSeconds: number;
  /** Host name and pid of the worker, to show where a job ran. */
  worker: string;
  result: R;
}

/** Why a payload cannot be run, or undefined when its envelope is fine (kind-specific fields are checked by the handler). */
export function envelopeProblem(data: unknown, queueKind: JobKind): string | undefined {
  if (data === null || typeof data !== 'object') return 'payload is not an object';
  const d = data as Partial<JobBase>;
  if (d.v !== PAYLOAD_VERSION) return `payload version ${JSON.stringify(d.v)} is not supported by this worker (it runs version ${PAYLOAD_VERSION})`;
  if (!JOB_KINDS.includes(d.kind as JobKind)) return `unknown job kind ${JSON.stringify(d.kind)} (known: ${JOB_KINDS.join(', ')})`;
  if (d.kind !== queueKind) return `job kind '${d.kind}' on the ${queueName(queueKind)} queue`;
  if (!Number.isInteger(d.index) || d.index! < 0) return 'payload has no valid index';
  return undefined;
}

/** Parse `--kinds fhe,mpc,proteus`. */
export function parseKinds(list: string): JobKind[] {
  const ks = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s);
  const bad = ks.filter((k) => !JOB_KINDS.includes(k as JobKind));
  if (bad.length || !ks.length) throw new OptionError(`--kinds takes a comma-separated subset of ${JOB_KINDS.join(',')} (got '${list}')`);
  return [...new Set(ks)] as JobKind[];
}
