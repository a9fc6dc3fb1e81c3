/** Tiny generated PAF models for the FHE tests. */
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, type Model } from '../../src/onnx/ir.js';
import { expandPafs, replaceActivations } from '../../src/smartpaf/graph.js';
import { getPaf, makePaf, type Paf } from '../../src/smartpaf/paf.js';

/** Deterministic pseudo-random numbers in [−a, a] (tests only). */
export function rand(n: number, seed: number, a = 1): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32 - 0.5) * 2 * a;
  });
}

/** conv(1→2, 3×3, pad 1) → ReLU → 2×2 pool (average or max) → flatten → gemm(→4) on a 1×8×8 image. */
function tinyCnnWith(pool: 'AveragePool' | 'MaxPool'): Model {
  const b = new GraphBuilder(pool === 'MaxPool' ? 'tiny-cnn-max' : 'tiny-cnn');
  const x = b.input('input', 'float32', ['batch', 1, 8, 8]);
  const w1 = b.init('conv.weight', floatTensor([2, 1, 3, 3], rand(18, 1, 0.5)));
  const b1 = b.init('conv.bias', floatTensor([2], [0.1, -0.05]));
  const c = b.op('Conv', [x, w1, b1], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv' });
  const r = b.op('Relu', [c], {}, { name: 'relu' });
  const p = b.op(pool, [r], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool' });
  const f = b.op('Flatten', [p], { axis: 1 }, { name: 'flatten' });
  const w2 = b.init('fc.weight', floatTensor([4, 32], rand(128, 2, 0.3)));
  const b2 = b.init('fc.bias', floatTensor([4], [0.01, 0.02, -0.03, 0.04]));
  const y = b.op('Gemm', [f, w2, b2], { transB: 1, alpha: float(1) }, { name: 'fc', output: 'logits' });
  b.output(y, 'float32', ['batch', 4]);
  return b.build();
}

/** conv(1→2, 3×3, pad 1) → ReLU → avgpool 2 → flatten → gemm(→4) on a 1×8×8 image. */
export const tinyCnn = (): Model => tinyCnnWith('AveragePool');

/** The tiny CNN with its ReLU replaced by a static-scale f1g2 PAF, as PafRelu nodes and expanded. */
export function tinyPafModels(paf: string | Paf = 'f1g2', scale = 2): { nodes: Model; expanded: Model } {
  const nodes = replaceActivations(tinyCnn(), typeof paf === 'string' ? getPaf(paf) : paf, { scaleMode: 'static', scales: { relu: scale } });
  return { nodes, expanded: expandPafs(nodes) };
}

/** conv(1→2, 3×3, pad 1) → ReLU → MaxPool 2×2 → flatten → gemm(→4) on a 1×8×8 image. */
export const tinyCnnMax = (): Model => tinyCnnWith('MaxPool');

/** The tiny MaxPool CNN with ReLU and MaxPool replaced by static-scale PAFs (default: one f1 stage, depth 3 per PAF). */
export function tinyMaxPafModels(paf: Paf = makePaf('f1', [[1.5, -0.5]]), scales = { relu: 2, pool: 1.5 }): { nodes: Model; expanded: Model } {
  const nodes = replaceActivations(tinyCnnMax(), paf, { scaleMode: 'static', scales });
  return { nodes, expanded: expandPafs(nodes) };
}
