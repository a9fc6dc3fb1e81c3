/**
 * Layer lowering shared by every runtime (float, MPC, FHE): window geometry of Conv/pooling
 * (auto_pad, dilations, ceil_mode), BatchNormalization as a per-channel affine map (and folded into
 * a preceding Conv/Gemm), and Gemm as y = x·W + b with alpha/beta/transB applied. One
 * implementation, so the runtimes cannot disagree on an op's meaning.
 */
import { attrFloat, attrInt, attrInts, attrString, type Node, sizeOf, type Tensor } from './ir.js';

/** Window geometry of a Conv / ConvTranspose-free pooling node over N spatial dims. */
export interface WindowGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Declared (or auto_pad-resolved) pads in ONNX order: [begin_0..begin_{n-1}, end_0..end_{n-1}]. */
  pads: number[];
  /**
   * End pads a floor-mode window op needs to produce `outShape` (ceil_mode adds cells, a floor
   * output may leave some unread): end_i = (out_i−1)·s_i + (k_i−1)·d_i + 1 − in_i − begin_i (may be < 0).
   */
  effectiveEndPads: number[];
  /** Output spatial shape. */
  outShape: number[];
  ceilMode: boolean;
}

/** Problem with a node's geometry, as a reason string for `Problem` lists. */
export class GeometryError extends Error {}

/**
 * Resolve the window geometry of `node` (Conv, MaxPool, AveragePool, LpPool) for input spatial
 * shape `inShape`; `kernel` defaults to kernel_shape (for Conv: give the weight's spatial dims).
 */
export function windowGeometry(node: Node, inShape: number[], kernel?: number[]): WindowGeometry {
  const n = inShape.length;
  const k = kernel ?? attrInts(node, 'kernel_shape');
  if (k.length !== n) throw new GeometryError(`kernel has ${k.length} dims, input has ${n} spatial dims`);
  const list = (name: string, dflt: number, len = n): number[] => {
    const v = attrInts(node, name, new Array(len).fill(dflt));
    if (v.length !== len) throw new GeometryError(`attribute '${name}' has ${v.length} entries, ${len} expected`);
    return v;
  };
  const strides = list('strides', 1);
  const dilations = list('dilations', 1);
  const ceilMode = attrInt(node, 'ceil_mode', 0) === 1;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads: number[];
  const outShape: number[] = [];
  if (autoPad === 'NOTSET') pads = list('pads', 0, 2 * n);
  else if (autoPad === 'VALID') pads = new Array(2 * n).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array(2 * n).fill(0);
    for (let i = 0; i < n; i++) {
      const out = Math.ceil(inShape[i]! / strides[i]!);
      const total = Math.max((out - 1) * strides[i]! + (k[i]! - 1) * dilations[i]! + 1 - inShape[i]!, 0);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + n] = total - pads[i]!;
    }
  } else throw new GeometryError(`unknown auto_pad '${autoPad}'`);
  const effectiveEndPads: number[] = [];
  for (let i = 0; i < n; i++) {
    const span = (k[i]! - 1) * dilations[i]! + 1;
    const room = inShape[i]! + pads[i]! + pads[i + n]! - span;
    if (room < 0) throw new GeometryError(`window ${span} is larger than the padded input ${inShape[i]! + pads[i]! + pads[i + n]!} on spatial dim ${i}`);
    let out = (ceilMode ? Math.ceil(room / strides[i]!) : Math.floor(room / strides[i]!)) + 1;
    // PyTorch/ONNX rule: the last window must start inside the input or the begin pad.
    if (ceilMode && (out - 1) * strides[i]! >= inShape[i]! + pads[i]!) out--;
    outShape.push(out);
    effectiveEndPads.push((out - 1) * strides[i]! + span - inShape[i]! - pads[i]!);
  }
  return { kernel: [...k], strides, dilations, pads, effectiveEndPads, outShape, ceilMode };
}

/**
 * AveragePool divisors along each spatial dim: for output index o, how many cells of the window
 * count (inside the input, or inside input + declared pads with count_include_pad=1; cells added
 * by ceil_mode never count — onnxruntime's and PyTorch's rule). Multiply across dims.
 */
export function avgPoolDivisors(g: WindowGeometry, inShape: number[], countIncludePad: boolean): number[][] {
  const n = inShape.length;
  return inShape.map((len, i) =>
    Array.from({ length: g.outShape[i]! }, (_, o) => {
      const start = o * g.strides[i]! - g.pads[i]!;
      const lo = countIncludePad ? -g.pads[i]! : 0;
      const hi = countIncludePad ? len + g.pads[i + n]! : len;
      let c = 0;
      for (let t = 0; t < g.kernel[i]!; t++) {
        const p = start + t * g.dilations[i]!;
        if (p >= lo && p < hi) c++;
      }
      return c;
    }),
  );
}

