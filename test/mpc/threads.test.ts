import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prg } from '../../src/crypto/prg.js';
import { ringConv2d, ringMatmul } from '../../src/mpc/ring.js';
import { availableThreads, RingPool, threadsProblem } from '../../src/mpc/threads/pool.js';

const same = (a: BigInt64Array, b: BigInt64Array): boolean =>
  a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

test('--threads values outside 1..cores are refused with one line', () => {
  assert.match(threadsProblem(0)!, /at least 1, got 0/);
  assert.match(threadsProblem(1.5)!, /whole number/);
  assert.match(threadsProblem(availableThreads() + 1)!, /more than the \d+ cores/);
  assert.equal(threadsProblem(1), undefined);
  assert.throws(() => new RingPool(0), /at least 1/);
});

test('the pool splits conv and matmul over threads bit for bit; a crashed worker fails every later call', async () => {
  const threads = Math.min(2, availableThreads());
  const prg = new Prg(new Uint8Array(16).fill(7));
  // odd batch and row counts: uneven splits; stride 2 and padding exercise the geometry
  const g = { n: 5, c: 3, h: 9, w: 7, co: 4, kh: 3, kw: 3, strideH: 2, strideW: 1, padT: 1, padL: 0, padB: 1, padR: 2, group: 1 };
  const x = prg.ring(g.n * g.c * g.h * g.w),
    w = prg.ring(g.co * g.c * 9);
  const a = prg.ring(7 * 5),
    b = prg.ring(5 * 3);
  const pool = new RingPool(threads);
  try {
    assert.ok(same(await pool.conv2d(x, w, g), ringConv2d(x, w, g)));
    assert.ok(same(await pool.matmul(a, b, 7, 5, 3), ringMatmul(a, b, 7, 5, 3)));
    await assert.rejects(pool.crashWorker(threads - 1), (e: Error) => /^thread pool: worker \d+ (crashed|exited)/.test(e.message) && !e.message.includes('\n'));
    await assert.rejects(pool.conv2d(x, w, g), /thread pool: worker/);
  } finally {
    await pool.close();
  }
});
