/**
 * Faults with real processes: a worker killed mid-job (its whole process group, like a lost machine)
 * → the job is taken over by another worker once its lock lapses, every result arrives exactly once;
 * Redis restarted mid-run → worker and submitter reconnect and finish. MPC jobs (one image each, three
 * processes per job) are long enough that "mid-job" is certain rather than a race.
 *
 * The same two faults for Proteus in shared-storage mode (members by path). Optimizing a small member
 * takes milliseconds, so the storage is made slow instead: one member is a FIFO until the test puts
 * the real bytes in, and the worker reading it waits mid-job, as on a stalled NFS mount.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import * as proteus from '../../src/api/proteus.js';
import { isolate, killAll, type Proc, privml, SKIP, startRedis, startWorker, stopWorker, type TestRedis } from './redis.js';

let redis: TestRedis;
const live: Proc[] = [];

if (SKIP) console.log(`# skipped: ${SKIP}`);

const share = mkdtempSync(join(tmpdir(), 'privml-qfaults-'));
const bundle = join(share, 'bundle');
let members: string[] = [];

// Per-test limits: a fault case that goes wrong fails in bounded time instead of waiting forever.
const MPC_TEST_MS = 300_000;
const PROTEUS_TEST_MS = 180_000;

before(
  async () => {
    if (SKIP) return;
    redis = await startRedis();
    await proteus.obfuscate('fmnist-cnn', bundle, { k: 3, size: 6, keyFile: join(share, 'key.json') });
    await proteus.optimize(bundle, join(share, 'local'));
    members = readdirSync(bundle)
      .filter((f) => f.startsWith('member-'))
      .sort();
  },
  { timeout: 300_000 },
);

// A member left as a FIFO by a failed case would block the next case's worker: put the real file back;
// and kill that case's submitters and drop its jobs, which would otherwise run in the next case.
const fifos: (() => void)[] = [];
afterEach(
  async () => {
    for (const restore of fifos.splice(0)) restore();
    // Every worker belongs to one case: a worker left by a failed case would take the next case's jobs.
    if (!SKIP) await Promise.all(live.splice(0).map((w) => stopWorker(w, 5000)));
    if (!SKIP) await isolate(redis, live);
  },
  { timeout: 60_000 },
);

after(
  async () => {
    if (SKIP) return;
    // Workers of a failed case may be stuck mid-job: stopWorker escalates to SIGKILL, killAll takes the rest (submitters, MPC parties).
    await Promise.all(live.splice(0).map((w) => stopWorker(w, 5000)));
    await redis?.stop();
    await killAll();
  },
  { timeout: 60_000 },
);

/** Run `privml mpc infer --queue` on the first `n` sample images, one image per job. */
function submit(n: number): Proc {
  return privml(['mpc', 'infer', 'fmnist-cnn', '--dataset', 'fashion-mnist-sample', '--limit', String(n), '--per-job', '1', '--queue', redis.url, '--json']);
}

interface Summary {
  count: number;
  predictions: number[];
  agreement: number;
  workers: string[];
}

test('a worker killed mid-job: another worker takes the job over; each result exactly once', { skip: SKIP, timeout: MPC_TEST_MS }, async () => {
  const a = await startWorker(redis.url, ['--kinds', 'mpc', '--stall-seconds', '3']);
  const s = submit(2);
  await a.waitFor(/mpc job (\S+) started/, 120_000);
  const jobId = /mpc job (\S+) started/.exec(a.stderr())![1]!;
  process.kill(-a.child.pid!, 'SIGKILL');
  await a.exited;
  assert.doesNotMatch(a.stderr(), new RegExp(`job ${jobId} done`), 'the kill landed mid-job');
  const b = await startWorker(redis.url, ['--kinds', 'mpc', '--stall-seconds', '3']);
  live.push(b);
  assert.equal(await s.exited, 0, s.stderr());
  const r = JSON.parse(s.stdout()) as Summary;
  assert.equal(r.count, 2);
  assert.equal(r.predictions.length, 2);
  assert.equal(r.agreement, 1);
  assert.match(b.stderr(), new RegExp(`mpc job ${jobId} started`), 'the surviving worker ran the killed job');
  // The submitter can see the result (and exit) before the worker's own "done" line reaches us.
  await b.waitFor(new RegExp(`mpc job ${jobId} done`), 30_000);
  assert.equal((b.stderr().match(new RegExp(`mpc job ${jobId} done`, 'g')) ?? []).length, 1, 'completed once');
  await stopWorker(b);
  live.pop();
});

test('Redis restarted mid-run: worker and submitter reconnect and finish', { skip: SKIP, timeout: MPC_TEST_MS }, async () => {
  const w = await startWorker(redis.url, ['--kinds', 'mpc', '--stall-seconds', '20']);
  live.push(w);
  const s = submit(3);
  // Restart while job 1 runs (job 0 done, job 2 waiting in Redis).
  await w.waitFor(/mpc job \S+-1 started/, 120_000);
  await redis.stop();
  await new Promise((r) => setTimeout(r, 1000));
  await redis.start();
  assert.equal(await s.exited, 0, s.stderr());
  const r = JSON.parse(s.stdout()) as Summary;
  assert.deepEqual([r.count, r.predictions.length, r.agreement], [3, 3, 1]);
  assert.match(w.stderr(), /lost Redis/);
  assert.match(w.stderr(), /reconnected/);
  for (const i of [0, 1, 2]) {
    await w.waitFor(new RegExp(`mpc job \\S+-${i} done`), 30_000); // a line may trail the submitter's exit
    assert.equal((w.stderr().match(new RegExp(`mpc job \\S+-${i} done`, 'g')) ?? []).length, 1, `job ${i} completed once`);
  }
});

