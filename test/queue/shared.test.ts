/**
 * `privml proteus optimize --queue --shared-dir`: members move by path on storage the submitter and
 * the workers share (here a temp directory; one worker reaches it through a symlink given as its own
 * --shared-dir, like an NFS export mounted at another path), and the optimized members must be
 * byte-identical to the local command's. A worker that reads other bytes than the submitter tagged (a
 * byte flipped in the shared copy after submission), or cannot read the member at all, fails the job
 * once with the reason; paths outside the shared directory are refused at the submitter.
 */

import assert from 'node:assert/strict';
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, symlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Queue } from 'bullmq';
import * as proteus from '../../src/api/proteus.js';
import { PAYLOAD_VERSION } from '../../src/queue/jobs.js';
import { type Proc, privml, SKIP, startRedis, startWorker, stopWorker, type TestRedis, teardown } from './redis.js';

const tmp = mkdtempSync(join(tmpdir(), 'privml-qshared-'));
const share = join(tmp, 'share');
const bundle = join(share, 'bundle');
let redis: TestRedis;
let workers: Proc[] = [];

if (SKIP) console.log(`# skipped: ${SKIP}`);

before(
  async () => {
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

test('proteus optimize --queue --shared-dir: same optimized members as the local command, moved by path, 3 per job', {
  skip: SKIP,
  timeout: 120_000,
}, async () => {
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

test('--member-check sha256: workers check the manifest hashes; same members; a bad choice is a one-line usage error', {
  skip: SKIP,
  timeout: 120_000,
}, async () => {
  const out = join(share, 'queued-sha');
  const p = privml(['proteus', 'optimize', bundle, '-o', out, '--queue', redis.url, '--shared-dir', share, '--per-job', '2', '--member-check', 'sha256']);
  assert.equal(await p.exited, 0, p.stderr());
  for (const f of readdirSync(join(tmp, 'local'))) assert.ok(readFileSync(join(tmp, 'local', f)).equals(readFileSync(join(out, f))), `${f} differs`);
  const bad = privml(['proteus', 'optimize', bundle, '-o', out, '--queue', redis.url, '--shared-dir', share, '--member-check', 'md5']);
  assert.equal(await bad.exited, 2);
  assert.match(bad.stderr().trim(), /^privml: error: --member-check must be mac or sha256 \(got 'md5'\)$/);
});

test('a bundle outside --shared-dir is a one-line error at the submitter', { skip: SKIP, timeout: 120_000 }, async () => {
  const p = privml(['proteus', 'optimize', bundle, '-o', join(tmp, 'elsewhere'), '--queue', redis.url, '--shared-dir', share]);
  assert.notEqual(await p.exited, 0);
  assert.match(p.stderr().trim(), /^privml: error: --shared-dir .*: the output directory .* is not inside it$/);
});

test('a member whose bytes differ from its tag, or that a worker cannot read, fails once with the reason', { skip: SKIP, timeout: 120_000 }, async () => {
  const q = new Queue('privml-proteus', { connection: { host: '127.0.0.1', port: redis.port, password: redis.password } });
  try {
    mkdirSync(join(share, 'out-bad'));
    const member = readdirSync(bundle).find((f) => f.startsWith('member-'))!;
    const base = { v: PAYLOAD_VERSION, kind: 'proteus', run: 'bad', index: 0, members: [member], level: 'extended' };
    const shared = {
      root: share,
      bundle: 'bundle',
      out: 'out-bad',
      mac: { key: Buffer.alloc(32, 7).toString('base64'), tags: [Buffer.alloc(16).toString('base64')] },
    };
    const cases = [
      [{ ...base, shared }, /member-\d+\.onnx: the bytes read differ from what the submitter read and tagged/],
      [{ ...base, shared: { ...shared, mac: { key: 'x', tags: ['y'] } } }, /no MAC key or tag for member-/],
      [{ ...base, shared: { ...shared, mac: undefined, sha256: ['0'.repeat(64)] } }, /read SHA-256 .*, the job expects 000000000000…/],
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

// Last: it stops the workers above, so the run's jobs wait in Redis while a member is changed under them.
test('a byte flipped in the shared copy after submission: the run fails with one line naming the member', { skip: SKIP, timeout: 120_000 }, async () => {
  await Promise.all(workers.map(stopWorker));
  workers = [];
  const copy = join(share, 'tampered');
  cpSync(bundle, copy, { recursive: true });
  const first = (JSON.parse(readFileSync(join(copy, 'manifest.json'), 'utf8')) as { members: string[] }).members[0]!;
  const out = join(share, 'out-tampered');
  const p = privml(['proteus', 'optimize', copy, '-o', out, '--queue', redis.url, '--shared-dir', share, '--per-job', '2']);
  const q = new Queue('privml-proteus', { connection: { host: '127.0.0.1', port: redis.port, password: redis.password } });
  try {
    // All jobs are added at once (a few hundred bytes each) and tagged as they are added.
    const members = readdirSync(copy).filter((f) => f.startsWith('member-')).length;
    for (let i = 0; i < 300 && (await q.getWaitingCount()) < Math.ceil(members / 2); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await q.getWaitingCount(), Math.ceil(members / 2), 'the submitter queued every job');
  } finally {
    await q.close();
  }
  // One byte in the middle of the first member, flipped in place (same size, same inode).
  const fd = openSync(join(copy, first), 'r+');
  const at = Math.floor(readFileSync(join(copy, first)).length / 2);
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  b[0]! ^= 0x01;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
  workers = [await startWorker(redis.url, ['--kinds', 'proteus', '--ort-threads', '1'])];
  assert.notEqual(await p.exited, 0);
  const err = p.stderr().trim();
  assert.equal(err.split('\n').length, 1, err);
  assert.match(err, new RegExp(`^privml: error: proteus job 0 failed: .*tampered/${first}: the bytes read differ from what the submitter read and tagged`));
  assert.ok(!readdirSync(out).includes(first), 'the tampered member was not optimized');
});
