/**
 * From an ONNX model to an FHE program: a chain of steps over one image's tensor, independent of
 * slots and keys. Consecutive linear ops (Conv, Gemm, MatMul, bias Add, BatchNormalization,
 * Flatten, …) are merged into one affine map (one level), AvgPool with stride = kernel becomes a
 * rotate-and-sum (no level; its 1/k² is folded into the next linear map), and PAF layers — PafRelu
 * nodes or the expanded form recognised from metadata `privml.paf.layers` — become polynomial steps
 * evaluated with src/smartpaf's plan.
 */
import { attrFloat, attrInt, attrInts, type Model, ModelError, type Node, sizeOf, type Tensor, tensorToNumbers } from '../onnx/ir.js';
import { inferShapes } from '../onnx/shape.js';
import { META_PAF_LAYERS, pafLayers } from '../smartpaf/graph.js';
import { SMARTPAF_DOMAIN } from '../smartpaf/ops.js';
import { stagesCost } from '../smartpaf/poly.js';
import { maxTree } from '../smartpaf/pool.js';

/** An affine map y = W·x + b over flat per-image tensors; rows are sparse. */
export interface AffineMap {
  inSize: number;
  outSize: number;
  /** Per output element: input indices and weights. */
  rows: { idx: number[]; w: number[] }[];
  bias: Float64Array;
}

/** One step of an FHE program. `dims` are per-image [C, H, W] (or [F]). */
export type FheStep =
  | { kind: 'linear'; name: string; nodes: string[]; map: AffineMap; inDims: number[]; outDims: number[] }
  | { kind: 'sumpool'; name: string; nodes: string[]; kernel: [number, number]; inDims: number[]; outDims: number[] }
  | { kind: 'paf'; name: string; nodes: string[]; paf: string; stages: number[][]; scale: number; dims: number[] }
  /** PAF MaxPool, non-overlapping k×k windows (power-of-two sides): a level-wise tree of PAF max(a, b). */
  | {
      kind: 'maxpool';
      name: string;
      nodes: string[];
      paf: string;
      stages: number[][];
      scale: number;
      kernel: [number, number];
      inDims: number[];
      outDims: number[];
    };

/** A model compiled to FHE steps. */
export interface FheProgram {
  source: string;
  inputName: string;
  outputName: string;
  inputDims: number[];
  outputDims: number[];
  steps: FheStep[];
  /** Which model form was read. */
  form: 'paf-nodes' | 'expanded-metadata' | 'plain';
}

/** Multiplicative depth of a step (levels it consumes). */
export function stepDepth(s: FheStep): number {
  if (s.kind === 'linear') return 1;
  if (s.kind === 'sumpool') return 0;
  if (s.kind === 'maxpool') return maxTreeLevels(s.kernel) * (stagesCost(s.stages).depth + 1);
  return stagesCost(s.stages).depth + 1;
}

/** Levels of the max tree over a kh×kw window (log2 kw column levels, then log2 kh row levels). */
export function maxTreeLevels(kernel: readonly [number, number]): number {
  return Math.log2(kernel[0]) + Math.log2(kernel[1]);
}

const isPow2 = (v: number) => Number.isInteger(v) && v >= 1 && (v & (v - 1)) === 0;

/**
 * Window of a PAF MaxPool under FHE: only non-overlapping windows (stride = kernel, no pads, no
 * ceil_mode, sides dividing the input) whose sides are powers of two, so that the row-major
 * pairwise max tree of src/smartpaf is exactly a sequence of slot rotations (one per tree level).
 */
