/**
 * Network emulation inside the transport: each sender holds a frame until it would have crossed
 * a link of the given bandwidth and one-way latency, then forwards it. The waiting is real, so
 * wall-clock measurements include it. Serialisation queues behind earlier frames in the same
 * direction: a frame sent at t arrives no earlier than max(t, link free) + bytes·8/bandwidth +
 * latency. Wrap both ends to emulate both directions.
 */
import type { FrameChannel } from '../context.js';

/** A link model: bandwidth in bits per second (Infinity: unlimited) and one-way latency in ms. */
export interface NetProfile {
  bandwidthBitsPerSec: number;
  latencyMs: number;
}

/** Named profiles for `--net`: none (no emulation), lan (1 Gbit/s, 0.25 ms), wan (100 Mbit/s, 20 ms). */
export const NET_PRESETS = {
  none: { bandwidthBitsPerSec: Infinity, latencyMs: 0 },
  lan: { bandwidthBitsPerSec: 1e9, latencyMs: 0.25 },
  wan: { bandwidthBitsPerSec: 100e6, latencyMs: 20 },
} as const satisfies Record<string, NetProfile>;

/** A preset name accepted by `--net`. */
export type NetPresetName = keyof typeof NET_PRESETS;

/** True when the profile adds no delay at all. */
export function isUnlimited(net: NetProfile): boolean {
  return net.bandwidthBitsPerSec === Infinity && net.latencyMs === 0;
}

function checkProfile(net: NetProfile): void {
  if (!(net.bandwidthBitsPerSec > 0)) throw new Error(`invalid bandwidth ${net.bandwidthBitsPerSec} bit/s (expected > 0)`);
  if (!(net.latencyMs >= 0) || !Number.isFinite(net.latencyMs)) throw new Error(`invalid latency ${net.latencyMs} ms (expected a finite number ≥ 0)`);
}

const BW_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };

/** Parse a bandwidth such as "1gbit", "100mbit", "2.5gbps", "800kbit/s" or "unlimited" into bit/s. */
export function parseBandwidth(text: string): number {
  const s = text.trim().toLowerCase();
  if (s === 'unlimited' || s === 'inf' || s === 'infinity' || s === 'none') return Infinity;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:bit|bits|bps)?(?:\/s)?$/.exec(s);
  const v = m ? Number(m[1]) * BW_UNITS[m[2]!]! : NaN;
  if (!m || !(v > 0)) throw new Error(`cannot parse bandwidth '${text}' (expected e.g. 1gbit, 100mbit, 500kbit or unlimited)`);
  return v;
}

const LAT_UNITS: Record<string, number> = { '': 1, ms: 1, us: 1e-3, µs: 1e-3, s: 1e3 };

/** Parse a one-way latency such as "0.25ms", "20ms", "250us", "1s" or "0" into milliseconds. */
export function parseLatency(text: string): number {
  const s = text.trim().toLowerCase();
  const m = /^(\d+(?:\.\d+)?)\s*(ms|us|µs|s)?$/.exec(s);
  if (!m) throw new Error(`cannot parse latency '${text}' (expected e.g. 0.25ms, 20ms, 250us or 1s)`);
  return Number(m[1]) * LAT_UNITS[m[2] ?? '']!;
}

/** Resolve the `--net`, `--bandwidth` and `--latency` CLI values (the latter two override the preset). */
export function parseNetOptions(opts: { net?: string; bandwidth?: string; latency?: string }): NetProfile {
  const name = (opts.net ?? 'none').trim().toLowerCase();
  if (!Object.hasOwn(NET_PRESETS, name)) {
    throw new Error(`unknown --net value '${opts.net}' (expected ${Object.keys(NET_PRESETS).join(', ')})`);
  }
  const base: NetProfile = NET_PRESETS[name as NetPresetName];
  return {
    bandwidthBitsPerSec: opts.bandwidth !== undefined ? parseBandwidth(opts.bandwidth) : base.bandwidthBitsPerSec,
    latencyMs: opts.latency !== undefined ? parseLatency(opts.latency) : base.latencyMs,
  };
}