/** BatchNormalization (inference) as y = scale·x + shift per channel. */
export interface ChannelAffine {
  scale: Float32Array;
  shift: Float32Array;
}

/** The per-channel affine map of BatchNormalization from its four parameter tensors. */
export function batchNormAffine(node: Node, gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor): ChannelAffine {
  const eps = attrFloat(node, 'epsilon', 1e-5);
  // training_mode=1 normalises by the batch's own statistics: folding the running ones would be wrong.
  if (attrInt(node, 'training_mode', 0) === 1) throw new GeometryError('BatchNormalization with training_mode=1 (batch statistics) is not supported here');
  const c = gamma.data.length;
  for (const [nm, t] of [
    ['bias', beta],
    ['mean', mean],
    ['var', variance],
  ] as const) {
    if (t.data.length !== c) throw new GeometryError(`BatchNormalization ${nm} has ${t.data.length} elements, scale has ${c}`);
  }
  const scale = new Float32Array(c);
  const shift = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    // Computed in double, rounded once: the same numbers onnxruntime's fused Conv+BN gives.
    const s = Number(gamma.data[i]) / Math.sqrt(Number(variance.data[i]) + eps);
    scale[i] = s;
    shift[i] = Number(beta.data[i]) - Number(mean.data[i]) * s;
  }
  return { scale, shift };
}

/**
 * Fold a per-channel affine map applied after a Conv (weight [CO, ...]) or a linear layer whose
 * output channel is the leading weight axis: W'[co,...] = W[co,...]·scale[co], b' = b·scale + shift.
 */
export function foldAffineIntoWeight(weight: Tensor, bias: Tensor | undefined, a: ChannelAffine): { weight: Tensor; bias: Tensor } {
  const co = weight.dims[0]!;
  if (a.scale.length !== co) throw new GeometryError(`affine map has ${a.scale.length} channels, weight has ${co} output channels`);
  const per = sizeOf(weight.dims) / co;
  const w = new Float32Array(weight.data.length);
  for (let o = 0; o < co; o++) for (let j = 0; j < per; j++) w[o * per + j] = Number(weight.data[o * per + j]) * a.scale[o]!;
  const b = new Float32Array(co);
  for (let o = 0; o < co; o++) b[o] = (bias ? Number(bias.data[o]) : 0) * a.scale[o]! + a.shift[o]!;
  return { weight: { dtype: 'float32', dims: [...weight.dims], data: w }, bias: { dtype: 'float32', dims: [co], data: b } };
}

/** A Gemm / MatMul-by-constant as y[M,N] = x[M,K]·W[K,N] + bias[N]. */
export interface LinearLayer {
  k: number;
  n: number;
  /** Row-major [K, N], alpha applied. */
  weight: Float32Array;
  /** [N], beta applied; undefined when there is no C. */
  bias?: Float32Array;
}

/** Lower Gemm (alpha, beta, transB; C as scalar, [N] or [1, N]) or MatMul with a 2-D constant B. */
export function linearLayer(node: Node, b: Tensor, c?: Tensor): LinearLayer {
  if (b.dims.length !== 2) throw new GeometryError(`weight must be 2-D, has shape [${b.dims}]`);
  const gemm = node.opType === 'Gemm';
  if (gemm && attrInt(node, 'transA', 0) !== 0) throw new GeometryError('transA=1 is not supported (the input would need a transpose)');
  const transB = gemm && attrInt(node, 'transB', 0) === 1;
  const alpha = gemm ? attrFloat(node, 'alpha', 1) : 1;
  const beta = gemm ? attrFloat(node, 'beta', 1) : 1;
  const [k, n] = transB ? [b.dims[1]!, b.dims[0]!] : [b.dims[0]!, b.dims[1]!];
  const weight = new Float32Array(k * n);
  for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) weight[i * n + j] = alpha * Number(transB ? b.data[j * k + i] : b.data[i * n + j]);
  let bias: Float32Array | undefined;
  if (gemm && c && beta !== 0) {
    const len = sizeOf(c.dims);
    const lead = c.dims.slice(0, -1).every((d) => d === 1);
    if (!(len === 1 || (len === n && lead))) throw new GeometryError(`bias C of shape [${c.dims}] is not a row vector of ${n}`);
    bias = new Float32Array(n);
    for (let j = 0; j < n; j++) bias[j] = beta * Number(c.data[len === 1 ? 0 : j]);
  }
  return { k, n, weight, bias };
}
