/**
 * The float runtime: executes an IR graph with tfjs ops, so any supported ONNX model can be run,
 * differentiated, trained, and written back to ONNX with its new weights.
 */
import { cloneModel, ModelError, sizeOf, type Model, type Node, type Tensor as IrTensor } from '../onnx/ir.js';
import { logical, plain } from './ops/layout.js';
import { getOp, type OpContext, type RtValue } from './ops/registry.js';
import { irToTf } from './ops/tensor.js';
import { registerStandardOps } from './ops/index.js';
import { initTf, tf, type TfBackendName } from './tf.js';

/** Options for loading a model into the float runtime. */
export interface FloatModelOptions {
  /** Where the model came from (file path), used in error messages. */
  source?: string;
  /** tfjs backend; default 'wasm'. */
  backend?: TfBackendName;
  /** Decide which float initializers are trainable (default: see `defaultTrainable`). */
  trainable?: (name: string, model: Model) => boolean;
  /** Free-form options handed to kernels (e.g. `{ batchNorm: 'frozen' }`, custom-op settings). */
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
  if (!t || t.dtype !== 'float32' || sizeOf(t.dims) <= 1 || name.startsWith('const.')) return false;
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

  private constructor(model: Model, opts: FloatModelOptions) {
    this.model = model;
    this.source = opts.source ?? model.graph.name ?? 'model';
    this.options = opts.options ?? {};
    validate(model, this.source);
    const trainable = opts.trainable ?? defaultTrainable;
    for (const [name, t] of model.graph.initializers) {
      this.irConsts.set(name, t);
      if (t.dtype === 'float32') this.params.set(name, tf.variable(irToTf(t), trainable(name, model), name.replace(/[^A-Za-z0-9_.\-/]/g, '_') + '_' + nextId()));
      else this.consts.set(name, irToTf(t));
    }
    for (const n of model.graph.nodes) {
      if (n.opType === 'Constant' && n.attrs['value']?.kind === 'tensor') this.irConsts.set(n.outputs[0]!, n.attrs['value'].value);
      this.nodeState.set(n, new Map());
    }
    model.graph.nodes.forEach((n, i) => n.inputs.forEach((v) => v && this.lastUse.set(v, i)));
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
      env.set(name, plain(t.dtype === 'float32' || t.dtype === 'int32' ? t : tf.cast(t, 'float32')));
    }
    const owned = new Set<string>();
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
        if (msg.startsWith(this.source)) throw e;
        throw new ModelError(`${this.source}: node '${node.name}' (${node.opType}): ${msg.split('\n')[0]}`);
      }
      node.outputs.forEach((o, k) => {
        if (!o) return;
        const v = outs[k];
        if (!v) throw new ModelError(`${this.source}: node '${node.name}' (${node.opType}) produced no output #${k}`);
        env.set(o, v);
        owned.add(o);
      });
      if (!training) {
        // Free activations after their last use so large models fit (the tape needs them when training).
        for (const n of node.inputs) {
          if (n && owned.has(n) && this.lastUse.get(n) === i && !keepSet.has(n)) {
            const v = env.get(n)!;
            if (!outs.some((o) => o.t === v.t)) v.t.dispose();
            env.delete(n);
            owned.delete(n);
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
    const res: Record<string, IrTensor> = {};
    tf.tidy(() => {
      const tfFeeds: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) tfFeeds[k] = irToTf(v);
      const out = this.forward(tfFeeds);
      for (const [k, t] of Object.entries(out)) {
        res[k] = { dtype: 'float32', dims: [...t.shape], data: Float32Array.from(t.dataSync() as ArrayLike<number>) };
      }
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
