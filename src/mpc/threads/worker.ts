/**
 * One thread of the ring pool (`pool.ts`): its own wasm instance of the ring kernels, working on a
 * slice of a layer whose operands and result live in shared memory (SharedArrayBuffer), so no
 * operand is copied through messages. Runs only inside a worker_threads Worker.
 */
import { parentPort } from 'node:worker_threads';
import { type ConvGeom, ringConv2d, ringMatmul } from '../ring.js';
import type { PoolTask } from './pool.js';

const port = parentPort;
if (!port) throw new Error('threads/worker.ts must run in a worker thread');

port.on('message', (t: PoolTask) => {
  if (t.op === 'abort') throw new Error('thread pool: worker aborted on request'); // uncaught: the thread dies (crash path)
  try {
    if (t.op === 'conv') {
      // images [n0, n1) of the batch: contiguous in NCHW input and output
      const g: ConvGeom = { ...t.geom, n: t.n1 - t.n0 };
      const per = t.geom.c * t.geom.h * t.geom.w,
        outPer = t.outPer;
      const x = new BigInt64Array(t.x, t.n0 * per * 8, g.n * per);
      const w = new BigInt64Array(t.w);
      new BigInt64Array(t.out, t.n0 * outPer * 8, g.n * outPer).set(ringConv2d(x, w, g));
    } else {
      // rows [r0, r1) of an m×k by k×n product
      const rows = t.r1 - t.r0;
      const a = new BigInt64Array(t.a, t.r0 * t.k * 8, rows * t.k);
      new BigInt64Array(t.out, t.r0 * t.n * 8, rows * t.n).set(ringMatmul(a, new BigInt64Array(t.b), rows, t.k, t.n));
    }
    port.postMessage({ id: t.id, ok: true });
  } catch (e) {
    port.postMessage({ id: t.id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
});
