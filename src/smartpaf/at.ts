/**
 * Fine-tuning strategies after a PAF replacement:
 * - Alternate Training (AT): alternate between training only the layer's PAF coefficients and only
 *   the linear layers feeding it (`linearGroup`), switching when a group of epochs stops improving
 *   validation accuracy, until both groups stop improving (or the group budget runs out);
 * - fine-tune all (the prior-work baseline): every trainable variable at once, same epoch budget.
 * Both keep the best validation snapshot (the same selection rule for both, so neither is favoured).
 * BatchNorm statistics are frozen by the caller (`options.batchNorm = 'frozen'` on the FloatModel).
 */
import type { Dataset } from '../nn/data/dataset.js';
import { defaultTrainable, type FloatModel } from '../nn/runtime.js';
import { tf } from '../nn/tf.js';
import { evaluate, type StepProgress, train } from '../nn/train.js';
import { isPafCoefficient, pafLayers } from './graph.js';
import { linearGroup } from './layers.js';

/** Learning rates and weight decays of the two AT groups and of fine-tune-all. */
export interface FineTuneRates {
  pafLr: number;
  pafWeightDecay: number;
  linearLr: number;
  linearWeightDecay: number;
  /** Fine-tune-all (baseline) learning rate and weight decay. */
  allLr: number;
  allWeightDecay: number;
}

/**
 * Defaults: the paper's AT rates (1e-4 PAF, 1e-5 linear, decays 0.01 / 0.1) scaled ×10, because our
 * budget is a few epochs of a 54k-image data set rather than ImageNet epochs; the 10:1 ratio is kept.
 * Fine-tune-all uses the PAF rate for everything.
 */
export const DEFAULT_RATES: FineTuneRates = { pafLr: 1e-3, pafWeightDecay: 0.01, linearLr: 1e-4, linearWeightDecay: 0.1, allLr: 1e-3, allWeightDecay: 0.01 };

/** Common options of the fine-tuning strategies. */
export interface FineTuneOptions {
  train: Dataset;
  validation: Dataset;
  /** Epochs per group (AT) — fine-tune-all runs `epochsPerGroup × maxGroups` epochs. */
  epochsPerGroup: number;
  /** Group budget per layer (default 4). */
  maxGroups?: number;
  rates?: Partial<FineTuneRates>;
  batchSize?: number;
  seed?: number;
  onStep?: (label: string, p: StepProgress) => void;
  onGroup?: (g: GroupResult) => void;
}

/** One group of epochs. */
export interface GroupResult {
  node: string;
  group: 'paf' | 'linear' | 'all';
  epochs: number;
  valAccuracy: number;
  improved: boolean;
  /** Variables trained in this group. */
  variables: string[];
}

/** Outcome of fine-tuning one layer. */
export interface FineTuneResult {
  node: string;
  startValAccuracy: number;
  bestValAccuracy: number;
  groups: GroupResult[];
  epochs: number;
}

function snapshot(vars: tf.Variable[]): tf.Tensor[] {
  return vars.map((v) => tf.clone(v));
}
function restore(vars: tf.Variable[], snap: tf.Tensor[]): void {
  vars.forEach((v, i) => v.assign(snap[i]!));
}
function dispose(snap: tf.Tensor[]): void {
  snap.forEach((t) => t.dispose());
}

/** The variable groups AT alternates for PAF layer `node`: its coefficients, and the linear layers feeding it. */
export function atGroups(fm: FloatModel, node: string): { paf: string[]; linear: string[] } {
  const layer = pafLayers(fm.model).find((l) => l.node === node);
  if (!layer) throw new Error(`${fm.source}: node '${node}' is not a PAF layer`);
  const trainable = (name: string) => defaultTrainable(name, fm.model) && !isPafCoefficient(name, fm.model);
  return { paf: layer.coefficientNames, linear: linearGroup(fm.model, node, trainable) };
}

