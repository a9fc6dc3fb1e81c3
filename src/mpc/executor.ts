/**
 * Runs a compiled model (`plan.ts`) on additive shares, layer by layer, on one party; both parties
 * run the same steps in the same order. Per-layer accounting: bytes, rounds, wall time.
 */
import type { CommStats, PartyContext } from './context.js';
import { diffStats, snapshotStats } from './net/peer.js';
import type { MpcPlan, Step } from './plan.js';
import { addProfile, computeMs, emptyProfile, PROFILE_KEYS, type Profile, profiledContext } from './profile.js';
import {
  add,
  addBias,
  addPublic,
  avgPool,
  beaverMul,
  convPublic,
  convSecret,
  finishConv,
  finishGemm,
  gemmPublic,
  gemmSecret,
  globalAvgPool,
  mulPublicFixed,
  neg,
  shareInput,
  truncate,
} from './protocols/arith.js';
import { maxPool2d, type ReluProtocol, relu } from './protocols/compare.js';
import { encodeFixed, type Ring, ringAdd, ringMulBroadcast, ringSub } from './ring.js';
import type { LazyPool } from './threads/pool.js';

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
  /** Worker threads for public-weight convolutions and products over a batch (`--threads` > 1). */
  pool?: LazyPool;
  /** Interleaved lanes per large comparison layer (compare.ts `lanes`; default there). */
  lanes?: number;
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
  /** Where the layer's time went (ms per kernel kind and wait; `other` = unattributed compute). */
  profile: Profile;
  /** Party compute (ms): the layer's time minus waiting for the peer and the dealer. */
  computeMs: number;
  /** Waiting for the peer plus waiting for the dealer (ms). */
  waitMs: number;
}

/** acc's profile, compute and wait times += l's (summing a layer over batches). */
export function addLayerProfile(acc: LayerStat, l: LayerStat): void {
  addProfile(acc.profile, l.profile);
  acc.computeMs += l.computeMs;
  acc.waitMs += l.waitMs;
}

function layerStat(name: string, op: string, ms: number, d: CommStats, p0: Profile, p1: Profile, local: boolean): LayerStat {
  const profile = emptyProfile();
  for (const k of PROFILE_KEYS) profile[k] = p1[k] - p0[k];
  profile.other = Math.max(0, ms - PROFILE_KEYS.reduce((a, k) => a + profile[k], 0));
  if (local) (profile.ring += profile.other), (profile.other = 0);
  return {
    name,
    op,
    bytesSent: d.bytesSent,
    bytesReceived: d.bytesReceived,
    rounds: d.rounds,
    ms,
    profile,
    computeMs: computeMs(profile),
    waitMs: profile.waitPeer + profile.waitDealer,
  };
}

/** Run one protocol call `f` as a profiled layer named `name` (e.g. the ReLU micro-benchmark). */
export async function profiledLayer<T>(
  ctx0: PartyContext,
  name: string,
  op: string,
  f: (ctx: PartyContext) => Promise<T>,
): Promise<{ value: T; stat: LayerStat }> {
  const ctx = profiledContext(ctx0);
  const before = snapshotStats(ctx.peer.stats),
    p0 = ctx.profile.snapshot(),
    t0 = performance.now();
  const value = await f(ctx);
  return { value, stat: layerStat(name, op, performance.now() - t0, diffStats(ctx.peer.stats, before), p0, ctx.profile.snapshot(), false) };
}

/** Layers whose work is local ring arithmetic: their unattributed time is ring compute. */
const LOCAL_KINDS = new Set<Step['kind']>(['conv', 'gemm', 'avgpool', 'gap', 'affine', 'add', 'gather', 'alias']);

/** Weights of the plan's steps in fixed point, shared or public, prepared once per model. */
export interface PreparedWeights {
  mode: WeightMode;
  /** Per step index: its ring tensors (shares in secret mode). */
  byStep: Map<number, { w?: Ring; b?: Ring; scale?: Ring; shift?: Ring; slope?: Ring }>;
}

/**
 * Encode (public mode) or share (secret mode: party 1 holds the values, party 0 receives shares of
 * them and never reads the plan's weight values) every constant that carries model information:
 * Conv/Gemm weights and biases (with folded BatchNorm and bias Adds), standalone affine scales and
 * shifts, PRelu slopes.
 */
