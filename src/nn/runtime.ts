/**
 * The float runtime: executes an IR graph with tfjs ops, so any supported ONNX model can be run,
 * differentiated, trained, and written back to ONNX with its new weights.
 */

import { canonicalize, ModelProblems, type Problem } from '../onnx/canonical.js';
import { allocArray, cloneModel, type DType, type Tensor as IrTensor, type Model, ModelError, type Node, sizeOf } from '../onnx/ir.js';
import { F64, floatGraphProblems, floatNodeCheck } from './checks.js';
import { f64Unsupported, runF64, usesFloat64 } from './f64.js';
import { registerStandardOps } from './ops/index.js';
import { logical, plain } from './ops/layout.js';
import { getOp, listOps, type OpContext, type RtValue } from './ops/registry.js';
import { irToTf } from './ops/tensor.js';
import { initTf, type TfBackendName, tf } from './tf.js';

/** Options for loading a model into the float runtime. */
export interface FloatModelOptions {
  /** Where the model came from (file path), used in error messages. */
  source?: string;
  /** tfjs backend; default 'wasm'. */
  backend?: TfBackendName;
  /** Decide which float initializers are trainable (default: see `defaultTrainable`). */
  trainable?: (name: string, model: Model) => boolean;
  /** Free-form options handed to kernels (e.g. `{ batchNorm: 'frozen' }`, `{ convKernel: 'sgemm' | 'tfjs' | 'auto' }`, custom-op settings). */
  options?: Record<string, unknown>;
}

/** Options of one forward pass. */
export interface ForwardOptions {
  /** Training mode: BatchNorm uses batch statistics (unless frozen). */
  training?: boolean;
  /** Which values to return (default: the graph outputs). */
  outputs?: string[];
}

// Initializer slots that hold statistics or bounds, never learned weights.
const FROZEN_SLOTS: Record<string, number[]> = { BatchNormalization: [3, 4], Clip: [1, 2], Pad: [1, 2, 3] };

/**
 * Default trainability: float32 initializers with more than one element that are not BN statistics,
 * bounds, or named `const.*` (privml's convention for fixed tensors such as attention masks).
 */
export function defaultTrainable(name: string, model: Model): boolean {
  const t = model.graph.initializers.get(name);
  if (t?.dtype !== 'float32' || sizeOf(t.dims) <= 1 || name.startsWith('const.')) return false;
  for (const n of model.graph.nodes) {
    const slots = FROZEN_SLOTS[n.opType];
    if (slots && n.inputs.some((i, k) => i === name && slots.includes(k))) return false;
  }
  return true;
}

/** A model loaded into the float runtime. Call `dispose()` when done. */
export class FloatModel {
  readonly model: Model;
  readonly source: string;
  /** Float initializers held as variables (trainable ones have `trainable === true`). */
  readonly params = new Map<string, tf.Variable>();
  private readonly consts = new Map<string, tf.Tensor>();
  private readonly irConsts = new Map<string, IrTensor>();
  private readonly nodeState = new Map<Node, Map<string, unknown>>();
  private readonly options: Record<string, unknown>;
  private readonly lastUse = new Map<string, number>();

  private readonly outDtypes = new Map<string, DType>();
  /** True when the graph runs in nn/f64.ts (float64 values, double-precision JS kernels) instead of tfjs. */
  private readonly f64: boolean;

  private constructor(input: Model, opts: FloatModelOptions) {
    this.source = opts.source ?? input.graph.name ?? 'model';
    // Every runtime starts from the canonical form; all problems are reported at once.
    const ops = listOps().map((o) => (o.domain && o.domain !== 'ai.onnx' ? `${o.domain}.${o.opType}` : o.opType));
    const c = canonicalize(input, { source: this.source, ops, check: floatNodeCheck, throwOnProblems: false });
    const problems: Problem[] = [...c.problems, ...floatGraphProblems(c.model)];
    const model = c.model;
    this.model = model;
    // Only float64 in the way, and every op has a double-precision JS kernel: run it there exactly.
    this.f64 = problems.length > 0 && problems.every((p) => p.reason.includes(F64)) && usesFloat64(model) && !f64Unsupported(model);
    if (problems.length && !this.f64) throw new ModelProblems(this.source, problems);
    this.options = opts.options ?? {};
    if (this.f64) return;
    for (const o of model.graph.outputs) this.outDtypes.set(o.name, o.dtype);
    validate(model, this.source);
    const trainable = opts.trainable ?? defaultTrainable;
    for (const [name, t] of model.graph.initializers) {
      this.irConsts.set(name, t);
      if (t.dtype === 'float32')
        this.params.set(name, tf.variable(irToTf(t), trainable(name, model), name.replace(/[^A-Za-z0-9_.\-/]/g, '_') + '_' + nextId()));
      else this.consts.set(name, irToTf(t));
    }
    for (const n of model.graph.nodes) {
      if (n.opType === 'Constant' && n.attrs['value']?.kind === 'tensor') this.irConsts.set(n.outputs[0]!, n.attrs['value'].value);
      this.nodeState.set(n, new Map());
    }
    model.graph.nodes.forEach((n, i) => n.inputs.forEach((v) => v && this.lastUse.set(v, i)));
    for (const [conv, range] of fusedActivations(model, this.irConsts)) this.nodeState.get(conv)!.set('activation', range);
  }

