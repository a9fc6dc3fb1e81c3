/**
 * The Fashion-MNIST reference CNN written directly with tf ops, for benchmarks and for checking
 * data-parallel gradients: Conv 1->16 3x3 pad 1, Relu, pool 2, Conv 16->32 3x3 pad 1, Relu, pool 2,
 * Flatten, Dense 1568->10, softmax cross-entropy (mean over the batch).
 * Also a `WorkerPool` function module: `setup({pool})` then `handle({weights, x, y})` -> gradients.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerFastKernels } from './index.js';

/** Pooling used after each conv. */
export type CnnPool = 'max' | 'avg';

/** Parameter shapes, in order: w1, b1, w2, b2, w3, b3. */
export const REFERENCE_CNN_SHAPES: readonly number[][] = [[3, 3, 1, 16], [16], [3, 3, 16, 32], [32], [1568, 10], [10]];

/** Deterministic small initial weights (biases zero). */
export function referenceCnnInit(seed = 1): Float32Array[] {
  let s = seed >>> 0 || 1;
  const scale = [0.3, 0, 0.1, 0, 0.05, 0];
  return REFERENCE_CNN_SHAPES.map((shape, i) =>
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return (s / 2 ** 32 - 0.5) * 2 * scale[i]!;
    }),
  );
}

/** Mean softmax cross-entropy of the CNN on x [B,28,28,1] with one-hot y [B,10]. */
export function referenceCnnLoss(weights: readonly tf.Tensor[], x: tf.Tensor4D, y: tf.Tensor2D, pool: CnnPool): tf.Scalar {
  const [w1, b1, w2, b2, w3, b3] = weights as [tf.Tensor4D, tf.Tensor, tf.Tensor4D, tf.Tensor, tf.Tensor2D, tf.Tensor];
  const p = (t: tf.Tensor): tf.Tensor4D => (pool === 'max' ? tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid') : tf.avgPool(t as tf.Tensor4D, 2, 2, 'valid'));
  const b = x.shape[0];
  let h = p(tf.relu(tf.add(tf.conv2d(x, w1, 1, 'same'), b1)));
  h = p(tf.relu(tf.add(tf.conv2d(h, w2, 1, 'same'), b2)));
  const logits = tf.add(tf.matMul(tf.reshape(h, [b, 1568]), w3), b3);
  return tf.mean(tf.neg(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1)));
}

/** Input of `handle`: current weights and a (slice of a) batch, flattened. */
export interface CnnGradInput {
  weights: Float32Array[];
  x: Float32Array;
  y: Float32Array;
}

/** Output of `handle`: the loss and the gradient of each weight (mean over this slice). */
export interface CnnGradOutput {
  loss: number;
  grads: Float32Array[];
}

let pool: CnnPool = 'max';

/** WorkerPool setup: wasm backend with the fast kernels; `init.pool` picks the pooling. */
export async function setup(init: unknown): Promise<void> {
  const p = (init as { pool?: unknown } | undefined)?.pool ?? 'max';
  if (p !== 'max' && p !== 'avg') throw new Error(`reference_cnn: pool must be 'max' or 'avg', got ${String(p)}`);
  pool = p;
  registerFastKernels();
  tf.env().set('IS_NODE', true);
  if (!(await tf.setBackend('wasm'))) throw new Error('reference_cnn: wasm backend failed to initialise');
}

/** Loss and gradients of one batch slice (runs on the current backend). */
export function handle(input: CnnGradInput): CnnGradOutput {
  const b = input.y.length / 10;
  return tf.tidy(() => {
    const w = input.weights.map((a, i) => tf.tensor(a, REFERENCE_CNN_SHAPES[i]));
    const x = tf.tensor4d(input.x, [b, 28, 28, 1]);
    const y = tf.tensor2d(input.y, [b, 10]);
    const { value, grads } = tf.valueAndGrads((...ws: tf.Tensor[]) => referenceCnnLoss(ws, x, y, pool))(w);
    return { loss: value.dataSync()[0]!, grads: grads.map((g) => g.dataSync() as Float32Array) };
  });
}
