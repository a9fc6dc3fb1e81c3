/**
 * Coefficient Tuning (CT): profile every nonlinear layer's inputs on training data (with the exact
 * model), then fit each layer's PAF coefficients to minimise the MSE against the exact ReLU /
 * MaxPool on those inputs (Adam, reduce-on-plateau, dynamic scale while fitting). Each layer is fit
 * on its own one-node graph, so the fit runs the same PafRelu / PafMaxPool kernel as training.
 */

import { batches, type Dataset } from '../nn/data/dataset.js';
import { FloatModel } from '../nn/runtime.js';
import { tf } from '../nn/tf.js';
import { classifierIo } from '../nn/train.js';
import { GraphBuilder } from '../onnx/builder.js';
import { type Model, ModelError } from '../onnx/ir.js';
import { isPafCoefficient, pafLayers, replaceActivations } from './graph.js';
import { type NonlinearLayer, nonlinearLayers } from './layers.js';
import type { Paf } from './paf.js';

/** Inputs of one nonlinear layer recorded on training data (whole activation maps of `shape[0]` examples). */
export interface LayerProfile {
  layer: NonlinearLayer;
  shape: number[];
  data: Float32Array;
  /** max |x| over the profile (ReLU) — for MaxPool the window differences are what sign sees. */
  maxAbs: number;
}

/** Options of {@link profileLayers}. */
export interface ProfileOptions {
  /** Number of training examples profiled (default 256). */
  samples?: number;
  maxPool?: boolean;
  batchSize?: number;
}

/** Record the inputs of every Relu / MaxPool of the exact `model` on the first `samples` examples of `ds`. */
export async function profileLayers(model: Model, ds: Dataset, opts: ProfileOptions = {}): Promise<LayerProfile[]> {
  const layers = nonlinearLayers(model, { maxPool: opts.maxPool });
  if (layers.some((l) => l.replaced)) throw new ModelError(`${model.graph.name}: profile the exact model (it already has PAF layers)`);
  const n = Math.min(opts.samples ?? 256, ds.n);
  const fm = await FloatModel.create(model);
  try {
    const { input } = classifierIo(fm, ds);
    const chunks = layers.map(() => [] as Float32Array[]);
    const shapes: number[][] = layers.map(() => []);
    const [c, h, w] = ds.shape;
    let seen = 0;
    for (const b of batches(ds, opts.batchSize ?? 128)) {
      if (seen >= n) break;
      const take = Math.min(b.n, n - seen);
      tf.tidy(() => {
        const x = tf.tensor4d(b.x.subarray(0, take * c * h * w), [take, c, h, w]);
        const out = fm.forward({ [input]: x }, { outputs: layers.map((l) => l.input) });
        layers.forEach((l, i) => {
          const t = out[l.input]!;
          shapes[i] = t.shape;
          chunks[i]!.push(Float32Array.from(t.dataSync() as Float32Array));
        });
      });
      seen += take;
    }
    return layers.map((layer, i) => {
      const data = new Float32Array(chunks[i]!.reduce((a, ch) => a + ch.length, 0));
      let off = 0;
      let maxAbs = 0;
      for (const ch of chunks[i]!) {
        data.set(ch, off);
        off += ch.length;
      }
      for (const v of data) maxAbs = Math.max(maxAbs, Math.abs(v));
      return { layer, shape: [seen, ...shapes[i]!.slice(1)], data, maxAbs };
    });
  } finally {
    fm.dispose();
  }
}

/** Options of {@link tuneCoefficients}. */
export interface CtOptions {
  /** Epochs over the profile (default 40). */
  epochs?: number;
  /** Adam learning rate (default 0.01). */
  lr?: number;
  /** Examples per step (default 16 activation maps). */
  batch?: number;
  /** Reduce-on-plateau: epochs without improvement before the rate is multiplied by `factor` (default 3, 0.5). */
  patience?: number;
  factor?: number;
  /** Called after every epoch. */
  onEpoch?: (node: string, epoch: number, mse: number) => void;
}

/** Result of tuning one layer. */
export interface CtLayerResult {
  node: string;
  kind: NonlinearLayer['kind'];
  /** MSE of the untuned PAF vs the exact function on the profile (dynamic scale). */
  mseBefore: number;
  /** MSE after tuning. */
  mseAfter: number;
  stages: number[][];
  epochs: number;
  seconds: number;
}

/** A one-node model applying the original Relu / MaxPool node of `model` to an input shaped like `shape`. */
function singleNode(model: Model, layer: NonlinearLayer, shape: number[]): Model {
  const node = model.graph.nodes.find((n) => n.name === layer.node)!;
  const b = new GraphBuilder(`ct:${layer.node}`);
  const x = b.input('x', 'float32', ['n', ...shape.slice(1)]);
  b.output(b.op(node.opType, [x], { ...node.attrs }, { name: node.name }), 'float32');
  return b.build();
}