  /** Load `model` (validating every op is supported) on the chosen backend. */
  static async create(model: Model, opts: FloatModelOptions = {}): Promise<FloatModel> {
    await initTf(opts.backend ?? 'wasm');
    registerStandardOps();
    return new FloatModel(model, opts);
  }

  /** Names of the graph inputs that must be fed (initializers excluded). */
  get inputNames(): string[] {
    return this.model.graph.inputs.filter((v) => !this.model.graph.initializers.has(v.name)).map((v) => v.name);
  }

  /** Names of the graph outputs. */
  get outputNames(): string[] {
    return this.model.graph.outputs.map((v) => v.name);
  }

  /** Trainable variables (for optimizers). */
  trainableVariables(): tf.Variable[] {
    return [...this.params.values()].filter((v) => v.trainable);
  }

  /** Run the graph on tfjs tensors (logical layout). Differentiable: call inside tf.variableGrads. */
  forward(feeds: Record<string, tf.Tensor>, opts: ForwardOptions = {}): Record<string, tf.Tensor> {
    if (this.f64) throw new ModelError(`${this.source}: a float64 graph runs in double precision outside tfjs: use run(), not forward()`);
    const training = opts.training ?? false;
    const wanted = opts.outputs ?? this.outputNames;
    const keepSet = new Set(wanted);
    const env = new Map<string, RtValue>();
    for (const [name, v] of this.params) env.set(name, plain(v));
    for (const [name, t] of this.consts) env.set(name, plain(t));
    for (const name of this.inputNames) {
      const t = feeds[name];
      if (!t) throw new ModelError(`${this.source}: missing input '${name}'`);
      checkFeed(this.source, this.model, name, t);
      env.set(name, plain(t));
    }
    // Tensors the runtime must never free: weights, constants and the caller's feeds. Aliasing ops
    // (Identity, views) may hand one of them on under another name; freeing is by tensor, counted.
    const pinned = new Set<tf.Tensor>();
    for (const v of env.values()) pinned.add(v.t);
    for (const t of Object.values(feeds)) pinned.add(t);
    const refs = new Map<tf.Tensor, number>();
    const nodes = this.model.graph.nodes;
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!;
      const ctx: OpContext = {
        node,
        inputs: node.inputs.map((n) => (n ? env.get(n) : undefined)),
        training,
        constInput: (k) => {
          const n = node.inputs[k];
          return n ? this.irConsts.get(n) : undefined;
        },
        state: this.nodeState.get(node)!,
        options: this.options,
        source: this.source,
      };
      let outs: RtValue[];
      try {
        outs = getOp(node.opType, node.domain)!.kernel(ctx);
      } catch (e) {
        const msg = (e as Error).message;
        if (e instanceof ModelError && msg.startsWith(this.source)) throw e;
        throw new ModelError(`${this.source}: node '${node.name}' (${node.opType}): ${msg.split('\n')[0]}`);
      }
      node.outputs.forEach((o, k) => {
        if (!o) return;
        const v = outs[k];
        if (!v) throw new ModelError(`${this.source}: node '${node.name}' (${node.opType}) produced no output #${k}`);
        env.set(o, v);
        refs.set(v.t, (refs.get(v.t) ?? 0) + 1);
      });
      if (!training) {
        // Free activations after their last use so large models fit (the tape needs them when training).
        for (const n of new Set(node.inputs)) {
          if (!n || this.lastUse.get(n) !== i || keepSet.has(n)) continue;
          const v = env.get(n);
          if (!v || pinned.has(v.t) || !refs.has(v.t)) continue;
          env.delete(n);
          const left = refs.get(v.t)! - 1;
          if (left > 0) refs.set(v.t, left);
          else {
            refs.delete(v.t);
            v.t.dispose();
          }
        }
      }
    }
    const result: Record<string, tf.Tensor> = {};
    for (const name of wanted) {
      const v = env.get(name);
      if (!v) throw new ModelError(`${this.source}: value '${name}' is not computed by the graph`);
      result[name] = logical(v);
    }
    return result;
  }

  /** Inference on plain arrays: returns every graph output as a float32 IR tensor. */
  run(feeds: Record<string, IrTensor>): Record<string, IrTensor> {
    if (this.f64) return runF64(this.model, feeds, this.source);
    const res: Record<string, IrTensor> = {};
    tf.tidy(() => {
      const tfFeeds: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) tfFeeds[k] = feedToTf(this.source, this.model, k, v);
      const out = this.forward(tfFeeds);
      for (const [k, t] of Object.entries(out))
        res[k] = tfToIr(t, this.outDtypes.get(k) ?? (t.dtype === 'int32' ? 'int64' : t.dtype === 'bool' ? 'bool' : 'float32'));
    });
    return res;
  }

  /** Batch statistics recorded by BatchNorm nodes in the last training forward (consumed by the trainer). */
  takeBatchNormStats(): { node: Node; mean: tf.Tensor; variance: tf.Tensor; momentum: number }[] {
    const out = [];
    for (const [node, st] of this.nodeState) {
      const s = st.get('batchStats') as { mean: tf.Tensor; variance: tf.Tensor; momentum: number } | undefined;
      if (s) {
        out.push({ node, ...s });
        st.delete('batchStats');
      }
    }
    return out;
  }

  /** Update BatchNorm running statistics from the last training step (ONNX momentum convention). */
  updateBatchNormStats(): void {
    for (const s of this.takeBatchNormStats()) {
      const mv = this.params.get(s.node.inputs[3]!);
      const vv = this.params.get(s.node.inputs[4]!);
      tf.tidy(() => {
        if (mv) mv.assign(tf.add(tf.mul(mv, s.momentum), tf.mul(s.mean, 1 - s.momentum)));
        if (vv) vv.assign(tf.add(tf.mul(vv, s.momentum), tf.mul(s.variance, 1 - s.momentum)));
      });
      s.mean.dispose();
      s.variance.dispose();
    }
  }

  /** A copy of the model with the current variable values written back as initializers. */
  toModel(): Model {
    const out = cloneModel(this.model);
    for (const [name, v] of this.params) {
      const old = out.graph.initializers.get(name)!;
      out.graph.initializers.set(name, { dtype: 'float32', dims: [...old.dims], data: Float32Array.from(v.dataSync() as Float32Array) });
    }
    return out;
  }

  /** Release every tensor held by this model. */
  dispose(): void {
    // Kernel caches (e.g. conv filters in tfjs layout) hold tensors too.
    for (const st of this.nodeState.values()) {
      for (const v of st.values()) {
        const t = (v as { t?: unknown } | undefined)?.t;
        if (t instanceof tf.Tensor) t.dispose();
        // Filters packed into the sgemm kernel's memory (ops/conv.ts) are freed, not disposed.
        const free = (v as { free?: unknown } | undefined)?.free;
        if (typeof free === 'function') free.call(v);
      }
      st.clear();
    }
    for (const v of this.params.values()) v.dispose();
    for (const t of this.consts.values()) t.dispose();
    this.params.clear();
    this.consts.clear();
  }
}

