/**
 * A pool of worker threads for a party's ring kernels (`--threads`): a layer's independent work
 * (the images of a batch for a convolution, the rows of a matrix product) is split over the
 * threads, whose operands and results live in shared memory. Results are bit for bit those of the
 * single-threaded kernels (exact Z_2^64 arithmetic, split along independent outputs).
 * A worker that dies fails the pending call and every later one with a one-line error.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ConvGeom, Ring } from '../ring.js';
import { convOutSize } from '../ring.js';

/** A slice of work for one thread (the worker's message format). */
export type PoolTask =
  | { id: number; op: 'conv'; x: SharedArrayBuffer; w: SharedArrayBuffer; out: SharedArrayBuffer; geom: ConvGeom; n0: number; n1: number; outPer: number }
  | { id: number; op: 'matmul'; a: SharedArrayBuffer; b: SharedArrayBuffer; out: SharedArrayBuffer; k: number; n: number; r0: number; r1: number }
  | { id: number; op: 'abort' };

/** A task before it gets its id. */
type NewTask = PoolTask extends infer T ? (T extends unknown ? Omit<T, 'id'> : never) : never;

type Pending = { resolve(): void; reject(e: Error): void };

/** The cores this process may use (the default of `--threads`). */
export const availableThreads = (): number => availableParallelism();

/**
 * Threads per party when one command starts `parties` parties on this host (mpc run, mpc bench
 * model: both parties and the dealer here): an even share of the cores, at least 1. Measured on 2
 * cores (docs/benchmarks.md, issue 19): a second thread per party only added contention there.
 */
export const sharedHostThreads = (parties: number): number => Math.max(1, Math.floor(availableThreads() / parties));

/** Check a `--threads` value: an integer from 1 to the available cores; returns a one-line problem or undefined. */
export function threadsProblem(threads: number): string | undefined {
  const cores = availableThreads();
  if (!Number.isInteger(threads) || threads < 1) return `--threads must be a whole number of at least 1, got ${threads}`;
  if (threads > cores) return `--threads ${threads} is more than the ${cores} cores available to this process`;
  return undefined;
}

/** Start a worker running worker.ts (through tsx when this module itself runs as TypeScript). */
function spawn(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const target = new URL('./worker.ts', here).href;
    // resolved from this module, not from the process's working directory (an eval worker's base)
    const tsx = pathToFileURL(
      createRequire(here)
        .resolve('tsx/esm/api')
        .replace(/\.cjs$/, '.mjs'),
    ).href;
    const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(target)}); });`;
    return new Worker(boot, { eval: true });
  }
  return new Worker(new URL('./worker.js', here));
}

const shared = (a: Ring): SharedArrayBuffer => {
  const s = new SharedArrayBuffer(a.byteLength);
  new BigInt64Array(s).set(a);
  return s;
};

/** Split [0, total) into at most `parts` contiguous non-empty ranges. */
function ranges(total: number, parts: number): [number, number][] {
  const p = Math.min(parts, total),
    out: [number, number][] = [];
  for (let i = 0; i < p; i++) out.push([Math.floor((i * total) / p), Math.floor(((i + 1) * total) / p)]);
  return out;
}

/** Pool settings beyond the thread count. */
export interface PoolOptions {
  /**
   * Fault injection for tests only (hidden `--fault-worker-crash` of the mpc commands): the pool's
   * first task reaches its worker as an abort, so the worker thread dies in the middle of a layer.
   */
  crashFirstTask?: boolean;
}

/** A fixed set of worker threads; `close()` ends them (no thread outlives the party). */
export class RingPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;
  private closed = false;

  /** Start `threads` workers (validated like `--threads`). */
  constructor(
    readonly threads: number,
    private readonly opts: PoolOptions = {},
  ) {
    const problem = threadsProblem(threads);
    if (problem) throw new Error(problem);
    this.workers = Array.from({ length: threads }, (_, i) => {
      const w = spawn();
      w.unref(); // an idle pool never keeps the process alive
      w.on('message', (m: { id: number; ok: boolean; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve();
        else p.reject(new Error(`thread pool: ${m.error}`));
      });
      w.on('error', (e) => this.fail(new Error(`thread pool: worker ${i} crashed: ${e.message.split('\n')[0]}`)));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`thread pool: worker ${i} exited unexpectedly (code ${code})`));
      });
      return w;
    });
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    void this.close();
  }

  private run(worker: number, task: NewTask): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('thread pool: closed'));
    const id = this.nextId++;
    // Fault injection for the process-level crash test (test/mpc/threads.test.ts): the first task
    // reaches its worker as an abort, so a real party's worker thread dies in the middle of a layer.
    if (id === 0 && this.opts.crashFirstTask) task = { op: 'abort' };
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[worker]!.postMessage({ ...task, id });
    });
  }

  /** Exact convolution like ringConv2d, the batch's images split over the threads. */
  async conv2d(x: Ring, w: Ring, g: ConvGeom): Promise<Ring> {
    const { oh, ow } = convOutSize(g);
    const outPer = g.co * oh * ow;
    const sx = shared(x),
      sw = shared(w),
      out = new SharedArrayBuffer(g.n * outPer * 8);
    await Promise.all(ranges(g.n, this.threads).map(([n0, n1], i) => this.run(i, { op: 'conv', x: sx, w: sw, out, geom: g, n0, n1, outPer })));
    return new BigInt64Array(out).slice();
  }

  /** Exact m×k by k×n product like ringMatmul, the rows split over the threads. */
  async matmul(a: Ring, b: Ring, m: number, k: number, n: number): Promise<Ring> {
    if (a.length !== m * k || b.length !== k * n)
      throw new Error(`thread pool: matmul operands have ${a.length}/${b.length} elements, expected ${m * k}/${k * n}`);
    const sa = shared(a),
      sb = shared(b),
      out = new SharedArrayBuffer(m * n * 8);
    await Promise.all(ranges(m, this.threads).map(([r0, r1], i) => this.run(i, { op: 'matmul', a: sa, b: sb, out, k, n, r0, r1 })));
    return new BigInt64Array(out).slice();
  }

  /** Make worker `i` die (tests of the crash path). */
  crashWorker(i: number): Promise<void> {
    return this.run(i, { op: 'abort' });
  }

  /** End every worker; resolves when all have exited. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** A pool started on first use (runs that never split a layer never start threads). */
export class LazyPool {
  private pool: RingPool | undefined;

  /** `threads` is validated now, the workers start at the first `get()`. */
  constructor(
    readonly threads: number,
    private readonly opts: PoolOptions = {},
  ) {
    const problem = threadsProblem(threads);
    if (problem) throw new Error(problem);
  }

  /** The running pool. */
  get(): RingPool {
    return (this.pool ??= new RingPool(this.threads, this.opts));
  }

  /** End the workers if any were started. */
  async close(): Promise<void> {
    await this.pool?.close();
  }
}
