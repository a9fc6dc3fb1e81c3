/**
 * Fine-tuning with the simulator in the loop: train the model with its Relu nodes replaced by
 * simulated reduced-ring ReLUs (fresh random shares every step), then write the new weights into
 * the original graph, whose Relu nodes stay plain Relu so the MPC engine runs it.
 */
import type { Dataset } from '../nn/data/dataset.js';
import { FloatModel } from '../nn/runtime.js';
import { type EpochResult, type StepProgress, train } from '../nn/train.js';
import type { Model } from '../onnx/ir.js';
import { SeededRng } from '../seeded-rng.js';
import { toSimModel, withWeightsOf } from './graph.js';
import { registerHummingbirdOps, SIM_OPTION, simState } from './op.js';
import type { BitRange } from './simulate.js';

/** Options of {@link finetune}. */
export interface FinetuneOptions {
  epochs: number;
  /** Adam learning rate (default 2e-4, cosine decay). */
  lr?: number;
  batchSize?: number;
  seed?: number;
  fracBits?: number;
  onStep?: (p: StepProgress) => void;
  onEpoch?: (e: EpochResult) => void;
}

/** Fine-tune `model` under `ranges` on `data`; returns the model with plain Relu nodes and the new weights. */
export async function finetune(
  model: Model,
  ranges: Record<string, BitRange>,
  data: Dataset,
  opts: FinetuneOptions,
): Promise<{ model: Model; history: EpochResult[] }> {
  registerHummingbirdOps();
  // Simulation randomness, not cryptographic: a seeded stream.
  const state = simState({ ranges, mode: 'random', rng: new SeededRng(opts.seed ?? 7), fracBits: opts.fracBits ?? 16 });
  const fm = await FloatModel.create(toSimModel(model, ranges), { options: { [SIM_OPTION]: state } });
  try {
    const history = await train(fm, data, {
      epochs: opts.epochs,
      lr: opts.lr ?? 2e-4,
      batchSize: opts.batchSize ?? 64,
      optimizer: 'adam',
      seed: opts.seed ?? 7,
      onStep: opts.onStep,
      onEpoch: opts.onEpoch,
    });
    return { model: withWeightsOf(model, fm.toModel()), history };
  } finally {
    fm.dispose();
  }
}
