/**
 * Compile an ONNX classifier into the step list the MPC executor runs: BatchNorm folded into the
 * preceding convolution, shapes resolved for a fixed batch, every op checked before any party starts.
 */
import { attrFloat, attrInt, attrInts, attrString, ModelError, sizeOf, tensorToNumbers, type Model, type Node, type Tensor } from '../onnx/ir.js';
import { inferShapes } from '../onnx/shape.js';
import type { ConvGeom, PoolGeom } from './ring.js';

/** One executable step on shares. Shapes are concrete (batch fixed). */
export type Step =
  | { kind: 'conv'; node: Node; input: string; output: string; geom: ConvGeom; weight: Float32Array; bias?: Float32Array }
  | { kind: 'gemm'; node: Node; input: string; output: string; m: number; k: number; n: number; weight: Float32Array; bias?: Float32Array }
  | { kind: 'relu'; node: Node; input: string; output: string; size: number }
  | { kind: 'maxpool'; node: Node; input: string; output: string; geom: PoolGeom }
  | { kind: 'avgpool'; node: Node; input: string; output: string; geom: PoolGeom; divisor: number }
  | { kind: 'gap'; node: Node; input: string; output: string; n: number; c: number; hw: number }
  | { kind: 'affine'; node: Node; input: string; output: string; outer: number; channels: number; inner: number; scale: Float32Array; shift: Float32Array }
  | { kind: 'add'; node: Node; inputs: [string, string]; output: string; size: number }
  | { kind: 'alias'; node: Node; input: string; output: string };

/** A compiled model. */
export interface MpcPlan {
  source: string;
  batch: number;
  input: string;
  inputShape: number[];
  output: string;
  outputShape: number[];
  steps: Step[];
  /** Names of the ReLU-like steps (Relu and MaxPool nodes), in execution order, for per-layer bit ranges. */
  nonlinear: string[];
}

const pairOf = (v: number[], what: string, node: Node, source: string): [number, number] => {
  if (v.length !== 2) throw new ModelError(`${source}: node '${node.name}' (${node.opType}): only 2-D ${what} are supported`);
  return [v[0]!, v[1]!];
};

