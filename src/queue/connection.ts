/**
 * Redis connections of privml's queue: one URL form (`redis://[USER][:PASSWORD@]HOST:PORT[/DB]`,
 * `rediss://` for TLS), a fail-fast probe that turns an unreachable server or a refused password into a
 * one-line error before any work starts, and long-lived options that reconnect forever (Redis restarts).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { firstLine, OptionError, ProtocolError } from '../errors.js';

/** A parsed queue URL: connection options plus a printable form without the password. */
export interface QueueTarget {
  /** ioredis options (host, port, username, password, db, tls). */
  options: RedisOptions;
  /** `redis://HOST:PORT` with any password replaced by `***` (safe to print and log). */
  display: string;
}

/** Parse `redis://[USER][:PASSWORD@]HOST:PORT[/DB]` (or `rediss://` for TLS); OptionError on anything else. */
export function parseQueueUrl(url: string): QueueTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new OptionError(`--queue expects redis://[:PASSWORD@]HOST:PORT, got '${url.replace(/:[^:@/]*@/, ':***@')}'`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new OptionError(`--queue expects a redis:// or rediss:// URL, got '${u.protocol}//…'`);
  if (!u.hostname) throw new OptionError('--queue: the URL names no host');
  const port = u.port ? Number(u.port) : 6379;
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new OptionError(`--queue: database must be a number, got '${u.pathname.slice(1)}'`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const options: RedisOptions = { host, port, db };
  if (u.username) options.username = decodeURIComponent(u.username);
  if (u.password) options.password = decodeURIComponent(u.password);
  // rediss:// verifies the server certificate against the system CAs (NODE_EXTRA_CA_CERTS adds a private CA).
  if (u.protocol === 'rediss:') options.tls = { servername: host };
  const auth = u.username || u.password ? `${u.username}${u.password ? ':***' : ''}@` : '';
  return { options, display: `${u.protocol}//${auth}${u.host}${db ? `/${db}` : ''}` };
}

/** Options of a long-lived connection (workers, submitters): commands wait while Redis is away, reconnects forever. */
export function durableOptions(t: QueueTarget, onRetry?: (attempt: number) => void): RedisOptions {
  return {
    ...t.options,
    // BullMQ's blocking commands need this: a command waits for the reconnect instead of failing.
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => {
      onRetry?.(times);
      return Math.min(100 * times, 2000);
    },
  };
}

/** Connect once, authenticate and PING; a one-line ProtocolError naming the server when that fails. */
export async function probe(t: QueueTarget, timeoutMs = 5000): Promise<void> {
  const r = new Redis({
    ...t.options,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
  });
  // ioredis emits the cause (e.g. WRONGPASS) as an event and may reject with a generic "Connection is closed".
  let cause: unknown;
  r.on('error', (e) => (cause ??= e));
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    const m = firstLine(cause ?? e);
    if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(m))
      throw new ProtocolError(`${t.display}: Redis refused the credentials (${m.replace(/^ReplyError: /, '')})`);
    if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|connect/i.test(m)) throw new ProtocolError(`${t.display}: cannot reach Redis (${m})`);
    throw new ProtocolError(`${t.display}: ${m}`);
  } finally {
    r.disconnect();
  }
}
