/**
 * Runs a model with simulated reduced-ring ReLUs on a data set, many configs over one loaded model:
 * activation profiling (ranges, element counts), predictions under a config, ReLU levels.
 */
import type { Dataset } from '../nn/data/dataset.js';
import { batches } from '../nn/data/dataset.js';
import { FloatModel } from '../nn/runtime.js';
import { tf } from '../nn/tf.js';
import { classifierIo } from '../nn/train.js';
import type { Model, ValueInfo } from '../onnx/ir.js';
import { SeededRng } from '../seeded-rng.js';
import { reluNodes, toSimModel } from './graph.js';
import { registerHummingbirdOps, SIM_OPTION, type SimState, simState } from './op.js';
import type { BitRange, CarryMode } from './simulate.js';

/** What profiling learned about one Relu node. */
export interface ReluProfile {
  node: string;
  /** Logical shape of one image's activation (batch dimension dropped). */
  shape: number[];
  /** Elements per image. */
  elements: number;
  /** Largest |input| seen (real units). */
  maxAbs: number;
  /** Bits a signed fixed-point value needs to hold every profiled input: ⌈log2(max|x|·2^f + 1)⌉ + 1. */
  bitsNeeded: number;
}

/** How ReLU layers are grouped into levels. */
export type LevelsBy = 'size' | 'layer';

/** A group of Relu nodes searched together. */
export interface LevelInfo {
  name: string;
  nodes: string[];
  elements: number;
  /** Max bitsNeeded over the level's nodes. */
  bitsNeeded: number;
}

/** Group profiled Relu nodes into levels by feature-map size (H×W, or the width of a flat layer) or one per layer, in graph order. */
export function groupLevels(profiles: readonly ReluProfile[], by: LevelsBy): LevelInfo[] {
  const levels = new Map<string, LevelInfo>();
  for (const p of profiles) {
    const key = by === 'layer' ? p.node : p.shape.length >= 3 ? p.shape.slice(1).join('x') : `flat${p.shape.join('x')}`;
    const l = levels.get(key) ?? { name: key, nodes: [], elements: 0, bitsNeeded: 0 };
    l.nodes.push(p.node);
    l.elements += p.elements;
    l.bitsNeeded = Math.max(l.bitsNeeded, p.bitsNeeded);
    levels.set(key, l);
  }
  return [...levels.values()];
}

/**
 * Activations of every value live at a cut (the graph split right before node `index`), per
 * mini-batch, under some prefix config: later passes resume from here instead of the input.
 */
export interface CutCache {
  index: number;
  /** Per live value: one array per mini-batch (logical layout) and the per-image shape. */
  values: Map<string, { data: Float32Array[]; shape: number[] }>;
}

/** Options of {@link SimEvaluator.run}. */
export interface RunOptions {
  /** Resume from these activations (the ranges must not touch nodes before the cut). */
  from?: CutCache;
  /** Also record the activations live at this node index (after `from`). */
  capture?: number;
  /** Checked after every batch: return false to stop early (the pass then returns no predictions). */
  until?: (preds: Uint8Array, start: number, n: number) => boolean;
}

/** A simulated model bound to one data set. */
export class SimEvaluator {
  private readonly suffixes = new Map<number, { fm: FloatModel; inputs: string[] }>();
  /** Number of forward passes over the data set so far. */
  passes = 0;
  private constructor(
    readonly fm: FloatModel,
    readonly data: Dataset,
    readonly state: SimState,
    readonly relus: string[],
    private readonly io: { input: string; output: string },
    private readonly batchSize: number,
  ) {}

  /** Load `model` with its Relu nodes simulated (all exact until a config is given). */
  static async create(model: Model, data: Dataset, opts: { source?: string; fracBits?: number; batchSize?: number } = {}): Promise<SimEvaluator> {
    registerHummingbirdOps();
    const state = simState({ fracBits: opts.fracBits ?? 16 });
    const fm = await FloatModel.create(toSimModel(model), { source: opts.source, options: { [SIM_OPTION]: state } });
    try {
      const io = classifierIo(fm, data);
      return new SimEvaluator(
        fm,
        data,
        state,
        reluNodes(model).map((n) => n.name),
        io,
        opts.batchSize ?? 250,
      );
    } catch (e) {
      fm.dispose();
      throw e;
    }
  }

