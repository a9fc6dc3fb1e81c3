/**
 * `privml mpc` network flags of the role commands: TLS material (mutual TLS with role-bound
 * certificates), the idle timeout, fault injection for tests, and `mpc certs`.
 */
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { makeRoleCertificates } from '../mpc/net/certs.js';
import type { TlsClientOptions, TlsServerOptions } from '../mpc/net/tcp.js';
import { DEFAULT_IDLE_TIMEOUT_MS, PHASES, type Phase, type RoleHooks } from '../mpc/roles.js';
import { CliError } from './common.js';

/** TLS and liveness flags of `mpc dealer` and `mpc party`. */
export interface RoleNetFlags {
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  timeout?: string;
  connectTimeout?: string;
  fault?: string;
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new CliError(`${flag} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, 2);
  }
}

/** Listener TLS from --tls-cert/--tls-key; with --tls-ca, clients must present a certificate naming their role. */
export function tlsServerOptions(o: RoleNetFlags): TlsServerOptions | undefined {
  if (!o.tlsCert && !o.tlsKey) {
    if (o.tlsCa) throw new CliError('--tls-ca on a listener needs --tls-cert and --tls-key too', 2);
    return undefined;
  }
  if (!o.tlsCert || !o.tlsKey) throw new CliError('TLS needs both --tls-cert and --tls-key', 2);
  return { cert: readPem(o.tlsCert, '--tls-cert'), key: readPem(o.tlsKey, '--tls-key'), ca: o.tlsCa ? readPem(o.tlsCa, '--tls-ca') : undefined };
}

/** Client TLS from --tls-ca (trust) and --tls-cert/--tls-key (this party's role certificate). */
export function tlsClientOptions(o: RoleNetFlags): TlsClientOptions | undefined {
  if (!o.tlsCa) return undefined;
  if (!!o.tlsCert !== !!o.tlsKey) throw new CliError('TLS needs both --tls-cert and --tls-key', 2);
  return {
    ca: readPem(o.tlsCa, '--tls-ca'),
    cert: o.tlsCert ? readPem(o.tlsCert, '--tls-cert') : undefined,
    key: o.tlsKey ? readPem(o.tlsKey, '--tls-key') : undefined,
  };
}

/** Parse --timeout (or another duration flag): seconds ("60", "2.5") or with a unit ("500ms", "2s"). */
export function parseTimeout(text: string | undefined, flag = '--timeout', dflt = DEFAULT_IDLE_TIMEOUT_MS): number {
  if (text === undefined) return dflt;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(text);
  const ms = m ? Number(m[1]) * (m[2] === 'ms' ? 1 : 1000) : NaN;
  if (!(ms >= 100) || ms > 86_400_000) throw new CliError(`${flag} must be between 0.1 s and 1 day (e.g. 60, 2.5s, 500ms), got '${text}'`, 2);
  return ms;
}

/** The role hooks from the flags: idle timeout, notices on stderr, and --fault (tests: signal this process at a phase). */
export function roleHooks(o: RoleNetFlags): RoleHooks {
  const hooks: RoleHooks = { idleTimeoutMs: parseTimeout(o.timeout), log: (line) => process.stderr.write(`privml: warning: ${line}\n`) };
  if (o.connectTimeout !== undefined) hooks.connectTimeoutMs = parseTimeout(o.connectTimeout, '--connect-timeout');
  if (o.fault) {
    const m = /^([a-z-]+):(kill|stop)$/.exec(o.fault);
    if (!m || !(PHASES as readonly string[]).includes(m[1]!))
      throw new CliError(`--fault must be <phase>:<kill|stop> with phase one of ${PHASES.join(', ')}, got '${o.fault}'`, 2);
    const [phase, sig] = [m[1] as Phase, m[2] === 'kill' ? 'SIGKILL' : 'SIGSTOP'] as const;
    hooks.onPhase = (p) => {
      if (p === phase) process.kill(process.pid, sig);
    };
  }
  return hooks;
}

/** Add --tls-ca, --timeout and the hidden --fault to a role command (--tls-cert/--tls-key are declared by the command). */
export function addRoleNetFlags(c: Command): Command {
  return c
    .option('--tls-ca <file>', 'CA certificate (PEM): trust it for servers; a listener given it requires client certificates naming their role')
    .addOption(new Option('--fault <phase:signal>', 'testing: SIGKILL/SIGSTOP this process at a phase').hideHelp());
}

/** Register `mpc certs`. */
export function registerCerts(mpc: Command): void {
  mpc
    .command('certs')
    .description('make a test CA and role certificates (dealer, party 0, party 1) with openssl')
    .requiredOption('-o, --out <dir>', 'output directory (keys are written mode 0600)')
    .option('--days <n>', 'validity in days', (v) => Number(v), 30)
    .action((o: { out: string; days: number }) => {
      if (!Number.isInteger(o.days) || o.days < 1 || o.days > 3650) throw new CliError(`--days must be an integer from 1 to 3650, got ${o.days}`, 2);
      const files = makeRoleCertificates(o.out, o.days);
      process.stdout.write(`${files.join('\n')}\n`);
    });
}
