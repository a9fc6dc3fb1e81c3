/**
 * Fault-injection matrix over real role processes: each role SIGKILLed or SIGSTOPped at a phase
 * (its own `--fault phase:kill|stop`), or one link cut (RST) or stalled (bytes held) by a TCP proxy
 * in this process. Every surviving role must exit non-zero with exactly one `privml: error:` line
 * naming a peer, within 10 s of the fault (a stopped peer or stalled link: idle timeout + 10 s; a
 * fault at connect or handshake: the 10 s refusal window / handshake timeout + 10 s — a dead
 * listener refuses connections, a stopped one never answers the hello, and a peer that leaves after
 * its handshake ends the others' wait at once — except party 0 dying or stopping before its
 * handshakes: nothing tells it from a party 0 not started yet or from a stray client, so the others
 * wait for the 30 s connect timeout + 10 s), and no process of the case may be left. `faults.test.ts` runs a quick subset; the full sweep:
 *
 *   node --import tsx test/mpc/faults-matrix.ts [--json] [--parallel 2] [--only 'at connect,at handshake']
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'privml.js');
const MODEL = join(ROOT, 'models', 'fmnist-cnn.onnx');
/** Idle timeout given to every role (seconds). */
export const TIMEOUT_S = 2;
/** The roles' connect timeout (seconds), the bound for a party 0 lost before its handshakes. */
export const CONNECT_TIMEOUT_S = 30;
/** The roles' refusal window and handshake timeout (seconds), the bound for other faults before the session starts. */
export const REFUSED_S = 10;

/** A role of the session. */
export type RoleName = 'dealer' | 'party 0' | 'party 1';
/** A link between two roles. */
export type LinkName = 'party 0–party 1' | 'party 0–dealer' | 'party 1–dealer';

/** One fault: a role signalled at a phase, or a link cut/stalled once the protocol is under way. */
export type FaultCase =
  | { kind: 'role'; role: RoleName; signal: 'kill' | 'stop'; phase: 'connect' | 'handshake' | 'setup' | 'mid-layer' | 'reveal' }
  | { kind: 'link'; link: LinkName; how: 'cut' | 'stall' };

/** What happened to one surviving role. */
export interface Survivor {
  role: RoleName;
  code: number | null;
  /** ms from the fault to its exit. */
  ms: number;
  errorLines: string[];
}

/** Result of one case. */
export interface CaseResult {
  name: string;
  ok: boolean;
  problems: string[];
  survivors: Survivor[];
  /** ms allowed from the fault to each survivor's exit. */
  budgetMs: number;
  /** Processes of the case still alive after it (before the cleanup kill). */
  leftover: number;
}

/** A readable case name. */
export function caseName(c: FaultCase): string {
  return c.kind === 'role' ? `${c.role} ${c.signal === 'kill' ? 'SIGKILL' : 'SIGSTOP'} at ${c.phase}` : `link ${c.link} ${c.how}`;
}

/** Every case: 3 roles × 2 signals × 5 phases (the dealer has no reveal) + 3 links × (cut, stall). */
export function allCases(): FaultCase[] {
  const out: FaultCase[] = [];
  for (const role of ['dealer', 'party 0', 'party 1'] as const) {
    for (const signal of ['kill', 'stop'] as const) {
      for (const phase of ['connect', 'handshake', 'setup', 'mid-layer', 'reveal'] as const) {
        if (role === 'dealer' && phase === 'reveal') continue;
        out.push({ kind: 'role', role, signal, phase });
      }
    }
  }
  for (const link of ['party 0–party 1', 'party 0–dealer', 'party 1–dealer'] as const)
    for (const how of ['cut', 'stall'] as const) out.push({ kind: 'link', link, how });
  return out;
}

/** Ports handed out by this process and not yet reused: the kernel may offer a released port again at once. */
const handedOut = new Set<number>();

