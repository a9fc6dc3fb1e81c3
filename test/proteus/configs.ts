/** Small zoo configurations shared by the Proteus tests (every zoo model, seconds in total). */

import type { Model, Tensor } from '../../src/onnx/ir.js';
import { ortSession, runOrt } from '../../src/onnx/ort.js';
import { buildZoo, zooNames } from '../../src/onnx/zoo/index.js';

const TRANSFORMER = { layers: 2, hidden: 64, heads: 4, seq: 8, vocab: 100 };

/** Build options per zoo model: big CNNs at 32×32, transformers tiny, small CNNs at defaults. */
export const SMALL: Record<string, Record<string, string | number>> = {
  'fmnist-cnn': {},
  lenet5: {},
  resnet20: {},
  resnet18: { input: '3x32x32' },
  resnet50: { input: '3x32x32' },
  vgg16: { input: '3x32x32' },
  mobilenetv2: { input: '3x32x32' },
  'bert-base': TRANSFORMER,
  'gpt2-small': TRANSFORMER,
};

/** Every zoo model at its small configuration (fails loudly if the zoo grows a model we lack). */
export function smallZoo(): [string, Model][] {
  return zooNames.map((n) => {
    const opts = SMALL[n];
    if (!opts) throw new Error(`test/proteus/configs.ts has no small configuration for zoo model '${n}'`);
    return [n, buildZoo(n, opts)];
  });
}

/** Domain-qualified op-type histogram, as a sorted object for deepEqual. */
export function opHistogram(m: Model): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of m.graph.nodes) {
    const k = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    h[k] = (h[k] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(h).sort(([a], [b]) => a.localeCompare(b)));
}

/** Run a model in onnxruntime with graph optimization disabled (the reference), releasing the session. */
export async function runPlain(m: Model, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const s = await ortSession(m, { graphOptimizationLevel: 'disabled' });
  try {
    return await runOrt(m, feeds, s);
  } finally {
    await s.release();
  }
}
