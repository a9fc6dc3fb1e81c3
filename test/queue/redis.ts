/**
 * Test helpers: a real redis-server on a free loopback port with a password and an append-only file
 * (so a restart keeps the queue), and `privml` processes (workers, submitters) spawned from bin/.
 *
 * Every child is tracked until it exits and runs in its own process group (an MPC worker's party
 * processes with it), so a failed or timed-out test never leaves processes behind: `after` hooks call
 * {@link killAll}, stops escalate from SIGTERM to SIGKILL of the group after a grace period, and the
 * test process kills whatever is left when it exits or is interrupted. (A live child with piped output
 * also keeps the test file's event loop alive: one left behind made the whole run hang.)
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Children started here that have not exited yet. */
const running = new Set<ChildProcess>();

/** Track `child` until it exits. */
function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** SIGKILL `child` with its process group (each child leads its own group: see {@link privml}). */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
}

/** Resolves when `child` has exited, or after `ms` (false then). */
function exitOf(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((res) => {
    const t = setTimeout(() => res(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      res(true);
    });
  });
}

/** SIGTERM `child`; after `graceMs` without an exit, SIGKILL its process group; resolves once it is gone. */
async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await exitOf(child, graceMs)) return;
  killGroup(child);
  await exitOf(child, 10_000);
}

/** Kill every process the tests started that is still running (process groups, SIGKILL), but those of `keep`; for `after` hooks. */
export async function killAll(keep: (number | undefined)[] = []): Promise<void> {
  const left = [...running].filter((c) => !keep.includes(c.pid));
  for (const c of left) killGroup(c);
  await Promise.all(left.map((c) => exitOf(c, 10_000)));
}

// Last resort when a test never reached its clean-up: kill the groups as this process exits, or on ^C / SIGTERM.
process.on('exit', () => {
  for (const c of running) killGroup(c);
});
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    for (const c of running) killGroup(c);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });

/**
 * Between the cases of a file: kill what a failed case left running (its submitters, workers not in
 * `keep`) and drop every job of privml's queues, so its leftovers do not run on (and confuse) the next
 * case's workers.
 */
export async function isolate(redis: TestRedis | undefined, keep: Proc[]): Promise<void> {
  await killAll([redis?.pid(), ...keep.map((p) => p.child.pid)]);
  // A case that failed while Redis was stopped leaves nothing to drop, and a client would retry forever.
  if (!redis || !answers(redis.port, redis.password)) return;
  const { Queue } = await import('bullmq');
  for (const kind of ['fhe', 'mpc', 'proteus']) {
    const q = new Queue(`privml-${kind}`, { connection: { host: '127.0.0.1', port: redis.port, password: redis.password, maxRetriesPerRequest: 1 } });
    q.on('error', () => {});
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([q.obliterate({ force: true }), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('obliterate timed out')), 10_000)))]);
    } finally {
      clearTimeout(timer);
      // disconnect, not close: close waits for pending commands, which a stuck server never answers.
      await q.disconnect();
    }
  }
}

/** True when the redis-server on `port` answers PING within 2 s. */
function answers(port: number, password: string): boolean {
  const r = spawnSync('redis-cli', ['-p', String(port), '-a', password, '--no-auth-warning', 'ping'], { encoding: 'utf8', timeout: 2000 });
  return r.stdout?.trim() === 'PONG';
}

/** Why the queue tests cannot run here (no redis-server), or undefined. */
export const SKIP = spawnSync('redis-server', ['--version']).status === 0 ? undefined : 'redis-server is not installed (apt-get install -y redis-server)';

/** The CLI entry point. */
export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'privml.js');

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A running redis-server owned by a test. */
export interface TestRedis {
  url: string;
  port: number;
  password: string;
  /** Stop (SIGTERM: Redis flushes its append-only file; SIGKILL after 10 s) and wait for the exit. */
  stop(): Promise<void>;
  /** Start again on the same port and data directory. */
  start(): Promise<void>;
  /** The running redis-server's pid (for CPU accounting in bench/queue.ts). */
  pid(): number | undefined;
}

/** Start redis-server on a free port with a random password and AOF persistence in a temp dir. */
export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  const password = `pw${Math.random().toString(36).slice(2)}`;
  const dir = mkdtempSync(join(tmpdir(), 'privml-redis-'));
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = track(
      spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--requirepass',
          password,
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--save',
          '',
          '--protected-mode',
          'yes',
        ],
        { stdio: 'ignore', detached: true },
      ),
    );
    for (let i = 0; i < 100 && proc.exitCode === null; i++) {
      if (answers(port, password)) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    killGroup(proc);
    throw new Error(`redis-server on port ${port} did not start`);
  };
  const stop = async () => {
    if (proc) await terminate(proc, 10_000);
  };
  await start();
  return { url: `redis://:${password}@127.0.0.1:${port}`, port, password, stop, start, pid: () => proc?.pid };
}

/** A spawned `privml` process with its output collected. */
export interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number>;
  /** Resolves once stderr matches `re` (rejects after `ms`). */
  waitFor(re: RegExp, ms?: number): Promise<void>;
}

/**
 * Spawn `privml ARGS…` in its own process group (a test kills it with its children, like a lost machine,
 * with `process.kill(-child.pid, 'SIGKILL')`; clean-up does the same to whatever is left).
 */
export function privml(args: string[]): Proc {
  const child = track(spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number>((res) => child.once('exit', (code, sig) => res(code ?? (sig ? 128 : -1))));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (re, ms = 60_000) =>
      new Promise<void>((res, rej) => {
        const t0 = Date.now();
        const tick = () => {
          if (re.test(err)) return res();
          if (child.exitCode !== null || Date.now() - t0 > ms) return rej(new Error(`no ${re} in privml ${args[0]} stderr:\n${err}`));
          setTimeout(tick, 50);
        };
        tick();
      }),
  };
}

/** Start a worker and wait until it serves (killed again if it does not within a minute). */
export async function startWorker(url: string, extra: string[] = []): Promise<Proc> {
  const w = privml(['worker', '--queue', url, ...extra]);
  try {
    await w.waitFor(/serving/);
  } catch (e) {
    killGroup(w.child);
    throw e;
  }
  return w;
}

/** Stop a worker (SIGTERM: it finishes its jobs; its process group is killed if it has not exited after `graceMs`) and wait. */
export async function stopWorker(w: Proc, graceMs = 20_000): Promise<void> {
  await terminate(w.child, graceMs);
  await w.exited;
}

/** A test file's `after`: stop its workers and Redis, then kill whatever a failed or timed-out case left running. */
export async function teardown(workers: Proc[], redis: TestRedis | undefined): Promise<void> {
  await Promise.all(workers.map((w) => stopWorker(w, 5000)));
  await redis?.stop();
  await killAll();
}
