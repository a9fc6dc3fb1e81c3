/** Training and evaluation of a FloatModel on an image-classification Dataset. */
import { ModelError } from '../onnx/ir.js';
import { batches, type Dataset } from './data/dataset.js';
import type { FloatModel } from './runtime.js';
import { tf } from './tf.js';

/** Optimizers the trainer offers. */
export type OptimizerName = 'sgd' | 'adam';

/** Options of {@link train}. */
export interface TrainOptions {
  epochs: number;
  /** Mini-batch size (default 64). */
  batchSize?: number;
  /** 'adam' (default) or 'sgd' (with momentum). */
  optimizer?: OptimizerName;
  /** Learning rate (default 1e-3 for adam, 0.05 for sgd). */
  lr?: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  /** Decoupled weight decay per step, as in AdamW (default 0). */
  weightDecay?: number;
  /** Learning-rate schedule over all steps (default 'cosine'). */
  schedule?: 'constant' | 'cosine';
  /** Shuffle seed; epoch e uses seed + e (default 0). */
  seed?: number;
  /** Evaluated after every epoch when given. */
  validation?: Dataset;
  /** Variables to train (default: all trainable variables of the model). */
  variables?: tf.Variable[];
  /** Called after every step. */
  onStep?: (p: StepProgress) => void;
  /** Called after every epoch. */
  onEpoch?: (e: EpochResult) => void;
}

/** Progress of one training step. */
export interface StepProgress {
  epoch: number;
  step: number;
  steps: number;
  loss: number;
}

/** Summary of one epoch. */
export interface EpochResult {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  valAccuracy?: number;
  seconds: number;
  samplesPerSecond: number;
}

/** Result of {@link evaluate}. */
export interface EvalResult {
  n: number;
  correct: number;
  accuracy: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  /** Predicted class per example. */
  predictions: Uint8Array;
}

/** The image input and logits output of a classifier, checked against the data set. */
export function classifierIo(fm: FloatModel, ds: Pick<Dataset, 'shape' | 'classes' | 'name'>): { input: string; output: string } {
  const inputs = fm.inputNames;
  if (inputs.length !== 1) throw new ModelError(`${fm.source}: a classifier must have one input, this model has ${inputs.length}`);
  const input = inputs[0]!;
  const info = fm.model.graph.inputs.find((v) => v.name === input)!;
  const want = info.shape?.slice(1);
  if (want?.some((d, i) => typeof d === 'number' && d !== ds.shape[i])) {
    throw new ModelError(`${fm.source}: input '${input}' expects images [${want}], data set ${ds.name} has [${ds.shape}]`);
  }
  const output = fm.outputNames[0]!;
  const outInfo = fm.model.graph.outputs[0]!;
  const classes = outInfo.shape?.[outInfo.shape.length - 1];
  if (typeof classes === 'number' && classes !== ds.classes.length) {
    throw new ModelError(`${fm.source}: output '${output}' has ${classes} classes, data set ${ds.name} has ${ds.classes.length}`);
  }
  return { input, output };
}

/** Train `fm` in place on `ds` with softmax cross-entropy; returns one summary per epoch. */
export async function train(fm: FloatModel, ds: Dataset, opts: TrainOptions): Promise<EpochResult[]> {
  const { input, output } = classifierIo(fm, ds);
  const bs = opts.batchSize ?? 64;
  const optName = opts.optimizer ?? 'adam';
  const baseLr = opts.lr ?? (optName === 'adam' ? 1e-3 : 0.05);
  const vars = opts.variables ?? fm.trainableVariables();
  if (vars.length === 0) throw new ModelError(`${fm.source}: nothing to train (no trainable variables)`);
  const optimizer = optName === 'adam' ? tf.train.adam(baseLr) : tf.train.momentum(baseLr, opts.momentum ?? 0.9);
  const stepsPerEpoch = Math.ceil(ds.n / bs);
  const totalSteps = stepsPerEpoch * opts.epochs;
  const classes = ds.classes.length;
  const [c, h, w] = ds.shape;
  const results: EpochResult[] = [];
  let globalStep = 0;
  try {
    for (let epoch = 1; epoch <= opts.epochs; epoch++) {
      const t0 = performance.now();
      let lossSum = 0;
      let correct = 0;
      let step = 0;
      for (const b of batches(ds, bs, { shuffle: true, seed: (opts.seed ?? 0) + epoch })) {
        const lr = opts.schedule === 'constant' ? baseLr : 0.5 * baseLr * (1 + Math.cos((Math.PI * globalStep) / totalSteps));
        (optimizer as unknown as { learningRate: number }).learningRate = lr;
        const [loss, nCorrect] = tf.tidy(() => {
          const x = tf.tensor4d(b.x, [b.n, c, h, w]);
          const y = tf.oneHot(tf.tensor1d(b.y, 'int32'), classes);
          let logits: tf.Tensor | undefined;
          const { value, grads } = tf.variableGrads(() => {
            // keep(): the gradient scope frees intermediates, but the accuracy count needs the logits.
            logits = tf.keep(fm.forward({ [input]: x }, { training: true })[output]!);
            return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
          }, vars);
          optimizer.applyGradients(grads as tf.NamedTensorMap as never);
          if (opts.weightDecay) for (const v of vars) v.assign(tf.mul(v, 1 - lr * opts.weightDecay));
          const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits!, 1), tf.argMax(y, 1)), 'int32'));
          const res: [number, number] = [value.dataSync()[0]!, hits.dataSync()[0]!];
          logits!.dispose();
          return res;
        });
        fm.updateBatchNormStats();
        if (!Number.isFinite(loss)) throw new Error(`training diverged at epoch ${epoch} step ${step + 1} (loss ${loss}); lower the learning rate`);
        lossSum += loss * b.n;
        correct += nCorrect;
        step++;
        globalStep++;
        opts.onStep?.({ epoch, step, steps: stepsPerEpoch, loss });
        // Yield to the event loop so progress bars and signals are serviced.
        if (step % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      const seconds = (performance.now() - t0) / 1000;
      const r: EpochResult = { epoch, loss: lossSum / ds.n, trainAccuracy: correct / ds.n, seconds, samplesPerSecond: ds.n / seconds };
      if (opts.validation) r.valAccuracy = evaluate(fm, opts.validation).accuracy;
      results.push(r);
      opts.onEpoch?.(r);
    }
  } finally {
    optimizer.dispose();
  }
  return results;
}

/** Top-1 accuracy and confusion matrix of `fm` on `ds` (inference mode). */
export function evaluate(fm: FloatModel, ds: Dataset, opts: { batchSize?: number; onBatch?: (done: number) => void } = {}): EvalResult {
  const { input, output } = classifierIo(fm, ds);
  const k = ds.classes.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const predictions = new Uint8Array(ds.n);
  const [c, h, w] = ds.shape;
  let done = 0;
  let correct = 0;
  for (const b of batches(ds, opts.batchSize ?? 256)) {
    const pred = tf.tidy(() => tf.argMax(fm.forward({ [input]: tf.tensor4d(b.x, [b.n, c, h, w]) })[output]!, 1).dataSync());
    for (let i = 0; i < b.n; i++) {
      const p = pred[i]!;
      predictions[done + i] = p;
      confusion[b.y[i]!]![p]!++;
      if (p === b.y[i]) correct++;
    }
    done += b.n;
    opts.onBatch?.(done);
  }
  return { n: ds.n, correct, accuracy: ds.n ? correct / ds.n : 0, confusion, predictions };
}
