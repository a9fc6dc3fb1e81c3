/**
 * FHE jobs that cannot run fail once with their reason (no retry) and the worker keeps serving: a key
 * set blob that is not in Redis, a key set naming a file other than public key files (a secret key
 * must never travel), a job without inputs. The full `fhe run --queue` round trip is in
 * test/long/queue-batch.test.ts (CKKS key generation takes minutes on the shared cores).
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { putBlob, sha256Hex } from '../../src/queue/blobs.js';
import { PAYLOAD_VERSION } from '../../src/queue/jobs.js';
import { killAll, type Proc, SKIP, startRedis, startWorker, stopWorker, type TestRedis } from './redis.js';

let redis: TestRedis;
let worker: Proc;

if (SKIP) console.log(`# skipped: ${SKIP}`);

before(
  async () => {
    if (SKIP) return;
    redis = await startRedis();
    worker = await startWorker(redis.url, ['--kinds', 'fhe']);
  },
  { timeout: 300_000 },
);

after(
  async () => {
    if (SKIP) return;
    if (worker) await stopWorker(worker, 5000);
    await redis?.stop();
    // Whatever a failed or timed-out case left running (submitters, stuck workers, their children).
    await killAll();
  },
  { timeout: 60_000 },
);

async function settled(q: Queue, job: Job): Promise<Job> {
  for (let i = 0; i < 300; i++) {
    const s = await job.getState();
    if (s === 'failed' || s === 'completed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return (await q.getJob(job.id!))!;
}

test('bad fhe jobs fail once with their reason; no secret key file is accepted in a key set', { skip: SKIP, timeout: 120_000 }, async () => {
  const conn = { host: '127.0.0.1', port: redis.port, password: redis.password };
  const q = new Queue('privml-fhe', { connection: conn });
  const r = new Redis(conn);
  try {
    const body = { v: PAYLOAD_VERSION, kind: 'fhe', run: 't', model: sha256Hex(Buffer.from('m')), keyId: 'k1' };
    const missing = await q.add('fhe', { ...body, index: 0, keys: sha256Hex(Buffer.from('nothing')), inputs: [sha256Hex(Buffer.from('x'))] }, { attempts: 3 });
    const file = await putBlob(r, Buffer.from('not a key'));
    const secret = await putBlob(r, Buffer.from(JSON.stringify({ format: 'privml-fhe-keyset/1', keyId: 'k1', files: { 'secret.key': file } })));
    const withSecret = await q.add('fhe', { ...body, index: 1, keys: secret, inputs: [file] }, { attempts: 3 });
    const empty = await q.add('fhe', { ...body, index: 2, keys: secret, inputs: [] }, { attempts: 3 });
    for (const [job, re] of [
      [missing, /is not in Redis/],
      [withSecret, /unexpected file 'secret\.key'/],
      [empty, /no input ciphertexts/],
    ] as const) {
      const j = await settled(q, job);
      assert.equal(await j.getState(), 'failed', `job ${j.id}`);
      assert.match(j.failedReason, re);
      assert.equal(j.attemptsMade, 1, 'failed once, not retried');
    }
    assert.equal(worker.child.exitCode, null, 'the worker keeps serving');
  } finally {
    r.disconnect();
    await q.close();
  }
});