async function runGroup(fm: FloatModel, names: string[], lr: number, wd: number, label: string, o: FineTuneOptions, seedOffset: number): Promise<void> {
  const vars = names.map((n) => fm.params.get(n)!).filter(Boolean);
  await train(fm, o.train, {
    epochs: o.epochsPerGroup,
    batchSize: o.batchSize ?? 64,
    optimizer: 'adam',
    lr,
    weightDecay: wd,
    schedule: 'constant',
    seed: (o.seed ?? 0) + seedOffset * 1000,
    variables: vars,
    onStep: o.onStep ? (p) => o.onStep!(label, p) : undefined,
  });
}

/** Alternate Training of PAF layer `node` in `fm` (in place). */
export async function alternateTrain(fm: FloatModel, node: string, o: FineTuneOptions): Promise<FineTuneResult> {
  const r = { ...DEFAULT_RATES, ...o.rates };
  const groups = atGroups(fm, node);
  const all = [...groups.paf, ...groups.linear].map((n) => fm.params.get(n)!);
  const maxGroups = o.maxGroups ?? 4;
  const start = evaluate(fm, o.validation).accuracy;
  let best = start;
  let snap = snapshot(all);
  const out: GroupResult[] = [];
  let current: 'paf' | 'linear' = 'paf';
  let failsInRow = 0;
  try {
    for (let g = 0; g < maxGroups && failsInRow < 2; g++) {
      const names = groups[current];
      if (names.length === 0) {
        current = current === 'paf' ? 'linear' : 'paf';
        failsInRow++;
        continue;
      }
      const [lr, wd] = current === 'paf' ? [r.pafLr, r.pafWeightDecay] : [r.linearLr, r.linearWeightDecay];
      await runGroup(fm, names, lr, wd, `${node} ${current}`, o, g);
      const acc = evaluate(fm, o.validation).accuracy;
      const improved = acc > best;
      const res: GroupResult = { node, group: current, epochs: o.epochsPerGroup, valAccuracy: acc, improved, variables: names };
      out.push(res);
      o.onGroup?.(res);
      if (improved) {
        best = acc;
        dispose(snap);
        snap = snapshot(all);
        failsInRow = 0;
      } else {
        // This group stopped improving: go back to the best weights and switch groups.
        restore(all, snap);
        current = current === 'paf' ? 'linear' : 'paf';
        failsInRow++;
      }
    }
  } finally {
    dispose(snap);
  }
  return { node, startValAccuracy: start, bestValAccuracy: best, groups: out, epochs: out.reduce((a, g) => a + g.epochs, 0) };
}

/** Prior-work fine-tuning: all trainable variables together, group by group, best validation snapshot kept. */
export async function fineTuneAll(fm: FloatModel, node: string, o: FineTuneOptions): Promise<FineTuneResult> {
  const r = { ...DEFAULT_RATES, ...o.rates };
  const vars = fm.trainableVariables();
  const names = [...fm.params.entries()].filter(([, v]) => v.trainable).map(([k]) => k);
  const maxGroups = o.maxGroups ?? 4;
  const start = evaluate(fm, o.validation).accuracy;
  let best = start;
  let snap = snapshot(vars);
  const out: GroupResult[] = [];
  try {
    for (let g = 0; g < maxGroups; g++) {
      await runGroup(fm, names, r.allLr, r.allWeightDecay, `${node} all`, o, g);
      const acc = evaluate(fm, o.validation).accuracy;
      const improved = acc > best;
      const res: GroupResult = { node, group: 'all', epochs: o.epochsPerGroup, valAccuracy: acc, improved, variables: names };
      out.push(res);
      o.onGroup?.(res);
      if (improved) {
        best = acc;
        dispose(snap);
        snap = snapshot(vars);
      }
    }
    restore(vars, snap);
  } finally {
    dispose(snap);
  }
  return { node, startValAccuracy: start, bestValAccuracy: best, groups: out, epochs: out.reduce((a, g) => a + g.epochs, 0) };
}