/** `n` distinct free loopback ports (bound together, then released; never one handed out before). */
async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < n) {
      const s = net.createServer();
      servers.push(s);
      const p = await new Promise<number>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port));
      });
      if (!handedOut.has(p)) ports.push(p);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
  for (const p of ports) handedOut.add(p);
  return ports;
}

interface Proxy {
  port: number;
  /** Bytes forwarded each way so far. */
  bytes(): number;
  cut(): void;
  stall(): void;
  close(): void;
}

/** A TCP proxy to `target` that can reset (cut) or freeze (stall) its connections. */
async function proxy(target: () => number): Promise<Proxy> {
  const pairs: [net.Socket, net.Socket][] = [];
  let forwarded = 0;
  let stalled = false;
  const server = net.createServer((a) => {
    a.pause();
    a.on('error', () => {});
    // Connect upstream with retries, as the role itself would: the target may not listen yet. A
    // target that keeps refusing for the roles' refusal window is dead: reset the client, which is
    // what it would have seen without the proxy (a refused connection), not a silent socket.
    const deadline = performance.now() + REFUSED_S * 1000;
    const up = () => {
      const b = net.connect({ host: '127.0.0.1', port: target() });
      b.once('error', () => {
        b.destroy();
        if (performance.now() < deadline && !a.destroyed) setTimeout(up, 100);
        else a.resetAndDestroy();
      });
      b.once('connect', () => {
        pairs.push([a, b]);
        for (const [x, y] of [
          [a, b],
          [b, a],
        ] as const) {
          x.on('data', (d: Buffer) => {
            if (stalled) return; // held: neither side sees anything, as with a silent network split
            forwarded += d.length;
            y.write(d);
          });
          x.on('error', () => y.destroy());
          x.on('close', () => y.destroy());
        }
        a.resume();
      });
    };
    up();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    bytes: () => forwarded,
    cut: () => {
      for (const [a, b] of pairs) {
        a.resetAndDestroy();
        b.resetAndDestroy();
      }
    },
    stall: () => {
      stalled = true;
    },
    close: () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      server.close();
    },
  };
}

interface Proc {
  role: RoleName;
  child: ChildProcess;
  stderr: string;
  exit?: { code: number | null; signal: NodeJS.Signals | null; at: number };
  exited: Promise<void>;
}

function startRole(role: RoleName, args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const p: Proc = { role, child, stderr: '', exited: undefined as unknown as Promise<void> };
  // The exit time is taken at 'exit', but the process counts as ended only at 'close': 'exit' can
  // come before the last stderr bytes (its one-line error) have been read from the pipe, and a
  // check made then saw no error line under load (the CI run of dddd713).
  let exitAt = 0;
  child.on('exit', () => {
    exitAt = performance.now();
  });
  p.exited = new Promise((resolve) =>
    child.on('close', (code, signal) => {
      p.exit = { code, signal, at: exitAt || performance.now() };
      resolve();
    }),
  );
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (p.stderr += d));
  return p;
}