/** Compile `model` for private inference at batch size `batch`. */
export function planModel(model: Model, batch: number, source = model.graph.name): MpcPlan {
  const g = model.graph;
  const inits = g.initializers;
  const feeds = g.inputs.filter((v) => !inits.has(v.name));
  if (feeds.length !== 1) throw new ModelError(`${source}: private inference needs exactly one input, the model has ${feeds.length}`);
  if (g.outputs.length !== 1) throw new ModelError(`${source}: private inference needs exactly one output, the model has ${g.outputs.length}`);
  const inInfo = feeds[0]!;
  if (inInfo.dtype !== 'float32') throw new ModelError(`${source}: input '${inInfo.name}' must be float32, is ${inInfo.dtype}`);
  // Fix the batch dimension so every shape is concrete.
  const fixed: Model = { ...model, graph: { ...g, inputs: g.inputs.map((v) => (v === inInfo ? { ...v, shape: v.shape?.map((d, i) => (i === 0 ? batch : d)) } : v)) } };
  const shapes = inferShapes(fixed, { strict: true });
  const shapeOf = (name: string): number[] => {
    const s = shapes.get(name)?.shape;
    if (!s || s.some((d) => typeof d !== 'number')) throw new ModelError(`${source}: shape of '${name}' is not fully known`);
    return s as number[];
  };
  const weight = (node: Node, i: number): Tensor => {
    const name = node.inputs[i];
    const t = name ? inits.get(name) : undefined;
    if (!t) throw new ModelError(`${source}: node '${node.name}' (${node.opType}): input #${i} must be a weight (initializer)`);
    if (t.dtype !== 'float32') throw new ModelError(`${source}: node '${node.name}' (${node.opType}): weight '${name}' must be float32`);
    return t;
  };
  const consumers = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) consumers.set(i, (consumers.get(i) ?? 0) + 1);

  const steps: Step[] = [];
  const nonlinear: string[] = [];
  const nodes = g.nodes;
  for (let idx = 0; idx < nodes.length; idx++) {
    const node = nodes[idx]!;
    const out = node.outputs[0]!;
    const fail = (msg: string): never => {
      throw new ModelError(`${source}: node '${node.name}' (${node.opType}): ${msg}`);
    };
    if (node.domain && node.domain !== 'ai.onnx') fail(`domain '${node.domain}' is not supported by the MPC runtime`);
    switch (node.opType) {
      case 'Conv': {
        const xs = shapeOf(node.inputs[0]!);
        if (xs.length !== 4) fail('only 2-D convolutions are supported');
        const w = weight(node, 1);
        const [co, , kh, kw] = w.dims as [number, number, number, number];
        const [sh, sw] = pairOf(attrInts(node, 'strides', [1, 1]), 'strides', node, source);
        if (attrInts(node, 'dilations', [1, 1]).some((d) => d !== 1)) fail('dilations > 1 are not supported');
        if (attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') fail('auto_pad is not supported; give explicit pads');
        const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
        const geom: ConvGeom = {
          n: xs[0]!, c: xs[1]!, h: xs[2]!, w: xs[3]!, co, kh, kw, strideH: sh, strideW: sw,
          padT: pads[0]!, padL: pads[1]!, padB: pads[2]!, padR: pads[3]!, group: attrInt(node, 'group', 1),
        };
        let wdata = Float32Array.from(w.data as Float32Array);
        let bias = node.inputs[2] ? Float32Array.from(weight(node, 2).data as Float32Array) : undefined;
        // Fold a following BatchNormalization (the conv's only consumer) into weight and bias.
        const next = nodes[idx + 1];
        if (next && next.opType === 'BatchNormalization' && next.inputs[0] === out && consumers.get(out) === 1) {
          const [scale, shift] = bnAffine(next, inits, source);
          const per = wdata.length / co;
          for (let o = 0; o < co; o++) for (let j = 0; j < per; j++) wdata[o * per + j]! *= scale[o]!;
          const b = bias ?? new Float32Array(co);
          for (let o = 0; o < co; o++) b[o] = b[o]! * scale[o]! + shift[o]!;
          bias = b;
          steps.push({ kind: 'conv', node, input: node.inputs[0]!, output: next.outputs[0]!, geom, weight: wdata, bias });
          idx++;
          break;
        }
        steps.push({ kind: 'conv', node, input: node.inputs[0]!, output: out, geom, weight: wdata, bias });
        break;
      }
      case 'Gemm':
      case 'MatMul': {
        const xs = shapeOf(node.inputs[0]!);
        if (xs.length !== 2) fail(`the data input must be 2-D, is [${xs}]`);
        const w = weight(node, 1);
        if (w.dims.length !== 2) fail('the weight must be 2-D');
        if (node.opType === 'Gemm') {
          if (attrInt(node, 'transA', 0) !== 0) fail('transA=1 is not supported');
          if (attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1) fail('alpha/beta other than 1 are not supported');
        }
        const transB = node.opType === 'Gemm' && attrInt(node, 'transB', 0) === 1;
        const [k, n] = transB ? [w.dims[1]!, w.dims[0]!] : [w.dims[0]!, w.dims[1]!];
        if (xs[1] !== k) fail(`inner dimensions differ: [${xs}] × weight [${w.dims}]`);
        // Store as k×n row-major.
        const src = w.data as Float32Array;
        const wk = new Float32Array(k * n);
        for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) wk[i * n + j] = transB ? src[j * k + i]! : src[i * n + j]!;
        let bias: Float32Array | undefined;
        if (node.opType === 'Gemm' && node.inputs[2]) {
          const b = weight(node, 2);
          if (sizeOf(b.dims) !== n) fail(`bias of shape [${b.dims}] does not broadcast as a per-output bias`);
          bias = Float32Array.from(b.data as Float32Array);
        }
        steps.push({ kind: 'gemm', node, input: node.inputs[0]!, output: out, m: xs[0]!, k, n, weight: wk, bias });
        break;
      }
      case 'Relu':
        steps.push({ kind: 'relu', node, input: node.inputs[0]!, output: out, size: sizeOf(shapeOf(out)) });
        nonlinear.push(node.name);
        break;
      case 'MaxPool':
      case 'AveragePool': {
        const xs = shapeOf(node.inputs[0]!);
        if (xs.length !== 4) fail('only 2-D pooling is supported');
        if (attrInt(node, 'ceil_mode', 0) !== 0) fail('ceil_mode=1 is not supported');
        if (attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET') fail('auto_pad is not supported; give explicit pads');
        const [kh, kw] = pairOf(attrInts(node, 'kernel_shape'), 'kernels', node, source);
        const [sh, sw] = pairOf(attrInts(node, 'strides', [1, 1]), 'strides', node, source);
        const pads = attrInts(node, 'pads', [0, 0, 0, 0]);
        const geom: PoolGeom = { n: xs[0]!, c: xs[1]!, h: xs[2]!, w: xs[3]!, kh, kw, strideH: sh, strideW: sw, padT: pads[0]!, padL: pads[1]!, padB: pads[2]!, padR: pads[3]! };
        if (node.opType === 'MaxPool') {
          if (node.outputs[1]) fail('the Indices output is not supported');
          steps.push({ kind: 'maxpool', node, input: node.inputs[0]!, output: out, geom });
          nonlinear.push(node.name);
        } else {
          const padded = pads.some((p) => p !== 0);
          if (padded && attrInt(node, 'count_include_pad', 0) === 0) fail('padded average pooling must use count_include_pad=1 in MPC');
          steps.push({ kind: 'avgpool', node, input: node.inputs[0]!, output: out, geom, divisor: kh * kw });
        }
        break;
      }
      case 'GlobalAveragePool': {
        const xs = shapeOf(node.inputs[0]!);
        steps.push({ kind: 'gap', node, input: node.inputs[0]!, output: out, n: xs[0]!, c: xs[1]!, hw: sizeOf(xs.slice(2)) });
        break;
      }
      case 'BatchNormalization': {
        const xs = shapeOf(node.inputs[0]!);
        const [scale, shift] = bnAffine(node, inits, source);
        steps.push({ kind: 'affine', node, input: node.inputs[0]!, output: out, outer: xs[0]!, channels: xs[1]!, inner: sizeOf(xs.slice(2)), scale, shift });
        break;
      }
      case 'Add': {
        const [a, b] = node.inputs as [string, string];
        if (inits.has(a) || inits.has(b)) {
          // Bias add with a public per-channel constant: an affine step with scale 1.
          const [x, c] = inits.has(b) ? [a, b] : [b, a];
          const xs = shapeOf(x);
          const t = inits.get(c)!;
          const cn = tensorToNumbers(t);
          const channels = xs.length >= 2 ? xs[1]! : 1;
          if (cn.length !== channels && cn.length !== 1) fail('only scalar or per-channel constant additions are supported');
          const shift = Float32Array.from({ length: channels }, (_, i) => cn[cn.length === 1 ? 0 : i]!);
          steps.push({ kind: 'affine', node, input: x, output: out, outer: xs[0]!, channels, inner: sizeOf(xs.slice(2)), scale: new Float32Array(channels).fill(1), shift });
        } else {
          const sa = shapeOf(a).join();
          if (sa !== shapeOf(b).join()) fail('residual Add needs equal shapes');
          steps.push({ kind: 'add', node, inputs: [a, b], output: out, size: sizeOf(shapeOf(out)) });
        }
        break;
      }
      case 'Flatten':
      case 'Reshape':
      case 'Identity':
      case 'Dropout':
        // Row-major data does not move: these are renames.
        steps.push({ kind: 'alias', node, input: node.inputs[0]!, output: out });
        break;
      default:
        fail('op is not supported by the MPC runtime (supported: Conv, Gemm, MatMul, Relu, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, Add, Flatten, Reshape, Identity)');
    }
  }
  return {
    source,
    batch,
    input: inInfo.name,
    inputShape: shapeOf(inInfo.name),
    output: g.outputs[0]!.name,
    outputShape: shapeOf(g.outputs[0]!.name),
    steps,
    nonlinear,
  };
}

/** BatchNormalization in inference form as a per-channel affine map y = scale·x + shift. */
function bnAffine(node: Node, inits: Map<string, Tensor>, source: string): [Float32Array, Float32Array] {
  const get = (i: number): number[] => {
    const t = inits.get(node.inputs[i] ?? '');
    if (!t) throw new ModelError(`${source}: node '${node.name}' (BatchNormalization): parameter #${i} must be an initializer`);
    return tensorToNumbers(t);
  };
  const [gamma, beta, mean, variance] = [get(1), get(2), get(3), get(4)];
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const scale = Float32Array.from(gamma, (gm, i) => gm / Math.sqrt(variance[i]! + eps));
  const shift = Float32Array.from(beta, (b, i) => b - mean[i]! * scale[i]!);
  return [scale, shift];
}