let idCounter = 0;
const nextId = (): number => ++idCounter;

/** Check every op is supported and the graph is topologically ordered, before running anything. */
function validate(model: Model, source: string): void {
  const defined = new Set<string>([...model.graph.initializers.keys(), ...model.graph.inputs.map((v) => v.name)]);
  for (const n of model.graph.nodes) {
    if (!getOp(n.opType, n.domain)) {
      const dom = n.domain && n.domain !== 'ai.onnx' ? ` (domain '${n.domain}')` : '';
      throw new ModelError(`${source}: unsupported op '${n.opType}'${dom} at node '${n.name}'`);
    }
    for (const i of n.inputs) {
      if (i && !defined.has(i)) throw new ModelError(`${source}: node '${n.name}' (${n.opType}) uses '${i}' before it is defined`);
    }
    for (const o of n.outputs) if (o) defined.add(o);
  }
  for (const o of model.graph.outputs) {
    if (!defined.has(o.name)) throw new ModelError(`${source}: graph output '${o.name}' is never produced`);
  }
}

/** Fail early, with names, when a feed's shape contradicts the declared input shape. */
function checkFeed(source: string, model: Model, name: string, t: tf.Tensor): void {
  const info = model.graph.inputs.find((v) => v.name === name);
  if (!info?.shape) return;
  const ok = info.shape.length === t.rank && info.shape.every((d, i) => typeof d !== 'number' || d === t.shape[i]);
  if (!ok) {
    const want = info.shape.map((d) => (d === null ? '?' : d)).join(',');
    throw new ModelError(`${source}: input '${name}' expects shape [${want}], got [${t.shape}]`);
  }
}

