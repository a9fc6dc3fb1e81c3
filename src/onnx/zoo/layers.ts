/**
 * Shared layer helpers for the zoo: each adds the nodes and deterministic weights of one layer to a
 * `ZooGraph` and returns the name of its output value.
 *
 * Initializer naming: learned parameters are `<scope>.weight` / `<scope>.bias` (PyTorch-like);
 * BatchNorm statistics end in `.running_mean` / `.running_var`; constants (shapes, Clip bounds,
 * scalars, masks) start with `const.`. `paramCount` relies on this to count only learned parameters.
 */

import { SeededRng } from '../../seeded-rng.js';
import { float, GraphBuilder } from '../builder.js';
import { floatTensor, int64Tensor, type Model, sizeOf } from '../ir.js';
import { num, type OptionValues } from './options.js';

/** A GraphBuilder plus the seeded PRNG that draws the weights, and a cache of shared constants. */
export class ZooGraph {
  /** The underlying builder (add nodes with `b.op`). */
  readonly b: GraphBuilder;
  /** Weight generator; draws happen in graph-construction order, so a seed fixes every weight. */
  readonly rng: SeededRng;
  private readonly consts = new Map<string, string>();
  /** Whether weights are drawn (option `weights`); left at zero otherwise. */
  private readonly draw: boolean;

  /** A graph named `name` whose weights follow the model's `seed` and `weights` options. */
  constructor(name: string, o: OptionValues) {
    this.b = new GraphBuilder(name);
    this.rng = new SeededRng(num(o, 'seed'));
    this.draw = o.weights !== 'zero';
  }

  /** A He/Kaiming-normal weight (std = √(2 / fanIn)). */
  heNormal(name: string, dims: number[], fanIn: number): string {
    const t = floatTensor(dims);
    if (this.draw) this.rng.fillNormal(t.data as Float32Array, Math.sqrt(2 / fanIn));
    return this.b.init(name, t);
  }

  /** A weight drawn from N(mean, std²). */
  normal(name: string, dims: number[], std: number, mean = 0): string {
    const t = floatTensor(dims);
    if (this.draw) this.rng.fillNormal(t.data as Float32Array, std, mean);
    return this.b.init(name, t);
  }

  /** A weight drawn uniformly from [lo, hi). */
  uniform(name: string, dims: number[], lo: number, hi: number): string {
    const t = floatTensor(dims);
    if (this.draw) this.rng.fillUniform(t.data as Float32Array, lo, hi);
    return this.b.init(name, t);
  }

  /** An all-zero weight (biases). */
  zeros(name: string, dims: number[]): string {
    return this.b.init(name, floatTensor(dims));
  }

  /** A shared float32 scalar constant (one initializer per distinct value). */
  scalar(value: number): string {
    const key = `f:${value}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.b.init(`const.scalar_${this.consts.size}`, floatTensor([], [value]));
      this.consts.set(key, name);
    }
    return name;
  }

  /** A shared int64 constant (Reshape shapes, Gather indices); `dims` [] makes a scalar. */
  int64(values: number[], dims: number[] = [values.length]): string {
    const key = `i:${dims.join(',')}:${values.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.b.init(`const.int64_${this.consts.size}`, int64Tensor(dims, values));
      this.consts.set(key, name);
    }
    return name;
  }

  /** A named float constant that is not a learned parameter (e.g. a causal mask). */
  constant(name: string, dims: number[], data: ArrayLike<number>): string {
    return this.b.init(`const.${name}`, floatTensor(dims, data));
  }
}

/** Convolution geometry; square kernels, symmetric padding. */
export interface ConvSpec {
  cin: number;
  cout: number;
  k: number;
  stride?: number;
  pad?: number;
  group?: number;
  bias?: boolean;
}

