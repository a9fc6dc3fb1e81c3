/**
 * Training-step throughput of the Fashion-MNIST reference CNN on tfjs-wasm, with and without the
 * fast kernels of src/nn/kernels. Model built directly with tf ops:
 * Conv 1->16 3x3 pad 1, Relu, pool 2, Conv 16->32 3x3 pad 1, Relu, pool 2, Dense 1568->10, softmax CE, SGD.
 *
 * The baseline cannot be plain tfjs-wasm (it has no Conv2DBackpropFilter kernel, so the step throws);
 * it is tfjs-wasm's own kernels plus a Conv2D gradient from tf ops (dx = conv of dy with the flipped
 * filter, dW = slice/concat im2col + matMul), the best we had before these kernels.
 *
 * Mode `parallel` runs the fast step data-parallel on `--workers` worker threads (own tfjs-wasm each),
 * gradients averaged and SGD applied on the main thread (perKernelMs is null there).
 *
 * Usage: node --import tsx bench/kernels.ts [--pool max|avg|both] [--batch 64,128] [--steps 20]
 *        [--mode baseline|fast|parallel|all] [--workers 2]
 * Prints one JSON line per run: {mode, samplesPerSecond, batch, pool, perKernelMs}.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerFastKernels } from '../src/nn/kernels/index.js';
import { sumArrays, WorkerPool } from '../src/nn/kernels/parallel.js';
import type { CnnGradInput, CnnGradOutput } from '../src/nn/kernels/reference_cnn.js';
import { REFERENCE_CNN_SHAPES, referenceCnnInit, referenceCnnLoss } from '../src/nn/kernels/reference_cnn.js';

type Pool = 'max' | 'avg';

/** Command-line option `--name value`, or the default. */
function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

/** The baseline Conv2D gradient (stride 1, symmetric numeric or 'same' pad) from tf ops. */
const baselineConvGrad: tf.GradConfig = {
  kernelName: 'Conv2D',
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, w] = saved as [tf.Tensor4D, tf.Tensor4D];
    const [kh, kw, ci, co] = w.shape;
    const [n] = x.shape;
    const d = dy as tf.Tensor4D;
    const [, oh, ow] = d.shape;
    const pad = (attrs as unknown as tf.Conv2DAttrs).pad;
    const ph = pad === 'same' ? Math.floor((kh - 1) / 2) : pad === 'valid' ? 0 : (pad as number);
    const pw = pad === 'same' ? Math.floor((kw - 1) / 2) : ph;
    return {
      x: () => {
        const wf = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
        return tf.conv2d(d, wf, 1, [
          [0, 0],
          [kh - 1 - ph, kh - 1 - ph],
          [kw - 1 - pw, kw - 1 - pw],
          [0, 0],
        ]);
      },
      filter: () => {
        const xp = tf.pad(x, [
          [0, 0],
          [ph, kh - 1 - ph],
          [pw, kw - 1 - pw],
          [0, 0],
        ]);
        const cols: tf.Tensor[] = [];
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) cols.push(tf.reshape(tf.slice(xp, [0, i, j, 0], [n, oh!, ow!, ci]), [n * oh! * ow!, ci]));
        }
        const X = tf.concat(cols, 1);
        return tf.reshape(tf.matMul(tf.transpose(X), tf.reshape(d, [n * oh! * ow!, co])), w.shape);
      },
    };
  },
};

/** Random batch: x [B,28,28,1] normal-ish, one-hot y [B,10]. */
function batchData(batch: number): { x: Float32Array; y: Float32Array } {
  const x = tf.tidy(() => tf.randomNormal([batch, 28, 28, 1], 0, 1, 'float32', 4).dataSync() as Float32Array);
  const y = new Float32Array(batch * 10);
  for (let i = 0; i < batch; i++) y[i * 10 + ((i * 7) % 10)] = 1;
  return { x, y };
}

/** Per-kernel milliseconds of one profiled call, largest first. */
async function profileKernels(f: () => void): Promise<Record<string, number>> {
  const prof = await tf.profile(f);
  const ms: Record<string, number> = {};
  for (const k of prof.kernels) ms[k.name] = (ms[k.name] ?? 0) + (k.kernelTimeMs as number);
  return Object.fromEntries(
    Object.entries(ms)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => [k, Math.round(v * 100) / 100]),
  );
}

