/**
 * Sentinel generator: fake subgraphs with exactly the real subgraph's interface (number, order,
 * dtypes and shapes of inputs and outputs). CNN pieces are assembled like a window of a real
 * network: inputs joined as a residual block's tail joins them, then block templates learned from
 * the corpus (basic/bottleneck blocks with identity or projection shortcut, inverted residuals,
 * conv units, pooling), chained by the corpus's block transitions and restricted to the op pairs,
 * kernels and strides of the real subgraph; outputs are landed by conv units, strided convs and
 * heads as real networks change shape, each ending on the op producing the real output.
 * Transformer pieces are whole layers on a residual stream: head tensors, MLP activations and
 * streams entering the piece are consumed as a real layer would (attention core, heads merge,
 * output projection, MLP tail, residual adds), attention and MLP blocks in a drawn style (pre- or
 * post-LN, GELU flavour, mask, MLP width) continue it, and outputs are landed as real pieces end
 * (head splits, the stream and its LayerNorm, a tied LM head, a [CLS] pooler). Other pieces are
 * grown by a Markov chain over operators with whole motifs, and adapters land the output shapes.
 * Weights are drawn to match the real weights' per-op statistics (He-normalised for matrices).
 * Among cheap attempts, a CNN or transformer sentinel is kept whose skip structure (residual joins, branch points) and width
 * diversity (distinct weight dimensions) equal the real subgraph's and whose size is near a target
 * drawn around it: sentinels with fewer skips than real pieces were what gave them away.
 */
import { ModelError, sizeOf } from '../onnx/ir.js';
import type { Attribute, Dim, DType, Model, Node, Tensor, ValueInfo } from '../onnx/ir.js';
import { inferShapes } from '../onnx/shape.js';
import { Prng } from './rng.js';
import { profileOf, weightKey } from './stats.js';
import type { BlockTemplate, OpStats, Profile, WeightStat } from './stats.js';

/** Options of `generateSentinels`. */
export interface SentinelOptions {
  /** Corpus statistics (see `learnStats`). */
  stats: OpStats;
  /** PRNG seed (default: fresh randomness). */
  seed?: number;
  /** Or a generator to draw from (wins over `seed`). */
  rng?: Prng;
  /** Op types of the whole model the subgraph was cut from: styles a piece alone does not show (the GELU flavour). */
  modelOps?: ReadonlySet<string>;
  /** Attempts per sentinel before giving up (default 12). */
  attempts?: number;
}