/** Human-readable profile, e.g. "100 Mbit/s, 20 ms one way". */
export function describeNet(net: NetProfile): string {
  if (isUnlimited(net)) return 'no emulation';
  const bw = net.bandwidthBitsPerSec;
  const bwText =
    bw === Infinity
      ? 'unlimited bandwidth'
      : bw >= 1e9
        ? `${Number((bw / 1e9).toPrecision(4))} Gbit/s`
        : bw >= 1e6
          ? `${Number((bw / 1e6).toPrecision(4))} Mbit/s`
          : bw >= 1e3
            ? `${Number((bw / 1e3).toPrecision(4))} kbit/s`
            : `${bw} bit/s`;
  return `${bwText}, ${net.latencyMs} ms one way`;
}

// Timers fire on whole milliseconds and can be up to ~1 ms late (or early against the
// high-resolution clock); sleep with setTimeout until this close, then poll the clock.
const SPIN_MS = 2;

/** Call `fn` once performance.now() ≥ `at` (setTimeout for the bulk, setImmediate polling for the tail). */
function callAt(at: number, fn: () => void): void {
  const left = at - performance.now();
  if (left <= 0) fn();
  else if (left > SPIN_MS) setTimeout(() => callAt(at, fn), Math.floor(left - SPIN_MS));
  else setImmediate(() => callAt(at, fn));
}

class EmulatedChannel implements FrameChannel {
  private linkFreeAt = 0;
  private held: { frame: Uint8Array; at: number }[] = [];
  private head = 0;
  private timerArmed = false;
  private closing = false;
  private sendError: Error | null = null;
  private readonly pending = new Set<(err: Error) => void>();

  constructor(
    private readonly inner: FrameChannel,
    private readonly net: NetProfile,
  ) {}

  send(frame: Uint8Array, handOff?: boolean): void {
    if (this.sendError) throw this.sendError;
    if (this.closing) throw new Error('cannot send on a closed channel');
    const now = performance.now();
    const start = Math.max(now, this.linkFreeAt);
    const txDone = start + (frame.length * 8 * 1000) / this.net.bandwidthBitsPerSec;
    this.linkFreeAt = txDone;
    // Copy now unless handed off: the caller may reuse its buffer before the frame leaves.
    this.held.push({ frame: handOff ? frame : frame.slice(), at: txDone + this.net.latencyMs });
    this.arm();
  }

  private arm(): void {
    if (this.timerArmed || this.head >= this.held.length) return;
    this.timerArmed = true;
    callAt(this.held[this.head]!.at, () => {
      this.timerArmed = false;
      this.flushDue();
    });
  }

  /** Forward every held frame whose delivery time has come (arrival times are non-decreasing). */
  private flushDue(): void {
    const now = performance.now();
    try {
      while (this.head < this.held.length && this.held[this.head]!.at <= now) {
        const h = this.held[this.head]!;
        this.held[this.head++] = undefined as unknown as (typeof this.held)[number];
        this.inner.send(h.frame, true); // our own copy (or a handed-off frame): nobody else writes it
      }
    } catch (err) {
      // The link under us failed (peer gone): drop what is held and report it on the next send.
      this.sendError = err as Error;
      this.head = this.held.length;
    }
    if (this.head >= this.held.length) {
      this.held = [];
      this.head = 0;
      if (this.closing) this.inner.close();
    } else {
      // Under a steady stream the queue may never drain: drop the forwarded prefix now and then.
      if (this.head > 1024 && this.head * 2 > this.held.length) {
        this.held = this.held.slice(this.head);
        this.head = 0;
      }
      this.arm();
    }
  }

  recv(): Promise<Uint8Array> {
    if (this.closing) return Promise.reject(new Error('channel was closed locally'));
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.add(reject);
      this.inner.recv().then(
        (f) => {
          this.pending.delete(reject);
          resolve(f);
        },
        (e: Error) => {
          this.pending.delete(reject);
          reject(e);
        },
      );
    });
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    const err = new Error('channel was closed locally');
    for (const r of this.pending) r(err);
    this.pending.clear();
    // Frames already sent are still delivered (like TCP's FIN after the data), then the link closes.
    if (this.head >= this.held.length) this.inner.close();
  }
}

/** Wrap `ch` so frames it sends are delayed as on the given link (returns `ch` itself for `none`). */
export function emulateLink(ch: FrameChannel, net: NetProfile): FrameChannel {
  checkProfile(net);
  if (isUnlimited(net)) return ch;
  return new EmulatedChannel(ch, net);
}