export async function prepareWeights(ctx: PartyContext, plan: MpcPlan, mode: WeightMode): Promise<PreparedWeights> {
  const f = ctx.fracBits;
  const byStep: PreparedWeights['byStep'] = new Map();
  const enc = async (v: Float32Array | undefined): Promise<Ring | undefined> => {
    if (!v) return undefined;
    if (mode === 'public') return encodeFixed(v, f);
    return shareInput(ctx, 1, ctx.party === 1 ? encodeFixed(v, f) : undefined, v.length);
  };
  for (let i = 0; i < plan.steps.length; i++) {
    const s = plan.steps[i]!;
    if (s.kind === 'conv' || s.kind === 'gemm') byStep.set(i, { w: await enc(s.weight), b: await enc(s.bias) });
    else if (s.kind === 'affine') byStep.set(i, { scale: await enc(s.scale), shift: await enc(s.shift) });
    else if (s.kind === 'prelu') byStep.set(i, { slope: await enc(s.slope) });
  }
  return { mode, byStep };
}

/** A per-sample vector repeated for each of `batch` samples. */
function tile(v: Ring, batch: number): Ring {
  const out = new BigInt64Array(v.length * batch);
  for (let b = 0; b < batch; b++) out.set(v, b * v.length);
  return out;
}

/** Fixed-point x ⊙ c for a per-sample weight c: public (local) or shared (one Beaver multiplication). */
async function mulWeight(ctx: PartyContext, x: Ring, c: Ring, batch: number, secret: boolean): Promise<Ring> {
  if (!secret) return truncate(ctx, ringMulBroadcast(x, c, batch, 1), ctx.fracBits);
  return truncate(ctx, await beaverMul(ctx, x, tile(c, batch)), ctx.fracBits);
}

/** out[i] = concat(inputs)[index[i]] or the public constant (party 0 holds it) where index[i] = −1. */
function gatherLocal(ctx: PartyContext, inputs: Ring[], index: Int32Array, fill: number): Ring {
  const src = inputs.length === 1 ? inputs[0]! : concatRings(inputs);
  const out = new BigInt64Array(index.length);
  const e = ctx.party === 0 ? encodeFixed(Float32Array.of(fill), ctx.fracBits) : new BigInt64Array(1);
  const c = new Uint32Array(e.buffer, e.byteOffset, 2);
  // Copy through 32-bit views: no BigInt boxing per element.
  const s32 = new Uint32Array(src.buffer, src.byteOffset, src.length * 2),
    o32 = new Uint32Array(out.buffer);
  for (let i = 0; i < index.length; i++) {
    const j = index[i]!;
    if (j < 0) (o32[2 * i] = c[0]!), (o32[2 * i + 1] = c[1]!);
    else (o32[2 * i] = s32[2 * j]!), (o32[2 * i + 1] = s32[2 * j + 1]!);
  }
  return out;
}

function concatRings(xs: Ring[]): Ring {
  const out = new BigInt64Array(xs.reduce((a, x) => a + x.length, 0));
  let o = 0;
  for (const x of xs) out.set(x, o), (o += x.length);
  return out;
}

const fixedScalar = (ctx: PartyContext, v: number): bigint => encodeFixed(Float64Array.of(v), ctx.fracBits)[0]!;