function fheMaxWindow(window: Record<string, unknown> | undefined, dims: number[], where: string): { kernel: [number, number]; outDims: number[] } {
  if (dims.length !== 3) throw new ModelError(`${where}: MaxPool needs a [C,H,W] input, has [${dims}]`);
  const [C, H, W] = dims as [number, number, number];
  const w = window ?? {};
  const k = w['kernel_shape'] as number[] | undefined;
  if (!Array.isArray(k) || k.length !== 2) throw new ModelError(`${where}: MaxPool kernel_shape must have 2 entries under FHE`);
  const st = (w['strides'] as number[] | undefined) ?? [1, 1];
  const pads = (w['pads'] as number[] | undefined) ?? [0, 0, 0, 0];
  const autoPad = (w['auto_pad'] as string | undefined) ?? 'NOTSET';
  const dil = (w['dilations'] as number[] | undefined) ?? [1, 1];
  const ceil = (w['ceil_mode'] as number | undefined) ?? 0;
  const why: string[] = [];
  if (st[0] !== k[0] || st[1] !== k[1]) why.push(`strides [${st}] differ from kernel [${k}]`);
  if (pads.some((v) => v !== 0) || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) why.push('padding');
  if (dil.some((v) => v !== 1)) why.push('dilations');
  if (ceil) why.push('ceil_mode');
  if (!isPow2(k[0]!) || !isPow2(k[1]!)) why.push(`kernel [${k}] sides are not powers of two`);
  if (H % k[0]! !== 0 || W % k[1]! !== 0) why.push(`kernel [${k}] does not divide the ${H}×${W} input`);
  if (why.length) throw new ModelError(`${where}: PAF MaxPool not supported under FHE (${why.join(', ')}); only non-overlapping power-of-two windows are`);
  return { kernel: [k[0]!, k[1]!], outDims: [C, H / k[0]!, W / k[1]!] };
}

interface ExpandedLayer {
  node: string;
  kind: string;
  paf: string;
  scale: number;
  input: string;
  output: string;
  stages: number[][];
  window?: Record<string, unknown>;
}

const UNSUPPORTED_WHY: Record<string, string> = {
  Relu: 'CKKS evaluates only additions and multiplications; replace it with a PAF (privml smartpaf) first',
  MaxPool: 'CKKS evaluates only additions and multiplications; replace it with a PafMaxPool (privml smartpaf) first',
  Sigmoid: 'not a polynomial; CKKS evaluates only additions and multiplications',
  Tanh: 'not a polynomial; CKKS evaluates only additions and multiplications',
  Softmax: 'needs exp and division; apply it to the decrypted logits instead',
};

function identityMap(n: number): AffineMap {
  return { inSize: n, outSize: n, rows: Array.from({ length: n }, (_, i) => ({ idx: [i], w: [1] })), bias: new Float64Array(n) };
}

/** Compose maps: second(first(x)). */
export function composeMaps(first: AffineMap, second: AffineMap): AffineMap {
  if (second.inSize !== first.outSize) throw new Error(`composeMaps: size mismatch ${first.outSize} vs ${second.inSize}`);
  const rows = second.rows.map((r) => {
    const acc = new Map<number, number>();
    for (let k = 0; k < r.idx.length; k++) {
      const fr = first.rows[r.idx[k]!]!;
      const w = r.w[k]!;
      for (let j = 0; j < fr.idx.length; j++) acc.set(fr.idx[j]!, (acc.get(fr.idx[j]!) ?? 0) + w * fr.w[j]!);
    }
    const idx = [...acc.keys()].sort((a, b) => a - b);
    return { idx, w: idx.map((i) => acc.get(i)!) };
  });
  const bias = new Float64Array(second.outSize);
  second.rows.forEach((r, o) => {
    let b = second.bias[o]!;
    for (let k = 0; k < r.idx.length; k++) b += r.w[k]! * first.bias[r.idx[k]!]!;
    bias[o] = b;
  });
  return { inSize: first.inSize, outSize: second.outSize, rows, bias };
}

/** Apply an affine map in float64. */
export function applyMap(m: AffineMap, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(m.outSize);
  m.rows.forEach((r, o) => {
    let s = m.bias[o]!;
    for (let k = 0; k < r.idx.length; k++) s += r.w[k]! * x[r.idx[k]!]!;
    y[o] = s;
  });
  return y;
}