/** Single-thread step on this thread's tfjs-wasm (baseline or fast kernels, as registered). */
async function measure(mode: string, pool: Pool, batch: number, steps: number): Promise<object> {
  const vars = referenceCnnInit().map((a, i) => tf.variable(tf.tensor(a, REFERENCE_CNN_SHAPES[i])));
  const data = batchData(batch);
  const x = tf.tensor4d(data.x, [batch, 28, 28, 1]);
  const y = tf.tensor2d(data.y, [batch, 10]);
  let last = NaN;
  const step = (): void => {
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => referenceCnnLoss(vars, x, y, pool), vars);
      for (const v of vars) v.assign(tf.sub(v, tf.mul(grads[v.name]!, 0.01)));
      last = value.dataSync()[0]!;
    });
  };
  for (let i = 0; i < 3; i++) step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const dt = (performance.now() - t0) / 1000;
  const perKernelMs = await profileKernels(step);
  tf.dispose([...vars, x, y]);
  if (!Number.isFinite(last)) throw new Error(`bench/kernels: loss is ${last} (${mode}, ${pool}, ${batch})`);
  return { mode, samplesPerSecond: Math.round((steps * batch) / dt), batch, pool, perKernelMs };
}

/** Data-parallel step: each worker computes gradients of its slice; the main thread averages and updates. */
async function measureParallel(workers: number, pool: Pool, batch: number, steps: number): Promise<object> {
  const wp = await WorkerPool.create<CnnGradInput, CnnGradOutput>(new URL('../src/nn/kernels/reference_cnn.ts', import.meta.url), {
    size: workers,
    init: { pool },
  });
  try {
    const weights = referenceCnnInit();
    const { x, y } = batchData(batch);
    const per = batch / workers;
    let last = NaN;
    const step = async (): Promise<void> => {
      const outs = await wp.all(
        Array.from({ length: workers }, (_, i) => ({
          weights,
          x: x.slice(i * per * 784, (i + 1) * per * 784),
          y: y.slice(i * per * 10, (i + 1) * per * 10),
        })),
      );
      const sum = sumArrays(outs.map((o) => o.grads));
      for (let k = 0; k < weights.length; k++) {
        const w = weights[k]!;
        const g = sum[k]!;
        for (let j = 0; j < w.length; j++) w[j] = w[j]! - (0.01 * g[j]!) / workers;
      }
      last = outs.reduce((a, o) => a + o.loss, 0) / workers;
    };
    for (let i = 0; i < 3; i++) await step();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await step();
    const dt = (performance.now() - t0) / 1000;
    if (!Number.isFinite(last)) throw new Error(`bench/kernels: loss is ${last} (parallel, ${pool}, ${batch})`);
    return { mode: `parallel-${workers}`, samplesPerSecond: Math.round((steps * batch) / dt), batch, pool, perKernelMs: null };
  } finally {
    await wp.close();
  }
}

async function main(): Promise<void> {
  tf.env().set('IS_NODE', true);
  await tf.setBackend('wasm');
  await tf.ready();
  const modeArg = opt('mode', 'all');
  const workers = Number(opt('workers', '2'));
  const pools: Pool[] = opt('pool', 'both') === 'both' ? ['max', 'avg'] : [opt('pool', 'max') as Pool];
  const batches = opt('batch', '64,128').split(',').map(Number);
  const steps = Number(opt('steps', '20'));
  const modes = modeArg === 'all' ? ['baseline', 'fast', 'parallel'] : [modeArg];
  const original = tf.getGradient('Conv2D');
  for (const mode of modes) {
    if (mode === 'parallel') {
      for (const pool of pools) {
        for (const batch of batches) console.log(JSON.stringify(await measureParallel(workers, pool, batch, steps)));
      }
      continue;
    }
    if (mode === 'baseline') tf.registerGradient(baselineConvGrad);
    else {
      tf.registerGradient(original); // so registerFastKernels keeps tfjs's gradient as its fallback
      registerFastKernels();
    }
    for (const pool of pools) {
      for (const batch of batches) console.log(JSON.stringify(await measure(mode, pool, batch, steps)));
    }
  }
}

await main();