/** MSE of `fm` (a one-node PAF model) vs `targets` over the profile, in batches of `batch` examples. */
function profileMse(fm: FloatModel, p: LayerProfile, exact: FloatModel, batch: number): number {
  const per = p.data.length / p.shape[0]!;
  let sum = 0;
  for (let i = 0; i < p.shape[0]!; i += batch) {
    const k = Math.min(batch, p.shape[0]! - i);
    sum +=
      tf.tidy(() => {
        const x = tf.tensor(p.data.subarray(i * per, (i + k) * per), [k, ...p.shape.slice(1)]);
        const y = fm.forward({ x })[fm.outputNames[0]!]!;
        const t = exact.forward({ x })[exact.outputNames[0]!]!;
        return tf.sum(tf.squaredDifference(y, t)).dataSync()[0]! / t.size;
      }) * k;
  }
  return sum / p.shape[0]!;
}

/** Fit one layer's PAF coefficients to its profiled inputs (CT). */
export async function tuneLayer(model: Model, paf: Paf, profile: LayerProfile, opts: CtOptions = {}): Promise<CtLayerResult> {
  const t0 = performance.now();
  const epochs = opts.epochs ?? 40;
  const batch = opts.batch ?? 16;
  const patience = opts.patience ?? 3;
  const factor = opts.factor ?? 0.5;
  const exactModel = singleNode(model, profile.layer, profile.shape);
  const pafModel = replaceActivations(exactModel, paf, { scaleMode: 'dynamic' });
  const exact = await FloatModel.create(exactModel);
  const fm = await FloatModel.create(pafModel, { trainable: isPafCoefficient });
  const coefNames = pafLayers(pafModel)[0]!.coefficientNames;
  const vars = coefNames.map((c) => fm.params.get(c)!);
  const optimizer = tf.train.adam(opts.lr ?? 0.01);
  let lr = opts.lr ?? 0.01;
  const n = profile.shape[0]!;
  const per = profile.data.length / n;
  try {
    const mseBefore = profileMse(fm, profile, exact, batch);
    let best = mseBefore;
    let bestStages = vars.map((v) => Array.from(v.dataSync()));
    let stale = 0;
    for (let e = 1; e <= epochs; e++) {
      let sum = 0;
      // Deterministic rotation of the batch order per epoch (no cryptographic need for randomness).
      const order = Array.from({ length: Math.ceil(n / batch) }, (_, i) => (i * 7 + e) % Math.ceil(n / batch));
      for (const bi of order) {
        const i = bi * batch;
        const k = Math.min(batch, n - i);
        sum += tf.tidy(() => {
          const x = tf.tensor(profile.data.subarray(i * per, (i + k) * per), [k, ...profile.shape.slice(1)]);
          const t = exact.forward({ x })[exact.outputNames[0]!]!;
          const { value, grads } = tf.variableGrads(
            () => tf.mean(tf.squaredDifference(fm.forward({ x }, { training: true })[fm.outputNames[0]!]!, t)) as tf.Scalar,
            vars,
          );
          optimizer.applyGradients(grads as never);
          return value.dataSync()[0]! * k;
        });
      }
      const mse = sum / n;
      if (!Number.isFinite(mse)) break; // diverged: keep the best coefficients seen
      opts.onEpoch?.(profile.layer.node, e, mse);
      if (mse < best * (1 - 1e-4)) {
        best = mse;
        bestStages = vars.map((v) => Array.from(v.dataSync()));
        stale = 0;
      } else if (++stale >= patience) {
        lr *= factor;
        (optimizer as unknown as { learningRate: number }).learningRate = lr;
        stale = 0;
      }
      await new Promise((r) => setImmediate(r));
    }
    vars.forEach((v, i) => v.assign(tf.tensor1d(bestStages[i]!)));
    const mseAfter = profileMse(fm, profile, exact, batch);
    return { node: profile.layer.node, kind: profile.layer.kind, mseBefore, mseAfter, stages: bestStages, epochs, seconds: (performance.now() - t0) / 1000 };
  } finally {
    optimizer.dispose();
    fm.dispose();
    exact.dispose();
  }
}

/** CT for every nonlinear layer: profile on `ds`, then fit each layer. Returns per-layer results in inference order. */
export async function tuneCoefficients(model: Model, paf: Paf, ds: Dataset, opts: CtOptions & ProfileOptions = {}): Promise<CtLayerResult[]> {
  const profiles = await profileLayers(model, ds, opts);
  const out: CtLayerResult[] = [];
  for (const p of profiles) out.push(await tuneLayer(model, paf, p, opts));
  return out;
}

/** CT results as the per-node coefficient map `replaceActivations` takes. */
export function ctCoefficients(results: readonly CtLayerResult[]): Record<string, number[][]> {
  return Object.fromEntries(results.map((r) => [r.node, r.stages]));
}
