/**
 * Session handshake: both ends send a JSON hello (role, protocol version, hashes of the loaded
 * model and config, extra key/value settings) and check the other's before any protocol traffic,
 * so parties that loaded different models or configs are refused with a one-line reason.
 */
import { createHash } from 'node:crypto';
import type { FrameChannel } from '../context.js';
import { formatSeconds } from './queue.js';

/** What one end announces about itself. */
export interface Hello {
  /** e.g. "party 0", "party 1", "dealer". */
  role: string;
  /** Protocol version; both ends must match exactly. */
  version: string;
  /** sha256 (hex) of the model file; checked when this end sets it. */
  modelHash?: string;
  /** sha256 (hex) of the session configuration; checked when this end sets it. */
  configHash?: string;
  /** Further settings that must match (e.g. fracBits, reluProtocol); keys this end sets are checked. */
  extra?: Record<string, string>;
}

/**
 * A handshake failure with a real peer of the expected role whose session settings differ (model,
 * configuration, version): the session cannot go on, unlike a stray connection, which is dropped.
 */
export class SessionMismatchError extends Error {}

/** Options of `handshake`. */
export interface HandshakeOptions {
  /**
   * Listener side: read and check the peer's hello before sending ours, so a stray client learns
   * nothing (ours is still sent on a settings mismatch, so the peer can name the difference).
   */
  replyAfter?: boolean;
  /** Extra check of a hello with the expected role (e.g. its TLS certificate); returns why it is refused, or null. */
  checkPeer?: (theirs: Hello) => string | null;
}

const MAGIC = 'privml-mpc-hello';
const MAX_HELLO_BYTES = 64 * 1024;

/** Hex sha256 of bytes or a UTF-8 string (for model and config hashes). */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** "a dealer", "party 1": roles naming a numbered party read without an article. */
function describeRole(role: string): string {
  if (/\d/.test(role)) return role;
  return /^[aeiou]/i.test(role) ? `an ${role}` : `a ${role}`;
}

function shortHash(h: string): string {
  return h.length > 12 ? `${h.slice(0, 12)}…` : h;
}

function safe(s: string): string {
  const clean = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 80)}…` : clean;
}

function parseHello(frame: Uint8Array): Hello | null {
  if (frame.length > MAX_HELLO_BYTES) return null;
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame));
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.magic !== MAGIC || typeof o.role !== 'string' || typeof o.version !== 'string') return null;
  const optStr = (x: unknown) => x === undefined || typeof x === 'string';
  if (!optStr(o.modelHash) || !optStr(o.configHash)) return null;
  if (o.extra !== undefined) {
    if (typeof o.extra !== 'object' || o.extra === null || Array.isArray(o.extra)) return null;
    if (!Object.values(o.extra).every((x) => typeof x === 'string')) return null;
  }
  return {
    role: o.role,
    version: o.version,
    modelHash: o.modelHash as string | undefined,
    configHash: o.configHash as string | undefined,
    extra: o.extra as Record<string, string> | undefined,
  };
}

/** Why the peer is not one of the expected roles, or null. */
function wrongRole(theirs: Hello, expectRole: string | readonly string[]): string | null {
  const roles = typeof expectRole === 'string' ? [expectRole] : expectRole;
  if (!roles.includes(theirs.role)) return `peer is ${describeRole(safe(theirs.role))}, expected ${roles.map(describeRole).join(' or ')}`;
  return null;
}

/** The first settings difference between the peer's hello and this end's (role already checked), or null. */
function mismatch(mine: Hello, theirs: Hello, checkSettings: boolean): string | null {
  if (theirs.version !== mine.version) {
    return `protocol version mismatch: peer speaks ${safe(theirs.version)}, this end ${safe(mine.version)}`;
  }
  const who = safe(theirs.role);
  if (!checkSettings) return null;
  if (mine.modelHash !== undefined && theirs.modelHash !== mine.modelHash) {
    if (theirs.modelHash === undefined) return `${who} did not say which model it loaded`;
    return `${who} loaded a different model (sha256 ${shortHash(safe(theirs.modelHash))} vs ${shortHash(mine.modelHash)} here)`;
  }
  if (mine.configHash !== undefined && theirs.configHash !== mine.configHash) {
    if (theirs.configHash === undefined) return `${who} did not say which configuration it uses`;
    return `${who} uses a different configuration (sha256 ${shortHash(safe(theirs.configHash))} vs ${shortHash(mine.configHash)} here)`;
  }
  for (const [k, v] of Object.entries(mine.extra ?? {})) {
    const t = theirs.extra?.[k];
    if (t === undefined) return `${who} did not send setting ${safe(k)}`;
    if (t !== v) return `${who} has a different ${safe(k)} (${safe(t)} vs ${safe(v)} here)`;
  }
  return null;
}

/**
 * Send this end's hello and check the peer's within `timeoutMs`; resolves with the peer's hello.
 * `checkSettings: false` checks only version and role (a party talking to the dealer, which knows
 * no model: the dealer compares the two parties' hellos instead). On failure the channel is left
 * open: the caller closes it.
 */
export async function handshake(
  ch: FrameChannel,
  mine: Hello,
  expectRole: string | readonly string[],
  timeoutMs: number,
  checkSettings = true,
  opts: HandshakeOptions = {},
): Promise<Hello> {
  const sendMine = () => ch.send(new TextEncoder().encode(JSON.stringify({ magic: MAGIC, ...mine })));
  if (!opts.replyAfter) sendMine();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const frame = ch.recv();
  // If the timeout wins, the recv still settles later (e.g. on close): keep that from being unhandled.
  frame.catch(() => {});
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `no handshake from the peer within ${formatSeconds(timeoutMs)} (expected ` +
              `${typeof expectRole === 'string' ? describeRole(expectRole) : expectRole.map(describeRole).join(' or ')})`,
          ),
        ),
      timeoutMs,
    );
  });
  let got: Uint8Array;
  try {
    got = await Promise.race([frame, timeout]);
  } catch (err) {
    const msg = (err as Error).message;
    // A peer that hangs up before saying hello is usually a TLS/plain-TCP mismatch.
    // A reset is a dead or refusing peer (or a proxy in front of one); a clean close before any
    // hello is the typical sign of TLS on one side only.
    const hint = /closed the connection/.test(msg)
      ? /ECONNRESET/.test(msg)
        ? ' before saying hello (it died or refused the connection)'
        : ' before saying hello (is TLS enabled on one side only?)'
      : '';
    throw new Error(`handshake failed: ${msg}${hint}`);
  } finally {
    clearTimeout(timer);
  }
  const theirs = parseHello(got);
  if (!theirs) {
    throw new Error(`handshake failed: the peer sent ${got.length} bytes that are not a privml hello (wrong program or port?)`);
  }
  const role = wrongRole(theirs, expectRole);
  if (role) throw new Error(`handshake failed: ${role}`);
  const refused = opts.checkPeer?.(theirs);
  if (refused) throw new Error(`handshake failed: ${refused}`);
  if (opts.replyAfter) sendMine();
  const why = mismatch(mine, theirs, checkSettings);
  if (why) throw new SessionMismatchError(`handshake failed: ${why}`);
  return theirs;
}
