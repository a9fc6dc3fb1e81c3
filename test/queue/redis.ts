/**
 * Test helpers: a real redis-server on a free loopback port with a password and an append-only file
 * (so a restart keeps the queue), and `privml` processes (workers, submitters) spawned from bin/.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
  /** Stop (SIGTERM: Redis flushes its append-only file) and wait for the exit. */
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
    proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--dir', dir, '--appendonly', 'yes', '--save', '', '--protected-mode', 'yes'],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      const r = spawnSync('redis-cli', ['-p', String(port), '-a', password, '--no-auth-warning', 'ping'], { encoding: 'utf8' });
      if (r.stdout?.trim() === 'PONG') return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error(`redis-server on port ${port} did not start`);
  };
  const stop = async () => {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((res) => {
      p.once('exit', () => res());
      p.kill('SIGTERM');
    });
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

/** Spawn `privml ARGS…` (`detached`: in its own process group, so a test can kill it with its children, like a lost machine). */
export function privml(args: string[], detached = false): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached });
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

/** Start a worker and wait until it serves. */
export async function startWorker(url: string, extra: string[] = [], detached = false): Promise<Proc> {
  const w = privml(['worker', '--queue', url, ...extra], detached);
  await w.waitFor(/serving/);
  return w;
}

/** Stop a worker (SIGTERM: it finishes its jobs) and wait. */
export async function stopWorker(w: Proc): Promise<void> {
  if (w.child.exitCode === null) w.child.kill('SIGTERM');
  await w.exited;
}
