/**
 * The MPC roles as long-running child processes (`privml mpc dealer|party --ipc`) with a handle: the
 * port they listen on, their final report, and close(). A role stops by itself when this process
 * dies (it watches its IPC channel), so a crashed caller leaves no orphan holding a port.
 */
import { OptionError, ProtocolError } from '../errors.js';
import type { DealerServerStats } from '../mpc/dealer.js';
import { forkRole, type RoleMessage } from '../mpc/launch.js';
import type { PartyReport } from '../mpc/roles.js';
import { ALLOC_ENV, type JobFlags, jobArgs, type NetFlags, netArgs } from './mpc-session.js';

/** A role process started by {@link startDealer} or {@link startParty}. */
export interface RoleHandle<T> {
  /** Process id of the role. */
  readonly pid: number;
  /** TCP port it listens on (the dealer, party 1; undefined for party 0, a client). */
  readonly port?: number;
  /** WebSocket port of a dealer started with `wsListen`. */
  readonly wsPort?: number;
  /** The role's report once its session ends; rejects with a ProtocolError naming the role's own error if it fails. */
  readonly result: Promise<T>;
  /** Stop the role (SIGTERM, SIGKILL after `graceMs`, default 2 s) and wait until it has exited. */
  close(graceMs?: number): Promise<void>;
}

/** Options shared by both role processes. */
export interface RoleProcessOptions extends NetFlags {
  /** TLS material and the CA (PEM files), as the role flags --tls-cert/--tls-key/--tls-ca. */
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  /** Extra environment for the process. */
  env?: Record<string, string>;
  /** Called with each stderr line of the role (progress, warnings; never shares or inputs). */
  onStderr?: (line: string) => void;
}

function tlsArgs(o: RoleProcessOptions): string[] {
  const a: string[] = [];
  if (o.tlsCert) a.push('--tls-cert', o.tlsCert);
  if (o.tlsKey) a.push('--tls-key', o.tlsKey);
  if (o.tlsCa) a.push('--tls-ca', o.tlsCa);
  return a;
}

/** Fork `privml ARGS --ipc`; resolve once it listens (`waitListening`) or at once. */
export async function spawnRole<T>(
  name: string,
  args: string[],
  o: RoleProcessOptions,
  report: 'report' | 'dealer',
  waitListening: boolean,
): Promise<RoleHandle<T>> {
  let last = '';
  const child = forkRole([...args, '--ipc'], { ...ALLOC_ENV, ...o.env }, (l) => {
    last = l;
    o.onStderr?.(l);
  });
  const exited = new Promise<number>((res) => child.on('exit', (code, sig) => res(code ?? (sig ? 128 : 1))));
  const failure = (code: number) => new ProtocolError(`${name} failed (exit ${code})${last ? `: ${last.replace(/^privml: error: /, '')}` : ''}`);
  let value: T | undefined;
  let ports: { port: number; wsPort?: number } | undefined;
  const listening = new Promise<void>((resolve, reject) => {
    child.on('message', (m: RoleMessage) => {
      if (m.type === 'listening') {
        ports = { port: m.port, wsPort: m.wsPort };
        resolve();
      } else if (m.type === report) value = (m.type === 'report' ? m.report : m.stats) as T;
    });
    exited.then((code) => reject(code ? failure(code) : new ProtocolError(`${name} exited before listening`)));
  });
  const result = exited.then((code) => {
    if (code !== 0) throw failure(code);
    if (value === undefined) throw new ProtocolError(`${name} exited without reporting`);
    return value;
  });
  result.catch(() => {});
  if (waitListening) await listening;
  else listening.catch(() => {});
  return {
    pid: child.pid!,
    port: ports?.port,
    wsPort: ports?.wsPort,
    result,
    async close(graceMs = 2000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Options of {@link startDealer}. */
export interface DealerProcessOptions extends RoleProcessOptions {
  /** host:port to listen on (default 127.0.0.1:0, any free port). */
  listen?: string;
  /** Also accept party 0 over WebSocket here (a browser page). */
  wsListen?: string;
}

/** Start the dealer as a process; resolves once it listens. Its `result` is the dealer's traffic statistics. */
export async function startDealer(o: DealerProcessOptions = {}): Promise<RoleHandle<DealerServerStats>> {
  const args = ['mpc', 'dealer', '--listen', o.listen ?? '127.0.0.1:0', ...(o.wsListen ? ['--ws-listen', o.wsListen] : []), ...netArgs(o), ...tlsArgs(o)];
  return spawnRole<DealerServerStats>('dealer', args, o, 'dealer', true);
}

/** Options of {@link startParty}: the role flags of `privml mpc party`. */
export interface PartyProcessOptions extends RoleProcessOptions, Partial<Omit<JobFlags, 'id' | 'architecture'>> {
  /** 0: data owner (inputs from `dataset` or `input`); 1: model owner (needs `count`). */
  id: 0 | 1;
  /** Party 1: host:port to listen on (port 0: any); party 0: party 1's address. */
  peer: string;
  /** The dealer's host:port (e.g. `127.0.0.1:${dealer.port}`). */
  dealer: string;
  /** Party 1: accept party 0 over WebSocket (a browser page) instead of TCP. */
  peerWs?: boolean;
}

/** Start one party as a process (party 1: resolves once it listens). Its `result` is the party's report. */
export async function startParty(model: string, o: PartyProcessOptions): Promise<RoleHandle<PartyReport>> {
  if (o.id !== 0 && o.id !== 1) throw new OptionError(`--id must be 0 or 1, got '${String(o.id)}'`);
  const f: JobFlags = { weights: 'public', reluProtocol: 'signonly', batch: 1, fracBits: 16, ...o, id: String(o.id) };
  const args = ['mpc', 'party', model, '--id', String(o.id), '--peer', o.peer, '--dealer', o.dealer, ...jobArgs(f), ...tlsArgs(o)];
  if (o.count !== undefined) args.push('--count', String(o.count));
  if (o.dataset) args.push('--dataset', o.dataset);
  if (o.dataDir) args.push('--data-dir', o.dataDir);
  if (o.limit !== undefined) args.push('--limit', String(o.limit));
  if (o.input) args.push('--input', o.input);
  if (o.peerWs) args.push('--peer-ws');
  return spawnRole<PartyReport>(`party ${o.id}`, args, o, 'report', o.id === 1);
}