  /** Exact forward pass recording every Relu input's range and size, plus the predictions. */
  profile(): { profiles: ReluProfile[]; predictions: Uint8Array } {
    this.configure({}, 'none', 0);
    const nodes = this.fm.model.graph.nodes.filter((n) => this.relus.includes(n.name));
    const inputs = nodes.map((n) => n.inputs[0]!);
    const maxAbs = new Float64Array(nodes.length);
    const shapes: number[][] = [];
    const preds = new Uint8Array(this.data.n);
    const [c, h, w] = this.data.shape;
    let at = 0;
    for (const b of batches(this.data, this.batchSize)) {
      tf.tidy(() => {
        const out = this.fm.forward({ [this.io.input]: tf.tensor4d(b.x, [b.n, c, h, w]) }, { outputs: [...inputs, this.io.output] });
        inputs.forEach((name, i) => {
          const t = out[name]!;
          if (!shapes[i]) shapes[i] = t.shape.slice(1);
          maxAbs[i] = Math.max(maxAbs[i]!, tf.max(tf.abs(t)).dataSync()[0]!);
        });
        preds.set(tf.argMax(out[this.io.output]!, 1).dataSync() as Int32Array, at);
      });
      at += b.n;
    }
    this.passes++;
    const scale = 2 ** this.state.fracBits;
    const profiles = nodes.map((n, i) => ({
      node: n.name,
      shape: shapes[i]!,
      elements: shapes[i]!.reduce((a, d) => a * d, 1),
      maxAbs: maxAbs[i]!,
      bitsNeeded: Math.ceil(Math.log2(Math.floor(maxAbs[i]! * scale + 0.5) + 1)) + 1,
    }));
    return { profiles, predictions: preds };
  }

  /** Set the ranges (absent nodes exact), carry mode and random seed of the next passes. */
  configure(ranges: Record<string, BitRange>, mode: CarryMode, seed: number): void {
    this.state.ranges = ranges;
    this.state.mode = mode;
    this.state.rng = new SeededRng(seed);
  }

  /** Predicted class per example under `ranges` (absent nodes exact). Stops early (returning undefined) when `until` rejects a batch. */
  predict(
    ranges: Record<string, BitRange>,
    mode: CarryMode,
    seed: number,
    until?: (preds: Uint8Array, start: number, n: number) => boolean,
  ): Uint8Array | undefined {
    this.configure(ranges, mode, seed);
    const preds = new Uint8Array(this.data.n);
    const [c, h, w] = this.data.shape;
    let at = 0;
    this.passes++;
    for (const b of batches(this.data, this.batchSize)) {
      const p = tf.tidy(() => tf.argMax(this.fm.forward({ [this.io.input]: tf.tensor4d(b.x, [b.n, c, h, w]) })[this.io.output]!, 1).dataSync() as Int32Array);
      preds.set(p, at);
      if (until && !until(preds, at, b.n)) return undefined;
      at += b.n;
    }
    return preds;
  }

  /** Node index of the Relu node `name` in the graph. */
  nodeIndex(name: string): number {
    const i = this.fm.model.graph.nodes.findIndex((n) => n.name === name);
    if (i < 0) throw new Error(`${this.fm.source}: no node '${name}'`);
    return i;
  }

  /** Values computed before node `index` (or graph inputs) that nodes from `index` on, or the outputs, still need. */
  liveAt(index: number): string[] {
    const g = this.fm.model.graph;
    const defined = new Set<string>(g.inputs.filter((v) => !g.initializers.has(v.name)).map((v) => v.name));
    for (const n of g.nodes.slice(0, index)) if (n.inputs.length > 0) for (const o of n.outputs) if (o) defined.add(o);
    const need = new Set<string>(g.outputs.map((v) => v.name));
    for (const n of g.nodes.slice(index)) for (const i of n.inputs) if (i) need.add(i);
    return [...defined].filter((v) => need.has(v));
  }

