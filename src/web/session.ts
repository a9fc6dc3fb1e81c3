/**
 * What `privml serve` and the page agree on: the session description the server hands out (the
 * public job settings both parties must share, and the relay URLs), and the messages between the
 * page and its worker. No secret ever appears in these: the image and shares stay in the worker.
 */
import type { BitRange, WeightMode } from '../mpc/executor.js';
import type { ReluProtocol } from '../mpc/protocols/compare.js';

/** The reply to `POST /api/session`: a fresh dealer and party 1 are waiting behind these relays. */
export interface SessionInfo {
  id: string;
  /** Relay paths (ws:// URLs are formed by the page from its own origin). */
  peerPath: string;
  dealerPath: string;
  job: {
    weights: WeightMode;
    reluProtocol: ReluProtocol;
    reluConfig?: Record<string, BitRange>;
    fracBits: number;
    warmup: boolean;
    idleTimeoutMs: number;
  };
}

/** `GET /api/info`: what the server runs. */
export interface ServerInfo {
  model: string;
  mode: 'mpc' | 'fhe';
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

/** Worker → page. */
export type WorkerMessage =
  | { type: 'progress'; phase: string; fraction: number }
  | {
      type: 'result';
      logits: number[];
      prediction: number;
      ms: number;
      wallMs: number;
      rounds: number;
      bytesSent: number;
      bytesReceived: number;
      dealerWaitMs: number;
      layers: { name: string; ms: number; rounds: number }[];
    }
  | { type: 'error'; message: string };
