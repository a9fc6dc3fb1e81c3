/**
 * PeerChannel over a FrameChannel, with the accounting the reports need: payload bytes each way
 * and communication rounds (`exchange` and `send` count one round each; `recv` counts none, its
 * round was counted by the sender).
 */
import type { CommStats, FrameChannel, PeerChannel } from '../context.js';
import type { NetProfile } from './emulate.js';

/** Options of `peerChannel`. */
export interface PeerChannelOptions {
  /** Called for every message with its direction and payload size (e.g. per-layer tracing). */
  trace?: (direction: 'sent' | 'received', bytes: number) => void;
}

class FramePeer implements PeerChannel {
  readonly stats: CommStats = { bytesSent: 0, bytesReceived: 0, rounds: 0 };

  constructor(
    private readonly ch: FrameChannel,
    private readonly trace: PeerChannelOptions['trace'],
  ) {}

  private put(msg: Uint8Array, handOff: boolean | undefined): void {
    this.ch.send(msg, handOff);
    this.stats.bytesSent += msg.length;
    this.trace?.('sent', msg.length);
  }

  private async take(): Promise<Uint8Array> {
    const m = await this.ch.recv();
    this.stats.bytesReceived += m.length;
    this.trace?.('received', m.length);
    return m;
  }

  exchange(msg: Uint8Array, handOff?: boolean): Promise<Uint8Array> {
    try {
      this.put(msg, handOff);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.stats.rounds++;
    return this.take();
  }

  send(msg: Uint8Array, handOff?: boolean): void {
    this.put(msg, handOff);
    this.stats.rounds++;
  }

  recv(): Promise<Uint8Array> {
    return this.take();
  }
}

/** A PeerChannel (exchange/send/recv with byte and round counters) over a FrameChannel. */
export function peerChannel(ch: FrameChannel, opts: PeerChannelOptions = {}): PeerChannel {
  return new FramePeer(ch, opts.trace);
}

/** A copy of the counters (to diff around a layer or protocol step). */
export function snapshotStats(s: CommStats): CommStats {
  return { bytesSent: s.bytesSent, bytesReceived: s.bytesReceived, rounds: s.rounds };
}

/** Counters accumulated between two snapshots: `after − before`. */
export function diffStats(after: CommStats, before: CommStats): CommStats {
  return {
    bytesSent: after.bytesSent - before.bytesSent,
    bytesReceived: after.bytesReceived - before.bytesReceived,
    rounds: after.rounds - before.rounds,
  };
}

/** Modeled network time in seconds of one party's traffic: bytesSent·8/bandwidth + rounds·2·latency. */
export function modeledSeconds(stats: CommStats, net: NetProfile): number {
  const wire = net.bandwidthBitsPerSec === Infinity ? 0 : (stats.bytesSent * 8) / net.bandwidthBitsPerSec;
  return wire + (stats.rounds * 2 * net.latencyMs) / 1000;
}