/** Live processes in the process groups of `pids` (ps), 0 when none. */
function countGroupProcesses(pids: number[]): Promise<number> {
  return new Promise((resolve) => {
    const ps = spawn('ps', ['-o', 'pid=,stat=', '-g', pids.join(',')], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    ps.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    ps.on('close', () => resolve(out.split('\n').filter((l) => l.trim() && !/\sZ/.test(l)).length));
    ps.on('error', () => resolve(-1));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Run one case end to end; never throws for a failed expectation (see `problems`). */
export async function runCase(c: FaultCase): Promise<CaseResult> {
  const name = caseName(c);
  const problems: string[] = [];
  // Proxies bind first and hold their ports; the roles' ports are then chosen among the rest.
  let dport = 0,
    pport = 0;
  const proxies = {
    'party 0–dealer': await proxy(() => dport),
    'party 1–dealer': await proxy(() => dport),
    'party 0–party 1': await proxy(() => pport),
  };
  [dport, pport] = (await freePorts(2)) as [number, number];
  const fault = (r: RoleName) => (c.kind === 'role' && c.role === r ? ['--fault', `${c.phase}:${c.signal}`] : []);
  const common = ['--timeout', String(TIMEOUT_S)];
  // A link fault needs a session that still uses the link for longer than the idle timeout after the
  // fault (3 images can finish in under a second on a quiet machine, before a stall is noticeable).
  const images = c.kind === 'link' ? '40' : '3';
  const job1 = [MODEL, '--count', images, '--batch', '1'];
  const job0 = [MODEL, '--dataset', 'fashion-mnist-sample', '--limit', images, '--batch', '1'];
  const procs: Proc[] = [
    startRole('dealer', ['mpc', 'dealer', '--listen', `127.0.0.1:${dport}`, ...common, ...fault('dealer')]),
    startRole('party 1', [
      'mpc',
      'party',
      ...job1,
      '--id',
      '1',
      '--peer',
      `127.0.0.1:${pport}`,
      '--dealer',
      `127.0.0.1:${proxies['party 1–dealer'].port}`,
      ...common,
      ...fault('party 1'),
    ]),
    startRole('party 0', [
      'mpc',
      'party',
      ...job0,
      '--id',
      '0',
      '--peer',
      `127.0.0.1:${proxies['party 0–party 1'].port}`,
      '--dealer',
      `127.0.0.1:${proxies['party 0–dealer'].port}`,
      ...common,
      ...fault('party 0'),
    ]),
  ];
  const pids = procs.map((p) => p.child.pid!).filter((x) => x !== undefined);
  let faultAt: number | undefined;
  let victim: Proc | undefined;
  let leftover = 0;
  const survivors: Survivor[] = [];
  // Before the handshakes: a dead dealer or party 1 refuses connections (refusal window), a stopped
  // one never answers the hello (handshake timeout), and whoever had already shaken hands with the
  // victim's peers leaves, which ends their wait at once. A party 0 lost before its handshakes
  // looks like one not started yet or a stray client: its peers wait for the connect timeout.
  // After the handshakes, the idle timeout applies to a stopped peer.
  const stopped = (c.kind === 'role' && c.signal === 'stop') || (c.kind === 'link' && c.how === 'stall');
  const early = c.kind === 'role' && (c.phase === 'connect' || c.phase === 'handshake');
  const earlyMs = c.kind === 'role' && c.role === 'party 0' ? CONNECT_TIMEOUT_S * 1000 : REFUSED_S * 1000;
  const budgetMs = (early ? earlyMs : stopped ? TIMEOUT_S * 1000 : 0) + 10_000;
  try {
    if (c.kind === 'role') {
      victim = procs.find((p) => p.role === c.role)!;
      // The victim signals itself: wait for its exit (kill) or its stopped state (stop).
      const deadline = performance.now() + 90_000;
      for (;;) {
        if (victim.exit) {
          if (victim.exit.signal !== 'SIGKILL')
            problems.push(`${c.role} ended (${victim.exit.code ?? victim.exit.signal}) before its fault: ${lastLine(victim.stderr)}`);
          faultAt = victim.exit.at;
          break;
        }
        if (c.signal === 'stop' && isStopped(victim.child.pid!)) {
          faultAt = performance.now();
          break;
        }
        if (performance.now() > deadline) {
          problems.push(`${c.role} never reached ${c.phase}`);
          break;
        }
        await sleep(20);
      }
    } else {
      // Wait until the protocol is under way (party 0 and party 1 have exchanged 20 kB), then fault the link.
      const deadline = performance.now() + 90_000;
      while (proxies['party 0–party 1'].bytes() < 20_000 && performance.now() < deadline && procs.every((p) => !p.exit)) await sleep(10);
      if (proxies['party 0–party 1'].bytes() < 20_000)
        problems.push(`the session never got under way: ${procs.map((p) => `${p.role}: ${lastLine(p.stderr)}`).join('; ')}`);
      const px = proxies[c.link];
      if (c.how === 'cut') px.cut();
      else px.stall();
      faultAt = performance.now();
    }
    if (faultAt !== undefined) {
      const others = procs.filter((p) => p !== victim);
      await Promise.race([Promise.all(others.map((p) => p.exited)), sleep(Math.max(0, faultAt + budgetMs + 2000 - performance.now()))]);
      for (const p of others) {
        const lines = p.stderr.split('\n').filter((l) => l.startsWith('privml: error:'));
        const s: Survivor = { role: p.role, code: p.exit?.code ?? null, ms: p.exit ? Math.max(0, p.exit.at - faultAt) : Infinity, errorLines: lines };
        survivors.push(s);
        if (!p.exit) problems.push(`${p.role} still running ${Math.round(budgetMs / 1000)} s after the fault`);
        else if (p.exit.code === 0 || p.exit.code === null) problems.push(`${p.role} exited ${p.exit.code ?? p.exit.signal}, expected a non-zero exit`);
        else if (s.ms > budgetMs) problems.push(`${p.role} took ${Math.round(s.ms)} ms (budget ${budgetMs} ms)`);
        if (p.exit && lines.length !== 1) problems.push(`${p.role} printed ${lines.length} error lines: ${p.stderr.trim().slice(-400)}`);
        else if (p.exit && !/dealer|party [01]/.test(lines[0]!)) problems.push(`${p.role}'s error names no peer: ${lines[0]}`);
        if (/\n\s+at /.test(p.stderr)) problems.push(`${p.role} printed a stack trace`);
      }
    }
  } finally {
    // The stopped victim (and anything still running after a failure) is killed here; count first.
    await sleep(100);
    const stillUp = procs.filter((p) => !p.exit && p !== victim);
    leftover = stillUp.length;
    for (const p of procs) if (!p.exit) process.kill(-p.child.pid!, 'SIGKILL');
    await Promise.all(procs.map((p) => Promise.race([p.exited, sleep(5000)])));
    const groups = await countGroupProcesses(pids);
    if (groups > 0) problems.push(`${groups} process(es) left in the case's process groups (orphans)`);
    for (const px of Object.values(proxies)) px.close();
  }
  if (leftover > 0 && !problems.some((p) => /still running/.test(p))) problems.push(`${leftover} survivor(s) left running`);
  return { name, ok: problems.length === 0, problems, survivors, budgetMs, leftover };
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

/** True when /proc says the process is stopped (state T). */
function isStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
  } catch {
    return false;
  }
}

/** Run `cases` with at most `parallel` at once, in order. */
export async function runCases(cases: FaultCase[], parallel: number, onResult?: (r: CaseResult) => void): Promise<CaseResult[]> {
  const out: CaseResult[] = new Array(cases.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, cases.length) }, async () => {
      while (next < cases.length) {
        const i = next++;
        out[i] = await runCase(cases[i]!);
        onResult?.(out[i]!);
      }
    }),
  );
  return out;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const json = process.argv.includes('--json');
  const parallel = Number(process.argv[process.argv.indexOf('--parallel') + 1]) || 2;
  // --only a,b: just the cases whose name contains one of these (e.g. "at connect,at handshake")
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1]!.split(',') : [];
  const chosen = allCases().filter((c) => !only.length || only.some((o) => caseName(c).includes(o)));
  const t0 = performance.now();
  const results = await runCases(chosen, parallel, (r) => {
    if (!json)
      process.stdout.write(
        `${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(36)} exits after ${r.survivors.map((s) => `${s.role} ${Number.isFinite(s.ms) ? (s.ms / 1000).toFixed(1) : '∞'} s`).join(', ')}${r.ok ? '' : ` — ${r.problems.join('; ')}`}\n`,
      );
  });
  const passed = results.filter((r) => r.ok).length;
  if (json) process.stdout.write(`${JSON.stringify({ cases: results.length, passed, seconds: (performance.now() - t0) / 1000, results }, null, 1)}\n`);
  else
    process.stdout.write(
      `${passed}/${results.length} cases ended within their budget with one error line naming a peer and no process left (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`,
    );
  process.exitCode = passed === results.length ? 0 : 1;
}
