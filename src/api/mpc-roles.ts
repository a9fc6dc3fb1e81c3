/**
 * The MPC roles run in this process, as `privml mpc dealer` and `privml mpc party` do: flags checked
 * and turned into the engine's options (TLS material, idle and connect timeouts, the job), then the
 * role runs until its session ends. {@link startDealer}/{@link startParty} (mpc-process.ts) run the
 * same roles as child processes with a handle.
 */
import { readFileSync } from 'node:fs';
import { firstLine, KeyError, ModelError, OptionError, PrivmlError, ProtocolError } from '../errors.js';
import type { DealerServerStats } from '../mpc/dealer.js';
import type { TlsClientOptions, TlsServerOptions } from '../mpc/net/tcp.js';
import type { ModelJob, PartyReport, ReluJob, RoleHooks } from '../mpc/roles.js';
import { typed } from './core.js';
import { resolveModel } from './model-ref.js';
import { checkPlan, type JobFlags, loadInputs, modelJob, type NetFlags, parseDealerNet, parseNet, parseProtocol, predictions } from './mpc-session.js';

export type { DealerServerStats } from '../mpc/dealer.js';
export type { PartyReport } from '../mpc/roles.js';

/** TLS and liveness options of a role (the flags `--tls-cert`, `--tls-key`, `--tls-ca`, `--timeout`, `--connect-timeout`). */
export interface RoleNetOptions {
  /** Certificate (PEM file) naming this role: a listener's server certificate, a client's certificate with `tlsCa`. */
  tlsCert?: string;
  tlsKey?: string;
  /** CA certificate (PEM file): trusted for servers; a listener given it requires client certificates naming their role. */
  tlsCa?: string;
  /** Idle timeout of every link after its handshake: seconds ("60", "2.5") or "500ms" (default 60 s). */
  timeout?: string;
  /** How long the roles wait for each other to connect, model loading included (default 30 s). */
  connectTimeout?: string;
  /** Testing only: `<phase>:<kill|stop>` signals this process at a protocol phase. */
  fault?: string;
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new OptionError(`${flag} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

/** Listener TLS from tlsCert/tlsKey; with tlsCa, clients must present a certificate naming their role. */
export function tlsServerOptions(o: RoleNetOptions): TlsServerOptions | undefined {
  if (!o.tlsCert && !o.tlsKey) {
    if (o.tlsCa) throw new OptionError('--tls-ca on a listener needs --tls-cert and --tls-key too');
    return undefined;
  }
  if (!o.tlsCert || !o.tlsKey) throw new OptionError('TLS needs both --tls-cert and --tls-key');
  return { cert: readPem(o.tlsCert, '--tls-cert'), key: readPem(o.tlsKey, '--tls-key'), ca: o.tlsCa ? readPem(o.tlsCa, '--tls-ca') : undefined };
}

/** Client TLS from tlsCa (trust) and tlsCert/tlsKey (this party's role certificate). */
export function tlsClientOptions(o: RoleNetOptions): TlsClientOptions | undefined {
  if (!o.tlsCa) return undefined;
  if (!!o.tlsCert !== !!o.tlsKey) throw new OptionError('TLS needs both --tls-cert and --tls-key');
  return {
    ca: readPem(o.tlsCa, '--tls-ca'),
    cert: o.tlsCert ? readPem(o.tlsCert, '--tls-cert') : undefined,
    key: o.tlsKey ? readPem(o.tlsKey, '--tls-key') : undefined,
  };
}

/** Parse a duration flag: seconds ("60", "2.5") or with a unit ("500ms", "2s"); `dflt` ms when absent. */
export async function parseTimeout(text: string | undefined, flag = '--timeout', dflt?: number): Promise<number> {
  const { DEFAULT_IDLE_TIMEOUT_MS } = await import('../mpc/roles.js');
  if (text === undefined) return dflt ?? DEFAULT_IDLE_TIMEOUT_MS;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(text);
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : 1000) : NaN;
  if (!(ms >= 100) || ms > 86_400_000) throw new OptionError(`${flag} must be between 0.1 s and 1 day (e.g. 60, 2.5s, 500ms), got '${text}'`);
  return ms;
}

/** The role hooks: idle and connect timeouts, notices through `log`, and `fault` (tests: signal this process at a phase). */
export async function roleHooks(o: RoleNetOptions, log: (line: string) => void = (l) => process.stderr.write(`privml: warning: ${l}\n`)): Promise<RoleHooks> {
  const { PHASES } = await import('../mpc/roles.js');
  const hooks: RoleHooks = { idleTimeoutMs: await parseTimeout(o.timeout), log };
  if (o.connectTimeout !== undefined) hooks.connectTimeoutMs = await parseTimeout(o.connectTimeout, '--connect-timeout');
  if (o.fault) {
    const m = /^([a-z-]+):(kill|stop)$/.exec(o.fault);
    if (!m || !(PHASES as readonly string[]).includes(m[1]!))
      throw new OptionError(`--fault must be <phase>:<kill|stop> with phase one of ${PHASES.join(', ')}, got '${o.fault}'`);
    const [phase, sig] = [m[1], m[2] === 'kill' ? 'SIGKILL' : 'SIGSTOP'] as const;
    hooks.onPhase = (p) => {
      if (p === phase) process.kill(process.pid, sig);
    };
  }
  return hooks;
}

/** Options of {@link runDealer}: `privml mpc dealer`'s flags. */
export interface DealerRoleOptions extends NetFlags, RoleNetOptions {
  /** host:port to listen on (port 0: any free port). */
  listen: string;
  /** Also accept party 0 over WebSocket here (a browser page). */
  wsListen?: string;
  /** Called once the dealer listens. */
  onListening?: (port: number, wsPort?: number) => void;
}

/** Run the dealer (correlated randomness only; never sees inputs, shares or outputs) until its session ends. */
export async function runDealer(o: DealerRoleOptions): Promise<DealerServerStats> {
  if (o.wsListen && o.tlsCert) throw new OptionError('--ws-listen does not take --tls-cert (terminate TLS in front of the WebSocket)');
  const roles = await import('../mpc/roles.js');
  const listen = parse(() => roles.parseEndpoint(o.listen, '--listen'));
  const listenWs = o.wsListen === undefined ? undefined : parse(() => roles.parseEndpoint(o.wsListen!, '--ws-listen'));
  const opts = { listen, listenWs, net: parseNet(o), tls: tlsServerOptions(o), hooks: await roleHooks(o), onListening: o.onListening };
  return roles.runDealer(opts).catch(asProtocolError);
}

/** Options of {@link runParty}: `privml mpc party`'s flags. */
export interface PartyRoleOptions extends Omit<Partial<JobFlags>, 'id'>, RoleNetOptions {
  /** 0: data owner (inputs from dataset/input); 1: model owner. */
  id: string | number;
  /** Party 1: host:port to listen on for party 0; party 0: party 1's address. */
  peer: string;
  /** The dealer's host:port. */
  dealer: string;
  /** 'model' (default) or 'relu' (micro-benchmark: `n` elements in [lsb, msb), `reps` timed repetitions). */
  job?: string;
  n?: number;
  msb?: number;
  lsb?: number;
  reps?: number;
  /** Party 1: accept party 0 over WebSocket (a browser page) instead of TCP. */
  peerWs?: boolean;
  /** Called once party 1 listens. */
  onListening?: (port: number) => void;
}

/** What {@link runParty} returns: the party's report, party 0's predicted classes and the input labels when known. */
export interface PartyRun {
  id: 0 | 1;
  report: PartyReport;
  predictions?: number[];
  labels?: Uint8Array;
}

/** Run one party of a private inference (or a ReLU micro-benchmark) until its session ends. */
export async function runParty(ref: string, o: PartyRoleOptions): Promise<PartyRun> {
  const f = { weights: 'public', reluProtocol: 'signonly', batch: 1, fracBits: 16, ...o } as JobFlags & PartyRoleOptions;
  if (String(f.id) !== '0' && String(f.id) !== '1') throw new OptionError(`--id must be 0 or 1, got '${f.id}'`);
  if (f.peerWs && String(f.id) !== '1') throw new OptionError('--peer-ws is for party 1 (the listener)');
  if (f.peerWs && f.tlsCert) throw new OptionError('--peer-ws does not take --tls-cert (terminate TLS in front of the WebSocket)');
  const id = Number(f.id) as 0 | 1;
  const roles = await import('../mpc/roles.js');
  let job: ModelJob | ReluJob;
  let labels: Uint8Array | undefined;
  const kind = f.job ?? 'model';
  if (kind === 'relu') {
    job = {
      kind: 'relu',
      n: f.n ?? 10_000,
      msb: f.msb ?? 64,
      lsb: f.lsb ?? 0,
      reluProtocol: parseProtocol(f.reluProtocol),
      reps: f.reps ?? 5,
      preprocess: !!f.preprocess,
      ...(f.lanes ? { lanes: f.lanes } : {}),
    };
  } else if (kind === 'model') {
    const { model } = resolveModel(ref);
    if (id === 0) {
      const inp = loadInputs(f, model);
      labels = inp.labels;
      job = modelJob(f, model, inp.images, inp.count);
    } else {
      if (!f.count) throw new OptionError('party 1 needs --count (the number of inputs party 0 sends)');
      checkPlan(model, { ...f, batch: 1 }, ref);
      job = modelJob(f, model, undefined, f.count);
    }
  } else throw new OptionError(`--job must be model or relu, got '${kind}'`);
  const report = await roles
    .runParty({
      id,
      job,
      peer: parse(() => roles.parseEndpoint(f.peer, '--peer')),
      dealer: parse(() => roles.parseEndpoint(f.dealer, '--dealer')),
      net: parseNet(f),
      dealerNet: parseDealerNet(f),
      fracBits: f.fracBits,
      tlsServer: id === 1 ? tlsServerOptions(f) : undefined,
      peerWebSocket: f.peerWs,
      tlsClient: tlsClientOptions(f),
      hooks: await roleHooks(f),
      onListening: f.onListening,
    })
    .catch(asProtocolError);
  return { id, report, predictions: predictions(report), labels };
}

/** Run `f`, turning a plain error (a bad host:port) into an OptionError with the same message. */
function parse<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof PrivmlError) throw e;
    throw new OptionError(firstLine(e));
  }
}

/** Errors of a running role keep their message; typed ones keep their class, the others become ProtocolError. */
function asProtocolError(e: unknown): never {
  if (e instanceof PrivmlError || (e as Error)?.name === 'ModelError') return typed(e);
  throw new ProtocolError(firstLine(e));
}

/** What {@link exportArchitecture} wrote. */
export interface ArchitectureExport {
  output: string;
  /** Weight tensors zero-filled. */
  zeroed: number;
  /** Architecture constants kept (shapes, axes, …). */
  kept: number;
  /** sha256 of the architecture, which both parties check in their handshake. */
  hash: string;
}

/** Write what party 0 needs for `weights: 'secret'`: the model with every weight zero-filled (refused first if it cannot run privately). */
export async function exportArchitecture(ref: string, output: string): Promise<ArchitectureExport> {
  const { model, source } = resolveModel(ref);
  const { architectureConstants, architectureHash, stripWeights } = await import('../mpc/arch.js');
  const { planModel } = await import('../mpc/plan.js');
  // Refuse a model that cannot run privately before handing it out (names every offending node).
  try {
    planModel(model, 1, source);
  } catch (e) {
    throw new ModelError(firstLine(e));
  }
  const arch = stripWeights(model);
  const { saveModel } = await import('./core.js');
  await saveModel(arch, output);
  const kept = architectureConstants(arch).size;
  return { output, zeroed: arch.graph.initializers.size - kept, kept, hash: architectureHash(arch) };
}

/** Make a test CA and role certificates (dealer, party 0, party 1) in `dir` with openssl; keys are written mode 0600. Returns the files. */
export async function makeCertificates(dir: string, days = 30): Promise<string[]> {
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new OptionError(`--days must be an integer from 1 to 3650, got ${days}`);
  const { makeRoleCertificates } = await import('../mpc/net/certs.js');
  try {
    return makeRoleCertificates(dir, days);
  } catch (e) {
    if (e instanceof PrivmlError) throw e;
    throw new KeyError(firstLine(e));
  }
}
