/**
 * Trainable PAF activations for the float runtime, registered into its open op table:
 *
 *   ai.privml.smartpaf::PafRelu(x, c_1, …, c_S [, scale])     → (x + x·sign(x/s))/2
 *   ai.privml.smartpaf::PafMaxPool(x, c_1, …, c_S [, scale])  → MaxPool window by a PAF max tree
 *
 * c_i is stage i's 1-D odd-coefficient tensor (a float initializer, hence a trainable variable).
 * Attributes: `paf` (library name, informational), `stages` (S), `scale_mode` ('dynamic' | 'static'),
 * `scale` (float, static mode when no scale input), and for PafMaxPool MaxPool's window attributes.
 *
 * Dynamic scale: s = max|x| over the batch, recomputed every forward and treated as a constant
 * (no gradient through s, as in SmartPAF's reference code). PafMaxPool's dynamic scale is taken per
 * tree level: s_l = max|a − b| over that level's comparisons. Static scale: one s per layer.
 * Sign is evaluated with poly.ts's plan, so the operation order matches the ONNX expansion and FHE.
 */

import { asNhwc, logical, logicalShape, nhwc, type OpContext, opError, type RtValue, registerOp } from '../nn/ops/index.js';
import { tf } from '../nn/tf.js';
import { attrFloat, attrInt, attrString } from '../onnx/ir.js';
import { type PlanArith, planOdd, runPlan } from './poly.js';
import { maxTree, poolGeometry, windowOffsets } from './pool.js';

/** Domain of the SmartPAF ops. */
export const SMARTPAF_DOMAIN = 'ai.privml.smartpaf';
/** Key of the SmartPAF settings in the float runtime's `options`. */
export const SMARTPAF_OPTIONS_KEY = 'smartpaf';

/** Range statistics of a static-scale layer: how often |input of sign| exceeded s, and by how much. */
export interface RangeStats {
  /** Elements (ReLU inputs or max differences) with |v| > s. */
  outside: number;
  /** Elements checked. */
  total: number;
  /** Largest |v| / s seen (> 1 means the PAF ran outside [−1, 1]). */
  maxRatio: number;
}

/**
 * Collects per-layer scale information while a model runs: the running max of dynamic scales
 * (Static Scale's deployment value) and out-of-range statistics of static-scale layers.
 */
export class PafScaleRecorder {
  /** Node name → largest dynamic scale seen. */
  readonly runningMax = new Map<string, number>();
  /** Node name → out-of-range statistics (static scale). */
  readonly range = new Map<string, RangeStats>();

  /** Fold a dynamic scale observation into the running max. */
  observeScale(node: string, s: number): void {
    this.runningMax.set(node, Math.max(this.runningMax.get(node) ?? 0, s));
  }

  /** Fold a static-scale range check into the statistics. */
  observeRange(node: string, outside: number, total: number, maxRatio: number): void {
    const r = this.range.get(node) ?? { outside: 0, total: 0, maxRatio: 0 };
    this.range.set(node, { outside: r.outside + outside, total: r.total + total, maxRatio: Math.max(r.maxRatio, maxRatio) });
  }

  /** Running maxima as a plain object (node → s), for `withStaticScales` / `expandPafs`. */
  scales(): Record<string, number> {
    return Object.fromEntries(this.runningMax);
  }

  /** Forget everything. */
  clear(): void {
    this.runningMax.clear();
    this.range.clear();
  }
}

/** Settings the caller passes as `options.smartpaf` when creating a FloatModel. */
export interface SmartpafRunOptions {
  recorder?: PafScaleRecorder;
  /** Record dynamic scales in inference too (profiling passes); default: only while training. */
  recordInInference?: boolean;
}

/** tfjs arithmetic for evaluation plans (coefficients are scalar tensors, so gradients reach them). */
const TF_ARITH: PlanArith<tf.Tensor, tf.Tensor> = {
  mul: (a, b) => tf.mul(a, b),
  mulConst: (a, c) => tf.mul(a, c),
  add: (a, b) => tf.add(a, b),
};

/** sign(u) through the stages (each a 1-D coefficient tensor), in plan order. */
export function signTf(u: tf.Tensor, stages: tf.Tensor[]): tf.Tensor {
  let v = u;
  for (const c of stages) {
    const coefs = tf.unstack(c);
    v = runPlan(planOdd(coefs.length), v, (k) => coefs[k]!, TF_ARITH);
  }
  return v;
}

