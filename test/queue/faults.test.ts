/**
 * Faults with real processes: a worker killed mid-job (its whole process group, like a lost machine)
 * → the job is taken over by another worker once its lock lapses, every result arrives exactly once;
 * Redis restarted mid-run → worker and submitter reconnect and finish. MPC jobs (one image each, three
 * processes per job) are long enough that "mid-job" is certain rather than a race.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Proc, privml, SKIP, startRedis, startWorker, stopWorker, type TestRedis } from './redis.js';

let redis: TestRedis;
const live: Proc[] = [];

if (SKIP) console.log(`# skipped: ${SKIP}`);

before(async () => {
  if (!SKIP) redis = await startRedis();
});

after(async () => {
  if (SKIP) return;
  await Promise.all(live.map(stopWorker));
  await redis.stop();
});

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

test('a worker killed mid-job: another worker takes the job over; each result exactly once', { skip: SKIP }, async () => {
  const a = await startWorker(redis.url, ['--kinds', 'mpc', '--stall-seconds', '3'], true);
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
  assert.equal((b.stderr().match(new RegExp(`mpc job ${jobId} done`, 'g')) ?? []).length, 1, 'completed once');
  await stopWorker(b);
  live.pop();
});

test('Redis restarted mid-run: worker and submitter reconnect and finish', { skip: SKIP }, async () => {
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
  for (const i of [0, 1, 2]) assert.equal((w.stderr().match(new RegExp(`mpc job \\S+-${i} done`, 'g')) ?? []).length, 1, `job ${i} completed once`);
});