/** Run `plan` on this party's share of the input; returns this party's share of the output. */
export async function runPlan(
  ctx0: PartyContext,
  plan: MpcPlan,
  weights: PreparedWeights,
  input: Ring,
  opts: ExecOptions,
): Promise<{ output: Ring; layers: LayerStat[] }> {
  const ctx = profiledContext(ctx0);
  const values = new Map<string, Ring>([[plan.input, input]]);
  const layers: LayerStat[] = [];
  const protocol = opts.reluProtocol ?? 'signonly';
  const lanes = opts.lanes ? { lanes: opts.lanes } : {};
  const get = (name: string, step: Step): Ring => {
    const v = values.get(name);
    if (!v) throw new Error(`${plan.source}: node '${step.node.name}' needs '${name}', which was not computed`);
    return v;
  };
  for (let i = 0; i < plan.steps.length; i++) {
    const s = plan.steps[i]!;
    const before = snapshotStats(ctx.peer.stats);
    const p0 = ctx.profile.snapshot();
    const t0 = performance.now();
    const wts = weights.byStep.get(i);
    let y: Ring;
    switch (s.kind) {
      case 'conv':
        if (weights.mode === 'secret') y = await convSecret(ctx, get(s.input, s), wts!.w!, wts!.b, s.geom);
        else if (opts.pool && s.geom.n > 1) y = finishConv(ctx, await opts.pool.get().conv2d(get(s.input, s), wts!.w!, s.geom), wts!.b, s.geom);
        else y = convPublic(ctx, get(s.input, s), wts!.w!, wts!.b, s.geom);
        break;
      case 'gemm':
        if (weights.mode === 'secret') y = await gemmSecret(ctx, get(s.input, s), wts!.w!, wts!.b, s.m, s.k, s.n);
        else if (opts.pool && s.m > 1) y = finishGemm(ctx, await opts.pool.get().matmul(get(s.input, s), wts!.w!, s.m, s.k, s.n), wts!.b, s.m);
        else y = gemmPublic(ctx, get(s.input, s), wts!.w!, wts!.b, s.m, s.k, s.n);
        break;
      case 'relu': {
        const r = opts.reluConfig?.[s.node.name];
        y =
          r && r.msb - r.lsb === 0
            ? get(s.input, s)
            : await relu(ctx, get(s.input, s), { protocol, ...lanes, ...(r && protocol !== 'crypten' ? { msb: r.msb, lsb: r.lsb } : {}) });
        break;
      }
      case 'maxpool': {
        const r = opts.reluConfig?.[s.node.name];
        y = await maxPool2d(ctx, get(s.input, s), s.geom, { protocol, ...lanes, ...(r && protocol !== 'crypten' ? { msb: r.msb, lsb: r.lsb } : {}) });
        break;
      }
      case 'avgpool':
        y = avgPool(ctx, get(s.input, s), s.geom, s.divisor);
        break;
      case 'gap':
        y = globalAvgPool(ctx, get(s.input, s), s.n, s.c, s.hw);
        break;
      case 'affine': {
        const secret = weights.mode === 'secret';
        let x = get(s.input, s);
        if (s.negate) x = neg(ctx, x);
        if (wts!.scale) x = await mulWeight(ctx, x, wts!.scale, s.batch, secret);
        y = wts!.shift ? addBias(ctx, x, wts!.shift, s.batch, 1, secret) : x;
        break;
      }
      case 'add':
        y = add(ctx, get(s.inputs[0], s), get(s.inputs[1], s));
        break;
      case 'gather':
        y = gatherLocal(
          ctx,
          s.inputs.map((n) => get(n, s)),
          s.index,
          s.fill,
        );
        break;
      case 'clip': {
        const x = get(s.input, s);
        const cmp = { protocol, ...lanes };
        if (s.lo !== undefined && s.hi !== undefined) {
          // min(max(x, lo), hi) = lo + ReLU(x − lo) − ReLU(x − hi): both comparisons in one call.
          const both = concatRings([addPublic(ctx, x, -fixedScalar(ctx, s.lo)), addPublic(ctx, x, -fixedScalar(ctx, s.hi))]);
          const r = await relu(ctx, both, cmp);
          y = addPublic(ctx, ringSub(r.subarray(0, x.length), r.subarray(x.length)), fixedScalar(ctx, s.lo));
        } else if (s.lo !== undefined) y = addPublic(ctx, await relu(ctx, addPublic(ctx, x, -fixedScalar(ctx, s.lo)), cmp), fixedScalar(ctx, s.lo));
        else if (s.hi !== undefined)
          y = addPublic(ctx, neg(ctx, await relu(ctx, addPublic(ctx, neg(ctx, x), fixedScalar(ctx, s.hi)), cmp)), fixedScalar(ctx, s.hi));
        else y = x;
        break;
      }
      case 'leaky':
      case 'prelu': {
        // y = ReLU(x) + slope·(x − ReLU(x)): one comparison and one multiplication by the slope.
        const x = get(s.input, s);
        const r = await relu(ctx, x, { protocol, ...lanes });
        const neg_ = ringSub(x, r);
        const scaled =
          s.kind === 'leaky'
            ? mulPublicFixed(ctx, neg_, fixedScalar(ctx, s.alpha))
            : await mulWeight(ctx, neg_, wts!.slope!, s.batch, weights.mode === 'secret');
        y = ringAdd(r, scaled);
        break;
      }
      case 'alias':
        y = get(s.input, s);
        break;
    }
    values.set(s.output, y);
    const stat = layerStat(
      s.node.name,
      s.node.opType,
      performance.now() - t0,
      diffStats(ctx.peer.stats, before),
      p0,
      ctx.profile.snapshot(),
      LOCAL_KINDS.has(s.kind),
    );
    layers.push(stat);
    opts.onLayer?.(stat);
  }
  return { output: values.get(plan.output)!, layers };
}
