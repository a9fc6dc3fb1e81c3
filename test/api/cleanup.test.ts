/**
 * A failing API call leaves nothing behind: no child processes, no open sockets or servers, no
 * temporary files. The faults are real: role processes that crash at start-up (a heap too small for
 * them), a key directory that is not one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fhe, KeyError, mpc, type PrivmlError, ProtocolError } from '../../src/index.js';

const root = join(import.meta.dirname, '..', '..');
const CNN = join(root, 'models', 'fmnist-cnn.onnx');

/** Processes started by this one (children and their children), still running. */
function descendants(): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,stat=,comm='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    // Zombies have ended (awaiting a reaper); `ps` itself is this call's own child; `esbuild` is tsx's
    // compiler service, which this process starts the first time a module it loads misses tsx's cache
    // (in CI, whose cache outlives a run, that can be a module the call itself loads first).
    .filter(([, , stat, comm]) => !stat!.startsWith('Z') && comm !== 'ps' && comm !== 'esbuild')
    .map(([pid, ppid]) => [Number(pid), Number(ppid)] as const);
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of rows) if (pp === p && !out.includes(c)) out.push(c), walk(c);
  };
  walk(process.pid);
  return out;
}

/** Sockets and servers of this process (timers and the test runner's own pipes do not count). */
const sockets = () => process.getActiveResourcesInfo().filter((r) => /TCP|Pipe(Server)?Wrap|UDP/.test(r) && r !== 'PipeWrap');

// This file's own temporary folder (other jobs share /tmp): the calls and their children write there.
const TMP = mkdtempSync(join(tmpdir(), 'privml-cleanup-'));
process.env.TMPDIR = TMP;
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));
const privmlTemps = () => readdirSync(TMP);

/** Run `fail`, expect a typed error matching `re`, and check that nothing it started outlives it. */
async function leavesNothing(fail: () => Promise<unknown>, cls: typeof PrivmlError, re: RegExp): Promise<void> {
  const temps = new Set(privmlTemps());
  const before = sockets().length;
  // Processes that were already running are not the call's.
  const running = new Set(descendants());
  const started = () => descendants().filter((p) => !running.has(p));
  await assert.rejects(fail(), (e: Error) => {
    assert.ok(e instanceof cls, `${e.name}: ${e.message}`);
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  // Exiting children are reaped asynchronously: give them a moment, then insist.
  for (let i = 0; i < 50 && started().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(started(), [], 'child processes outlived the failed call');
  assert.ok(sockets().length <= before, `sockets left open: ${sockets().join(', ')}`);
  assert.deepEqual(
    privmlTemps().filter((f) => !temps.has(f)),
    [],
    'temporary files left behind',
  );
}

test('mpc.infer whose role processes crash at start-up: ProtocolError, no processes, sockets or temp files left', async () => {
  const saved = process.env.NODE_OPTIONS;
  // A 4 MB old space is far too small for a role process: each dies while loading its modules.
  process.env.NODE_OPTIONS = '--max-old-space-size=4';
  try {
    await leavesNothing(() => mpc.infer(CNN, { limit: 1 }), ProtocolError, /private inference of .*fmnist-cnn\.onnx|dealer|party/);
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
});

test('fhe.encrypt and fhe.infer with a folder that holds no keys: KeyError, nothing left behind', async () => {
  const dir = mkdtempSync(join(TMP, '..', 'privml-cleanup-keys-'));
  try {
    mkdirSync(join(dir, 'keys'));
    await leavesNothing(() => fhe.encrypt(join(dir, 'keys'), new Float32Array(784), [1, 28, 28], join(dir, 'x.ct')), KeyError, /keys/);
    await leavesNothing(
      () => fhe.infer(join(root, 'models', 'fmnist-cnn-max.f1sq-g1sq.paf.onnx'), join(dir, 'x.ct'), join(dir, 'keys'), join(dir, 'y.ct')),
      KeyError,
      /keys/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
