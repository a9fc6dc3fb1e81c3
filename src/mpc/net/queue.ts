/**
 * The receive side shared by every FrameChannel: a FIFO of arrived frames matched against a FIFO
 * of waiting `recv` calls. Once the link fails, frames that already arrived are still delivered
 * (the peer sent them before closing) and every later `recv` rejects with the failure — it never
 * hangs.
 */

interface Waiter {
  resolve(frame: Uint8Array): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Format a duration in ms as seconds for messages ("10 s", "0.25 s"). */
export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** Received frames and pending receivers of one channel end. */
export class FrameQueue {
  private frames: Uint8Array[] = [];
  private head = 0;
  private waiters: Waiter[] = [];
  private error: Error | null = null;

  /**
   * @param idleTimeoutMs reject a `recv` that waits longer than this (undefined: wait forever)
   * @param onIdle called with the timeout error; the owner fails the whole link with it
   */
  constructor(
    private readonly idleTimeoutMs: number | undefined,
    private readonly onIdle: (err: Error) => void,
    /** Name of the peer in the idle-timeout message (renamed once its role is verified). */
    public peerLabel: string,
  ) {
    if (idleTimeoutMs !== undefined && !(idleTimeoutMs > 0)) {
      throw new Error(`invalid idle timeout ${idleTimeoutMs} ms (expected a positive number)`);
    }
  }

  /** The failure that ended the link, if any. */
  get failure(): Error | null {
    return this.error;
  }

  /** Deliver one arrived frame. */
  push(frame: Uint8Array): void {
    if (this.error) return;
    const w = this.waiters.shift();
    if (w) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(frame);
      return;
    }
    this.frames.push(frame);
  }

  /** End the link: waiters reject now; with `discard`, already-arrived frames are dropped too. */
  fail(err: Error, discard = false): void {
    if (this.error) return;
    this.error = err;
    if (discard) {
      this.frames = [];
      this.head = 0;
    }
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
  }

  /** The next frame, or a rejection once the link has failed and nothing is left. */
  recv(): Promise<Uint8Array> {
    if (this.head < this.frames.length) {
      const f = this.frames[this.head]!;
      this.frames[this.head++] = undefined as unknown as Uint8Array;
      if (this.head === this.frames.length) {
        this.frames = [];
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.frames.length) {
        this.frames = this.frames.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve(f);
    }
    if (this.error) return Promise.reject(this.error);
    return new Promise<Uint8Array>((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined };
      const ms = this.idleTimeoutMs;
      if (ms !== undefined) {
        w.timer = setTimeout(() => {
          w.timer = undefined;
          this.onIdle(new Error(`no message from peer ${this.peerLabel} within ${formatSeconds(ms)} (idle timeout)`));
        }, ms);
      }
      this.waiters.push(w);
    });
  }
}

/**
 * Start a verified link's liveness timer (unref'd where the platform allows): a heartbeat after a
 * quarter of `ms` without sending, `idle` after `ms` without receiving. A process that was itself
 * blocked (a long synchronous step) lets one I/O phase run first: the peer's bytes may be unread.
 */
export function startLiveness(
  ms: number,
  link: { lastRx(): number; lastTx(): number; heartbeat(now: number): void; idle(message: string): void },
): ReturnType<typeof setInterval> {
  if (!(ms > 0) || !Number.isFinite(ms)) throw new Error(`invalid idle timeout ${ms} ms (expected a positive number)`);
  const tick = Math.max(10, ms / 4);
  let lastTick = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const blocked = now - lastTick > tick * 2;
    lastTick = now;
    if (!blocked && now - link.lastRx() > ms) link.idle(`sent nothing for ${formatSeconds(ms)} (idle timeout; stopped or unreachable?)`);
    else if (now - link.lastTx() >= tick) link.heartbeat(now);
  }, tick);
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