/** Turn member `i` into a FIFO (a read of it blocks until `fill` or `restore`); returns its real bytes' holder. */
function slowMember(i: number): { path: string; bytes: Buffer; restore(): void; fill(): Promise<void> } {
  const path = join(bundle, members[i]!);
  const bytes = readFileSync(path);
  const keep = join(share, `keep-${members[i]}`);
  writeFileSync(keep, bytes);
  rmSync(path);
  assert.equal(spawnSync('mkfifo', [path]).status, 0, 'mkfifo');
  fifos.push(() => {
    if (existsSync(keep)) renameSync(keep, path);
  });
  return {
    path,
    bytes,
    // The real file back in place (for readers that open it from now on).
    restore: () => renameSync(keep, path),
    // Feed a reader blocked on the FIFO now, then put the file back.
    fill: async () => {
      await feedFifo(path, bytes);
      renameSync(keep, path);
    },
  };
}

/**
 * Write `bytes` into the FIFO at `path` for a reader that has it open, without ever blocking this
 * process: a plain write would wait forever (event loop and timeouts included) if that reader died.
 */
async function feedFifo(path: string, bytes: Buffer, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  const pause = () => new Promise((r) => setTimeout(r, 5));
  let fd: number | undefined;
  while (fd === undefined) {
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (e) {
      // ENXIO: no reader has the FIFO open (yet).
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() > until) throw e;
      await pause();
    }
  }
  try {
    for (let at = 0; at < bytes.length; ) {
      try {
        at += writeSync(fd, bytes, at);
      } catch (e) {
        // EAGAIN: the pipe is full until the reader takes some.
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > until) throw e;
        await pause();
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * `privml proteus optimize --queue --shared-dir` of the test bundle into `out`, with the manifest's hashes
 * as the member check: with the default GMAC check the submitter itself reads every member first, so it
 * would be the one blocked on the FIFO that is meant to hold a worker mid-job.
 */
function optimizeShared(out: string): Proc {
  return privml(['proteus', 'optimize', bundle, '-o', join(share, out), '--queue', redis.url, '--shared-dir', share, '--member-check', 'sha256', '--json']);
}

/** The output directory holds exactly the local command's files, byte for byte (no partial files). */
function sameAsLocal(out: string): void {
  const files = readdirSync(join(share, 'local')).sort();
  assert.deepEqual(readdirSync(join(share, out)).sort(), files);
  for (const f of files) assert.ok(readFileSync(join(share, 'local', f)).equals(readFileSync(join(share, out, f))), `${f} differs`);
}

test('shared storage: a worker killed mid-job; the member is retried elsewhere and written once', { skip: SKIP, timeout: PROTEUS_TEST_MS }, async () => {
  const slow = slowMember(1);
  const a = await startWorker(redis.url, ['--kinds', 'proteus', '--stall-seconds', '3']);
  const s = optimizeShared('killed');
  await a.waitFor(/proteus job \S+-1 started/, 60_000);
  const jobId = /proteus job (\S+-1) started/.exec(a.stderr())![1]!;
  process.kill(-a.child.pid!, 'SIGKILL');
  await a.exited;
  assert.doesNotMatch(a.stderr(), new RegExp(`job ${jobId} done`), 'the kill landed mid-job');
  slow.restore();
  const b = await startWorker(redis.url, ['--kinds', 'proteus', '--stall-seconds', '3']);
  live.push(b);
  assert.equal(await s.exited, 0, s.stderr());
  const r = JSON.parse(s.stdout()) as { members: number; mode: string };
  assert.deepEqual([r.members, r.mode], [members.length, 'shared']);
  // (A stalled job's retry is not a failed attempt for BullMQ, so attemptsMade stays 1: the logs tell.)
  assert.match(b.stderr(), new RegExp(`proteus job ${jobId} started`), 'the surviving worker ran the killed job');
  await b.waitFor(new RegExp(`proteus job ${jobId} done`), 30_000); // the line may trail the submitter's exit
  assert.equal((b.stderr().match(new RegExp(`proteus job ${jobId} done`, 'g')) ?? []).length, 1, 'completed once, by the survivor');
  sameAsLocal('killed');
  await stopWorker(b);
  live.pop();
});

test('shared storage: Redis restarted while a member job runs; worker and submitter reconnect and finish', {
  skip: SKIP,
  timeout: PROTEUS_TEST_MS,
}, async () => {
  const slow = slowMember(2);
  const w = await startWorker(redis.url, ['--kinds', 'proteus', '--stall-seconds', '20']);
  live.push(w);
  const s = optimizeShared('restarted');
  await w.waitFor(/proteus job \S+-2 started/, 60_000);
  await redis.stop();
  await new Promise((r) => setTimeout(r, 1000));
  await redis.start();
  await slow.fill();
  assert.equal(await s.exited, 0, s.stderr());
  assert.equal((JSON.parse(s.stdout()) as { members: number }).members, members.length);
  assert.match(w.stderr(), /lost Redis/);
  for (let i = 0; i < members.length; i++) {
    await w.waitFor(new RegExp(`proteus job \\S+-${i} done`), 30_000); // a line may trail the submitter's exit
    assert.equal((w.stderr().match(new RegExp(`proteus job \\S+-${i} done`, 'g')) ?? []).length, 1, `job ${i} completed once`);
  }
  sameAsLocal('restarted');
});