function convMap(node: Node, w: Tensor, b: Tensor | undefined, inDims: number[], where: string): { map: AffineMap; outDims: number[] } {
  const [C, H, W] = inDims as [number, number, number];
  const [M, Cg, KH, KW] = w.dims as [number, number, number, number];
  const group = attrInt(node, 'group', 1);
  if (group !== 1 && !(group === C && Cg === 1)) throw new ModelError(`${where}: Conv group=${group} not supported under FHE (only 1 or depthwise)`);
  if (node.attrs['auto_pad'] && node.attrs['auto_pad'].kind === 'string' && node.attrs['auto_pad'].value !== 'NOTSET') {
    throw new ModelError(`${where}: Conv auto_pad not supported under FHE; use explicit pads`);
  }
  const [sh, sw] = attrInts(node, 'strides', [1, 1]) as [number, number];
  const [dh, dw] = attrInts(node, 'dilations', [1, 1]) as [number, number];
  const [pt, pl] = attrInts(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number];
  const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
  const OH = Math.floor((H + pads[0]! + pads[2]! - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + pads[1]! + pads[3]! - dw * (KW - 1) - 1) / sw) + 1;
  const wt = tensorToNumbers(w);
  const bt = b ? tensorToNumbers(b) : undefined;
  const rows: AffineMap['rows'] = [];
  const bias = new Float64Array(M * OH * OW);
  for (let m = 0; m < M; m++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        const idx: number[] = [];
        const ws: number[] = [];
        const cs = group === 1 ? Array.from({ length: C }, (_, c) => c) : [m];
        cs.forEach((c, ci) => {
          for (let kh = 0; kh < KH; kh++)
            for (let kw = 0; kw < KW; kw++) {
              const ih = oh * sh - pt + kh * dh;
              const iw = ow * sw - pl + kw * dw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const v = wt[((m * Cg + (group === 1 ? ci : 0)) * KH + kh) * KW + kw]!;
              if (v === 0) continue;
              idx.push((c * H + ih) * W + iw);
              ws.push(v);
            }
        });
        const o = (m * OH + oh) * OW + ow;
        rows[o] = { idx, w: ws };
        bias[o] = bt ? bt[m]! : 0;
      }
  return { map: { inSize: C * H * W, outSize: M * OH * OW, rows, bias }, outDims: [M, OH, OW] };
}

function gemmMap(node: Node, b: Tensor, c: Tensor | undefined, inSize: number, where: string): { map: AffineMap; outDims: number[] } {
  const transB = node.opType === 'Gemm' ? attrInt(node, 'transB', 0) : 0;
  if (node.opType === 'Gemm' && attrInt(node, 'transA', 0) !== 0) throw new ModelError(`${where}: Gemm transA=1 not supported under FHE`);
  const alpha = node.opType === 'Gemm' ? attrFloat(node, 'alpha', 1) : 1;
  const beta = node.opType === 'Gemm' ? attrFloat(node, 'beta', 1) : 1;
  const [r, k] = b.dims as [number, number];
  const K = transB ? k : r;
  const N = transB ? r : k;
  if (K !== inSize) throw new ModelError(`${where}: weight expects ${K} inputs, got ${inSize}`);
  const wt = tensorToNumbers(b);
  const ct = c ? tensorToNumbers(c) : undefined;
  const rows: AffineMap['rows'] = [];
  const bias = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const idx: number[] = [];
    const ws: number[] = [];
    for (let i = 0; i < K; i++) {
      const v = alpha * (transB ? wt[n * K + i]! : wt[i * N + n]!);
      if (v !== 0) {
        idx.push(i);
        ws.push(v);
      }
    }
    rows.push({ idx, w: ws });
    bias[n] = ct ? beta * (ct.length === 1 ? ct[0]! : ct[n]!) : 0;
  }
  return { map: { inSize, outSize: N, rows, bias }, outDims: [N] };
}

function bnMap(node: Node, inits: (i: number) => Tensor, dims: number[]): AffineMap {
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const [scale, bias, mean, varr] = [1, 2, 3, 4].map((i) => tensorToNumbers(inits(i)));
  const C = dims[0]!;
  const per = sizeOf(dims) / C;
  const m = identityMap(sizeOf(dims));
  for (let c = 0; c < C; c++) {
    const a = scale![c]! / Math.sqrt(varr![c]! + eps);
    for (let i = 0; i < per; i++) {
      m.rows[c * per + i]!.w[0] = a;
      m.bias[c * per + i] = bias![c]! - a * mean![c]!;
    }
  }
  return m;
}

