/**
 * `privml proteus optimize --queue --shared-dir`: members move by path on storage the submitter and
 * the workers share (here a temp directory; one worker reaches it through a symlink given as its own
 * --shared-dir, like an NFS export mounted at another path), and the optimized members must be
 * byte-identical to the local command's. A worker that reads other bytes than the submitter hashed,
 * or cannot read the member at all, fails the job once with the reason; paths outside the shared
 * directory are refused at the submitter.
 */

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Queue } from 'bullmq';
import * as proteus from '../../src/api/proteus.js';
import { PAYLOAD_VERSION } from '../../src/queue/jobs.js';
import { type Proc, privml, SKIP, startRedis, startWorker, stopWorker, type TestRedis } from './redis.js';

const tmp = mkdtempSync(join(tmpdir(), 'privml-qshared-'));
const share = join(tmp, 'share');
const bundle = join(share, 'bundle');
let redis: TestRedis;
let workers: Proc[] = [];

if (SKIP) console.log(`# skipped: ${SKIP}`);

before(async () => {
  if (SKIP) return;
  redis = await startRedis();
  mkdirSync(share);
  symlinkSync(share, join(tmp, 'mount'));
  await proteus.obfuscate('fmnist-cnn', bundle, { k: 3, size: 6, keyFile: join(tmp, 'key.json') });
  await proteus.optimize(bundle, join(tmp, 'local'));
  workers = await Promise.all([
    startWorker(redis.url, ['--kinds', 'proteus']),
    startWorker(redis.url, ['--kinds', 'proteus', '--shared-dir', join(tmp, 'mount'), '--ort-threads', '1']),
  ]);
});

after(async () => {
  if (SKIP) return;
  await Promise.all(workers.map(stopWorker));
  await redis.stop();
});

test('proteus optimize --queue --shared-dir: same optimized members as the local command, moved by path, 3 per job', { skip: SKIP }, async () => {
  const out = join(share, 'queued');
  const p = privml(['proteus', 'optimize', bundle, '-o', out, '--queue', redis.url, '--shared-dir', share, '--per-job', '3', '--json']);
  assert.equal(await p.exited, 0, p.stderr());
  const summary = JSON.parse(p.stdout()) as { members: number; mode: string; jobs: number };
  assert.equal(summary.mode, 'shared');
  assert.equal(summary.jobs, Math.ceil(summary.members / 3));
  const files = readdirSync(join(tmp, 'local')).sort();
  assert.deepEqual(readdirSync(out).sort(), files, 'no partial files left');
  for (const f of files) assert.ok(readFileSync(join(tmp, 'local', f)).equals(readFileSync(join(out, f))), `${f} differs`);
  for (const w of workers) assert.match(w.stderr(), /proteus job \S+ done/);
});

test('a bundle outside --shared-dir is a one-line error at the submitter', { skip: SKIP }, async () => {
  const p = privml(['proteus', 'optimize', bundle, '-o', join(tmp, 'elsewhere'), '--queue', redis.url, '--shared-dir', share]);
  assert.notEqual(await p.exited, 0);
  assert.match(p.stderr().trim(), /^privml: error: --shared-dir .*: the output directory .* is not inside it$/);
});

test('a member whose bytes differ from the hash, or that a worker cannot read, fails once with the reason', { skip: SKIP }, async () => {
  const q = new Queue('privml-proteus', { connection: { host: '127.0.0.1', port: redis.port, password: redis.password } });
  try {
    mkdirSync(join(share, 'out-bad'));
    const member = readdirSync(bundle).find((f) => f.startsWith('member-'))!;
    const base = { v: PAYLOAD_VERSION, kind: 'proteus', run: 'bad', index: 0, members: [member], level: 'extended' };
    const shared = { root: share, bundle: 'bundle', out: 'out-bad', sha256: ['0'.repeat(64)] };
    const cases = [
      [{ ...base, shared }, /read SHA-256 .*, the job expects/],
      [{ ...base, members: ['member-999.onnx'], shared }, /cannot read the member \(ENOENT\)/],
      [{ ...base, shared: { ...shared, bundle: '../../etc' } }, /bad bundle path/],
    ] as const;
    for (const [data, re] of cases) {
      const job = await q.add('proteus', data, { attempts: 3 });
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
    assert.deepEqual(readdirSync(join(share, 'out-bad')), [], 'nothing written');
  } finally {
    await q.close();
  }
});
