/**
 * What `privml serve` and the page agree on: the session description the server hands out (the
 * public job settings both parties must share, and the ports of party 1 and the dealer), and the messages between the
 * page and its worker. No secret ever appears in these: the image and shares stay in the worker.
 */
import type { BitRange, WeightMode } from '../mpc/executor.js';
import type { ReluProtocol } from '../mpc/protocols/compare.js';

/** The reply to `POST /api/session`: a fresh dealer and party 1 wait for the page on these ports. */
export interface SessionInfo {
  id: string;
  /** Port where party 1 accepts the page's WebSocket directly (same host as the page). */
  peerPort: number;
  /** Port where the dealer accepts the page's WebSocket directly (same host as the page). */
  dealerPort: number;
  job: {
    weights: WeightMode;
    reluProtocol: ReluProtocol;
    reluConfig?: Record<string, BitRange>;
    fracBits: number;
    warmup: boolean;
    /** The offline phase before the image is shared (`serve --preprocess`; party 1 runs it too). */
    preprocess: boolean;
    idleTimeoutMs: number;
  };
}

/** `GET /api/info`: what the server runs. */
export interface ServerInfo {
  model: string;
  mode: 'mpc' | 'fhe';
  /** FHE mode: the PAF used (development PAF model made from the ReLU model), if any. */
  paf?: string | null;
  /** Input shape of one image (e.g. [1, 28, 28]). */
  inputShape: number[];
  classes: string[];
  weights: WeightMode;
  reluConfig: string | null;
}

/** One committed sample image (`GET /api/samples`). */
export interface Sample {
  index: number;
  label: number;
  /** 784 grey levels, base64. */
  pixels: string;
}

/** Page → worker: classify one image. */
export interface WorkerRequest {
  type: 'classify';
  /** The model file (public weights) or architecture (secret weights) as served. */
  model: ArrayBuffer;
  session: SessionInfo;
  /** ws:// or wss:// origin of the server. */
  wsOrigin: string;
  /** The image, values in [0, 1]. */
  image: Float32Array;
}

/** Worker → page, both modes: how far the work is (for the progress bar). */
export interface WorkerProgress {
  type: 'progress';
  phase: string;
  fraction: number;
}

/** Worker → page, both modes: the classification failed (a one-line reason). */
export interface WorkerError {
  type: 'error';
  message: string;
}

/** MPC worker → page: party 0's result, timing and traffic of the timed batch. */
export interface MpcResult {
  type: 'result';
  logits: number[];
  prediction: number;
  ms: number;
  wallMs: number;
  rounds: number;
  bytesSent: number;
  bytesReceived: number;
  dealerWaitMs: number;
  /** Party 0's PRG expansion of dealer material (whole session, ms). */
  dealerLocalMs: number;
  /** Per layer: time, rounds and the engine's profile (ms per kernel kind and wait). */
  layers: { name: string; ms: number; rounds: number; profile: Record<string, number> }[];
}

/** MPC worker → page. */
export type WorkerMessage = WorkerProgress | MpcResult | WorkerError;

/** The reply to `POST /api/fhe/session` (serve --fhe): a fresh server session and its plan. */
export interface FheSessionInfo {
  id: string;
  /** WebSocket path of the session (the page forms the ws:// URL from its origin). */
  wsPath: string;
  plan: import('../fhe/wire.js').ServedPlan;
}

/** Page → FHE worker: classify one image (keys are generated and uploaded on the first request). */
export interface FheWorkerRequest {
  type: 'fhe-classify';
  plan: import('../fhe/wire.js').ServedPlan;
  wsUrl: string;
  /** The image, values in [0, 1]. */
  image: Float32Array;
}

/** FHE worker → page: the result; times in ms except the server's; the key fields are 0 after the first image. */
export interface FheResult {
  type: 'result';
  logits: number[];
  prediction: number;
  wallMs: number;
  keygenMs: number;
  uploadMs: number;
  keyBytes: number;
  encryptMs: number;
  refreshMs: number;
  decryptMs: number;
  serverSeconds: number;
  serverCpuSeconds: number;
  refreshes: number;
  bytesSent: number;
  bytesReceived: number;
}

/** FHE worker → page. */
export type FheWorkerMessage = WorkerProgress | FheResult | WorkerError;