  /** Make the suffix model that starts at node `index` (constant nodes move along). */
  async prepareCut(index: number): Promise<void> {
    if (index <= 0 || this.suffixes.has(index)) return;
    const m = this.fm.model;
    const g = m.graph;
    const inputs = this.liveAt(index);
    const nodes = [...g.nodes.slice(0, index).filter((n) => n.inputs.length === 0), ...g.nodes.slice(index)];
    const used = new Set(nodes.flatMap((n) => n.inputs));
    const graph = {
      ...g,
      nodes,
      inputs: inputs.map((name): ValueInfo => ({ name, dtype: 'float32' })),
      initializers: new Map([...g.initializers].filter(([k]) => used.has(k))),
      valueInfo: [],
    };
    const fm = await FloatModel.create({ ...m, graph }, { source: `${this.fm.source}@${index}`, options: { [SIM_OPTION]: this.state } });
    this.suffixes.set(index, { fm, inputs });
  }

  /**
   * One pass over the data set under `ranges`, optionally resuming from a cut and recording the
   * activations at a later cut. Returns the predictions (undefined when `until` stopped the pass).
   */
  run(ranges: Record<string, BitRange>, mode: CarryMode, seed: number, opts: RunOptions = {}): { preds?: Uint8Array; captured?: CutCache } {
    this.configure(ranges, mode, seed);
    const from = opts.from;
    const suffix = from ? this.suffixes.get(from.index) : undefined;
    if (from && !suffix) throw new Error(`evaluator: cut at node ${from.index} was not prepared`);
    const fm = suffix?.fm ?? this.fm;
    const captureNames = opts.capture !== undefined ? this.liveAt(opts.capture) : [];
    const captured: CutCache | undefined = opts.capture !== undefined ? { index: opts.capture, values: new Map() } : undefined;
    const preds = new Uint8Array(this.data.n);
    const [c, h, w] = this.data.shape;
    let at = 0;
    let bi = 0;
    this.passes++;
    for (const b of batches(this.data, this.batchSize)) {
      const p = tf.tidy(() => {
        const feeds: Record<string, tf.Tensor> = {};
        if (suffix) {
          for (const name of suffix.inputs) {
            const v = from!.values.get(name);
            if (!v) throw new Error(`evaluator: cut cache lacks '${name}'`);
            feeds[name] = tf.tensor(v.data[bi]!, [b.n, ...v.shape], 'float32');
          }
        } else feeds[this.io.input] = tf.tensor4d(b.x, [b.n, c, h, w]);
        const out = fm.forward(feeds, { outputs: [...captureNames, this.io.output] });
        for (const name of captureNames) {
          const t = out[name]!;
          const e = captured!.values.get(name) ?? { data: [], shape: t.shape.slice(1) };
          e.data.push(Float32Array.from(t.dataSync() as Float32Array));
          captured!.values.set(name, e);
        }
        return tf.argMax(out[this.io.output]!, 1).dataSync() as Int32Array;
      });
      preds.set(p, at);
      if (opts.until && !opts.until(preds, at, b.n)) return {};
      at += b.n;
      bi++;
    }
    return { preds, captured };
  }

  /** Accuracy of `preds` against the data set's labels. */
  accuracy(preds: Uint8Array): number {
    let ok = 0;
    for (let i = 0; i < preds.length; i++) if (preds[i] === this.data.labels[i]) ok++;
    return preds.length ? ok / preds.length : 0;
  }

  /** Release the models. */
  dispose(): void {
    this.fm.dispose();
    for (const s of this.suffixes.values()) s.fm.dispose();
    this.suffixes.clear();
  }
}

/** Fraction of equal entries of two prediction vectors. */
export function agreement(a: Uint8Array, b: Uint8Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return a.length ? same / a.length : 1;
}