/** Conv with He-normal weight [cout, cin/group, k, k] and (optionally) a zero bias. */
export function conv(z: ZooGraph, x: string, scope: string, s: ConvSpec): string {
  const group = s.group ?? 1;
  if (s.cin % group !== 0 || s.cout % group !== 0) throw new Error(`zoo layer '${scope}': channels ${s.cin}→${s.cout} not divisible by group ${group}`);
  const fanIn = (s.cin / group) * s.k * s.k;
  const w = z.heNormal(`${scope}.weight`, [s.cout, s.cin / group, s.k, s.k], fanIn);
  const inputs = [x, w];
  if (s.bias) inputs.push(z.zeros(`${scope}.bias`, [s.cout]));
  const pad = s.pad ?? 0;
  const stride = s.stride ?? 1;
  return z.b.op('Conv', inputs, {
    kernel_shape: [s.k, s.k],
    strides: [stride, stride],
    pads: [pad, pad, pad, pad],
    dilations: [1, 1],
    group,
  });
}

/** Inference-mode BatchNormalization with gamma ≈ 1, beta ≈ 0, small random mean, var ∈ [0.9, 1.1]. */
export function batchNorm(z: ZooGraph, x: string, scope: string, c: number): string {
  const gamma = z.normal(`${scope}.weight`, [c], 0.05, 1);
  const beta = z.normal(`${scope}.bias`, [c], 0.05);
  const mean = z.normal(`${scope}.running_mean`, [c], 0.1);
  const variance = z.uniform(`${scope}.running_var`, [c], 0.9, 1.1);
  return z.b.op('BatchNormalization', [x, gamma, beta, mean, variance], { epsilon: float(1e-5) });
}

/** Activation applied after a conv/BN. */
export type Act = 'relu' | 'relu6' | 'none';

/** Relu, Relu6 (as Clip(x, 0, 6) with initializer bounds) or nothing. */
export function activation(z: ZooGraph, x: string, act: Act): string {
  if (act === 'relu') return z.b.op('Relu', [x]);
  if (act === 'relu6') return z.b.op('Clip', [x, z.scalar(0), z.scalar(6)]);
  return x;
}

/** Conv (no bias) → BatchNormalization → activation. */
export function convBnAct(z: ZooGraph, x: string, scope: string, s: ConvSpec, act: Act): string {
  const y = conv(z, x, `${scope}.conv`, { ...s, bias: false });
  return activation(z, batchNorm(z, y, `${scope}.bn`, s.cout), act);
}

/** Pooling flavour. */
export type PoolKind = 'max' | 'avg';

/** MaxPool / AveragePool with a square window. */
export function pool(z: ZooGraph, x: string, kind: PoolKind, k: number, stride: number, pad = 0): string {
  return z.b.op(kind === 'max' ? 'MaxPool' : 'AveragePool', [x], {
    kernel_shape: [k, k],
    strides: [stride, stride],
    pads: [pad, pad, pad, pad],
  });
}

/** GlobalAveragePool then Flatten → [batch, channels]. */
export function globalPoolFlatten(z: ZooGraph, x: string): string {
  return z.b.op('Flatten', [z.b.op('GlobalAveragePool', [x])], { axis: 1 });
}

/** Fully connected layer on [batch, in] as Gemm(x, Wᵀ) + b with PyTorch layout W [out, in]. */
export function linear(z: ZooGraph, x: string, scope: string, nIn: number, nOut: number, output?: string): string {
  const w = z.heNormal(`${scope}.weight`, [nOut, nIn], nIn);
  const bias = z.zeros(`${scope}.bias`, [nOut]);
  return z.b.op('Gemm', [x, w, bias], { transB: 1 }, { output });
}

/** Fully connected layer on [..., in] as MatMul(x, W) + b with W [in, out] (works on any rank). */
export function dense(z: ZooGraph, x: string, scope: string, nIn: number, nOut: number, output?: string): string {
  const w = z.heNormal(`${scope}.weight`, [nIn, nOut], nIn);
  const bias = z.zeros(`${scope}.bias`, [nOut]);
  return z.b.op('Add', [z.b.op('MatMul', [x, w]), bias], {}, { output });
}