/** A feed as a tfjs tensor, refusing values tfjs cannot hold exactly (float64, int64 past int32). */
function feedToTf(source: string, model: Model, name: string, v: IrTensor): tf.Tensor {
  const want = model.graph.inputs.find((i) => i.name === name)?.dtype;
  if (want && want !== v.dtype) throw new ModelError(`${source}: input '${name}' must be ${want}, got ${v.dtype}`);
  if (v.dtype === 'float64')
    throw new ModelError(`${source}: input '${name}' is float64; the float runtime computes in float32 (refusing rather than rounding)`);
  if (v.dtype === 'int64') {
    for (const x of v.data as BigInt64Array) {
      if (x > 2147483647n || x < -2147483648n)
        throw new ModelError(`${source}: input '${name}' holds ${x}, beyond the int32 range the float runtime computes in`);
    }
  }
  return irToTf(v);
}

/** A tfjs result as an IR tensor of the graph output's declared ONNX dtype. */
function tfToIr(t: tf.Tensor, dtype: DType): IrTensor {
  const src = t.dataSync() as ArrayLike<number>;
  const data = allocArray(dtype, src.length);
  if (data instanceof BigInt64Array) for (let i = 0; i < src.length; i++) data[i] = BigInt(Math.trunc(src[i]!));
  else (data as Float32Array).set(src);
  return { dtype, dims: [...t.shape], data };
}

/** The constant scalar bound of a Clip (input `i`, or the opset-6 attribute), undefined if not constant. */
function clipBound(node: Node, i: number, attr: string, consts: Map<string, IrTensor>, dflt: number): number | undefined {
  const name = node.inputs[i];
  if (name) {
    const t = consts.get(name);
    return t && t.data.length === 1 && t.dtype === 'float32' ? Number(t.data[0]) : undefined;
  }
  const a = node.attrs[attr];
  return a?.kind === 'float' ? a.value : dflt;
}

/**
 * Conv nodes whose only consumer is a Relu or a Clip with constant bounds (and whose output is not a
 * graph output), with the clamp range: the inference GEMM applies it in its epilogue and the
 * activation node passes the value on (RtValue.clamped), saving one pass over the activation.
 */
function fusedActivations(model: Model, consts: Map<string, IrTensor>): Map<Node, [number, number]> {
  const consumers = new Map<string, Node[]>();
  for (const n of model.graph.nodes) for (const v of new Set(n.inputs)) if (v) consumers.set(v, [...(consumers.get(v) ?? []), n]);
  const outputs = new Set(model.graph.outputs.map((o) => o.name));
  const fused = new Map<Node, [number, number]>();
  for (const n of model.graph.nodes) {
    const y = n.outputs[0];
    if (n.opType !== 'Conv' || n.domain || !y || outputs.has(y)) continue;
    const users = consumers.get(y) ?? [];
    const act = users[0];
    if (users.length !== 1 || !act || act.domain || act.inputs[0] !== y) continue;
    if (act.opType === 'Relu') fused.set(n, [0, Infinity]);
    else if (act.opType === 'Clip') {
      const lo = clipBound(act, 1, 'min', consts, -Infinity);
      const hi = clipBound(act, 2, 'max', consts, Infinity);
      if (lo !== undefined && hi !== undefined && lo <= hi) fused.set(n, [lo, hi]);
    }
  }
  return fused;
}
