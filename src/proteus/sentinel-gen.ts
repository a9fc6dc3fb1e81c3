/**
 * The sentinel generator's core: a graph under construction (values, weights drawn lazily from the
 * real model's weights, constants), the operators it emits in the form the model's opset defines,
 * learned-block instantiation and rollback; `finish` closes a body into a member model.
 */

import type { Attribute, Dim, DType, Model, Node, Tensor, ValueInfo } from '../onnx/ir.js';
import { sizeOf } from '../onnx/ir.js';
import type { Rng } from './rng.js';
import type { Branch } from './sentinel-cnn.js';
import { landOn } from './sentinel-land.js';
import { stepOn } from './sentinel-walk.js';
import type { BlockTemplate, OpStats, Profile, WeightStat } from './stats.js';
import { weightKey } from './stats.js';
import type { WeightPool } from './weights.js';

/** A value during generation: name, dtype and shape (dim 0 may be symbolic). */
export interface Val {
  name: string;
  dtype: DType;
  shape: Dim[];
}

const DEFAULT_W: Record<string, WeightStat> = {
  'Conv:1': { mean: 0, std: Math.SQRT2 },
  'Conv:2': { mean: 0, std: 0 },
  'MatMul:1': { mean: 0, std: Math.SQRT2 },
  'Gemm:1': { mean: 0, std: Math.SQRT2 },
  'Gemm:2': { mean: 0, std: 0 },
  'Add:1': { mean: 0, std: 0 },
  'Add:1:table': { mean: 0, std: 0.02 },
  'BatchNormalization:1': { mean: 1, std: 0.05 },
  'BatchNormalization:2': { mean: 0, std: 0.05 },
  'BatchNormalization:3': { mean: 0, std: 0.1 },
  'BatchNormalization:4': { mean: 1, std: 0.06 },
  'LayerNormalization:1': { mean: 1, std: 0.02 },
  'LayerNormalization:2': { mean: 0, std: 0.02 },
  'Gather:0': { mean: 0, std: 0.02 },
};

