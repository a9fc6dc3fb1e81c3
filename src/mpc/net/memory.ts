/**
 * In-process FrameChannel pair for tests and single-process runs: same semantics as TCP (ordered,
 * frames copied on send, closing one end makes the other's `recv` reject after what was sent).
 */
import type { FrameChannel } from '../context.js';
import { DEFAULT_MAX_FRAME_BYTES, oversizedFrameError } from './framing.js';
import { FrameQueue } from './queue.js';

/** Options of `memoryFramePair`. */
export interface MemoryPairOptions {
  /** Names of the two ends in error messages (default "A" and "B"). */
  labels?: [string, string];
  /** Reject a `recv` waiting longer than this (default: wait forever). */
  idleTimeoutMs?: number;
  /** Largest frame accepted by `send` (default 256 MiB). */
  maxFrameBytes?: number;
}

class MemoryEnd implements FrameChannel {
  readonly queue: FrameQueue;
  other!: MemoryEnd;

  constructor(
    readonly label: string,
    private readonly peerLabel: string,
    idleTimeoutMs: number | undefined,
    private readonly maxFrameBytes: number,
  ) {
    this.queue = new FrameQueue(idleTimeoutMs, (err) => this.abort(err), peerLabel);
  }

  send(frame: Uint8Array): void {
    const err = this.queue.failure;
    if (err) throw err;
    if (frame.length > this.maxFrameBytes) throw oversizedFrameError(frame.length, this.maxFrameBytes);
    this.other.queue.push(frame.slice());
  }

  recv(): Promise<Uint8Array> {
    return this.queue.recv();
  }

  close(): void {
    if (this.queue.failure) return;
    this.queue.fail(new Error(`connection to peer ${this.peerLabel} was closed locally`), true);
    this.other.queue.fail(new Error(`peer ${this.label} closed the connection`));
  }

  /** Fail both ends as a broken link would (used by the idle timeout). */
  private abort(err: Error): void {
    this.queue.fail(err, true);
    this.other.queue.fail(new Error(`peer ${this.label} closed the connection`));
  }
}

/** Two connected in-memory FrameChannel ends. */
export function memoryFramePair(opts: MemoryPairOptions = {}): [FrameChannel, FrameChannel] {
  const [la, lb] = opts.labels ?? ['A', 'B'];
  const max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const a = new MemoryEnd(la, lb, opts.idleTimeoutMs, max);
  const b = new MemoryEnd(lb, la, opts.idleTimeoutMs, max);
  a.other = b;
  b.other = a;
  return [a, b];
}
