/**
 * `fhe run --queue` and `mpc infer --queue` against the local commands, on a real redis-server with two
 * real `privml worker` processes: the same predictions image by image (long: CKKS keygen at N = 16384
 * and MPC sessions on the shared cores take minutes). Skipped, with the reason, without redis-server.
 */

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadDatasetSync } from '../../src/api/data.js';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor } from '../../src/onnx/ir.js';
import { saveModel } from '../../src/onnx/proto.js';
import { type Proc, privml, SKIP, startRedis, startWorker, type TestRedis, teardown } from '../queue/redis.js';

if (SKIP) process.stdout.write(`# queue-batch tests skipped: ${SKIP}\n`);

/**
 * A small FHE-friendly classifier for 1×28×28 images whose predictions vary from image to image:
 * 4×4 average pool → nearest-centroid scores against the sample's class means (49 → 10) → ReLU → 10 → 10.
 */
function centroidModel(path: string): void {
  const ds = loadDatasetSync('fashion-mnist-sample', { limit: 200 });
  const pooled = (i: number) =>
    Array.from({ length: 49 }, (_, k) => {
      const r = Math.floor(k / 7) * 4;
      const c = (k % 7) * 4;
      let s = 0;
      for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) s += ds.images[i * 784 + (r + a) * 28 + c + b]!;
      return s / 16;
    });
  const sums = Array.from({ length: 10 }, () => new Array(49).fill(0) as number[]);
  const counts = new Array(10).fill(0) as number[];
  for (let i = 0; i < ds.n; i++) {
    const p = pooled(i);
    const l = ds.labels[i]!;
    counts[l]!++;
    p.forEach((v, k) => (sums[l]![k] = sums[l]![k]! + v));
  }
  const means = sums.map((s, c) => s.map((v) => v / Math.max(1, counts[c]!)));
  const all = means[0]!.map((_, k) => means.reduce((a, m) => a + m[k]!, 0) / 10);
  const w1 = means.flatMap((m) => m.map((v, k) => v - all[k]!));
  const b = new GraphBuilder('fmnist-centroid');
  const x = b.input('input', 'float32', ['batch', 1, 28, 28]);
  const pool = b.op('AveragePool', [x], { kernel_shape: [4, 4], strides: [4, 4] }, { name: 'pool' });
  const f = b.op('Flatten', [pool], { axis: 1 }, { name: 'flatten' });
  const h = b.op(
    'Gemm',
    [f, b.init('fc1.weight', floatTensor([10, 49], w1)), b.init('fc1.bias', floatTensor([10], new Array(10).fill(0.05)))],
    { transB: 1, alpha: float(1) },
    { name: 'fc1' },
  );
  const r = b.op('Relu', [h], {}, { name: 'relu' });
  const eye = Array.from({ length: 100 }, (_, i) => (i % 11 === 0 ? 1 : 0.02));
  const y = b.op(
    'Gemm',
    [r, b.init('fc2.weight', floatTensor([10, 10], eye)), b.init('fc2.bias', floatTensor([10], new Array(10).fill(0)))],
    { transB: 1, alpha: float(1) },
    { name: 'fc2', output: 'logits' },
  );
  b.output(y, 'float32', ['batch', 10]);
  saveModel(b.build(), path);
}

let redis: TestRedis;
const workers: Proc[] = [];
let model: string;

before(
  async () => {
    if (SKIP) return;
    model = join(mkdtempSync(join(tmpdir(), 'privml-qb-')), 'centroid.onnx');
    centroidModel(model);
    redis = await startRedis();
    for (let i = 0; i < 2; i++) workers.push(await startWorker(redis.url, ['--kinds', 'fhe,mpc']));
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

async function json(args: string[]): Promise<Record<string, unknown>> {
  const p = privml(args);
  const code = await p.exited;
  assert.equal(code, 0, `privml ${args.slice(0, 2).join(' ')} exited ${code}: ${p.stderr().slice(-800)}`);
  return JSON.parse(p.stdout()) as Record<string, unknown>;
}

type FheImage = { index: number; label: number; plainClass: number; ortClass: number; fheClass: number; maxRelErrVsOrt: number };

test('fhe run --queue: the same predictions as the local fhe run, image by image', { skip: SKIP, timeout: 1_500_000 }, async () => {
  // A queued job cannot make client-aided refresh round trips, so the local run it must equal is the
  // one planned under the same constraint (a local run may otherwise pick a shorter chain plus a refresh).
  const args = ['fhe', 'run', model, '--paf', 'f1g2', '--limit', '6', '--no-refresh', '--json'];
  const [local, queued] = await Promise.all([json(args), json([...args, '--queue', redis.url, '--per-job', '2'])]);
  const pick = (r: Record<string, unknown>) =>
    (r['results'] as FheImage[]).map(({ index, label, plainClass, ortClass, fheClass }) => ({ index, label, plainClass, ortClass, fheClass }));
  assert.deepEqual(pick(queued), pick(local));
  assert.equal(queued['agreementWithPlaintextPaf'], 1);
  assert.ok((queued['maxRelErr'] as number) < 1e-3, `max rel err ${queued['maxRelErr']}`);
  // The fixture is not a constant classifier: equal predictions mean something.
  assert.ok(new Set(pick(local).map((r) => r.fheClass)).size >= 2, 'fixture predicts one class only');
  assert.deepEqual(queued['params'], local['params']);
  const q = queued['queue'] as { jobs: number; retried: number };
  assert.equal(q.jobs, 3);
  assert.equal(q.retried, 0);
});

test('fhe run --queue refuses a plan with client-aided refresh in one line, before key generation', { skip: SKIP, timeout: 300_000 }, async () => {
  const p = privml([
    'fhe',
    'run',
    model,
    '--paf',
    'f1g2',
    '--min-scale-bits',
    '40',
    '--max-scale-bits',
    '40',
    '--refresh',
    '--limit',
    '1',
    '--queue',
    redis.url,
  ]);
  const code = await p.exited;
  const err = p.stderr().trim();
  if (code === 0) return assert.fail(`a refresh plan ran over the queue: ${p.stdout()}`);
  assert.match(err, /client-aided refresh round trip/);
  assert.equal(err.split('\n').length, 1, err);
});

test('mpc infer --queue: the same predictions as the local mpc infer', { skip: SKIP, timeout: 1_500_000 }, async () => {
  const args = ['mpc', 'infer', model, '--dataset', 'fashion-mnist-sample', '--limit', '20', '--json'];
  const local = await json(args);
  const queued = await json([...args, '--queue', redis.url, '--per-job', '5']);
  assert.deepEqual(queued['predictions'], local['predictions']);
  assert.equal(queued['agreement'], local['agreement']);
  assert.equal(queued['count'], 20);
  assert.ok(new Set(local['predictions'] as number[]).size >= 2, 'fixture predicts one class only');
});