export const num = (d: Dim): number => (typeof d === 'number' ? d : -1);
export const same = (a: readonly Dim[], b: readonly Dim[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** Placeholder data of a weight whose values are not drawn yet. */
const EMPTY = new Float32Array(0);
/** How to draw the weights of a finished attempt (only the kept attempt pays for it). */
export const FILLS = new WeakMap<Model, (pool: WeightPool, part: number, again?: boolean) => void>();
/** The weight kind (`weightKey`) of each sentinel weight tensor, known before its values are drawn. */
export const KINDS = new WeakMap<Tensor, string>();

/** Raised inside one attempt when the random walk cannot be completed; the attempt is retried. */
export class Dead extends Error {}

/** Generator state to roll back to when a block overshoots the weight budget. */
export interface Mark {
  nodes: number;
  pool: number;
  inits: number;
  params: number;
  lastOp: string;
  used: string[];
}

/** Builds one sentinel. */
export class Gen {
  readonly nodes: Node[] = [];
  readonly inits = new Map<string, Tensor>();
  readonly pool: Val[] = [];
  readonly usedInputs = new Set<string>();
  /** Weights whose values are not drawn yet: tensor, mean, std, keep positive. */
  readonly lazy: { t: Tensor; op: string; slot: number; key: string; mean: number; std: number }[] = [];
  private readonly consts = new Map<string, string>();
  private ids = 0;
  lastOp = '<in>';
  /** Weight elements drawn so far, against a budget near the real subgraph's. */
  params = 0;
  readonly budget: number;

  constructor(
    readonly rng: Rng,
    readonly prof: Profile,
    readonly stats: OpStats,
    readonly inputs: readonly ValueInfo[],
    /** The model's default-domain opset: ops are written in the form this opset defines. */
    readonly opset = 17,
  ) {
    this.budget = prof.params * (1 + 0.3 * rng.next()) + 1024;
  }
  /** Whether `n` more weights fit the budget. */
  fits(n: number): boolean {
    return this.params + n <= this.budget;
  }

  fresh(p: string): string {
    return `${p}${this.ids++}`;
  }
  pick<T>(xs: readonly T[], dflt: T): T {
    return xs.length ? xs[this.rng.int(xs.length)]! : dflt;
  }
  has(op: string): boolean {
    return (this.prof.ops[op] ?? 0) > 0;
  }

  /** Append a node; returns its output value. */
  node(op: string, inputs: string[], attrs: Record<string, Attribute>, shape: Dim[], dtype: DType = 'float32'): Val {
    for (const i of inputs) if (this.inputs.some((v) => v.name === i)) this.usedInputs.add(i);
    const out: Val = { name: this.fresh('t'), dtype, shape };
    this.nodes.push({ name: this.fresh('n'), opType: op, domain: '', inputs, outputs: [out.name], attrs });
    this.pool.push(out);
    this.lastOp = op;
    return out;
  }

  /** A weight of `dims` drawn from the real statistics of (op, slot). */
  weight(op: string, slot: number, dims: number[], fan = 0): string {
    const key = weightKey(op, slot, dims.length);
    const st = this.prof.weights[key] ?? DEFAULT_W[key] ?? { mean: 0, std: 0.02 };
    const std = fan > 0 ? st.std / Math.sqrt(fan) : st.std;
    const n = sizeOf(dims);
    this.params += n;
    const name = this.fresh('w');
    // Values are drawn only for the attempt that is kept (see `fillWeights`): attempts are cheap.
    const t: Tensor = { dtype: 'float32', dims, data: EMPTY };
    this.inits.set(name, t);
    KINDS.set(t, key);
    this.lazy.push({ t, op, slot, key, mean: st.mean, std });
    return name;
  }
  /**
   * Draw the values of every weight still in the graph: resampled from real subgraph `part`'s
   * weights of the same kind; `again` draws every weight afresh (the same structure, new values).
   */
  fillWeights(pool: WeightPool, part: number, again = false): void {
    // Only weights still in the graph (a rolled-back block's stay in `lazy`, undrawn).
    const live = new Set(this.inits.values());
    for (const { t, op, slot, key, mean, std } of this.lazy) {
      if (!live.has(t)) continue;
      if (again) t.data = EMPTY;
      if (t.data !== EMPTY) continue;
      const drawn = pool.sample(key, op, slot, t.dims, part, this.rng);
      if (drawn) {
        t.data = drawn;
        continue;
      }
      // A kind the model has no weights of: continuous normal draws at the profile's statistics.
      const a = new Float32Array(sizeOf(t.dims));
      for (let i = 0; i < a.length; i++) a[i] = mean + std * this.rng.normal();
      if (op === 'BatchNormalization' && slot === 4) for (let i = 0; i < a.length; i++) a[i] = Math.max(1e-3, Math.abs(a[i]!));
      t.data = a;
    }
  }
  scalar(v: number): string {
    const key = `f${v}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh('c');
      this.inits.set(name, { dtype: 'float32', dims: [], data: new Float32Array([v]) });
      this.consts.set(key, name);
    }
    return name;
  }
  ints(values: number[], dims: number[] = [values.length]): string {
    const key = `i${dims.join(',')}:${values.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh('c');
      this.inits.set(name, { dtype: 'int64', dims, data: BigInt64Array.from(values.map((v) => BigInt(v))) });
      this.consts.set(key, name);
    }
    return name;
  }

  // ---- operators -------------------------------------------------------------------------------

  conv(x: Val, cout: number, k: number, stride: number, pad: number, group = 1): Val {
    const [b, c, h, w] = x.shape as [Dim, number, number, number];
    const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
    const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
    if (oh < 1 || ow < 1) throw new Dead();
    const fan = (c / group) * k * k;
    const ins = [x.name, this.weight('Conv', 1, [cout, c / group, k, k], fan)];
    if (this.prof.weights['Conv:2']) ins.push(this.weight('Conv', 2, [cout]));
    return this.node(
      'Conv',
      ins,
      {
        dilations: { kind: 'ints', value: [1, 1] },
        group: { kind: 'int', value: group },
        kernel_shape: { kind: 'ints', value: [k, k] },
        pads: { kind: 'ints', value: [pad, pad, pad, pad] },
        strides: { kind: 'ints', value: [stride, stride] },
      },
      [b, cout, oh, ow],
    );
  }
  /**
   * Whether a depthwise unit the generator adds itself (an entry tail, an exit unit) may run on c
   * channels without widening first: not narrower than the real subgraph's narrowest depthwise
   * conv. Real inverted-residual blocks widen before their depthwise conv (×6); such units on
   * block-output widths left MobileNetV2's sentinels a smaller depthwise weight share (0.049 against
   * the real 0.079), BatchNorm share and so the higher exponent entropy (the real member's mean rank
   * 0.28). (Refusing narrow depthwise convs in learned blocks too cost sentinels depthwise convs:
   * the real member then had the largest mean weight std, from its fan-in-9 kernels, in 23 % of groups.)
   */
  depthwiseAt(c: number): boolean {
    const w = this.prof.dwWidths;
    return !w.length || c >= Math.min(...w);
  }
  /** Conv, followed by BatchNormalization when the real subgraph uses it. */
  convBlock(x: Val, cout: number, k: number, stride: number, pad: number): Val {
    const y = this.conv(x, cout, k, stride, pad);
    return this.has('BatchNormalization') ? this.bn(y) : y;
  }
  bn(x: Val): Val {
    const c = num(x.shape[1]!);
    const ins = [1, 2, 3, 4].map((s) => this.weight('BatchNormalization', s, [c]));
    return this.node('BatchNormalization', [x.name, ...ins], { epsilon: { kind: 'float', value: 1e-5 } }, x.shape);
  }
  act(x: Val, op?: string): Val {
    const o = op ?? (this.has('Clip') && !this.has('Relu') ? 'Clip' : 'Relu');
    // Clip's bounds became inputs in opset 11; before that they are attributes.
    if (o === 'Clip' && this.opset < 11) return this.node('Clip', [x.name], { max: { kind: 'float', value: 6 }, min: { kind: 'float', value: 0 } }, x.shape);
    if (o === 'Clip') return this.node('Clip', [x.name, this.scalar(0), this.scalar(6)], {}, x.shape);
    return this.node(o, [x.name], {}, x.shape);
  }
  pool2(x: Val, op: string, k: number, s: number, p: number): Val {
    const [b, c, h, w] = x.shape as [Dim, number, number, number];
    const oh = Math.floor((h + 2 * p - k) / s) + 1;
    const ow = Math.floor((w + 2 * p - k) / s) + 1;
    if (oh < 1 || ow < 1) throw new Dead();
    const attrs: Record<string, Attribute> = {
      kernel_shape: { kind: 'ints', value: [k, k] },
      pads: { kind: 'ints', value: [p, p, p, p] },
      strides: { kind: 'ints', value: [s, s] },
    };
    return this.node(op, [x.name], attrs, [b, c, oh, ow]);
  }
  gapFlatten(x: Val): Val {
    const g = this.node('GlobalAveragePool', [x.name], {}, [x.shape[0]!, x.shape[1]!, 1, 1]);
    return this.node('Flatten', [g.name], { axis: { kind: 'int', value: 1 } }, [x.shape[0]!, x.shape[1]!]);
  }
  gemm(x: Val, out: number): Val {
    const inF = num(x.shape[1]!);
    const w = this.weight('Gemm', 1, [out, inF], inF);
    return this.node('Gemm', [x.name, w, this.weight('Gemm', 2, [out])], { transB: { kind: 'int', value: 1 } }, [x.shape[0]!, out]);
  }
  linear(x: Val, out: number): Val {
    const d = num(x.shape[x.shape.length - 1]!);
    const shape = [...x.shape.slice(0, -1), out];
    const m = this.node('MatMul', [x.name, this.weight('MatMul', 1, [d, out], d)], {}, shape);
    return this.node('Add', [m.name, this.weight('Add', 1, [out])], {}, shape);
  }
  layerNorm(x: Val): Val {
    const d = num(x.shape[x.shape.length - 1]!);
    const ins = [this.weight('LayerNormalization', 1, [d]), this.weight('LayerNormalization', 2, [d])];
    return this.node('LayerNormalization', [x.name, ...ins], { axis: { kind: 'int', value: -1 }, epsilon: { kind: 'float', value: 1e-5 } }, x.shape);
  }
  gelu(x: Val, tanh = this.has('Tanh') && !this.has('Erf')): Val {
    if (tanh) {
      const x3 = this.node('Mul', [this.node('Mul', [x.name, x.name], {}, x.shape).name, x.name], {}, x.shape);
      const inner = this.node('Add', [x.name, this.node('Mul', [x3.name, this.scalar(0.044715)], {}, x.shape).name], {}, x.shape);
      const t = this.node('Tanh', [this.node('Mul', [inner.name, this.scalar(Math.sqrt(2 / Math.PI))], {}, x.shape).name], {}, x.shape);
      const h = this.node('Mul', [x.name, this.scalar(0.5)], {}, x.shape);
      return this.node('Mul', [h.name, this.node('Add', [t.name, this.scalar(1)], {}, x.shape).name], {}, x.shape);
    }
    const e = this.node('Erf', [this.node('Div', [x.name, this.scalar(Math.SQRT2)], {}, x.shape).name], {}, x.shape);
    const h = this.node('Mul', [x.name, this.scalar(0.5)], {}, x.shape);
    return this.node('Mul', [h.name, this.node('Add', [e.name, this.scalar(1)], {}, x.shape).name], {}, x.shape);
  }
  reshape(x: Val, shape: number[]): Val {
    return this.node('Reshape', [x.name, this.ints([0, ...shape])], {}, [x.shape[0]!, ...shape]);
  }
  transpose(x: Val, perm: number[]): Val {
    return this.node(
      'Transpose',
      [x.name],
      { perm: { kind: 'ints', value: perm } },
      perm.map((p) => x.shape[p]!),
    );
  }
  /** An additive causal mask [s, s] (−1e4 above the diagonal, as the zoo's GPT-2 has it). */
  causalMask(s: number): string {
    const mask = new Float32Array(s * s);
    for (let i = 0; i < s; i++) for (let j = i + 1; j < s; j++) mask[i * s + j] = -1e4;
    const name = this.fresh('w');
    this.inits.set(name, { dtype: 'float32', dims: [s, s], data: mask });
    return name;
  }
  /** Self-attention on [b, S, D] with h heads, as real transformer blocks compute it. */
  attention(x: Val): Val {
    const [, s, d] = x.shape.map(num) as [number, number, number];
    const hs = this.prof.heads.filter((h) => d % h === 0);
    const h = this.pick(hs.length ? hs : [1, 2, 4, 8].filter((v) => d % v === 0), 1);
    const dh = d / h;
    const head = (perm: number[]): Val => this.transpose(this.reshape(this.linear(x, d), [s, h, dh]), perm);
    const q = head([0, 2, 1, 3]);
    const kT = head([0, 2, 3, 1]);
    const v = head([0, 2, 1, 3]);
    const sc = [x.shape[0]!, h, s, s];
    let scores = this.node('Div', [this.node('MatMul', [q.name, kT.name], {}, sc).name, this.scalar(Math.sqrt(dh))], {}, sc);
    if (this.has('Softmax') && (this.prof.ops.Add ?? 0) > (this.prof.ops.MatMul ?? 0) + 1 && this.rng.next() < 0.5) {
      scores = this.node('Add', [scores.name, this.causalMask(s)], {}, sc);
    }
    const probs = this.node('Softmax', [scores.name], { axis: { kind: 'int', value: -1 } }, sc);
    const ctx = this.transpose(this.node('MatMul', [probs.name, v.name], {}, [x.shape[0]!, h, s, dh]), [0, 2, 1, 3]);
    return this.linear(this.reshape(ctx, [s, d]), d);
  }
  /** A same-shape activation other than x (a skip connection), if any. */
  partner(x: Val): Val | undefined {
    const c = this.pool.filter((v) => v !== x && v.dtype === x.dtype && same(v.shape, x.shape));
    return c.length ? c[this.rng.int(c.length)] : undefined;
  }

  // ---- the random walk (sentinel-walk.ts) and landing on exact shapes (sentinel-land.ts) ----------

  /** One random-walk step from x (see `stepOn`). */
  step(x: Val, minSpatial: number): Val | undefined {
    return stepOn(this, x, minSpatial);
  }
  /** A value of exactly `target` computed from x (see `landOn`). */
  land(x: Val, target: Dim[], mustCompute: boolean, depth = 0): Val {
    return landOn(this, x, target, mustCompute, depth);
  }

  // ---- convolutional blocks ---------------------------------------------------------------------

  /** Snapshot of the generator state. */
  mark(): Mark {
    return { nodes: this.nodes.length, pool: this.pool.length, inits: this.inits.size, params: this.params, lastOp: this.lastOp, used: [...this.usedInputs] };
  }
  /** Undo everything built since `m`. */
  rollback(m: Mark): void {
    this.nodes.length = m.nodes;
    this.pool.length = m.pool;
    for (const k of [...this.inits.keys()].slice(m.inits)) this.inits.delete(k);
    for (const [k, v] of this.consts) if (!this.inits.has(v)) this.consts.delete(k);
    this.params = m.params;
    this.lastOp = m.lastOp;
    this.usedInputs.clear();
    for (const u of m.used) this.usedInputs.add(u);
  }
  /** Instantiate a learned block template on x; `cout` is the block's output width when it has its own. */
  block(x: Val, t: BlockTemplate, cout: number): Val {
    const C = num(x.shape[1]!);
    const vals: Val[] = [];
    const at = (i: number): Val => (i < 0 ? x : vals[i]!);
    for (const tn of t.nodes) {
      const a = at(tn.ins[0]!);
      let y: Val;
      if (tn.op === 'Conv') {
        const cin = num(a.shape[1]!);
        const co = tn.dw ? cin : tn.ch === 'in' ? C : tn.ch === 'out' ? cout : Math.max(1, Math.round((tn.ch ?? 1) * C));
        y = this.conv(a, co, tn.k!, tn.s!, tn.p!, tn.dw ? cin : 1);
      } else if (tn.op === 'BatchNormalization') y = this.bn(a);
      else if (tn.op === 'MaxPool' || tn.op === 'AveragePool') y = this.pool2(a, tn.op, tn.k!, tn.s!, tn.p!);
      else if (tn.op === 'Add') {
        const b = at(tn.ins[1]!);
        if (!same(a.shape, b.shape)) throw new Dead();
        y = this.node('Add', [a.name, b.name], {}, a.shape);
      } else y = this.act(a, tn.op);
      vals.push(y);
    }
    return vals[vals.length - 1]!;
  }
  /**
   * The end of a learned residual block's main branch on `a`, from one of its convs on, with total
   * stride `stride` and `co` output channels (the Add operand); undefined when no branch fits.
   * `short`: only the shortest tails (a piece drawn smaller than the real one starts at the last conv).
   */
  branchTail(a: Val, stride: number, co: number, branches: readonly Branch[], snap: (w: number) => number, short = false): Val | undefined {
    const opts: { t: BlockTemplate; sub: number[] }[] = [];
    for (const { t, chain } of branches) {
      for (let s = 0; s < chain.length; s++) {
        const sub = chain.slice(s);
        if (t.nodes[sub[0]!]!.op !== 'Conv') continue;
        const st = sub.reduce((p, i) => p * (t.nodes[i]!.s ?? 1), 1);
        const lastConv = [...sub].reverse().find((i) => t.nodes[i]!.op === 'Conv')!;
        if (st !== stride || (t.nodes[lastConv]!.dw && num(a.shape[1]!) !== co)) continue;
        opts.push({ t, sub });
      }
    }
    const min = Math.min(...opts.map((q) => q.sub.length));
    const pool = short ? opts.filter((q) => q.sub.length === min) : opts;
    if (!pool.length) return undefined;
    const { t, sub } = pool[this.rng.int(pool.length)]!;
    // Channels of the block's input: the output's for an identity block, else this input's.
    return this.chainOn(a, t, sub, co, t.out === 'in' || sub[0] !== 0 ? co : num(a.shape[1]!), snap);
  }
  /**
   * The start of a learned residual block's main branch on `a` (up to a node of op `end`), with
   * total stride `stride`, `co` output channels and at most `room` nodes; undefined when none fits.
   */
  branchHead(a: Val, stride: number, co: number, end: string, branches: readonly Branch[], snap: (w: number) => number, room: number): Val | undefined {
    const opts: { t: BlockTemplate; sub: number[] }[] = [];
    for (const { t, chain } of branches) {
      for (let e = 1; e <= chain.length && e <= room; e++) {
        const sub = chain.slice(0, e);
        if (t.nodes[sub[e - 1]!]!.op !== end) continue;
        const st = sub.reduce((p, i) => p * (t.nodes[i]!.s ?? 1), 1);
        const lastConv = [...sub].reverse().find((i) => t.nodes[i]!.op === 'Conv')!;
        if (st !== stride || (t.nodes[lastConv]!.dw && num(a.shape[1]!) !== co)) continue;
        opts.push({ t, sub });
      }
    }
    // Prefer heads that use the room (a longer prefix where the budget allows it).
    const long = opts.filter((q) => q.sub.length >= room - 2);
    const pool = long.length ? long : opts;
    if (!pool.length) return undefined;
    const { t, sub } = pool[this.rng.int(pool.length)]!;
    return this.chainOn(a, t, sub, co, num(a.shape[1]!), snap);
  }
  /** Instantiate the template nodes `sub` (a chain) on `a`; the last conv gets `co` channels, `cb` is the block input's. */
  private chainOn(a: Val, t: BlockTemplate, sub: readonly number[], co: number, cb: number, snap: (w: number) => number): Val {
    const lastConv = [...sub].reverse().find((i) => t.nodes[i]!.op === 'Conv')!;
    let y = a;
    for (const i of sub) {
      const tn = t.nodes[i]!;
      if (tn.op === 'Conv') {
        const cin = num(y.shape[1]!);
        const c = tn.dw ? cin : i === lastConv ? co : tn.ch === 'in' ? cb : tn.ch === 'out' ? co : snap((tn.ch ?? 1) * cb);
        y = this.conv(y, c, tn.k!, tn.s!, tn.p!, tn.dw ? cin : 1);
      } else if (tn.op === 'BatchNormalization') y = this.bn(y);
      else if (tn.op === 'MaxPool' || tn.op === 'AveragePool') y = this.pool2(y, tn.op, tn.k!, tn.s!, tn.p!);
      else y = this.act(y, tn.op);
    }
    if (num(y.shape[1]!) !== co) throw new Dead();
    return y;
  }
  /** Weight elements a block template would draw on x (so over-budget blocks are never built). */
  blockCost(x: Val, t: BlockTemplate, cout: number): number {
    const C = num(x.shape[1]!);
    const ch: number[] = [];
    let n = 0;
    t.nodes.forEach((tn, i) => {
      const cin = tn.ins[0]! < 0 ? C : ch[tn.ins[0]!]!;
      let c = cin;
      if (tn.op === 'Conv') {
        c = tn.dw ? cin : tn.ch === 'in' ? C : tn.ch === 'out' ? cout : Math.max(1, Math.round((tn.ch ?? 1) * C));
        n += c * (tn.dw ? 1 : cin) * tn.k! * tn.k!;
      } else if (tn.op === 'BatchNormalization') n += 4 * cin;
      ch[i] = c;
    });
    return n;
  }
  /** A kernel size as often as the real subgraph uses it at this stride (1×1 shortcuts stay rare). */
  kernelFor(stride: number): number {
    let ks = this.prof.convKS.filter(([, s]) => s > 1 === stride > 1).map(([k]) => k);
    // A strided 1×1 is a projection shortcut, beside a main branch that strides with a wider kernel.
    if (stride > 1 && ks.some((k) => k > 1)) ks = ks.filter((k) => k > 1);
    return this.pick(ks.length ? ks : this.prof.kernels, 3);
  }
  /** One conv unit as the real subgraph builds it (Conv [→ BN] [→ act]), ending at op `end`. */
  unit(x: Val, cout: number, stride: number, end: string, k = this.kernelFor(stride), group = 1): Val {
    // A wide 3×3 that would blow the weight budget becomes the 1×1 a real network would use there.
    if (k > 1 && group === 1 && !this.fits(cout * num(x.shape[1]!) * k * k) && this.prof.kernels.includes(1)) k = 1;
    let y = this.conv(x, cout, k, stride, Math.floor(k / 2), group);
    if (end === 'Conv') return y;
    if (this.convNext.has('BatchNormalization')) y = this.bn(y);
    if (end === 'BatchNormalization' || end === 'Add') return y;
    return this.act(y, this.actOp);
  }
  /** Ops the real subgraph puts right after a Conv (BN in BN networks, an activation otherwise). */
  get convNext(): Set<string> {
    return new Set(this.prof.convNext);
  }
  /** The activation the real subgraph uses. */
  get actOp(): string {
    return this.has('Clip') && !this.has('Relu') ? 'Clip' : this.has('Relu') ? 'Relu' : this.has('Sigmoid') ? 'Sigmoid' : 'Relu';
  }
}

/** Check the body is closed (no dead values, every input read) and wrap it as a model. */
export function finish(real: Model, g: Gen, ins: ValueInfo[], outs: ValueInfo[], outNames: string[]): Model {
  const consumed = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const n of g.nodes) if (!consumed.has(n.outputs[0]!) && !outNames.includes(n.outputs[0]!)) throw new Dead();
  for (const v of ins) if (!consumed.has(v.name)) throw new Dead();
  if (new Set(outNames).size !== outNames.length || outNames.some((n) => ins.some((v) => v.name === n))) throw new Dead();
  // Rename the landed values to the declared output names.
  const rename = new Map(outNames.map((n, j) => [n, outs[j]!.name]));
  const nodes = g.nodes.map((n) => ({ ...n, inputs: n.inputs.map((t) => rename.get(t) ?? t), outputs: n.outputs.map((t) => rename.get(t) ?? t) }));
  const model: Model = {
    irVersion: real.irVersion,
    opsetImports: real.opsetImports.map((o) => ({ ...o })),
    producerName: real.producerName,
    producerVersion: real.producerVersion,
    domain: '',
    modelVersion: 1,
    docString: '',
    metadata: {},
    graph: { name: 'sentinel', nodes, inputs: ins, outputs: outs, initializers: g.inits, valueInfo: [] },
  };
  FILLS.set(model, (pool, part, again) => g.fillWeights(pool, part, again));
  return model;
}

// ---- transformer pieces -------------------------------------------------------------------------

/** The default-domain opset a model declares (17 when it declares none). */
export function opsetOf(m: Model): number {
  return m.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 17;
}
