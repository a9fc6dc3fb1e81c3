/**
 * The float runtime's simulated reduced-ring ReLU: op `ReducedRelu` in domain `ai.privml.hummingbird`.
 * Forward: x · mask with the mask the MPC would produce (see simulate.ts); backward: the mask is a
 * constant, so gradients flow through x · mask and fine-tuning with the simulator in the loop works.
 *
 * The bit range comes from the node's `msb`/`lsb` attributes, overridden per node name by the
 * runtime option `hummingbird` (a {@link SimState}), so one loaded model can evaluate many configs.
 */

import { type OpContext, type RtValue, registerOp } from '../nn/ops/registry.js';
import { tf } from '../nn/tf.js';
import { attrInt } from '../onnx/ir.js';
import { SeededRng } from '../seeded-rng.js';
import { type BitRange, type CarryMode, simulateMask } from './simulate.js';

/** ONNX domain of privml's HummingBird ops. */
export const HB_DOMAIN = 'ai.privml.hummingbird';
/** Op type of the simulated reduced-ring ReLU. */
export const REDUCED_RELU = 'ReducedRelu';
/** Key of the {@link SimState} in the FloatModel's `options`. */
export const SIM_OPTION = 'hummingbird';

/** Mutable simulation settings read by every ReducedRelu node at run time. */
export interface SimState {
  /** Per node name: bit range (overrides the node attributes; absent = attributes). */
  ranges: Record<string, BitRange>;
  /** Carry model (default 'random'). */
  mode: CarryMode;
  /** Randomness of mode 'random' (simulation only, not cryptographic; default seeded 0). */
  rng: SeededRng;
  /** Fixed-point fractional bits of the MPC ring (default 16). */
  fracBits: number;
  /** When set, every node records the fraction of its elements whose mask differs from exact ReLU. */
  misreads?: Record<string, { changed: number; total: number }>;
}

/** A fresh simulation state. */
export function simState(over: Partial<SimState> = {}): SimState {
  return { ranges: {}, mode: 'random', rng: new SeededRng(0), fracBits: 16, ...over };
}

function reducedRelu(ctx: OpContext): RtValue[] {
  const x = ctx.inputs[0];
  if (!x) throw new Error(`${ctx.source}: node '${ctx.node.name}' (${REDUCED_RELU}): missing input`);
  const st = ctx.options[SIM_OPTION] as SimState | undefined;
  const range = st?.ranges[ctx.node.name] ?? { msb: attrInt(ctx.node, 'msb', 64), lsb: attrInt(ctx.node, 'lsb', 0) };
  const fracBits = st?.fracBits ?? attrInt(ctx.node, 'frac_bits', 16);
  if (range.msb - range.lsb === 0) return [{ t: tf.clone(x.t), layout: x.layout }];
  if (range.msb === 64 && range.lsb === 0 && !st?.misreads) return [{ t: tf.relu(x.t), layout: x.layout }];
  const data = x.t.dataSync() as Float32Array;
  // Simulation randomness only (not a cryptographic path): a seeded xoshiro stream.
  const mask = simulateMask(data, range, fracBits, st?.mode ?? 'random', st?.rng ?? new SeededRng(0));
  if (st?.misreads) {
    let changed = 0;
    for (let i = 0; i < data.length; i++) if ((data[i]! >= 0 ? 1 : 0) !== mask[i]) changed++;
    const r = (st.misreads[ctx.node.name] ??= { changed: 0, total: 0 });
    r.changed += changed;
    r.total += data.length;
  }
  // x · mask with mask a constant: the gradient is mask · dy.
  return [{ t: tf.mul(x.t, tf.tensor(mask, x.t.shape, 'float32')), layout: x.layout }];
}

/** Register `ai.privml.hummingbird.ReducedRelu` in the float runtime's op table (idempotent). */
export function registerHummingbirdOps(): void {
  registerOp(REDUCED_RELU, reducedRelu, HB_DOMAIN);
}