interface PafInputs {
  x: RtValue;
  stages: tf.Tensor[];
  /** Static scale, or undefined in dynamic mode. */
  staticScale?: number;
}

function runOptions(ctx: OpContext): SmartpafRunOptions {
  return (ctx.options[SMARTPAF_OPTIONS_KEY] as SmartpafRunOptions | undefined) ?? {};
}

/** Decode inputs and attributes shared by both ops. */
function pafInputs(ctx: OpContext): PafInputs {
  const n = attrInt(ctx.node, 'stages');
  if (n < 1) throw opError(ctx, `attribute 'stages' must be ≥ 1, is ${n}`);
  const x = ctx.inputs[0];
  if (!x) throw opError(ctx, 'missing input x');
  if (ctx.node.inputs.length < 1 + n) throw opError(ctx, `expects ${n} coefficient inputs after x, has ${ctx.node.inputs.length - 1}`);
  const stages: tf.Tensor[] = [];
  for (let i = 1; i <= n; i++) {
    const v = ctx.inputs[i];
    if (!v) throw opError(ctx, `missing coefficient input #${i}`);
    const t = logical(v);
    if (t.rank !== 1 || t.shape[0]! < 1) throw opError(ctx, `coefficient input #${i} must be a non-empty 1-D tensor, has shape [${t.shape}]`);
    stages.push(t);
  }
  const mode = attrString(ctx.node, 'scale_mode', 'dynamic');
  if (mode === 'dynamic') return { x, stages };
  if (mode !== 'static') throw opError(ctx, `scale_mode must be 'dynamic' or 'static', is '${mode}'`);
  let s: number | undefined;
  const scaleIn = ctx.node.inputs[1 + n];
  if (scaleIn) {
    const c = ctx.constInput(1 + n);
    s = c ? Number(c.data[0]) : ctx.inputs[1 + n]?.t.dataSync()[0];
  } else if (ctx.node.attrs['scale']) s = attrFloat(ctx.node, 'scale');
  if (s === undefined) throw opError(ctx, "static scale needs a 'scale' attribute or a scale input");
  if (!(s > 0) || !Number.isFinite(s)) throw opError(ctx, `static scale must be a positive number, is ${s}`);
  return { x, stages, staticScale: s };
}

/** max|t| as a number (a constant for autodiff). */
function maxAbs(t: tf.Tensor): number {
  const m = tf.tidy(() => tf.max(tf.abs(t)));
  const v = m.dataSync()[0]!;
  m.dispose();
  return v;
}

/** With a recorder, count the elements of `t` outside the static scale [−s, s]. */
function checkRange(ctx: OpContext, s: number, t: tf.Tensor): void {
  const rec = runOptions(ctx).recorder;
  if (!rec) return;
  const stats = tf.tidy(() => {
    const a = tf.abs(t);
    return tf.stack([tf.sum(tf.cast(tf.greater(a, s), 'float32')), tf.max(a)]);
  });
  const [outside, m] = stats.dataSync();
  stats.dispose();
  rec.observeRange(ctx.node.name, outside!, t.size, m! / s);
}

/** Record a dynamic scale (while training, or always when asked to). */
function recordScale(ctx: OpContext, s: number): void {
  const opts = runOptions(ctx);
  if (opts.recorder && (ctx.training || opts.recordInInference)) opts.recorder.observeScale(ctx.node.name, s);
}

function pafRelu(ctx: OpContext): RtValue[] {
  const { x, stages, staticScale } = pafInputs(ctx);
  let s: number;
  if (staticScale !== undefined) {
    s = staticScale;
    checkRange(ctx, s, x.t);
  } else {
    s = maxAbs(x.t);
    recordScale(ctx, s);
  }
  if (!(s > 0)) s = 1; // an all-zero batch: any scale gives ReLU(0) = 0
  const sign = signTf(tf.mul(x.t, 1 / s), stages);
  return [{ t: tf.mul(tf.add(x.t, tf.mul(x.t, sign)), 0.5), layout: x.layout }];
}