/** LayerNormalization over the last axis; gamma ≈ 1, beta ≈ 0 with small noise. */
export function layerNorm(z: ZooGraph, x: string, scope: string, dim: number, epsilon: number, output?: string): string {
  const gamma = z.normal(`${scope}.weight`, [dim], 0.02, 1);
  const beta = z.normal(`${scope}.bias`, [dim], 0.02);
  return z.b.op('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: float(epsilon) }, { output });
}

/** Exact GELU: x · 0.5 · (1 + erf(x / √2)). */
export function geluErf(z: ZooGraph, x: string): string {
  const e = z.b.op('Erf', [z.b.op('Div', [x, z.scalar(Math.SQRT2)])]);
  return z.b.op('Mul', [z.b.op('Mul', [x, z.scalar(0.5)]), z.b.op('Add', [e, z.scalar(1)])]);
}

/** GELU, tanh approximation: 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))), x³ as two Muls. */
export function geluTanh(z: ZooGraph, x: string): string {
  const b = z.b;
  const x3 = b.op('Mul', [b.op('Mul', [x, x]), x]);
  const inner = b.op('Add', [x, b.op('Mul', [x3, z.scalar(0.044715)])]);
  const t = b.op('Tanh', [b.op('Mul', [inner, z.scalar(Math.sqrt(2 / Math.PI))])]);
  return b.op('Mul', [b.op('Mul', [x, z.scalar(0.5)]), b.op('Add', [t, z.scalar(1)])]);
}

/** Multi-head self-attention geometry. */
export interface AttentionSpec {
  hidden: number;
  heads: number;
  seq: number;
  /** Additive [seq, seq] mask initializer added to the scores before Softmax (causal models). */
  mask?: string;
}

/**
 * Multi-head self-attention on x [batch, seq, hidden] → [batch, seq, hidden]: Q/K/V projections,
 * per-head scaled dot products, Softmax, weighted sum, output projection. Reshape shapes copy the
 * batch dimension (0) so batch stays symbolic.
 */
export function selfAttention(z: ZooGraph, x: string, scope: string, s: AttentionSpec): string {
  const b = z.b;
  if (s.hidden % s.heads !== 0) throw new Error(`zoo layer '${scope}': hidden ${s.hidden} not divisible by heads ${s.heads}`);
  const dh = s.hidden / s.heads;
  const split = z.int64([0, s.seq, s.heads, dh]);
  const heads = (name: string, perm: number[]): string =>
    b.op('Transpose', [b.op('Reshape', [dense(z, x, `${scope}.${name}`, s.hidden, s.hidden), split])], { perm });
  const q = heads('query', [0, 2, 1, 3]); // [batch, heads, seq, dh]
  const kT = heads('key', [0, 2, 3, 1]); // [batch, heads, dh, seq]
  const v = heads('value', [0, 2, 1, 3]);
  let scores = b.op('Div', [b.op('MatMul', [q, kT]), z.scalar(Math.sqrt(dh))]);
  if (s.mask) scores = b.op('Add', [scores, s.mask]);
  const probs = b.op('Softmax', [scores], { axis: -1 });
  const ctx = b.op('Transpose', [b.op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] });
  const merged = b.op('Reshape', [ctx, z.int64([0, s.seq, s.hidden])]);
  return dense(z, merged, `${scope}.output`, s.hidden, s.hidden);
}

/** Whether an initializer name is a learned parameter under the naming convention above. */
export function isParameter(name: string): boolean {
  return !name.startsWith('const.') && !name.endsWith('.running_mean') && !name.endsWith('.running_var');
}

/** Number of learned float parameters (excludes BN running statistics and constants). */
export function paramCount(model: Model): number {
  let n = 0;
  for (const [name, t] of model.graph.initializers) {
    if (t.dtype === 'float32' && isParameter(name)) n += sizeOf(t.dims);
  }
  return n;
}
