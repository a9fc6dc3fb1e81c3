/**
 * Runs a compiled model (`plan.ts`) on additive shares, layer by layer, on one party; both parties
 * run the same steps in the same order. Per-layer accounting: bytes, rounds, wall time.
 */
import type { PartyContext } from './context.js';
import { snapshotStats, diffStats } from './net/peer.js';
import { add, affinePublic, avgPool, convPublic, convSecret, gemmPublic, gemmSecret, globalAvgPool, shareInput } from './protocols/arith.js';
import { maxPool2d, relu, type ReluProtocol } from './protocols/compare.js';
import { encodeFixed, type Ring } from './ring.js';
import type { MpcPlan, Step } from './plan.js';

/** Bit range of one nonlinear layer's comparisons (HummingBird); [0, 64) is the exact ReLU. */
export interface BitRange {
  msb: number;
  lsb: number;
}

/** How the model's weights are treated. */
export type WeightMode = 'public' | 'secret';

/** Options of `runPlan`. */
export interface ExecOptions {
  /** 'public': both parties know the weights (local linear layers); 'secret': party 1 shares them. */
  weights: WeightMode;
  /** Comparison protocol of every ReLU/MaxPool ('signonly' default, or the CrypTen baseline). */
  reluProtocol?: ReluProtocol;
  /** Per nonlinear node name: its bit range (default [0, 64)). */
  reluConfig?: Record<string, BitRange>;
  /** Called after each layer with its accounting. */
  onLayer?: (s: LayerStat) => void;
}

/** Accounting of one executed layer on this party. */
export interface LayerStat {
  name: string;
  op: string;
  bytesSent: number;
  bytesReceived: number;
  rounds: number;
  ms: number;
}

/** Weights of the linear steps in fixed point, shared or public, prepared once per model. */
export interface PreparedWeights {
  mode: WeightMode;
  /** Per step index: [weight, bias?, scale?, shift?] ring tensors (shares in secret mode). */
  byStep: Map<number, { w?: Ring; b?: Ring; scale?: Ring; shift?: Ring }>;
}

/**
 * Encode (public mode) or share (secret mode: party 1 holds the values, party 0 receives shares of
 * them and never reads the plan's weight values) the weights of every linear step.
 */
export async function prepareWeights(ctx: PartyContext, plan: MpcPlan, mode: WeightMode): Promise<PreparedWeights> {
  const f = ctx.fracBits;
  const byStep = new Map<number, { w?: Ring; b?: Ring; scale?: Ring; shift?: Ring }>();
  const secret = async (v: Float32Array): Promise<Ring> =>
    shareInput(ctx, 1, ctx.party === 1 ? encodeFixed(v, f) : undefined, v.length);
  for (let i = 0; i < plan.steps.length; i++) {
    const s = plan.steps[i]!;
    if (s.kind === 'conv' || s.kind === 'gemm') {
      if (mode === 'public') byStep.set(i, { w: encodeFixed(s.weight, f), b: s.bias && encodeFixed(s.bias, f) });
      else byStep.set(i, { w: await secret(s.weight), b: s.bias && (await secret(s.bias)) });
    } else if (s.kind === 'affine') {
      // Per-channel affine maps (standalone BatchNorm, constant Add) stay public: they are folded
      // statistics, not learned matrices, and the executor needs them as public scalars.
      byStep.set(i, { scale: encodeFixed(s.scale, f), shift: encodeFixed(s.shift, f) });
    }
  }
  return { mode, byStep };
}

/** Run `plan` on this party's share of the input; returns this party's share of the output. */
export async function runPlan(ctx: PartyContext, plan: MpcPlan, weights: PreparedWeights, input: Ring, opts: ExecOptions): Promise<{ output: Ring; layers: LayerStat[] }> {
  const values = new Map<string, Ring>([[plan.input, input]]);
  const layers: LayerStat[] = [];
  const protocol = opts.reluProtocol ?? 'signonly';
  const get = (name: string, step: Step): Ring => {
    const v = values.get(name);
    if (!v) throw new Error(`${plan.source}: node '${step.node.name}' needs '${name}', which was not computed`);
    return v;
  };
  for (let i = 0; i < plan.steps.length; i++) {
    const s = plan.steps[i]!;
    const before = snapshotStats(ctx.peer.stats);
    const t0 = performance.now();
    const wts = weights.byStep.get(i);
    let y: Ring;
    switch (s.kind) {
      case 'conv':
        y = weights.mode === 'public' ? convPublic(ctx, get(s.input, s), wts!.w!, wts!.b, s.geom) : await convSecret(ctx, get(s.input, s), wts!.w!, wts!.b, s.geom);
        break;
      case 'gemm':
        y =
          weights.mode === 'public'
            ? gemmPublic(ctx, get(s.input, s), wts!.w!, wts!.b, s.m, s.k, s.n)
            : await gemmSecret(ctx, get(s.input, s), wts!.w!, wts!.b, s.m, s.k, s.n);
        break;
      case 'relu': {
        const r = opts.reluConfig?.[s.node.name];
        y = r && r.msb - r.lsb === 0 ? get(s.input, s) : await relu(ctx, get(s.input, s), { protocol, ...(r && protocol !== 'crypten' ? { msb: r.msb, lsb: r.lsb } : {}) });
        break;
      }
      case 'maxpool': {
        const r = opts.reluConfig?.[s.node.name];
        y = await maxPool2d(ctx, get(s.input, s), s.geom, { protocol, ...(r && protocol !== 'crypten' ? { msb: r.msb, lsb: r.lsb } : {}) });
        break;
      }
      case 'avgpool':
        y = avgPool(ctx, get(s.input, s), s.geom, s.divisor);
        break;
      case 'gap':
        y = globalAvgPool(ctx, get(s.input, s), s.n, s.c, s.hw);
        break;
      case 'affine':
        y = affinePublic(ctx, get(s.input, s), wts!.scale!, wts!.shift!, s.outer, s.inner);
        break;
      case 'add':
        y = add(ctx, get(s.inputs[0], s), get(s.inputs[1], s));
        break;
      case 'alias':
        y = get(s.input, s);
        break;
    }
    values.set(s.output, y);
    const d = diffStats(ctx.peer.stats, before);
    const stat: LayerStat = { name: s.node.name, op: s.node.opType, bytesSent: d.bytesSent, bytesReceived: d.bytesReceived, rounds: d.rounds, ms: performance.now() - t0 };
    layers.push(stat);
    opts.onLayer?.(stat);
  }
  return { output: values.get(plan.output)!, layers };
}
