/**
 * A small pool of worker threads, each running one "function module": a module that exports
 * `handle(input)` (sync or async) and optionally `setup(init)`. Used for data-parallel training
 * (each worker has its own tfjs-wasm instance and computes gradients on a slice of the batch).
 * Modules may be TypeScript: the worker then registers tsx's loader before importing them.
 */
import { Worker } from 'node:worker_threads';

/** Shape of a module run by the pool's workers. */
export interface WorkerModule<I, O> {
  /** Called once per worker with the pool's `init` value before any input. */
  setup?(init: unknown): void | Promise<void>;
  /** Called for each input sent to this worker, one at a time, in order. */
  handle(input: I): O | Promise<O>;
}

/** Options of `WorkerPool.create`. */
export interface WorkerPoolOptions {
  /** Number of workers (default 2). */
  size?: number;
  /** Structured-cloneable value passed to every worker's `setup`. */
  init?: unknown;
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
type Control = { ready: true } | { fatal: string };

// Runs inside each worker (CommonJS eval code). Results' whole-buffer typed arrays are transferred,
// not copied; a buffer is listed once (a duplicate would make postMessage throw).
const BOOT = `
const { parentPort, workerData } = require('node:worker_threads');
function transfers(v) {
  const out = new Set();
  const visit = (x, depth) => {
    if (ArrayBuffer.isView(x)) {
      if (x.buffer instanceof ArrayBuffer && x.byteOffset === 0 && x.byteLength === x.buffer.byteLength) out.add(x.buffer);
    } else if (depth < 3 && x && typeof x === 'object') {
      for (const y of Array.isArray(x) ? x : Object.values(x)) visit(y, depth + 1);
    }
  };
  visit(v, 0);
  return [...out];
}
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  const mod = await import(workerData.module);
  if (typeof mod.handle !== 'function') throw new Error(workerData.module + ' does not export handle()');
  if (typeof mod.setup === 'function') await mod.setup(workerData.init);
  let chain = Promise.resolve();
  parentPort.on('message', ({ id, input }) => {
    chain = chain.then(async () => {
      try {
        const value = await mod.handle(input);
        parentPort.postMessage({ id, ok: true, value }, transfers(value));
      } catch (e) {
        parentPort.postMessage({ id, ok: false, error: String((e && e.stack) || e) });
      }
    });
  });
  parentPort.postMessage({ ready: true });
})().catch((e) => parentPort.postMessage({ fatal: String((e && e.stack) || e) }));
`;

/** A fixed set of workers running the same function module. */
export class WorkerPool<I, O> {
  private nextId = 0;
  private readonly pending: Array<Map<number, { resolve: (v: O) => void; reject: (e: Error) => void }>>;

  private constructor(
    private readonly workers: Worker[],
    private readonly moduleUrl: string,
  ) {
    this.pending = workers.map(() => new Map());
    workers.forEach((w, i) => {
      w.on('message', (m: Reply) => {
        const p = this.pending[i]!.get(m.id);
        if (!p) return;
        this.pending[i]!.delete(m.id);
        if (m.ok) p.resolve(m.value as O);
        else p.reject(new Error(`worker ${i} (${this.moduleUrl}): ${m.error}`));
      });
      w.on('error', (e) => this.failAll(i, e));
      w.on('exit', (code) => this.failAll(i, new Error(`worker ${i} (${this.moduleUrl}) exited with code ${code}`)));
    });
  }

  /** Start `options.size` workers on `moduleUrl` (file URL or path) and wait until all ran `setup`. */
  static async create<I, O>(moduleUrl: URL | string, options: WorkerPoolOptions = {}): Promise<WorkerPool<I, O>> {
    const size = options.size ?? 2;
    if (!Number.isInteger(size) || size < 1) throw new Error(`WorkerPool: size must be a positive integer, got ${size}`);
    const href = moduleUrl instanceof URL ? moduleUrl.href : new URL(moduleUrl, `file://${process.cwd()}/`).href;
    const tsx = /\.[cm]?ts$/.test(href) ? import.meta.resolve('tsx/esm/api') : undefined;
    const workers: Worker[] = [];
    const started = Array.from({ length: size }, () => {
      const w = new Worker(BOOT, { eval: true, workerData: { module: href, init: options.init, tsx } });
      workers.push(w);
      return new Promise<void>((resolve, reject) => {
        const onMsg = (m: Control): void => {
          w.off('message', onMsg);
          if ('ready' in m) resolve();
          else reject(new Error(`WorkerPool: setup of ${href} failed: ${m.fatal}`));
        };
        w.on('message', onMsg);
        w.once('error', reject);
      });
    });
    try {
      await Promise.all(started);
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new WorkerPool<I, O>(workers, href);
  }

  /** Number of workers. */
  get size(): number {
    return this.workers.length;
  }

  /** Send `input` to worker `index`; `transfer` lists buffers to move instead of copy. */
  run(index: number, input: I, transfer: readonly ArrayBuffer[] = []): Promise<O> {
    const w = this.workers[index];
    if (!w) throw new Error(`WorkerPool: no worker ${index} (size ${this.size})`);
    const id = this.nextId++;
    return new Promise<O>((resolve, reject) => {
      this.pending[index]!.set(id, { resolve, reject });
      w.postMessage({ id, input }, transfer as ArrayBuffer[]);
    });
  }

  /** Send inputs[i] to worker i (inputs.length <= size) and wait for all results. */
  all(inputs: readonly I[]): Promise<O[]> {
    if (inputs.length > this.size) throw new Error(`WorkerPool: ${inputs.length} inputs for ${this.size} workers`);
    return Promise.all(inputs.map((input, i) => this.run(i, input)));
  }

  /** Stop all workers (pending calls are rejected). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private failAll(i: number, e: Error): void {
    for (const p of this.pending[i]!.values()) p.reject(e);
    this.pending[i]!.clear();
  }
}

/** Elementwise sum of same-shaped lists of arrays (e.g. per-worker gradients), in float32. */
export function sumArrays(parts: readonly (readonly Float32Array[])[]): Float32Array[] {
  const first = parts[0];
  if (!first) throw new Error('sumArrays: no parts');
  return first.map((a, k) => {
    const out = Float32Array.from(a);
    for (let p = 1; p < parts.length; p++) {
      const b = parts[p]![k];
      if (!b || b.length !== out.length) throw new Error(`sumArrays: part ${p} array ${k} has a different length`);
      for (let j = 0; j < out.length; j++) out[j] = out[j]! + b[j]!;
    }
    return out;
  });
}