/** A value during generation: name, dtype and shape (dim 0 may be symbolic). */
interface Val {
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

const num = (d: Dim): number => (typeof d === 'number' ? d : -1);
const same = (a: readonly Dim[], b: readonly Dim[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

let TABLE: Float32Array | undefined;
/** 65,536 standard-normal quantiles at (i + ½)/65,536 (Acklam's inverse-CDF approximation). */
function normalTable(): Float32Array {
  if (TABLE) return TABLE;
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const inv = (p: number): number => {
    if (p < 0.02425) {
      const q = Math.sqrt(-2 * Math.log(p));
      return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
    }
    if (p > 1 - 0.02425) return -inv(1 - p);
    const q = p - 0.5;
    const r = q * q;
    return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  };
  TABLE = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) TABLE[i] = inv((i + 0.5) / 65536);
  return TABLE;
}

/** Placeholder data of a weight whose values are not drawn yet. */
const EMPTY = new Float32Array(0);
/** How to draw the weights of a finished attempt (only the kept attempt pays for it). */
const FILLS = new WeakMap<Model, () => void>();

/** Raised inside one attempt when the random walk cannot be completed; the attempt is retried. */
class Dead extends Error {}

/** Generator state to roll back to when a block overshoots the weight budget. */
interface Mark {
  nodes: number;
  pool: number;
  inits: number;
  params: number;
  lastOp: string;
  used: string[];
}

/** Builds one sentinel. */
class Gen {
  readonly nodes: Node[] = [];
  readonly inits = new Map<string, Tensor>();
  readonly pool: Val[] = [];
  readonly usedInputs = new Set<string>();
  /** Weights whose values are not drawn yet: tensor, mean, std, keep positive. */
  readonly lazy: [Tensor, number, number, boolean][] = [];
  private readonly consts = new Map<string, string>();
  private ids = 0;
  lastOp = '<in>';
  /** Weight elements drawn so far, against a budget near the real subgraph's. */
  params = 0;
  readonly budget: number;

  constructor(
    readonly rng: Prng,
    readonly prof: Profile,
    readonly stats: OpStats,
    readonly inputs: readonly ValueInfo[],
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
    this.lazy.push([t, st.mean, std, op === 'BatchNormalization' && slot === 4]);
    return name;
  }
  /** Draw the values of every weight still in the graph. */
  fillWeights(): void {
    const q = normalTable();
    for (const [t, mean, std, positive] of this.lazy) {
      if (t.data !== EMPTY) continue;
      const n = sizeOf(t.dims);
      const a = new Float32Array(n);
      // Table lookup of normal quantiles: one PRNG call per weight (Box–Muller was the bottleneck).
      if (std > 0) for (let i = 0; i < n; i++) a[i] = mean + std * q[this.rng.nextU32() >>> 16]!;
      else a.fill(mean);
      if (positive) for (let i = 0; i < n; i++) a[i] = Math.max(1e-3, Math.abs(a[i]!));
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
    return this.node('Transpose', [x.name], { perm: { kind: 'ints', value: perm } }, perm.map((p) => x.shape[p]!));
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

  // ---- the random walk ---------------------------------------------------------------------------

  /** Candidate moves from x with their bigram weights; each returns the new current value. */
  step(x: Val, minSpatial: number): Val | undefined {
    const r = x.shape.length;
    const moves: [string, () => Val][] = [];
    const C = num(x.shape[1]!);
    if (r === 4 && this.has('Conv') && C > 0) {
      const k = this.pick(this.prof.kernels, 3);
      const h = num(x.shape[2]!);
      const strideOk = this.prof.strides.filter((s) => s > 1 && Math.ceil(h / s) >= minSpatial);
      const stride = strideOk.length && this.rng.next() < 0.25 ? this.pick(strideOk, 2) : 1;
      const dw = this.prof.depthwise && k > 1 && this.rng.next() < 0.5;
      let cout = dw ? C : this.rng.next() < 0.5 ? C : this.pick(this.prof.channels, C);
      let kk = k;
      if (!dw && !this.fits(cout * C * kk * kk)) {
        const cheaper = this.prof.channels.filter((c) => this.fits(c * C));
        kk = 1;
        cout = cheaper.length ? this.pick(cheaper, C) : Math.min(C, cout);
      }
      if (dw || this.fits(cout * C * kk * kk)) moves.push(['Conv', () => this.conv(x, cout, kk, stride, Math.floor(kk / 2), dw ? C : 1)]);
    }
    if (r === 4 && this.has('BatchNormalization')) moves.push(['BatchNormalization', () => this.bn(x)]);
    for (const a of ['Relu', 'Clip', 'Sigmoid']) if (this.has(a)) moves.push([a, () => this.act(x, a)]);
    if (r === 4) {
      for (const p of ['MaxPool', 'AveragePool']) {
        const h = num(x.shape[2]!);
        if (this.has(p) && h / 2 >= minSpatial) moves.push([p, () => this.pool2(x, p, this.pick(this.prof.poolKernels, 2), 2, 0)]);
      }
      if (this.has('GlobalAveragePool') && minSpatial <= 0) moves.push(['GlobalAveragePool', () => this.gapFlatten(x)]);
    }
    if (r === 2 && this.has('Gemm')) moves.push(['Gemm', () => this.gemm(x, this.pick(this.prof.widths, C))]);
    if (r === 3) {
      const d = num(x.shape[2]!);
      if (this.has('MatMul')) moves.push(['MatMul', () => this.linear(x, this.rng.next() < 0.6 ? d : this.pick(this.prof.widths, d))]);
      if (this.has('LayerNormalization')) moves.push(['LayerNormalization', () => this.layerNorm(x)]);
      if (this.has('Softmax') && this.has('Transpose')) moves.push(['Softmax', () => this.attention(x)]);
      if (this.has('Erf') || (this.has('Tanh') && this.has('Mul'))) moves.push([this.has('Erf') ? 'Div' : 'Mul', () => this.gelu(x)]);
    }
    if (r === 4 && !this.has('Conv') && this.has('Transpose') && this.has('Reshape')) {
      const [a, b2, c] = x.shape.slice(1).map(num) as [number, number, number];
      moves.push(['Transpose', () => this.reshape(this.transpose(x, [0, 2, 1, 3]), [b2, a * c])]);
    }
    const p = this.partner(x);
    if (p && this.has('Add') && this.lastOp !== 'Add' && this.rng.next() < 0.5 + this.stats.skipRate) moves.push(['Add', () => this.node('Add', [x.name, p.name], {}, x.shape)]);
    if (moves.length === 0) return undefined;
    const row = this.stats.bigram[this.lastOp] ?? {};
    const total = Object.values(row).reduce((s, v) => s + v, 0) || 1;
    const entry = this.lastOp === '<in>' ? this.prof.entry : [];
    // Transition probability, the real subgraph's own entry ops at the start, a little smoothing.
    const wts = moves.map(([op]) => (row[op] ?? 0) / total + (entry.includes(op) ? 1 : 0) + 0.01);
    let u = this.rng.next() * wts.reduce((s, w) => s + w, 0);
    for (let i = 0; i < moves.length; i++) {
      u -= wts[i]!;
      if (u <= 0) return moves[i]![1]();
    }
    return moves[moves.length - 1]![1]();
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
   */
  branchTail(a: Val, stride: number, co: number, branches: readonly Branch[], snap: (w: number) => number): Val | undefined {
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
    if (!opts.length) return undefined;
    const { t, sub } = opts[this.rng.int(opts.length)]!;
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
    let ks = this.prof.convKS.filter(([, s]) => (s > 1) === (stride > 1)).map(([k]) => k);
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

  // ---- landing on an exact shape ---------------------------------------------------------------

  /** A value of exactly `target` computed from x (x itself if it already fits and may be reused). */
  land(x: Val, target: Dim[], mustCompute: boolean, depth = 0): Val {
    if (depth > 6) throw new Dead();
    const conv = this.has('Conv') || this.has('MaxPool') || this.has('AveragePool');
    const ts = target.slice(1).map(num);
    if (ts.some((d) => d < 0)) throw new ModelError('sentinels need static shapes except the batch dimension');
    const xs = x.shape.slice(1).map(num);
    const b = x.shape[0]!;
    const again = (v: Val): Val => this.land(v, target, false, depth + 1);
    if (same(x.shape, target)) {
      if (!mustCompute) return x;
      if (target.length === 4 && conv) return this.act(this.convBlock(x, ts[0]!, 1, 1, 0));
      if (target.length === 2) return this.gemm(x, ts[0]!);
      return this.linear(x, ts[ts.length - 1]!);
    }
    if (xs.length === 3 && ts.length === 3 && conv) {
      const [c, h, w] = xs as [number, number, number];
      const [c2, h2, w2] = ts as [number, number, number];
      if (h < h2 || w < w2) {
        if (h2 % h === 0 && w2 % w === 0) return again(this.node('Tile', [x.name, this.ints([1, 1, h2 / h, w2 / w])], {}, [b, c, h2, w2]));
        const pads = [0, 0, 0, 0, 0, 0, Math.max(0, h2 - h), Math.max(0, w2 - w)];
        return again(this.node('Pad', [x.name, this.ints(pads)], {}, [b, c, Math.max(h, h2), Math.max(w, w2)]));
      }
      if (h === h2 && w === w2) return this.convBlock(x, c2, 1, 1, 0);
      if (h % h2 === 0 && w % w2 === 0 && h / h2 === w / w2 && h / h2 <= 4) {
        const k = this.fits(9 * c * c2) && this.prof.kernels.includes(3) ? 3 : 1;
        return this.convBlock(x, c2, k, h / h2, k === 3 ? 1 : 0);
      }
      const sh = Math.floor(h / h2);
      const sw = Math.floor(w / w2);
      const k = [h - sh * (h2 - 1), w - sw * (w2 - 1)];
      const pool = this.node(
        this.has('AveragePool') ? 'AveragePool' : 'MaxPool',
        [x.name],
        { kernel_shape: { kind: 'ints', value: k }, pads: { kind: 'ints', value: [0, 0, 0, 0] }, strides: { kind: 'ints', value: [sh, sw] } },
        [b, c, h2, w2],
      );
      return again(pool);
    }
    if (xs.length === 3 && ts.length === 1 && conv) return again(this.gapFlatten(x));
    if (xs.length === 1 && ts.length === 1) return this.gemm(x, ts[0]!);
    if (xs.length === 1 && ts.length === 3 && conv) return again(this.reshape(this.gemm(x, ts[0]!), [ts[0]!, 1, 1]));
    const px = sizeOf(xs);
    const pt = sizeOf(ts);
    if (xs.length === ts.length && xs.length > 1 && same(xs.slice(0, -1), ts.slice(0, -1))) return this.linear(x, ts[ts.length - 1]!);
    if (px === pt && xs.length === ts.length) {
      const perm = permutationTo(xs, ts);
      if (perm) return this.transpose(x, [0, ...perm.map((p) => p + 1)]);
    }
    if (xs.length === 2 && ts.length === 3) {
      const [s, d] = xs as [number, number];
      const j = ts.indexOf(s);
      if (j >= 0) {
        const rest = ts.filter((_, i) => i !== j);
        const e = sizeOf(rest);
        const y = e === d ? x : this.linear(x, e);
        const split = this.reshape(y, [s, ...rest]);
        const order = [s, ...rest];
        const perm = permutationTo(order, ts, j);
        return perm && perm.some((p, i) => p !== i) ? this.transpose(split, [0, ...perm.map((p) => p + 1)]) : split;
      }
    }
    if (xs.length === 3 && ts.length === 2) {
      const [s2, d2] = ts as [number, number];
      const j = xs.indexOf(s2);
      if (j >= 0) {
        const others = [0, 1, 2].filter((i) => i !== j);
        const t = j === 0 ? x : this.transpose(x, [0, j + 1, ...others.map((i) => i + 1)]);
        const m = this.reshape(t, [s2, xs[others[0]!]! * xs[others[1]!]!]);
        return again(m);
      }
    }
    if (xs.length === 2 && ts.length === 1) {
      const g = this.node('Gather', [x.name, this.ints([0], [])], { axis: { kind: 'int', value: 1 } }, [b, xs[1]!]);
      return again(g);
    }
    if (px === pt) return this.reshape(x, ts);
    // General fallback: flatten, a fully connected layer, reshape.
    let flat = xs.length === 1 ? x : this.node('Flatten', [x.name], { axis: { kind: 'int', value: 1 } }, [b, px]);
    if (xs.length === 3 && conv && px * pt > 1 << 22) flat = this.gapFlatten(x);
    const fc = this.gemm(flat, pt);
    return ts.length === 1 ? fc : this.reshape(fc, ts);
  }
}

/** Permutation p with xs[p[i]] = ts[i] (each index used once), preferring `pin` at its place; null if none. */
function permutationTo(xs: readonly number[], ts: readonly number[], pin?: number): number[] | null {
  if (xs.length !== ts.length) return null;
  const used = new Array<boolean>(xs.length).fill(false);
  const p: number[] = new Array(ts.length);
  if (pin !== undefined) {
    p[pin] = 0;
    used[0] = true;
  }
  for (let i = 0; i < ts.length; i++) {
    if (i === pin) continue;
    let j = xs.findIndex((v, k) => !used[k] && v === ts[i]);
    if (j < 0) return null;
    used[j] = true;
    p[i] = j;
  }
  return p;
}

/** The I/O shapes a sentinel must reproduce: static except dimension 0. */
function checkInterface(real: Model): void {
  for (const v of [...real.graph.inputs, ...real.graph.outputs]) {
    const what = `subgraph '${real.graph.name}' value '${v.name}'`;
    if (!v.shape || v.shape.length === 0) throw new ModelError(`${what} has no known shape: cannot build sentinels for it`);
    if (v.shape.slice(1).some((d) => typeof d !== 'number')) throw new ModelError(`${what} has a symbolic dimension past the first: sentinels need static shapes`);
    if (v.dtype !== 'float32' && !(v.dtype === 'int64' && real.graph.inputs.includes(v))) throw new ModelError(`${what} has dtype ${v.dtype}: sentinels support float32 values and int64 index inputs`);
  }
}

/** One attempt at a sentinel with about `target` operators. */
function attempt(real: Model, prof: Profile, stats: OpStats, rng: Prng, target: number): Model {
  const rg = real.graph;
  const ins: ValueInfo[] = rg.inputs.map((v, i) => ({ name: `in${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const outs: ValueInfo[] = rg.outputs.map((v, i) => ({ name: `out${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const g = new Gen(rng, prof, stats, ins);
  const minSpatial = Math.min(...outs.map((o) => (o.shape!.length === 4 ? num(o.shape![2]!) : 0)));
  // Start from a float input (an index input first goes through an embedding lookup).
  const vals: Val[] = ins.map((v) => {
    if (v.dtype !== 'int64') return { name: v.name, dtype: v.dtype, shape: v.shape! };
    const vocab = g.pick(prof.vocab, 1000);
    const d = g.pick(prof.widths, 64);
    const emb = g.node('Gather', [g.weight('Gather', 0, [vocab, d]), v.name], { axis: { kind: 'int', value: 0 } }, [...v.shape!, d]);
    return v.shape!.length === 2 && (prof.ops.Add ?? 0) > 0 ? g.node('Add', [emb.name, g.weight('Add', 1, [num(v.shape![1]!), d])], {}, emb.shape) : emb;
  });
  for (const v of vals) if (ins.some((i) => i.name === v.name)) g.pool.push(v);
  const isStart = (v: Val): boolean => ins.every((i) => i.name !== v.name) || v.dtype === 'float32';
  let floatIdx = vals.findIndex((v) => isStart(v) && (prof.ops.Conv !== undefined || v.shape.length === 3));
  if (floatIdx < 0) floatIdx = vals.findIndex(isStart);
  let x = vals[floatIdx < 0 ? 0 : floatIdx]!;
  g.usedInputs.add(ins[floatIdx < 0 ? 0 : floatIdx]!.name);
  const reserve = outs.length * 2 + vals.length - 1;
  while (g.nodes.length < target - reserve) {
    const y = g.step(x, minSpatial);
    if (!y) break;
    x = y;
  }
  // Every input must be read: a dangling input would give the sentinel away.
  vals.forEach((v, i) => {
    if (g.usedInputs.has(ins[i]!.name) && v.name === ins[i]!.name) return;
    if (v === x) return;
    if (v.name !== ins[i]!.name && g.nodes.some((n) => n.inputs.includes(v.name))) return;
    const a = g.land(v, x.shape, v.name === ins[i]!.name && !g.has('Add'));
    x = g.node(g.has('Add') || !g.has('Mul') ? 'Add' : 'Mul', [x.name, a.name], {}, x.shape);
  });
  // Land each required output; earlier ones branch off intermediate values, the last one ends the chain.
  const taken = new Set<string>(ins.map((v) => v.name));
  const outNames: string[] = [];
  outs.forEach((o, j) => {
    let src = x;
    if (j < outs.length - 1) {
      const produced = g.pool.filter((v) => !taken.has(v.name) && g.nodes.some((n) => n.outputs[0] === v.name));
      const fit = produced.filter((v) => same(v.shape, o.shape!));
      src = fit.length ? fit[rng.int(fit.length)]! : produced.length ? produced[Math.floor(produced.length * (0.5 + 0.5 * rng.next()))] ?? x : x;
    }
    const y = g.land(src, o.shape!, taken.has(src.name));
    taken.add(y.name);
    outNames.push(y.name);
    if (j === outs.length - 1 || src === x) x = y;
  });
  // Outputs may still have left the current value dangling (when the last output came from elsewhere): finish() rejects that.
  return finish(real, g, ins, outs, outNames);
}

/** Check the body is closed (no dead values, every input read) and wrap it as a model. */
function finish(real: Model, g: Gen, ins: ValueInfo[], outs: ValueInfo[], outNames: string[]): Model {
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
  FILLS.set(model, () => g.fillWeights());
  return model;
}

// ---- transformer pieces -------------------------------------------------------------------------

/** What a transformer interface value is, read off its shape against sequence length S and width D. */
type TfRole = 'ids' | 'stream' | 'wide' | 'split' | 'heads' | 'headsT' | 'scores' | 'pooled' | 'other';

/** Geometry of a transformer piece: sequence length, width, heads, head width, MLP width. */
interface TfGeom {
  S: number;
  D: number;
  h: number;
  dh: number;
  F: number;
}

function tfRole(v: ValueInfo, geo: TfGeom): TfRole {
  const s = v.shape!.slice(1).map(num);
  const { S, D } = geo;
  if (v.dtype === 'int64') return s.length === 1 && s[0] === S ? 'ids' : 'other';
  if (s.length === 1) return 'pooled';
  if (s.length === 2 && s[0] === S) return s[1] === D ? 'stream' : 'wide';
  if (s.length === 3 && s[1] === S && s[2] === S) return 'scores';
  if (s.length === 3 && s[0] === S && s[1]! * s[2]! === D) return 'split';
  if (s.length === 3 && s[1] === S && s[0]! * s[2]! === D) return 'heads';
  if (s.length === 3 && s[2] === S && s[0]! * s[1]! === D) return 'headsT';
  return 'other';
}

/** Sequence length, width and head split of a transformer piece, from its interface; undefined if it has none. */
function tfGeometry(real: Model, prof: Profile, rng: Prng): TfGeom | undefined {
  const vals = [...real.graph.inputs, ...real.graph.outputs].map((v) => v.shape!.slice(1).map(num));
  const ids = real.graph.inputs.find((v) => v.dtype === 'int64');
  const seqs = vals.filter((s) => s.length === 2).map((s) => s[0]!);
  const S = ids ? num(ids.shape![1]!) : seqs[0];
  if (S === undefined || S <= 0) return undefined;
  // Width: the most common last dimension of [S, ·] values (inputs count double: they are the stream).
  const votes = new Map<number, number>();
  real.graph.inputs.forEach((v) => {
    const s = v.shape!.slice(1).map(num);
    if (s.length === 2 && s[0] === S) votes.set(s[1]!, (votes.get(s[1]!) ?? 0) + 2);
  });
  for (const s of vals) if (s.length === 2 && s[0] === S) votes.set(s[1]!, (votes.get(s[1]!) ?? 0) + 1);
  let D = [...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
  if (D === undefined) {
    const head = vals.find((s) => s.length === 3);
    if (!head) return undefined;
    D = head[0] === S ? head[1]! * head[2]! : head[1] === S ? head[0]! * head[2]! : head[0]! * head[1]!;
  }
  // Heads: read off the head tensors of the interface, by the same roles the generator uses.
  let h = 0;
  const sized: TfGeom = { S, D, h: 0, dh: 0, F: 0 };
  for (const v of [...real.graph.inputs, ...real.graph.outputs]) {
    const r = tfRole(v, sized);
    const s = v.shape!.slice(1).map(num);
    if (r === 'split') h = s[1]!;
    else if (r === 'heads' || r === 'headsT') h = s[0]!;
  }
  if (!h) {
    const hs = prof.heads.filter((v) => D! % v === 0);
    const dflt = [1, 2, 4, 8, 12, 16].filter((v) => D! % v === 0 && D! / v >= 8);
    const pool = hs.length ? hs : dflt.length ? dflt : [1];
    h = pool[rng.int(pool.length)]!;
  }
  const wides = [...prof.widths, ...vals.filter((s) => s.length === 2 && s[0] === S).map((s) => s[1]!)].filter((w) => w !== D && w >= D && w <= 8 * D);
  // MLP width: one seen in the piece, else 4× as in BERT and GPT (narrower MLPs read as smaller pieces).
  const F = wides.length ? wides[rng.int(wides.length)]! : 4 * D;
  return { S, D, h, dh: D / h, F };
}

/** Whether a subgraph is a transformer piece: sequence-shaped interface, no convolutions, transformer ops. */
function isTransformer(real: Model, prof: Profile): boolean {
  if ((prof.ops.Conv ?? 0) > 0) return false;
  const ops = ['MatMul', 'LayerNormalization', 'Softmax', 'Gather'];
  const seq = real.graph.inputs.every((v) => (v.dtype === 'int64' && v.shape?.length === 2) || (v.dtype === 'float32' && (v.shape?.length === 3 || v.shape?.length === 4)));
  return seq && ops.some((o) => (prof.ops[o] ?? 0) > 0);
}

/** Choices that make one transformer sentinel: pre- or post-LN blocks, GELU flavour, attention mask. */
interface TfStyle {
  preLN: boolean;
  tanh: boolean;
  mask: boolean;
  /** Linear layers carry a bias Add (as the real piece's do; LLaMA/T5-style exports have none). */
  bias: boolean;
}

/** Transformer layers on a residual stream, in the op patterns real exports use (see the zoo). */
class TfBody {
  /** The residual stream. */
  x?: Val;
  /** Attention cores built so far. */
  cores = 0;
  private lnOfX?: Val;
  constructor(
    readonly g: Gen,
    readonly geo: TfGeom,
    readonly st: TfStyle,
  ) {}
  /** A linear layer in the style's form (MatMul, plus its bias Add when the style has biases). */
  lin(v: Val, out: number): Val {
    if (this.st.bias) return this.g.linear(v, out);
    const d = num(v.shape[v.shape.length - 1]!);
    return this.g.node('MatMul', [v.name, this.g.weight('MatMul', 1, [d, out], d)], {}, [...v.shape.slice(0, -1), out]);
  }
  /** Split [S, D] into heads [S, h, dh], then transposed by perm (q/v: 0,2,1,3; kᵀ: 0,2,3,1). */
  split(v: Val, perm?: number[]): Val {
    const r = this.g.reshape(v, [this.geo.S, this.geo.h, this.geo.dh]);
    return perm ? this.g.transpose(r, perm) : r;
  }
  /** Scaled dot-product attention on heads: [h, S, dh] context before the heads merge. */
  core(q: Val, kT: Val, v: Val, scores?: Val): Val {
    const g = this.g;
    const { S, h, dh } = this.geo;
    const b = q.shape[0]!;
    const sc = [b, h, S, S];
    let s = scores ?? g.node('Div', [g.node('MatMul', [q.name, kT.name], {}, sc).name, g.scalar(Math.sqrt(dh))], {}, sc);
    if (this.st.mask) {
      s = g.node('Add', [s.name, g.causalMask(S)], {}, sc);
    }
    const p = g.node('Softmax', [s.name], { axis: { kind: 'int', value: -1 } }, sc);
    this.cores++;
    return g.node('MatMul', [p.name, v.name], {}, [b, h, S, dh]);
  }
  /** Merge heads back to [S, D]. */
  merge(ctx: Val): Val {
    return this.g.reshape(this.g.transpose(ctx, [0, 2, 1, 3]), [this.geo.S, this.geo.D]);
  }
  /** Multi-head self-attention of src, through the output projection. */
  attention(src: Val): Val {
    const q = this.split(this.lin(src, this.geo.D), [0, 2, 1, 3]);
    const kT = this.split(this.lin(src, this.geo.D), [0, 2, 3, 1]);
    const v = this.split(this.lin(src, this.geo.D), [0, 2, 1, 3]);
    return this.lin(this.merge(this.core(q, kT, v)), this.geo.D);
  }
  mlp(src: Val): Val {
    return this.lin(this.g.gelu(this.lin(src, this.geo.F), this.st.tanh), this.geo.D);
  }
  /** The normalised stream the next block reads (pre-LN: LayerNorm of x, made once; post-LN: x). */
  lnx(): Val {
    if (!this.x) throw new Dead();
    if (!this.st.preLN) return this.x;
    this.lnOfX ??= this.g.layerNorm(this.x);
    return this.lnOfX;
  }
  /** Close a block: residual add of y onto `res` (default x), LayerNorm after it in post-LN style. */
  residual(y: Val, res?: Val): void {
    const base = res ?? this.x;
    const sum = base ? this.g.node('Add', [base.name, y.name], {}, y.shape) : y;
    this.x = this.st.preLN ? sum : this.g.layerNorm(sum);
    this.lnOfX = undefined;
  }
  /** One block (attention or MLP) reading src (default: the normalised stream). */
  block(kind: 'attention' | 'mlp', src?: Val, res?: Val): void {
    const s = src ?? this.lnx();
    this.residual(kind === 'attention' ? this.attention(s) : this.mlp(s), res);
  }
}

/** Whether the real piece has a weight MatMul without a bias Add after it (bias-free linear layers). */
function unbiased(real: Model): boolean {
  const g = real.graph;
  const readers = new Map<string, string[]>();
  for (const n of g.nodes) for (const t of n.inputs) readers.set(t, [...(readers.get(t) ?? []), n.opType]);
  return g.nodes.some((n) => n.opType === 'MatMul' && g.initializers.has(n.inputs[1] ?? '') && !(readers.get(n.outputs[0]!) ?? []).includes('Add'));
}

/** Nodes of one block of `kind` in `st` style (to steer the sentinel's size). */
function tfBlockSize(kind: 'attention' | 'mlp', st: TfStyle): number {
  const lin = st.bias ? 2 : 1;
  const body = kind === 'attention' ? 4 * lin + 3 * 2 + 5 + (st.mask ? 1 : 0) : 2 * lin + (st.tanh ? 9 : 5);
  return body + 2;
}

/**
 * One transformer sentinel: the interface's head tensors, MLP activations and streams are consumed
 * as a real layer would (attention core, heads merge and projection, MLP tail, residual adds), then
 * whole attention/MLP blocks in the drawn style continue the stream until the size is near the
 * target, and outputs are landed as real pieces end (head splits, the stream and its LayerNorm,
 * MLP activations, a tied LM head or a [CLS] pooler).
 */
function tfAttempt(real: Model, prof: Profile, stats: OpStats, rng: Prng, target: number, modelOps?: ReadonlySet<string>): Model {
  const geo = tfGeometry(real, prof, rng);
  if (!geo) throw new Dead();
  const rg = real.graph;
  const ins: ValueInfo[] = rg.inputs.map((v, i) => ({ name: `in${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const outs: ValueInfo[] = rg.outputs.map((v, i) => ({ name: `out${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const g = new Gen(rng, prof, stats, ins);
  const has = (op: string): boolean => (prof.ops[op] ?? 0) > 0;
  const st: TfStyle = {
    preLN: rng.next() < 0.5,
    tanh: has('Tanh') && !has('Erf') ? true : has('Erf') ? false : modelOps?.has('Tanh') && !modelOps.has('Erf') ? true : modelOps?.has('Erf') ? false : rng.next() < 0.5,
    // An additive (causal) mask exactly when the real attention has one: the mask constant dominates weight statistics.
    mask: prof.pairs.includes('Add>Softmax'),
    bias: !unbiased(real),
  };
  const t = new TfBody(g, geo, st);
  const inRoles = ins.map((v) => tfRole(v, geo));
  const roles = outs.map((o) => tfRole(o, geo));
  const by = (r: TfRole): Val[] => ins.filter((_, i) => inRoles[i] === r).map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape! }));
  if (inRoles.some((r) => r === 'other' || r === 'pooled')) throw new Dead();
  const streams = by('stream');
  for (let i = streams.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [streams[i], streams[j]] = [streams[j]!, streams[i]!];
  }
  const [split, heads, headsT, scores, wide] = [by('split'), by('heads'), by('headsT'), by('scores'), by('wide')] as const;
  let lastSrc: Val | undefined;
  // A stream a projection reads: an unread stream input, else the normalised stream.
  const src = (): Val => {
    const s = streams.shift();
    if (s) return (lastSrc = s);
    if (t.x) return t.lnx();
    // Q, K and V may all be projections of the same stream.
    if (lastSrc) return lastSrc;
    throw new Dead();
  };
  // An attention context left unmerged, for a [h, S, dh] output (pieces cut after the core).
  let openCtx: Val | undefined;
  let next: 'attention' | 'mlp' = rng.next() < 0.5 ? 'attention' : 'mlp';
  for (const ids of by('ids')) {
    const emb = g.node('Gather', [g.weight('Gather', 0, [g.pick(prof.vocab, 1000), geo.D]), ids.name], { axis: { kind: 'int', value: 0 } }, [ids.shape[0]!, geo.S, geo.D]);
    const pos = g.node('Add', [emb.name, g.weight('Add', 1, [geo.S, geo.D])], {}, emb.shape);
    if (t.x) t.residual(pos);
    else t.x = st.preLN ? pos : g.layerNorm(pos);
    next = 'attention';
  }
  // Head tensors entering the piece: finish the attention they belong to.
  while (split.length || heads.length || headsT.length || scores.length) {
    const head = (perm: number[]): Val => {
      const s = split.shift();
      if (s) return g.transpose(s, perm);
      // An entering stream may be a projection already (cut between a projection and its head split).
      const fresh = streams.length > 0;
      const from = src();
      return t.split(fresh && rng.next() < 0.5 ? from : t.lin(from, geo.D), perm);
    };
    // A [h, S, dh] input is a query/value, or (sometimes) an attention context before the heads merge.
    let ctx: Val | undefined;
    if (!has('Softmax') && split.length && !heads.length && !headsT.length && !scores.length) {
      // A context already transposed back to [S, h, dh]: merge it and project.
      t.residual(t.lin(g.reshape(split.shift()!, [geo.S, geo.D]), geo.D), streams.shift());
      next = 'mlp';
      continue;
    }
    if (!has('Softmax') && heads.length && !headsT.length && !scores.length && !split.length && rng.next() < 0.5) ctx = heads.shift()!;
    else {
      const sc = scores.shift();
      // Which of Q, K, V the entering head tensors are is drawn (in real pieces it is any of them).
      const made: Partial<Record<'q' | 'kT' | 'v', Val>> = {};
      const need: ('q' | 'kT' | 'v')[] = sc ? ['v'] : rng.next() < 0.5 ? ['q', 'kT', 'v'] : ['v', 'kT', 'q'];
      for (const r of need) made[r] = r === 'kT' ? (headsT.shift() ?? head([0, 2, 3, 1])) : (heads.shift() ?? head([0, 2, 1, 3]));
      ctx = t.core(made.q ?? made.v!, made.kT ?? made.v!, made.v!, sc);
    }
    const last = !(split.length || heads.length || headsT.length || scores.length);
    if (last && (roles.includes('heads') || roles.includes('split') || (roles.filter((r) => r === 'stream').length === 1 && !t.x && !streams.length)) && rng.next() < 0.5) {
      openCtx = ctx;
      break;
    }
    t.residual(t.lin(t.merge(ctx), geo.D), streams.shift());
    next = 'mlp';
  }
  // MLP activations entering the piece: the MLP's tail.
  for (const w of wide) {
    const a = rng.next() < 0.5 ? g.gelu(w, st.tanh) : w;
    t.residual(t.lin(a, geo.D), streams.shift());
    next = 'attention';
  }
  if (!t.x && !openCtx) {
    // Streams only: a block reads one (the normalised stream) and adds onto another (the residual),
    // or one is a merged attention context whose output projection adds onto the other.
    const u = rng.next();
    if (streams.length >= 2 && u < 0.4) {
      const s0 = streams.shift()!;
      t.block(next, s0, streams.shift());
      next = next === 'attention' ? 'mlp' : 'attention';
    } else if (streams.length >= 2 && u < 0.8) {
      const ctx = streams.shift()!;
      t.residual(t.lin(ctx, geo.D), streams.shift());
      next = 'mlp';
    } else t.x = streams.shift();
  }
  if (!t.x && !openCtx) throw new Dead();
  // Whole blocks while they bring the size nearer the target; extra streams join as residuals.
  const landCost = roles.reduce((c, r) => c + ({ heads: 5, headsT: 5, split: 3, wide: 3, stream: 1, pooled: 4, ids: 0, scores: 6, other: 3 } as const)[r], 0);
  const isInput = (v: Val): boolean => ins.some((i) => i.name === v.name);
  while (t.x && (streams.length || isInput(t.x) || g.nodes.length + landCost + tfBlockSize(next, st) / 2 < target)) {
    t.block(next, undefined, streams.shift());
    next = next === 'attention' ? 'mlp' : 'attention';
    if (g.nodes.length > 4 * target + 40) throw new Dead();
  }
  // Land the outputs: the last stream output is the stream itself; the others branch off it.
  const lastStream = roles.lastIndexOf('stream');
  const outNames: string[] = new Array(outs.length);
  const taken = new Set<string>();
  const order = outs.map((_, j) => j).sort((a, b) => (a === lastStream ? 1 : 0) - (b === lastStream ? 1 : 0));
  for (const j of order) {
    const o = outs[j]!;
    const r = roles[j]!;
    let y: Val;
    const x = t.x;
    if (openCtx && (r === 'heads' || r === 'split' || (r === 'stream' && !x))) {
      // The open attention context: as it is, transposed back, or merged.
      y = r === 'heads' ? openCtx : r === 'split' ? g.transpose(openCtx, [0, 2, 1, 3]) : t.merge(openCtx);
      openCtx = undefined;
    } else if (!x) throw new Dead();
    else if (r === 'stream') {
      if (j === lastStream && !taken.has(x.name)) y = x;
      else {
        // The stream's LayerNorm, an earlier stream value (a residual sum, the stream before the
        // last block: real pieces export those), or a projection of the normalised stream.
        const l = t.lnx();
        const earlier = g.pool.filter((v) => v !== x && v !== l && !taken.has(v.name) && !isInput(v) && same(v.shape, x.shape));
        const u = rng.next();
        if (l !== x && !taken.has(l.name) && u < 0.45) y = l;
        else if (earlier.length && u < 0.8) y = earlier[rng.int(earlier.length)]!;
        else y = t.lin(l, geo.D);
      }
    } else if (r === 'heads' || r === 'headsT' || r === 'split') {
      const perm = r === 'heads' ? [0, 2, 1, 3] : r === 'headsT' ? [0, 2, 3, 1] : undefined;
      if (r === 'heads' && t.cores < (prof.ops.Softmax ?? 0)) {
        // An attention context before the heads merge.
        const l = t.lnx();
        const proj = (p: number[]): Val => t.split(t.lin(l, geo.D), p);
        y = t.core(proj([0, 2, 1, 3]), proj([0, 2, 3, 1]), proj([0, 2, 1, 3]));
      } else y = t.split(t.lin(t.lnx(), geo.D), perm);
    } else if (r === 'wide') {
      const w = num(o.shape![2]!);
      if (w > 8 * geo.D || (rng.next() < 0.3 && has('Transpose'))) {
        // A tied LM head: final LayerNorm (post-LN streams are normalised already), then the transposed embedding table.
        const l = st.preLN ? g.layerNorm(x) : x;
        const tab = g.transpose({ name: g.weight('Gather', 0, [w, geo.D]), dtype: 'float32', shape: [w, geo.D] }, [1, 0]);
        y = g.node('MatMul', [l.name, tab.name], {}, [x.shape[0]!, geo.S, w]);
      } else {
        y = t.lin(t.lnx(), w);
        if (rng.next() < 0.5) y = g.gelu(y, st.tanh);
      }
    } else if (r === 'pooled') {
      // A [CLS] pooler and classifier.
      const c = num(o.shape![1]!);
      const cls = g.node('Gather', [x.name, g.ints([0], [])], { axis: { kind: 'int', value: 1 } }, [x.shape[0]!, geo.D]);
      y = t.lin(g.node('Tanh', [g.gemm(cls, geo.D).name], {}, [x.shape[0]!, geo.D]), c);
    } else y = g.land(x, o.shape!, true);
    if (taken.has(y.name)) throw new Dead();
    taken.add(y.name);
    outNames[j] = y.name;
  }
  return finish(real, g, ins, outs, outNames);
}

/** Whether a subgraph is a feature-map (CNN) piece: float 4-D inputs, 4-D or 2-D outputs, convs or pooling. */
function isCnn(real: Model, prof: Profile): boolean {
  const g = real.graph;
  return (
    (prof.ops.Conv ?? 0) + (prof.ops.MaxPool ?? 0) + (prof.ops.AveragePool ?? 0) > 0 &&
    g.inputs.every((v) => v.dtype === 'float32' && v.shape?.length === 4) &&
    g.outputs.every((v) => v.shape?.length === 4 || v.shape?.length === 2) &&
    (g.inputs.length === 1 || (prof.ops.Add ?? 0) > 0)
  );
}

/** Block templates a sentinel for this profile may use: its ops, conv wiring, kernels and depthwise-ness. */
function eligibleBlocks(prof: Profile, stats: OpStats): BlockTemplate[] {
  const ops = new Set(Object.keys(prof.ops));
  const convNext = new Set(prof.convNext);
  const base = (stats.blocks ?? []).filter((t) => {
    if (!t.ops.every((o) => ops.has(o))) return false;
    return t.nodes.every((n, i) => {
      if (n.op !== 'Conv') return true;
      if (n.dw && !prof.depthwise) return false;
      // What reads this conv inside the template must be what reads convs in the real subgraph.
      return t.nodes.every((m) => !m.ins.includes(i) || convNext.has(m.op));
    });
  });
  // Kernel sizes where the real subgraph uses them: a 1×1 only strided (a projection) stays so.
  const ks = new Set(prof.convKS.map(([k, s]) => `${k}:${s > 1}`));
  const strict = base.filter((t) => t.nodes.every((n) => n.op !== 'Conv' || n.dw || ks.has(`${n.k}:${n.s! > 1}`)));
  const pool = strict.length ? strict : base;
  // A block must end on an op the real subgraph continues from or ends on (no BN→Conv where BN always feeds Add/act).
  const ends = pool.filter((t) => prof.outputOps.includes(lastOp(t)) || continues(prof, lastOp(t)));
  return ends.length ? ends : pool;
}

/** A residual template's main branch: the chain of node indices from the block input to an Add operand. */
interface Branch {
  t: BlockTemplate;
  chain: number[];
}

/** Main branches (the longer Add operand chain, starting at a Conv) of the residual templates. */
function residualBranches(blocks: readonly BlockTemplate[]): Branch[] {
  const out: Branch[] = [];
  for (const t of blocks) {
    const add = t.nodes.findIndex((n) => n.op === 'Add' && n.ins.length === 2);
    if (add < 0) continue;
    const walk = (i: number): number[] | undefined => {
      const chain: number[] = [];
      while (i >= 0) {
        const n = t.nodes[i]!;
        if (n.ins.length !== 1) return undefined;
        chain.unshift(i);
        i = n.ins[0]!;
      }
      return chain;
    };
    const cs = t.nodes[add]!.ins.map(walk).filter((c): c is number[] => c !== undefined);
    const main = cs.sort((a, b) => b.length - a.length)[0];
    if (main && main.length >= 2 && t.nodes[main[0]!]!.op === 'Conv') out.push({ t, chain: main });
  }
  return out;
}

/**
 * Main branches a sentinel for this profile may use at its ends (also when the real piece holds no
 * whole block): only its ops, depthwise only if it has depthwise convs, its kernel/stride pairs where possible.
 */
function branchesFor(prof: Profile, stats: OpStats): Branch[] {
  const ops = new Set(Object.keys(prof.ops));
  const base = residualBranches(stats.blocks ?? []).filter(({ t, chain }) => chain.every((i) => ops.has(t.nodes[i]!.op) && (!t.nodes[i]!.dw || prof.depthwise)));
  const ks = new Set(prof.convKS.map(([k, s]) => `${k}:${s > 1}`));
  const strict = base.filter(({ t, chain }) => chain.every((i) => t.nodes[i]!.op !== 'Conv' || t.nodes[i]!.dw || ks.has(`${t.nodes[i]!.k}:${t.nodes[i]!.s! > 1}`)));
  return strict.length ? strict : base;
}

/** The op a template ends on. */
const lastOp = (t: BlockTemplate): string => t.nodes[t.nodes.length - 1]!.op;

/** Whether the real subgraph feeds another block (conv, pooling, head) from an `op` output. */
function continues(prof: Profile, op: string): boolean {
  return prof.pairs.some((q) => q.startsWith(`${op}>`) && /^(Conv|MaxPool|AveragePool|GlobalAveragePool|Flatten)$/.test(q.slice(op.length + 1)));
}

/** Op pairs along the template's edges, including those from the op `entry` producing its input. */
function blockPairs(t: BlockTemplate, entry: string): string[] {
  return t.nodes.flatMap((n) => n.ins.map((i) => `${i < 0 ? entry : t.nodes[i]!.op}>${n.op}`)).filter((q) => !q.startsWith('>'));
}

/** Integer downsampling factor from spatial size h to t, or 0 if there is none. */
const factor = (h: number, t: number): number => (t > 0 && h >= t && h % t === 0 ? h / t : 0);

/**
 * One CNN sentinel with about `target` operators, assembled like a window of a real network: the
 * inputs are joined as a residual block's tail would join them, learned blocks follow (chosen by the
 * corpus's block-to-block transitions), and the outputs are landed by the conv units, strided convs
 * and projection shortcuts real networks use to change shape, each ending on the op that produces
 * the corresponding real output.
 */
function cnnAttempt(real: Model, prof: Profile, stats: OpStats, rng: Prng, target: number, blocks: BlockTemplate[]): Model {
  const rg = real.graph;
  const ins: ValueInfo[] = rg.inputs.map((v, i) => ({ name: `in${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const outs: ValueInfo[] = rg.outputs.map((v, i) => ({ name: `out${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const g = new Gen(rng, prof, stats, ins);
  const vals: Val[] = ins.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape! }));
  for (const v of vals) g.pool.push(v);
  const H = (v: { shape: Dim[] } | ValueInfo): number => num(v.shape![2]!);
  const C = (v: { shape: Dim[] } | ValueInfo): number => num(v.shape![1]!);
  const menu = [...new Set([...prof.channels, ...rg.inputs.map(C), ...rg.outputs.filter((o) => o.shape!.length === 4).map(C)])];
  const hasBN = g.convNext.has('BatchNormalization');
  const addAct = prof.addNext.find((o) => o !== 'Conv' && o !== 'Add' && o !== 'BatchNormalization' && g.has(o));
  // Widths from ratios snap to a nearby real width, else to a multiple of 8 as real networks use.
  const snap = (w: number): number => {
    const near = menu.filter((c) => Math.abs(c - w) <= 0.25 * w).sort((a, b) => Math.abs(a - w) - Math.abs(b - w))[0];
    return near ?? (w >= 8 ? Math.round(w / 8) * 8 : Math.max(1, Math.round(w)));
  };
  const branches = branchesFor(prof, stats);

  // ---- entry: join every input into one value, as the tail of a residual block does.
  // The join lands on the deepest input, preferring one the real subgraph adds as an identity shortcut.
  const skip = (i: number): number => (prof.skipInputs.includes(i) ? 0 : 1);
  const order = vals.map((_, i) => i).sort((a, b) => H(vals[a]!) - H(vals[b]!) || skip(a) - skip(b) || C(vals[b]!) - C(vals[a]!) || rng.next() - 0.5);
  let x = vals[order[0]!]!;
  for (const i of order.slice(1)) {
    const v = vals[i]!;
    const r = factor(H(v), H(x));
    if (!r || factor(num(v.shape[3]!), num(x.shape[3]!)) !== r) throw new Dead();
    const tail = (a: Val, stride: number): Val => {
      const co = C(x);
      // Mostly the (end of the) main branch of a learned residual block, as real cuts fall inside blocks.
      if (branches.length && rng.next() < 0.75) {
        const m = g.mark();
        try {
          const y = g.branchTail(a, stride, co, branches, snap);
          if (y && g.params <= g.budget) return y;
        } catch (e) {
          if (!(e instanceof Dead)) throw e;
        }
        g.rollback(m);
      }
      if (rng.next() < 0.5) return g.unit(a, co, stride, 'BatchNormalization');
      const dw = prof.depthwise && rng.next() < 0.7;
      const first = dw ? g.unit(a, C(a), stride, g.actOp, 3, C(a)) : g.unit(a, g.pick(menu, co), stride, g.actOp);
      return g.unit(first, co, 1, 'BatchNormalization', dw ? 1 : undefined);
    };
    let main: Val;
    let skip: Val;
    if (same(v.shape, x.shape) || rng.next() < 0.75) {
      [main, skip] = rng.next() < 0.5 || !same(v.shape, x.shape) ? [tail(v, r), x] : [tail(x, 1), v];
    } else {
      main = tail(x, 1);
      const proj = g.conv(v, C(x), 1, r, 0);
      skip = hasBN ? g.bn(proj) : proj;
    }
    const sum = g.node('Add', rng.next() < 0.5 ? [main.name, skip.name] : [skip.name, main.name], {}, x.shape);
    x = addAct ? g.act(sum, addAct) : sum;
  }

  // ---- body: learned blocks until the node budget is spent.
  const outs4 = outs.map((o, j) => j).filter((j) => outs[j]!.shape!.length === 4);
  const mainOut = outs4.sort((a, b) => H(outs[b]!) - H(outs[a]!) || C(outs[b]!) - C(outs[a]!))[0];
  // A head that pools before flattening (VGG) keeps the last 2× of spatial size for that pool.
  const headPool = mainOut === undefined && prof.pairs.includes('MaxPool>Flatten') ? 2 : 1;
  const ht = mainOut === undefined ? headPool : H(outs[mainOut]!);
  const wt = mainOut === undefined ? headPool : num(outs[mainOut]!.shape![3]!);
  // A piece ending in the classifier head mostly widens to the real subgraph's widest convs first, as real networks do.
  const widest = Math.max(0, ...prof.channels);
  const ct = mainOut === undefined ? (widest > C(x) && rng.next() < 0.7 ? widest : g.pick(menu, C(x))) : C(outs[mainOut]!);
  const headNodes = outs.reduce((s, o) => s + (o.shape!.length === 2 ? 2 + 2 * Math.max(1, prof.ops.Gemm ?? 1) - 1 : hasBN ? 3 : 2), 0);
  const budget = target - headNodes + (mainOut !== undefined ? (hasBN ? 3 : 2) : 0);
  // Widths step through the real subgraph's channel counts towards the output's, as network stages do.
  const widths = [...new Set([...prof.channels, ct])].sort((a, b) => a - b);
  const nextWidth = (c: number): number => {
    const up = widths.find((w) => w > c && w <= Math.max(ct, c));
    if (up !== undefined && (!prof.channels.includes(c) || rng.next() < 0.5)) return up;
    return prof.channels.includes(c) || !widths.length ? c : g.pick(widths, c);
  };
  // A block of its own width keeps one of the corpus's ratios (expansion, projection) half the time.
  const ratioPick = new Map<BlockTemplate, number>();
  // Only ratios that stay within the piece's width range: a stem's 3 → 64 ratio applied to 64
  // channels gave 1,368-channel convolutions no real window has.
  const [lo, hi] = [Math.min(...menu), Math.max(...menu)];
  const widthOf = (t: BlockTemplate, dflt: number): number => {
    if (!ratioPick.has(t)) {
      const w = t.ratios.length && rng.next() < 0.5 ? snap(C(x) * g.pick(t.ratios, 1)) : 0;
      ratioPick.set(t, w >= lo / 4 && w <= 2 * hi ? w : 0);
    }
    return ratioPick.get(t) || dflt;
  };
  let prev = '';
  let pool = blocks.slice();
  const pairs = new Set(prof.pairs);
  const total = blocks.reduce((s, t) => s + t.count, 0) || 1;
  while (pool.length) {
    const left = budget - g.nodes.length;
    const hx = H(x);
    const need = mainOut === undefined ? 0 : Math.log2(Math.max(1, hx / ht));
    const nw = nextWidth(C(x));
    ratioPick.clear();
    // A width the real subgraph's convs never produce (an image) is widened first, as real stems do.
    const raw = (prof.ops.Conv ?? 0) > 0 && !prof.channels.includes(C(x));
    const ok = pool.filter((t) => {
      if (t.nodes.length > left + 4 || !g.fits(g.blockCost(x, t, widthOf(t, nw)))) return false;
      if (raw && (t.out !== 'new' || t.nodes[0]!.op !== 'Conv')) return false;
      if (t.stride === 1) return true;
      const f = factor(hx, t.stride * ht);
      return f > 0 && factor(num(x.shape[3]!), t.stride * wt) > 0;
    });
    // Only blocks wired like the real subgraph (no op pair it never has); none left: the exit takes over.
    const xop = g.nodes.find((n) => n.outputs[0] === x.name)?.opType ?? '';
    const fit = ok.filter((t) => {
      if (!blockPairs(t, xop).every((q) => pairs.has(q))) return false;
      // A block ending where the real subgraph never continues can only be the one landing the main output.
      if (continues(prof, lastOp(t))) return true;
      return mainOut !== undefined && hx / t.stride === ht && (t.out === 'in' ? C(x) : widthOf(t, nw)) === ct;
    });
    if (!fit.length) break;
    const row = stats.blockNext?.[prev] ?? {};
    const rowTotal = Object.values(row).reduce((s, v) => s + v, 0) || 1;
    // Never a block transition the corpus has not seen (dw after dw): the exit takes over instead.
    if (prev && rowTotal > 1 && fit.every((t) => !row[t.key])) break;
    const wts = fit.map((t) => {
      let w = (row[t.key] ?? 0) / rowTotal + ((prev ? 0.02 : 0.2) * t.count) / total;
      // Downsample while budget remains for it; real subgraphs spend their strides inside blocks.
      if (need > 0 && t.stride > 1 && left < 8 * need) w *= 6;
      return w;
    });
    let u = rng.next() * wts.reduce((s, w) => s + w, 0);
    let pick = fit.length - 1;
    for (let i = 0; i < fit.length; i++) if ((u -= wts[i]!) <= 0) {
      pick = i;
      break;
    }
    const t = fit[pick]!;
    const m = g.mark();
    try {
      x = g.block(x, t, widthOf(t, nw));
      prev = t.key;
      if (!continues(prof, lastOp(t))) break;
    } catch (e) {
      if (!(e instanceof Dead)) throw e;
      g.rollback(m);
      pool = pool.filter((p) => p !== t);
    }
  }

  // ---- exit: land each output with conv units (strided where the shape shrinks).
  const outNames = new Array<string>(outs.length);
  const endOp = (j: number): string => prof.outputOps[j] ?? g.actOp;
  const landUnits = (src: Val, j: number, mustCompute: boolean): Val => {
    const o = outs[j]!;
    const f = factor(H(src), H(o));
    const fits = f > 0 && factor(num(src.shape[3]!), num(o.shape![3]!)) === f;
    // Node budget left once the outputs still to land get a unit each.
    const room = target - g.nodes.length - outs.filter((_, i) => i !== j && outNames[i] === undefined).length * (hasBN ? 3 : 2);
    // With room left, the output is the start of a learned residual block's main branch (cuts fall inside blocks).
    if (fits && branches.length && room >= 4 && rng.next() < 0.8) {
      const m = g.mark();
      try {
        const y = g.branchHead(src, f, C(o), endOp(j), branches, snap, room);
        if (y && g.params <= g.budget) return y;
      } catch (e) {
        if (!(e instanceof Dead)) throw e;
      }
      g.rollback(m);
    }
    if (!mustCompute && same(src.shape, o.shape!)) return src;
    if (!fits) return g.land(src, o.shape!, mustCompute);
    let y = src;
    let rest = f;
    do {
      const s = rest % 2 === 0 ? 2 : rest;
      rest /= s;
      const last = rest === 1;
      y = g.unit(y, last ? C(o) : g.pick(menu, C(o)), s, last ? endOp(j) : g.actOp);
    } while (rest > 1);
    return y;
  };
  let mainVal = x;
  if (mainOut !== undefined) {
    mainVal = landUnits(x, mainOut, ins.some((v) => v.name === x.name));
    outNames[mainOut] = mainVal.name;
  }
  for (const j of outs4) {
    if (j === mainOut) continue;
    // Either further along the chain (the next block's first units) or forked off the value the main
    // output was landed from (a projection shortcut next to the main branch), as real cuts leave them.
    const fork = x !== mainVal && factor(H(x), H(outs[j]!)) > 0 && factor(num(x.shape[3]!), num(outs[j]!.shape![3]!)) > 0 && rng.next() < 0.5;
    outNames[j] = landUnits(fork ? x : mainVal, j, true).name;
  }
  outs.forEach((o, j) => {
    if (o.shape!.length !== 2) return;
    let y = mainVal;
    const yop = g.nodes.find((n) => n.outputs[0] === y.name)?.opType;
    if (prof.pairs.includes('MaxPool>Flatten') && yop !== 'MaxPool' && H(y) >= 2) y = g.pool2(y, 'MaxPool', 2, 2, 0);
    if (g.has('GlobalAveragePool')) y = g.gapFlatten(y);
    else y = g.node('Flatten', [y.name], { axis: { kind: 'int', value: 1 } }, [y.shape[0]!, sizeOf(y.shape.slice(1).map(num))]);
    const gemms = Math.max(1, prof.ops.Gemm ?? 1);
    // Hidden widths of a classifier head shrink towards the output (4096, 4096, 1000; 120, 84, 10).
    let wmax = Infinity;
    for (let i = 1; i < gemms; i++) {
      const out = num(o.shape![1]!);
      const wider = prof.widths.filter((w) => w > out && w <= wmax);
      // Heads narrower than their output (a 512-wide head over 1,000 classes) keep their own hidden widths.
      const hidden = prof.widths.filter((w) => w !== out && w <= wmax);
      const ws = wider.length ? wider : hidden;
      const w = g.pick(ws.length ? ws : prof.widths, out);
      wmax = w;
      y = g.act(g.gemm(y, w), g.actOp);
    }
    y = g.gemm(y, num(o.shape![1]!));
    if (endOp(j) !== 'Gemm' && endOp(j) !== '' && g.has(endOp(j))) y = g.act(y, endOp(j));
    outNames[j] = y.name;
  });
  return finish(real, g, ins, outs, outNames);
}

/** Whether `m` computes exactly the declared output types (shape inference over the whole graph). */
export function interfaceHolds(m: Model): boolean {
  const info = inferShapes(m);
  return m.graph.outputs.every((o) => {
    const v = info.get(o.name);
    return v !== undefined && v.dtype === o.dtype && v.shape !== undefined && same(v.shape, o.shape ?? []);
  });
}

/** Dataflow topology of a graph: joins (nodes reading ≥ 2 activations), branches (extra reads of shared values), distinct weight dims. */
export function topologyOf(m: Model): { joins: number; branches: number; dims: number } {
  const g = m.graph;
  const uses = new Map<string, number>();
  let joins = 0;
  for (const n of g.nodes) {
    let acts = 0;
    for (const t of n.inputs) {
      if (!t || g.initializers.has(t)) continue;
      acts++;
      uses.set(t, (uses.get(t) ?? 0) + 1);
    }
    if (acts >= 2) joins++;
  }
  let branches = 0;
  for (const c of uses.values()) branches += c - 1;
  // Width diversity: distinct weight dimensions (kernel sizes, channel counts, feature widths).
  const dims = new Set<number>();
  for (const t of g.initializers.values()) for (const d of t.dims) dims.add(d);
  return { joins, branches, dims: dims.size };
}

/** Structure of a graph without widths or weights: op types, kernels, strides, depthwise-ness and wiring. */
export function structureOf(m: Model): string {
  const g = m.graph;
  const prod = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => prod.set(o, i)));
  const inIdx = new Map(g.inputs.map((v, i) => [v.name, i]));
  return g.nodes
    .map((n) => {
      const a = n.attrs;
      const k = a.kernel_shape?.kind === 'ints' ? a.kernel_shape.value.join('x') : '';
      const st = a.strides?.kind === 'ints' ? a.strides.value.join('x') : '';
      const dw = a.group?.kind === 'int' && a.group.value > 1 ? 'dw' : '';
      const ins = n.inputs.filter((t) => t && !g.initializers.has(t)).map((t) => (prod.has(t) ? String(prod.get(t)) : `i${inIdx.get(t)}`));
      return `${n.opType}${k}/${st}${dw}(${ins.sort().join(',')})`;
    })
    .join(';');
}

/** Weight elements of a graph (initializer sizes; drawn lazily, so read off the dims). */
function paramsOf(m: Model): number {
  let n = 0;
  for (const t of m.graph.initializers.values()) n += sizeOf(t.dims);
  return n;
}

/** Share of a graph's convolutions that are 1×1 (0 without convolutions). */
function pointwise(m: Model): number {
  const convs = m.graph.nodes.filter((n) => n.opType === 'Conv');
  const ones = convs.filter((n) => n.attrs.kernel_shape?.kind === 'ints' && n.attrs.kernel_shape.value.every((v) => v === 1)).length;
  return convs.length ? ones / convs.length : 0;
}

/** Generate `k` sentinels for one real subgraph (same interface, realistic body, matched weights). */
export function generateSentinels(real: Model, k: number, opts: SentinelOptions): Model[] {
  checkInterface(real);
  const rng = opts.rng ?? new Prng(opts.seed);
  const prof = profileOf(real);
  const blocks = isCnn(real, prof) ? eligibleBlocks(prof, opts.stats) : [];
  const tf = !blocks.length && isTransformer(real, prof);
  // Structured pieces also match the real subgraph's skip structure, which takes more (cheap) attempts.
  const structured = blocks.length > 0 || tf;
  const tries = opts.attempts ?? (structured ? 24 : 12);
  const topo = topologyOf(real);
  const shape = structured ? structureOf(real) : '';
  const softmaxes = (m: Model): number => m.graph.nodes.filter((n) => n.opType === 'Softmax').length;
  const cores = softmaxes(real);
  const realPointwise = pointwise(real);
  const out: Model[] = [];
  for (let i = 0; i < k; i++) {
    const target = Math.max(1, Math.round(prof.nodes + rng.normal() * Math.max(1, prof.nodes * 0.15)));
    const tol = Math.max(2, target * 0.15);
    // Distance of an attempt from the target: node count in tolerance units, then joins and branches
    // (a sentinel with fewer residual joins or branch points than its real subgraph stands out),
    // and the same width diversity.
    const dist = (m: Model): number => {
      const t = topologyOf(m);
      let dn = Math.max(0, Math.abs(m.graph.nodes.length - target) - tol) / tol;
      if (!structured) return Math.abs(m.graph.nodes.length - target) / tol;
      // Transformer layers come in few sizes: keep the node count centred on the target, not banded;
      // and as many attention cores as the real piece (their mask constants dominate weight statistics).
      if (tf) dn = Math.abs(m.graph.nodes.length - target) / tol + 3 * Math.abs(softmaxes(m) - cores);
      // A copy of the real structure hides nothing: kept only when no other attempt comes close.
      const copy = structureOf(m) === shape ? 1 : 0;
      // CNN pieces also keep the real kernel mix (budget-driven 1×1 fallbacks made sentinels 1×1-heavy;
      // depthwise pieces are left out: their 1×1/3×3 mix is fixed by the inverted-residual blocks).
      const kernels = blocks.length && !prof.depthwise ? 6 * Math.abs(pointwise(m) - realPointwise) : 0;
      // And a weight count near the real one (wider blocks drawn from corpus ratios can overshoot it).
      const weights = blocks.length ? Math.abs(Math.log2((paramsOf(m) + 1) / (prof.params + 1))) : 0;
      return dn + Math.abs(t.joins - topo.joins) + Math.abs(t.branches - topo.branches) + 0.5 * Math.abs(t.dims - topo.dims) + copy + kernels + weights;
    };
    let best: Model | undefined;
    let bestD = Infinity;
    let lastErr = '';
    for (let t = 0; t < tries; t++) {
      try {
        // CNN pieces are assembled from learned blocks, transformer pieces from whole layers; the
        // op-level walk is the fallback.
        const own = structured && (best !== undefined || t < tries - 2);
        const m = own && blocks.length ? cnnAttempt(real, prof, opts.stats, rng, target, blocks) : own ? tfAttempt(real, prof, opts.stats, rng, target, opts.modelOps) : attempt(real, prof, opts.stats, rng, target);
        if (!interfaceHolds(m)) {
          lastErr = 'output shapes did not check';
          continue;
        }
        const d = dist(m);
        if (d < bestD) {
          best = m;
          bestD = d;
        }
        if (structured ? d === 0 : d <= 1) break;
      } catch (e) {
        if (!(e instanceof Dead)) {
          if (e instanceof ModelError) throw e;
          lastErr = (e as Error).message;
        }
      }
    }
    if (!best) throw new ModelError(`could not generate a sentinel for subgraph '${real.graph.name}' (${lastErr || 'no valid walk'})`);
    FILLS.get(best)?.();
    out.push(best);
  }
  return out;
}
