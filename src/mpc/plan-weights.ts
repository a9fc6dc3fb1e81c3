/**
 * Checks on a plan's weights: every weight array with its node, the fixed-point precision the
 * weights allow (--frac-bits bounds) and the refusal of non-finite or huge values. Split from plan.ts.
 */
import { ModelError, type Node } from '../onnx/ir.js';
import type { MpcPlan } from './plan.js';
import { convOutSize } from './ring.js';

/** Every weight array of the plan with the node it belongs to (for validation). */
export function planWeights(plan: MpcPlan): { node: Node; what: string; values: Float32Array }[] {
  const out: { node: Node; what: string; values: Float32Array }[] = [];
  for (const s of plan.steps) {
    if (s.kind === 'conv' || s.kind === 'gemm') {
      out.push({ node: s.node, what: 'weight', values: s.weight });
      if (s.bias) out.push({ node: s.node, what: 'bias', values: s.bias });
    } else if (s.kind === 'affine') {
      if (s.scale) out.push({ node: s.node, what: 'scale', values: s.scale });
      if (s.shift) out.push({ node: s.node, what: 'shift', values: s.shift });
    } else if (s.kind === 'prelu') out.push({ node: s.node, what: 'slope', values: s.slope });
  }
  return out;
}

/** Smallest accepted --frac-bits: below it the rounding of inputs and weights costs agreement (see test/mpc/plan-fixed.test.ts). */
export const MIN_FRAC_BITS = 10;
/** Largest accepted --frac-bits for any model: beyond it even a one-layer model's products wrap too often. */
const CAP_FRAC_BITS = 24;
/** Largest weight magnitude accepted: a larger one is a broken or hostile model, not a classifier. */
export const MAX_WEIGHT = 4096;

/**
 * Largest --frac-bits the fixed-point headroom allows for `plan`. Each truncated product holds
 * v·2^(2f) in the ring and the local truncation fails (an error of 2^(64−f) in value) with
 * probability |v|·2^(2f−64); summed over the T products of one inference, requiring
 * T·2^(2f−64)·2^6 ≤ 2^−4 (|v| up to 64 for a logit or activation) gives f ≤ (54 − log2 T)/2.
 */
export function maxFracBits(plan: MpcPlan): number {
  let products = 0;
  for (const s of plan.steps) {
    if (s.kind === 'conv') {
      const { oh, ow } = convOutSize(s.geom);
      products += s.geom.n * s.geom.co * oh * ow;
    } else if (s.kind === 'gemm') products += s.m * s.n;
    else if (s.kind === 'affine' && s.scale) products += s.batch * s.scale.length;
    else if (s.kind === 'prelu') products += s.batch * s.slope.length;
  }
  const perImage = Math.max(1, products / plan.batch);
  return Math.min(CAP_FRAC_BITS, Math.floor((54 - Math.log2(perImage)) / 2));
}

/** Refuse non-finite or huge weights (after BN folding), naming the node. */
export function checkPlanWeights(plan: MpcPlan): void {
  for (const { node, what, values } of planWeights(plan)) {
    let worst = 0;
    for (const v of values) {
      if (!Number.isFinite(v))
        throw new ModelError(
          `${plan.source}: node '${node.name}' (${node.opType}): ${what} holds a non-finite value (${v}); the fixed-point encoding cannot represent it`,
        );
      worst = Math.max(worst, Math.abs(v));
    }
    if (worst > MAX_WEIGHT)
      throw new ModelError(
        `${plan.source}: node '${node.name}' (${node.opType}): ${what} magnitude ${worst.toExponential(2)} ` +
          `exceeds ${MAX_WEIGHT}, beyond the fixed-point headroom`,
      );
  }
}
