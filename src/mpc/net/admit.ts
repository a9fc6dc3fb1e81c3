/**
 * Admission on a listener: every incoming connection is checked on its own (handshake, certificate)
 * and concurrently, so a silent or malformed client costs one small pending connection and a log
 * line, never the listener. Only a real peer whose session settings differ ends the admission.
 */

import { SessionMismatchError } from './handshake.js';
import { formatSeconds } from './queue.js';
import type { Listener, TcpFrameChannel } from './tcp.js';

/** Default cap on connections waiting for their handshake at once (more are dropped at once). */
export const MAX_PENDING_CONNECTIONS = 16;

/** Options of `admitPeers`. */
export interface AdmitOptions {
  /**
   * Check one connection (`from`: the index of the listener it came in on); resolve true when the set
   * of peers is complete, false to keep listening. Throw to refuse it (dropped and logged); throw a
   * SessionMismatchError to end the admission.
   */
  admit(ch: TcpFrameChannel, from: number): Promise<boolean>;
  /** Give up when no further peer is admitted within this time (restarted by each admitted peer). */
  timeoutMs: number;
  /** Who is awaited, for the timeout message (e.g. "party 0 and party 1"). */
  awaiting(): string;
  /** Where this end listens, for messages. */
  where: string;
  /** Called with the peer's address and a one-line reason for every dropped connection. */
  onDrop?: (peer: string, reason: string) => void;
  /** Cap on connections waiting for their handshake (default MAX_PENDING_CONNECTIONS). */
  maxPending?: number;
}

/**
 * Accept and check connections, on one listener or several at once (e.g. TCP and WebSocket), until
 * `admit` reports a complete set; stray connections are dropped.
 */
export function admitPeers(listeners: Listener | Listener[], opts: AdmitOptions): Promise<void> {
  const maxPending = opts.maxPending ?? MAX_PENDING_CONNECTIONS;
  let pending = 0;
  let finished = false;
  let lastDrop: string | undefined;
  return new Promise<void>((resolve, reject) => {
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const onTimeout = () => {
      const note = lastDrop ? ` (last dropped connection: ${lastDrop})` : '';
      finish(new Error(`no ${opts.awaiting()} connected to ${opts.where} within ${formatSeconds(opts.timeoutMs)}${note}`));
    };
    // The window restarts with every admitted peer (the next one may start only after it).
    let timer = setTimeout(onTimeout, opts.timeoutMs);
    const drop = (ch: TcpFrameChannel, reason: string) => {
      lastDrop = `${ch.label}: ${reason}`;
      ch.close();
      opts.onDrop?.(ch.label, reason);
    };
    const loop = async (listener: Listener, from: number) => {
      while (!finished) {
        let ch: TcpFrameChannel;
        try {
          ch = await listener.accept();
        } catch (e) {
          return finish(e as Error);
        }
        if (finished) {
          ch.close();
          return;
        }
        if (pending >= maxPending) {
          drop(ch, `more than ${maxPending} connections are waiting for their handshake`);
          continue;
        }
        pending++;
        opts.admit(ch, from).then(
          (done) => {
            pending--;
            if (done) return finish();
            if (finished) return;
            clearTimeout(timer);
            timer = setTimeout(onTimeout, opts.timeoutMs);
          },
          (e: unknown) => {
            pending--;
            const err = e instanceof Error ? e : new Error(String(e));
            if (finished) return ch.close();
            if (err instanceof SessionMismatchError) {
              ch.close();
              return finish(err);
            }
            drop(ch, err.message);
          },
        );
      }
    };
    (Array.isArray(listeners) ? listeners : [listeners]).forEach((l, i) => void loop(l, i));
  });
}
