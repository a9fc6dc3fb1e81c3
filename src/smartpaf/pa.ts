/**
 * Progressive Approximation (PA): replace the nonlinear layers one at a time in inference order,
 * each starting from its CT coefficients (when given), fine-tuning after every replacement so later
 * layers are tuned on the distribution the already-approximated earlier layers produce.
 */

import { FloatModel } from '../nn/runtime.js';
import type { Model } from '../onnx/ir.js';
import { alternateTrain, type FineTuneOptions, type FineTuneResult, fineTuneAll } from './at.js';
import { replaceActivations } from './graph.js';
import { nonlinearLayers } from './layers.js';
import type { Paf } from './paf.js';

/** Options of {@link progressiveApproximation}. */
export interface PaOptions extends FineTuneOptions {
  /** Per-node starting coefficients (CT); default the PAF's own. */
  coefficients?: Readonly<Record<string, readonly (readonly number[])[]>>;
  /** 'at' (SmartPAF) or 'all' (fine-tune everything after each step). */
  fineTune: 'at' | 'all';
  maxPool?: boolean;
  source?: string;
  /** Called before each replacement with the node and its position. */
  onReplace?: (node: string, index: number, total: number) => void;
}

/** Result of PA: the fully replaced model (dynamic scale) and the per-layer fine-tuning record. */
export interface PaResult {
  model: Model;
  /** Nodes in the order they were replaced. */
  order: string[];
  steps: FineTuneResult[];
}

/** Run PA on the exact `model`; returns a model whose nonlinear layers are all PAFs (dynamic scale). */
export async function progressiveApproximation(model: Model, paf: Paf, o: PaOptions): Promise<PaResult> {
  const layers = nonlinearLayers(model, { maxPool: o.maxPool, source: o.source });
  let m = model;
  const steps: FineTuneResult[] = [];
  const order: string[] = [];
  for (const [i, l] of layers.entries()) {
    if (l.replaced) continue;
    o.onReplace?.(l.node, i, layers.length);
    const coefs = o.coefficients?.[l.node];
    m = replaceActivations(m, paf, { nodes: [l.node], maxPool: o.maxPool, coefficients: coefs ? { [l.node]: coefs } : undefined, source: o.source });
    order.push(l.node);
    const fm = await FloatModel.create(m, { source: o.source, options: { batchNorm: 'frozen' } });
    try {
      steps.push(await (o.fineTune === 'at' ? alternateTrain(fm, l.node, o) : fineTuneAll(fm, l.node, o)));
      m = fm.toModel();
    } finally {
      fm.dispose();
    }
  }
  return { model: m, order, steps };
}