/** Compile `model` into an FHE program; clear ModelErrors naming unsupported ops. */
export function compileModel(model: Model, source = model.graph.name || 'model'): FheProgram {
  const g = model.graph;
  const inputs = g.inputs.filter((v) => !g.initializers.has(v.name));
  if (inputs.length !== 1) throw new ModelError(`${source}: FHE inference needs exactly one graph input, found ${inputs.length}`);
  if (g.outputs.length !== 1) throw new ModelError(`${source}: FHE inference needs exactly one graph output, found ${g.outputs.length}`);
  const input = inputs[0]!;
  const shape = input.shape;
  if (!shape || shape.slice(1).some((d) => typeof d !== 'number')) throw new ModelError(`${source}: input '${input.name}' needs a fixed per-image shape`);
  const inputDims = shape.slice(1) as number[];

  // PAF layers, in either form.
  const pafByNode = new Map<
    string,
    { paf: string; stages: number[][]; scale: number; kind: string; input: string; output: string; window?: Record<string, unknown> }
  >();
  const skip = new Set<Node>();
  let form: FheProgram['form'] = 'plain';
  const layersMeta = model.metadata[META_PAF_LAYERS];
  const groupStart = new Map<Node, ExpandedLayer>();
  if (layersMeta) {
    form = 'expanded-metadata';
    let layers: ExpandedLayer[];
    try {
      layers = JSON.parse(layersMeta) as ExpandedLayer[];
    } catch {
      throw new ModelError(`${source}: metadata '${META_PAF_LAYERS}' is not valid JSON`);
    }
    for (const l of layers) {
      const prefix = `${l.node}/paf/`;
      const group = g.nodes.filter((n) => n.name.startsWith(prefix));
      if (group.length === 0 || !group.some((n) => n.outputs.includes(l.output))) {
        throw new ModelError(`${source}: PAF layer '${l.node}' from metadata has no expanded nodes '${prefix}*' producing '${l.output}'`);
      }
      group.forEach((n) => skip.add(n));
      groupStart.set(group[0]!, l);
    }
  }
  for (const l of pafLayers(model)) {
    form = 'paf-nodes';
    if (l.scale === undefined)
      throw new ModelError(`${source}: node '${l.node}': dynamic-scale PAF cannot run under FHE; switch to static scales (withStaticScales)`);
    pafByNode.set(l.node, { paf: l.paf, stages: l.stages, scale: l.scale, kind: l.kind, input: l.input, output: l.output, window: l.window });
  }

  const shapes = form === 'paf-nodes' ? undefined : inferShapes(model);
  const steps: FheStep[] = [];
  let cur = input.name;
  let dims = inputDims;
  let pending: { map: AffineMap; nodes: string[]; inDims: number[] } | undefined;
  const flush = () => {
    if (!pending) return;
    steps.push({ kind: 'linear', name: pending.nodes.join('+'), nodes: pending.nodes, map: pending.map, inDims: pending.inDims, outDims: dims });
    pending = undefined;
  };
  const addLinear = (name: string, map: AffineMap, outDims: number[]) => {
    if (pending) pending = { map: composeMaps(pending.map, map), nodes: [...pending.nodes, name], inDims: pending.inDims };
    else pending = { map, nodes: [name], inDims: dims };
    dims = outDims;
  };
  const pushPaf = (l: { node: string; kind: string; paf: string; stages: number[][]; scale: number; window?: Record<string, unknown> }, where: string) => {
    if (!(l.scale > 0) || !Number.isFinite(l.scale)) throw new ModelError(`${where}: static scale must be a positive number, is ${l.scale}`);
    if (l.kind === 'relu') {
      steps.push({ kind: 'paf', name: l.node, nodes: [l.node], paf: l.paf, stages: l.stages, scale: l.scale, dims });
    } else if (l.kind === 'maxpool') {
      const { kernel, outDims } = fheMaxWindow(l.window, dims, where);
      steps.push({ kind: 'maxpool', name: l.node, nodes: [l.node], paf: l.paf, stages: l.stages, scale: l.scale, kernel, inDims: dims, outDims });
      dims = outDims;
    } else throw new ModelError(`${where}: PAF layers of kind '${l.kind}' are not supported under FHE (only relu and maxpool)`);
  };
  const init = (n: Node, i: number, where: string): Tensor => {
    const t = g.initializers.get(n.inputs[i] ?? '');
    if (!t) throw new ModelError(`${where}: input ${i} must be a constant initializer under FHE (the server holds the model in plaintext)`);
    return t;
  };
  for (const n of g.nodes) {
    const where = `${source}: node '${n.name}' (${n.opType})`;
    const meta = groupStart.get(n);
    if (meta) {
      if (meta.input !== cur) throw new ModelError(`${where}: PAF layer input '${meta.input}' is not the running value '${cur}' (only chains are supported)`);
      flush();
      pushPaf(meta, `${source}: PAF layer '${meta.node}' (${meta.kind})`);
      cur = meta.output;
      continue;
    }
    if (skip.has(n)) continue;
    const paf = pafByNode.get(n.name);
    if (paf) {
      if (n.inputs[0] !== cur) throw new ModelError(`${where}: input is not the running value (only chains are supported)`);
      flush();
      pushPaf({ ...paf, node: n.name }, where);
      cur = n.outputs[0]!;
      continue;
    }
    if (n.domain !== '' && n.domain !== 'ai.onnx') {
      throw new ModelError(`${where}: op of domain '${n.domain}' is not supported under FHE${n.domain === SMARTPAF_DOMAIN ? '' : ''}`);
    }
    const why = UNSUPPORTED_WHY[n.opType];
    if (why) throw new ModelError(`${where}: not supported under FHE: ${why}`);
    const dataInputs = n.inputs.filter((i) => i && !g.initializers.has(i));
    if (dataInputs.length !== 1 || dataInputs[0] !== cur) {
      throw new ModelError(`${where}: FHE runs chains of ops on one encrypted value; this node reads ${dataInputs.join(', ') || 'no encrypted value'}`);
    }
    switch (n.opType) {
      case 'Conv': {
        if (dims.length !== 3) throw new ModelError(`${where}: Conv needs a [C,H,W] input`);
        const { map, outDims } = convMap(n, init(n, 1, where), n.inputs[2] ? init(n, 2, where) : undefined, dims, where);
        addLinear(n.name, map, outDims);
        break;
      }
      case 'Gemm':
      case 'MatMul': {
        const { map, outDims } = gemmMap(n, init(n, 1, where), n.opType === 'Gemm' && n.inputs[2] ? init(n, 2, where) : undefined, sizeOf(dims), where);
        addLinear(n.name, map, outDims);
        break;
      }
      case 'Add':
      case 'Sub':
      case 'Mul': {
        const ci = n.inputs.findIndex((i) => g.initializers.has(i));
        const t = tensorToNumbers(g.initializers.get(n.inputs[ci]!)!);
        const size = sizeOf(dims);
        const m = identityMap(size);
        const per = t.length === 1 ? size : t.length;
        if (size % per !== 0 && t.length !== size) throw new ModelError(`${where}: constant of ${t.length} elements does not broadcast to [${dims}]`);
        for (let i = 0; i < size; i++) {
          // Broadcast a scalar, a per-element or a per-channel ([C,1,1]) constant.
          const v = t.length === 1 ? t[0]! : t.length === size ? t[i]! : t[Math.floor(i / (size / t.length))]!;
          if (n.opType === 'Mul') m.rows[i]!.w[0] = v;
          else if (n.opType === 'Add') m.bias[i] = v;
          else if (ci === 1) m.bias[i] = -v;
          else {
            m.rows[i]!.w[0] = -1;
            m.bias[i] = v;
          }
        }
        addLinear(n.name, m, dims);
        break;
      }
      case 'BatchNormalization':
        addLinear(
          n.name,
          bnMap(n, (i) => init(n, i, where), dims),
          dims,
        );
        break;
      case 'Flatten':
      case 'Reshape':
      case 'Identity':
      case 'Dropout': {
        const out = shapes?.get(n.outputs[0]!)?.shape;
        const nd = n.opType === 'Identity' || n.opType === 'Dropout' ? dims : [sizeOf(dims)];
        if (n.opType === 'Reshape' && out && out.length !== 2) throw new ModelError(`${where}: only a Reshape to [batch, features] is supported under FHE`);
        if (pending) dims = nd;
        else if (nd.length !== dims.length) addLinear(n.name, identityMap(sizeOf(dims)), nd);
        break;
      }
      case 'AveragePool':
      case 'GlobalAveragePool': {
        if (dims.length !== 3) throw new ModelError(`${where}: pooling needs a [C,H,W] input`);
        const [C, H, W] = dims as [number, number, number];
        const k = n.opType === 'GlobalAveragePool' ? [H, W] : attrInts(n, 'kernel_shape');
        const s = n.opType === 'GlobalAveragePool' ? k : attrInts(n, 'strides', k);
        const p = n.opType === 'GlobalAveragePool' ? [0, 0, 0, 0] : attrInts(n, 'pads', [0, 0, 0, 0]);
        if (k[0] !== s[0] || k[1] !== s[1] || p.some((v) => v !== 0) || H % k[0]! !== 0 || W % k[1]! !== 0) {
          throw new ModelError(`${where}: only non-overlapping average pooling (stride = kernel, no pads, dividing the size) is supported under FHE`);
        }
        flush();
        const outDims = [C, H / k[0]!, W / k[1]!];
        steps.push({ kind: 'sumpool', name: n.name, nodes: [n.name], kernel: [k[0]!, k[1]!], inDims: dims, outDims });
        dims = outDims;
        break;
      }
      default:
        throw new ModelError(
          `${where}: op not supported under FHE (supported: Conv, Gemm, MatMul, Add/Sub/Mul by constants, ` +
            `BatchNormalization, Flatten, Reshape, AveragePool, PAF layers)`,
        );
    }
    cur = n.outputs[0]!;
  }
  flush();
  if (cur !== g.outputs[0]!.name) throw new ModelError(`${source}: graph output '${g.outputs[0]!.name}' is not the end of the op chain ('${cur}')`);
  return { source, inputName: input.name, outputName: cur, inputDims, outputDims: dims, steps, form };
}

