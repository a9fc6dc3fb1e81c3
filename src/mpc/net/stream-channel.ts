/**
 * What the TCP and WebSocket FrameChannels share: frames decoded from a byte stream into a FrameQueue,
 * the pre-authentication frame cap lifted by `verified()`, heartbeats and the idle timeout. Imports
 * nothing from Node, so the page bundle can use it (through ws.ts).
 */
import { checkFrameLimit, DEFAULT_MAX_FRAME_BYTES, FrameDecoder, PRE_AUTH_MAX_FRAME_BYTES } from './framing.js';
import { FrameQueue, startLiveness } from './queue.js';

/** Frame limits and the receive timeout of a stream channel. */
export interface StreamChannelOptions {
  idleTimeoutMs?: number;
  maxFrameBytes?: number;
  preAuthLimit?: boolean;
}

/** The receive side, limits and liveness of a channel over one byte stream; transports add send/close. */
export abstract class StreamChannel {
  protected readonly queue: FrameQueue;
  protected readonly decoder: FrameDecoder;
  private readonly maxFrameBytes: number;
  /** Largest frame this end sends: small until `verified()` (our own hello is small too). */
  protected sendLimit: number;
  protected lastRx = performance.now();
  protected lastTx = performance.now();
  private liveness: ReturnType<typeof setInterval> | undefined;

  constructor(
    public label: string,
    opts: StreamChannelOptions,
  ) {
    this.maxFrameBytes = checkFrameLimit(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.sendLimit = (opts.preAuthLimit ?? true) ? Math.min(this.maxFrameBytes, PRE_AUTH_MAX_FRAME_BYTES) : this.maxFrameBytes;
    this.queue = new FrameQueue(opts.idleTimeoutMs, (err) => this.abort(err), label);
    // A frame over the pre-authentication cap waits for verified() instead of failing the link
    // (see FrameDecoder's deferUpTo): the peer may send one right after verifying our hello.
    this.decoder = new FrameDecoder((f) => this.queue.push(f), this.sendLimit, undefined, this.sendLimit < this.maxFrameBytes ? this.maxFrameBytes : 0);
  }

  /** Fail the link with `err` and drop the connection. */
  protected abstract abort(err: Error): void;

  /** Send one heartbeat (when the transport is still open). */
  protected abstract heartbeat(): void;

  /** Feed received bytes to the frame decoder; a malformed frame fails the link. */
  protected received(bytes: Uint8Array): void {
    this.lastRx = performance.now();
    try {
      this.decoder.push(bytes);
    } catch (err) {
      this.abort(new Error(`peer ${this.label} sent a bad frame: ${(err as Error).message}`));
    }
  }

  setLabel(label: string): void {
    this.label = label;
    this.queue.peerLabel = label;
  }

  verified(opts: { idleTimeoutMs?: number } = {}): void {
    this.sendLimit = this.maxFrameBytes;
    try {
      this.decoder.setMaxFrameBytes(this.maxFrameBytes);
    } catch (err) {
      this.abort(new Error(`peer ${this.label} sent a bad frame: ${(err as Error).message}`));
    }
    const ms = opts.idleTimeoutMs;
    if (ms === undefined || this.liveness || this.queue.failure) return;
    this.lastRx = performance.now();
    this.liveness = startLiveness(ms, {
      lastRx: () => this.lastRx,
      lastTx: () => this.lastTx,
      heartbeat: (now) => {
        this.heartbeat();
        this.lastTx = now;
      },
      idle: (message) => this.abort(new Error(`peer ${this.label} ${message}`)),
    });
  }

  protected stopLiveness(): void {
    if (this.liveness) clearInterval(this.liveness);
    this.liveness = undefined;
  }

  /** ' in the middle of a frame' when the stream ended inside one (for the closed-connection message). */
  protected midFrame(): string {
    return this.decoder.idle ? '' : ' in the middle of a frame';
  }

  recv(): Promise<Uint8Array> {
    return this.queue.recv();
  }
}