/** Replicate border rows/columns (NHWC) so windows never see MaxPool's −∞ padding. */
function edgePad(x: tf.Tensor4D, pads: [number, number, number, number]): tf.Tensor4D {
  let y = x;
  for (const [axis, before, after] of [
    [1, pads[0], pads[1]],
    [2, pads[2], pads[3]],
  ] as const) {
    if (before === 0 && after === 0) continue;
    const size = y.shape[axis];
    const parts: tf.Tensor4D[] = [];
    const begin = [0, 0, 0, 0];
    const first = tf.slice(y, begin, axis === 1 ? [-1, 1, -1, -1] : [-1, -1, 1, -1]);
    const lastBegin = [...begin];
    lastBegin[axis] = size - 1;
    const last = tf.slice(y, lastBegin, axis === 1 ? [-1, 1, -1, -1] : [-1, -1, 1, -1]);
    for (let i = 0; i < before; i++) parts.push(first);
    parts.push(y);
    for (let i = 0; i < after; i++) parts.push(last);
    y = tf.concat(parts, axis);
  }
  return y;
}

function pafMaxPool(ctx: OpContext): RtValue[] {
  if (ctx.node.outputs.length > 1 && ctx.node.outputs[1]) throw opError(ctx, 'the Indices output of MaxPool is not supported');
  const { x, stages, staticScale } = pafInputs(ctx);
  const shape = logicalShape(x);
  if (shape.length !== 4) throw opError(ctx, `only 2-D pooling (rank-4 input) is supported, input has shape [${shape}]`);
  const g = poolGeometry(ctx.node, [shape[2]!, shape[3]!], ctx.source);
  const [n, c] = [shape[0]!, shape[1]!];
  const [oh, ow] = g.outHW;
  const [sh, sw] = g.strides;
  // Strided views via slice + reshape (tfjs has no StridedSlice gradient): pad so every window
  // offset can take oh·sh rows and ow·sw columns, then keep every sh-th row / sw-th column.
  const [hp, wp] = [g.inHW[0] + g.pads[0] + g.pads[1], g.inHW[1] + g.pads[2] + g.pads[3]];
  const extraH = Math.max(0, g.kernel[0] - 1 + oh * sh - hp);
  const extraW = Math.max(0, g.kernel[1] - 1 + ow * sw - wp);
  const xp = edgePad(asNhwc(x), [g.pads[0], g.pads[1] + extraH, g.pads[2], g.pads[3] + extraW]);
  const views = windowOffsets(g).map(([i, j]) => {
    let v = tf.slice(xp, [0, i, j, 0], [n, oh * sh, ow * sw, c]);
    if (sh > 1) v = tf.reshape(tf.slice(tf.reshape(v, [n, oh, sh, ow * sw * c]), [0, 0, 0, 0], [n, oh, 1, ow * sw * c]), [n, oh, ow * sw, c]);
    if (sw > 1) v = tf.reshape(tf.slice(tf.reshape(v, [n * oh, ow, sw, c]), [0, 0, 0, 0], [n * oh, ow, 1, c]), [n, oh, ow, c]);
    return v;
  });
  let levelMax = 0;
  const y = maxTree(views, (pairs) => {
    const diffs = pairs.map(([a, b]) => tf.sub(a, b));
    let s: number;
    if (staticScale !== undefined) {
      s = staticScale;
      for (const d of diffs) checkRange(ctx, s, d);
    } else {
      s = Math.max(...diffs.map(maxAbs));
      levelMax = Math.max(levelMax, s);
      if (!(s > 0)) s = 1; // all pairs equal: max is exact for any scale
    }
    return pairs.map(([a, b], k) => {
      const d = diffs[k]!;
      const sign = signTf(tf.mul(d, 1 / s), stages);
      return tf.mul(tf.add(tf.add(a, b), tf.mul(d, sign)), 0.5);
    });
  });
  if (staticScale === undefined) recordScale(ctx, levelMax);
  return [nhwc(y)];
}

let registered = false;

/** Register PafRelu and PafMaxPool in the float runtime's op table (idempotent). */
export function registerSmartpafOps(): void {
  if (registered) return;
  registered = true;
  registerOp('PafRelu', pafRelu, SMARTPAF_DOMAIN);
  registerOp('PafMaxPool', pafMaxPool, SMARTPAF_DOMAIN);
}