/** Run a program in float64 on one image: the plaintext reference of every step (outputs per step). */
export function simulateProgram(p: FheProgram, x: ArrayLike<number>): Float64Array[] {
  let v: Float64Array = Float64Array.from(x as ArrayLike<number>);
  const outs: Float64Array[] = [];
  for (const s of p.steps) {
    if (s.kind === 'linear') v = applyMap(s.map, v);
    else if (s.kind === 'sumpool') {
      const [C, H, W] = s.inDims as [number, number, number];
      const [kh, kw] = s.kernel;
      const OH = H / kh;
      const OW = W / kw;
      const y = new Float64Array(C * OH * OW);
      for (let c = 0; c < C; c++)
        for (let i = 0; i < OH; i++)
          for (let j = 0; j < OW; j++) {
            let acc = 0;
            for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) acc += v[(c * H + i * kh + a) * W + j * kw + b]!;
            y[(c * OH + i) * OW + j] = acc / (kh * kw);
          }
      v = y;
    } else if (s.kind === 'maxpool') {
      v = simulateMaxPool(s, v);
    } else {
      const st = s.stages;
      v = v.map((xx) => {
        let u = xx / s.scale;
        for (const c of st) {
          const y2 = u * u;
          let acc = 0;
          for (let i = c.length - 1; i >= 0; i--) acc = acc * y2 + c[i]!;
          u = acc * u;
        }
        return (xx + xx * u) / 2;
      });
    }
    outs.push(v);
  }
  return outs;
}

function signOf(stages: readonly (readonly number[])[], u: number): number {
  for (const c of stages) {
    const y2 = u * u;
    let acc = 0;
    for (let i = c.length - 1; i >= 0; i--) acc = acc * y2 + c[i]!;
    u = acc * u;
  }
  return u;
}

/** PAF MaxPool in float64: the row-major pairwise tree of src/smartpaf (maxTree over windowOffsets). */
function simulateMaxPool(s: FheStep & { kind: 'maxpool' }, v: Float64Array): Float64Array {
  const [C, H, W] = s.inDims as [number, number, number];
  const [kh, kw] = s.kernel;
  const OH = H / kh;
  const OW = W / kw;
  const y = new Float64Array(C * OH * OW);
  const pmax = (a: number, b: number) => (a + b + (a - b) * signOf(s.stages, (a - b) / s.scale)) / 2;
  for (let c = 0; c < C; c++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++) {
        const win: number[] = [];
        for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) win.push(v[(c * H + i * kh + a) * W + j * kw + b]!);
        y[(c * OH + i) * OW + j] = maxTree(win, (pairs) => pairs.map(([a, b]) => pmax(a, b)));
      }
  return y;
}
