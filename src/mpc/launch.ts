/**
 * Start the dealer and both parties as separate OS processes on loopback (`privml mpc infer` and
 * the benches), wire their ports together, and collect their reports. If any process fails, the
 * others are stopped and the first failure is reported.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../nn/data/paths.js';
import type { DealerServerStats } from './dealer.js';
import type { PartyReport } from './roles.js';

/** Messages a role process sends its launcher over IPC. */
export type RoleMessage =
  | { type: 'listening'; port: number; wsPort?: number }
  | { type: 'report'; report: PartyReport }
  | { type: 'dealer'; stats: DealerServerStats };

/** Arguments of the three processes (after `privml mpc dealer|party`). */
export interface LaunchArgs {
  dealer: string[];
  party0: string[];
  party1: string[];
  /** Extra environment for every role (e.g. allocator tuning). */
  env?: Record<string, string>;
}

/** What the three processes reported. */
export interface LaunchResult {
  party0: PartyReport;
  party1: PartyReport;
  dealer: DealerServerStats;
}

interface Role {
  name: string;
  child: ChildProcess;
  exitCode?: number;
  stderr: string[];
  exited: Promise<number>;
  messages: RoleMessage[];
  waiters: ((m: RoleMessage) => void)[];
}

const BIN = (): string => join(packageRoot(), 'bin', 'privml.js');
/** After one role fails, how long the others get to notice and exit on their own before being killed. */
const GRACE_MS = 10_000;

/**
 * V8 flags of every role process. A party allocates hundreds of MB of short-lived ArrayBuffers per
 * batch (dealer material, bit planes, messages); with V8's default initial old-space limit each
 * ~64 MB of them started a full mark-compact of the ~40 MB heap (fmnist-cnn batch 64: ~15 per
 * batch and process, most of the ~20 % of CPU time spent in GC). A 256 MB initial limit cuts them ~4x; peak RSS grows by
 * ~7 % (the buffers are freed a little later). Node refuses this flag in NODE_OPTIONS, hence here.
 */
export const ROLE_EXEC_ARGV: readonly string[] = ['--initial-old-space-size=256'];

/**
 * Fork `privml ARGS` as a role process (dealer, party, `fhe session`), as every launcher does
 * (launchSession, the API's startDealer/startParty, `privml serve`): ROLE_EXEC_ARGV, `env` over this
 * process's environment (the MPC launchers pass the allocator settings, ALLOC_ENV), stdout ignored,
 * stderr passed to `onLine` one non-empty line at a time (progress, warnings, the role's one-line
 * error; roles never print shares or inputs), IPC with advanced serialization (reports carry typed arrays).
 */
export function forkRole(args: string[], env: Record<string, string> = {}, onLine: (line: string) => void = () => {}): ChildProcess {
  const child = fork(BIN(), args, {
    execArgv: [...process.execArgv, ...ROLE_EXEC_ARGV],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'advanced',
    env: { ...process.env, ...env },
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    for (const l of d.split('\n')) if (l.trim()) onLine(l);
  });
  return child;
}

function start(name: string, args: string[], env: Record<string, string>): Role {
  const stderr: string[] = [];
  const child = forkRole(args, env, (l) => {
    stderr.push(l);
    if (stderr.length > 50) stderr.shift();
  });
  const role: Role = {
    name,
    child,
    stderr,
    messages: [],
    waiters: [],
    exited: new Promise((r) =>
      child.on('exit', (code, sig) => {
        role.exitCode = code ?? (sig ? 128 : 1);
        r(role.exitCode);
      }),
    ),
  };
  child.on('message', (m: RoleMessage) => {
    role.messages.push(m);
    for (const w of role.waiters.splice(0)) w(m);
  });
  return role;
}

function lastError(r: Role, code: number): string {
  // Prefer our one-line error; else an uncaught crash's message (not Node's version footer or stack frames).
  const rev = [...r.stderr].reverse();
  const line =
    rev.find((l) => l.startsWith('privml: error:')) ??
    rev.find((l) => /^(\w*Error\b|FATAL ERROR|RangeError|TypeError)/.test(l.trim())) ??
    rev.find((l) => !/^\s*at |^Node\.js v/.test(l)) ??
    r.stderr[r.stderr.length - 1];
  return `${r.name} failed (exit ${code})${line ? `: ${line.replace(/^privml: error: /, '')}` : ''}`;
}

/** One line naming every role that has exited non-zero so far, the root cause first when recognisable. */
function failures(all: Role[]): string {
  const failed = all.filter((r) => r.exitCode !== undefined && r.exitCode !== 0).map((r) => lastError(r, r.exitCode!));
  const consequence = (m: string) => /closed the connection|failed before the session ended|ECONNRESET/.test(m);
  failed.sort((a, b) => Number(consequence(a)) - Number(consequence(b)));
  return failed.join('; ');
}

/** Wait for a message of `type` from `r`, or fail if `r` (or any of `all`) exits first. */
function waitFor<T extends RoleMessage['type']>(r: Role, type: T, all: Role[]): Promise<Extract<RoleMessage, { type: T }>> {
  const have = r.messages.find((m) => m.type === type);
  if (have) return Promise.resolve(have as Extract<RoleMessage, { type: T }>);
  return new Promise((resolve, reject) => {
    r.waiters.push(function onMsg(m) {
      if (m.type === type) resolve(m as Extract<RoleMessage, { type: T }>);
      else r.waiters.push(onMsg);
    });
    for (const o of all) {
      o.exited.then(async (code) => {
        if (code === 0 && o !== r) return;
        if (code === 0) return reject(new Error(`${o.name} exited without reporting`));
        // Others usually fail as a consequence ("peer closed"); give them a moment and report every failure.
        await new Promise((res) => setTimeout(res, 300));
        reject(new Error(failures(all) || lastError(o, code)));
      });
    }
  });
}

/** Run dealer, party 1 and party 0 (in that order, wiring ports) and gather their reports. */
export async function launchSession(args: LaunchArgs): Promise<LaunchResult> {
  const env = args.env ?? {};
  const roles: Role[] = [];
  const stopAll = async () => {
    const deadline = Date.now() + GRACE_MS;
    for (const r of roles) {
      const left = Math.max(0, deadline - Date.now());
      const code = await Promise.race([r.exited, new Promise<null>((res) => setTimeout(() => res(null), left).unref())]);
      if (code === null) r.child.kill('SIGKILL');
    }
  };
  try {
    const dealer = start('dealer', ['mpc', 'dealer', '--listen', '127.0.0.1:0', '--ipc', ...args.dealer], env);
    roles.push(dealer);
    const dport = (await waitFor(dealer, 'listening', roles)).port;
    const p1 = start('party 1', ['mpc', 'party', '--id', '1', '--peer', '127.0.0.1:0', '--dealer', `127.0.0.1:${dport}`, '--ipc', ...args.party1], env);
    roles.push(p1);
    const pport = (await waitFor(p1, 'listening', roles)).port;
    const p0 = start('party 0', ['mpc', 'party', '--id', '0', '--peer', `127.0.0.1:${pport}`, '--dealer', `127.0.0.1:${dport}`, '--ipc', ...args.party0], env);
    roles.push(p0);
    const [r0, r1, d] = await Promise.all([waitFor(p0, 'report', roles), waitFor(p1, 'report', roles), waitFor(dealer, 'dealer', roles)]);
    const codes = await Promise.all(roles.map((r) => r.exited));
    codes.forEach((c, i) => {
      if (c !== 0) throw new Error(lastError(roles[i]!, c));
    });
    return { party0: r0.report, party1: r1.report, dealer: d.stats };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
