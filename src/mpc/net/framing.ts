/**
 * Length-prefixed framing over a byte stream: every frame is a 4-byte big-endian payload length
 * followed by the payload. The decoder checks the announced length against a limit before
 * allocating anything, and copies partial reads straight into the frame's final buffer (linear
 * in the frame size, no repeated concatenation).
 */

/** Default largest accepted frame payload: 256 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** Bytes of the length header in front of every frame. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Largest frame a connection may send before its handshake is verified: 64 KiB (a hello is JSON
 * of a few hundred bytes), so an unauthenticated client cannot make a listener allocate more.
 */
export const PRE_AUTH_MAX_FRAME_BYTES = 64 * 1024;

/** A length header with this value is a heartbeat (no payload), never a frame length. */
export const HEARTBEAT_HEADER = 0xffffffff;

/** The 4 bytes of a heartbeat. */
export const HEARTBEAT_BYTES: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff]);

/** The one-line error for a frame longer than the limit. */
export function oversizedFrameError(bytes: number, limit: number): Error {
  return new Error(`frame of ${bytes} bytes exceeds the limit of ${limit} bytes`);
}

/** Check a frame limit option (1 byte .. 4 GiB − 2; the all-ones header is the heartbeat). */
export function checkFrameLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit >= HEARTBEAT_HEADER) {
    throw new Error(`invalid max frame size ${limit} (expected an integer from 1 to ${HEARTBEAT_HEADER - 1} bytes)`);
  }
  return limit;
}

/** Header + payload in one fresh buffer (a copy, so the caller may reuse `payload` at once). */
export function encodeFrame(payload: Uint8Array, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  if (payload.length > maxFrameBytes) throw oversizedFrameError(payload.length, maxFrameBytes);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** A frame buffer with byteOffset 0 (so typed-array views over it are aligned), unzeroed when large. */
function allocFrame(n: number): Uint8Array {
  if (n < 4096) return new Uint8Array(n);
  // allocUnsafeSlow skips zero-filling and the shared pool; re-view it as a plain Uint8Array so
  // consumers never meet Buffer's view-returning `slice`.
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** Incremental frame decoder: feed it stream chunks, it calls `onFrame` once per complete frame. */
export class FrameDecoder {
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private broken: Error | null = null;
  /** Bytes from a frame over the current limit but within `deferUpTo` on, held until the limit is raised. */
  private held: Uint8Array | null = null;

  constructor(
    private readonly onFrame: (frame: Uint8Array) => void,
    private limit = DEFAULT_MAX_FRAME_BYTES,
    /** Called for each heartbeat header (no payload); heartbeats are never passed to `onFrame`. */
    private readonly onHeartbeat: () => void = () => {},
    /**
     * Frames longer than `limit` but at most this long wait for `setMaxFrameBytes` instead of failing
     * (0: none). A peer that verified our hello may send a large frame at once; it can arrive in the
     * same read as its own hello, before this end has verified it and raised the limit.
     */
    private deferUpTo = 0,
  ) {
    checkFrameLimit(limit);
  }

  /** Largest accepted frame payload now. */
  get maxFrameBytes(): number {
    return this.limit;
  }

  /** Change the limit for the frames that follow (raised once a handshake is verified); held bytes are decoded now. */
  setMaxFrameBytes(limit: number): void {
    this.limit = checkFrameLimit(limit);
    this.deferUpTo = 0;
    const held = this.held;
    this.held = null;
    if (held) this.push(held);
  }

  /** True when no partial frame is buffered (a clean stream end is possible here). */
  get idle(): boolean {
    return this.headerFill === 0 && this.body === null && this.held === null;
  }

  /** Consume one chunk; throws (and stays broken) on an oversized length header. */
  push(chunk: Uint8Array): void {
    if (this.broken) throw this.broken;
    if (this.held) {
      // Waiting for the limit to be raised (verification follows the peer's hello within the same
      // turn of the event loop): keep the bytes, but never more than two frames at the current
      // limit, so an unverified peer cannot make this end buffer a large frame.
      const more = new Uint8Array(this.held.length + chunk.length);
      more.set(this.held);
      more.set(chunk, this.held.length);
      this.held = more;
      if (more.length > 2 * (this.limit + FRAME_HEADER_BYTES)) {
        this.broken = oversizedFrameError(more.length, this.limit);
        throw this.broken;
      }
      return;
    }
    let off = 0;
    const n = chunk.length;
    while (off < n) {
      if (this.body === null) {
        // Fast path: the whole header is inside this chunk.
        let len: number;
        if (this.headerFill === 0 && n - off >= FRAME_HEADER_BYTES) {
          len = ((chunk[off]! << 24) >>> 0) + (chunk[off + 1]! << 16) + (chunk[off + 2]! << 8) + chunk[off + 3]!;
          off += FRAME_HEADER_BYTES;
        } else {
          while (this.headerFill < FRAME_HEADER_BYTES && off < n) this.header[this.headerFill++] = chunk[off++]!;
          if (this.headerFill < FRAME_HEADER_BYTES) return;
          const h = this.header;
          len = ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!;
          this.headerFill = 0;
        }
        if (len === HEARTBEAT_HEADER) {
          this.onHeartbeat();
          continue;
        }
        if (len > this.limit) {
          if (len <= this.deferUpTo && n - off <= 2 * this.limit + FRAME_HEADER_BYTES) {
            const rest = chunk.subarray(off);
            const held = new Uint8Array(FRAME_HEADER_BYTES + rest.length);
            new DataView(held.buffer).setUint32(0, len);
            held.set(rest, FRAME_HEADER_BYTES);
            this.held = held;
            return;
          }
          this.broken = oversizedFrameError(len, this.limit);
          throw this.broken;
        }
        if (len === 0) {
          this.onFrame(new Uint8Array(0));
          continue;
        }
        this.body = allocFrame(len);
        this.bodyFill = 0;
      }
      const body = this.body;
      const take = Math.min(body.length - this.bodyFill, n - off);
      body.set(chunk.subarray(off, off + take), this.bodyFill);
      this.bodyFill += take;
      off += take;
      if (this.bodyFill === body.length) {
        this.body = null;
        this.bodyFill = 0;
        this.onFrame(body);
      }
    }
  }
}
