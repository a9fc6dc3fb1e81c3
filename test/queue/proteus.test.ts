/**
 * `privml proteus optimize --queue` against real processes: a password-protected redis-server, two
 * `privml worker`s; the gathered members must be byte-identical to the local command's. Bad input
 * (unreachable Redis, wrong password, unknown job version/kind, a corrupt member) gives one-line errors
 * and failed jobs with their reason, and the workers keep serving.
 */

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Queue } from 'bullmq';
import * as proteus from '../../src/api/proteus.js';
import { PAYLOAD_VERSION } from '../../src/queue/jobs.js';
import { freePort, type Proc, privml, SKIP, startRedis, startWorker, type TestRedis, teardown } from './redis.js';

const tmp = mkdtempSync(join(tmpdir(), 'privml-qtest-'));
const bundle = join(tmp, 'bundle');
let redis: TestRedis;
let workers: Proc[] = [];

if (SKIP) console.log(`# skipped: ${SKIP}`);

/** Per-test limit: a case that goes wrong fails in bounded time, and `after` kills what it left running. */
const TEST_MS = 120_000;

before(
  async () => {
    if (SKIP) return;
    redis = await startRedis();
    await proteus.obfuscate('fmnist-cnn', bundle, { k: 3, size: 6, keyFile: join(tmp, 'key.json') });
    await proteus.optimize(bundle, join(tmp, 'local'));
    workers = await Promise.all([startWorker(redis.url, ['--kinds', 'proteus']), startWorker(redis.url, ['--kinds', 'proteus'])]);
  },
  { timeout: 300_000 },
);

after(
  async () => {
    if (SKIP) return;
    await teardown(workers, redis);
  },
  { timeout: 60_000 },
);

/** Assert a failed run printed exactly one error line and no stack trace. */
function oneLineError(p: Proc, code: number, re: RegExp): void {
  assert.notEqual(code, 0);
  const lines = p.stderr().trim().split('\n');
  assert.equal(lines.length, 1, p.stderr());
  assert.match(lines[0]!, re);
}

test('proteus optimize --queue: same optimized members as the local command, spread over both workers', { skip: SKIP, timeout: TEST_MS }, async () => {
  const p = privml(['proteus', 'optimize', bundle, '-o', join(tmp, 'queued'), '--queue', redis.url, '--json']);
  assert.equal(await p.exited, 0, p.stderr());
  const summary = JSON.parse(p.stdout()) as { members: number; retried: number };
  const files = readdirSync(join(tmp, 'local')).sort();
  assert.deepEqual(readdirSync(join(tmp, 'queued')).sort(), files);
  assert.equal(summary.members, files.length - 1);
  for (const f of files) assert.ok(readFileSync(join(tmp, 'local', f)).equals(readFileSync(join(tmp, 'queued', f))), `${f} differs`);
  assert.equal(summary.retried, 0);
  // Both workers took jobs (each logs the jobs it ran).
  for (const w of workers) assert.match(w.stderr(), /proteus job \S+ done/);
});

test('a corrupt member fails once with its reason; the workers keep serving', { skip: SKIP, timeout: TEST_MS }, async () => {
  const bad = join(tmp, 'bad');
  cpSync(bundle, bad, { recursive: true });
  const victim = readdirSync(bad)
    .filter((f) => f.startsWith('member-'))
    .sort()[1]!;
  writeFileSync(join(bad, victim), 'not an onnx model');
  const seen = workers.map((w) => w.stderr().length);
  const p = privml(['proteus', 'optimize', bad, '-o', join(tmp, 'bad-out'), '--queue', redis.url]);
  oneLineError(p, await p.exited, /privml: error: proteus job 1 failed: .*onnxruntime could not optimize/);
  const started = workers
    .map(
      (w, i) =>
        (
          w
            .stderr()
            .slice(seen[i])
            .match(/job \S+-1 started/g) ?? []
        ).length,
    )
    .reduce((a, b) => a + b, 0);
  assert.equal(started, 1, 'the bad job ran exactly once');
  // Several members per job: the same files.
  const again = privml(['proteus', 'optimize', bundle, '-o', join(tmp, 'again'), '--queue', redis.url, '--per-job', '4']);
  assert.equal(await again.exited, 0, again.stderr());
  const files = readdirSync(join(tmp, 'local')).sort();
  assert.deepEqual(readdirSync(join(tmp, 'again')).sort(), files);
  for (const f of files) assert.ok(readFileSync(join(tmp, 'local', f)).equals(readFileSync(join(tmp, 'again', f))), `${f} differs`);
});

test('unknown payload version or kind: the job fails once with the reason, no retry', { skip: SKIP, timeout: TEST_MS }, async () => {
  const q = new Queue('privml-proteus', { connection: { host: '127.0.0.1', port: redis.port, password: redis.password } });
  try {
    const v9 = await q.add('proteus', { v: 99, kind: 'proteus', run: 'x', index: 0 }, { attempts: 3 });
    const alien = await q.add('proteus', { v: PAYLOAD_VERSION, kind: 'quantum', run: 'x', index: 0 }, { attempts: 3 });
    for (const [job, re] of [
      [v9, /payload version 99 is not supported/],
      [alien, /unknown job kind "quantum"/],
    ] as const) {
      let state = '';
      for (let i = 0; i < 100 && state !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        state = await job.getState();
      }
      const j = (await q.getJob(job.id!))!;
      assert.equal(state, 'failed');
      assert.match(j.failedReason, re);
      assert.equal(j.attemptsMade, 1);
    }
  } finally {
    await q.close();
  }
});

test('unreachable Redis and a wrong password: one-line errors at the submitter and the worker', { skip: SKIP, timeout: TEST_MS }, async () => {
  const dead = `redis://127.0.0.1:${await freePort()}`;
  const wrong = `redis://:nope@127.0.0.1:${redis.port}`;
  const s = privml(['proteus', 'optimize', bundle, '-o', join(tmp, 'never'), '--queue', dead]);
  const w = privml(['worker', '--queue', wrong]);
  oneLineError(s, await s.exited, /cannot reach Redis/);
  oneLineError(w, await w.exited, /refused the credentials/);
  assert.doesNotMatch(w.stderr(), /nope/, 'the password is never printed');
  const bad = privml(['worker', '--queue', 'http://x:1']);
  oneLineError(bad, await bad.exited, /redis:\/\//);
});
