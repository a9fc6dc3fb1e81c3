/**
 * Compile an ONNX classifier into the step list the MPC executor runs. Shapes are resolved for a
 * fixed batch; every node is checked before any party starts and all refusals are reported at once.
 * Per-channel affine maps (BatchNorm, constant Add/Sub/Mul/Div) that follow a Conv/Gemm/MatMul are
 * folded into its weights and bias; the rest stay explicit steps whose constants are weights (shared
 * in secret mode). No decision here depends on a weight's value, so a party holding only the
 * architecture (zero-filled weights) compiles the same steps.
 */

import { canonicalize, ModelProblems, type Problem } from '../onnx/canonical.js';
import { attrFloat, attrInt, attrInts, attrString, type Model, ModelError, type Node, sizeOf, type Tensor, tensorToNumbers } from '../onnx/ir.js';
import { avgPoolDivisors, batchNormAffine, linearLayer, windowGeometry } from '../onnx/lower.js';
import { inferShapes } from '../onnx/shape.js';
import { concatIndex, expandToSample, isPerChannel, type PadMode, padIndex, sliceIndex, transposeIndex } from './plan-layout.js';
import { type ConvGeom, convOutSize, type PoolGeom } from './ring.js';

/** One executable step on shares. Shapes are concrete (batch fixed). Float arrays are weights. */
export type Step =
  | { kind: 'conv'; node: Node; input: string; output: string; geom: ConvGeom; weight: Float32Array; bias?: Float32Array }
  | { kind: 'gemm'; node: Node; input: string; output: string; m: number; k: number; n: number; weight: Float32Array; bias?: Float32Array }
  | { kind: 'relu'; node: Node; input: string; output: string; size: number }
  | { kind: 'maxpool'; node: Node; input: string; output: string; geom: PoolGeom }
  | { kind: 'avgpool'; node: Node; input: string; output: string; geom: PoolGeom; divisor: number }
  | { kind: 'gap'; node: Node; input: string; output: string; n: number; c: number; hw: number }
  /** y = (negate ? −x : x)·scale + shift, scale and shift given per sample (broadcast over the batch). */
  | { kind: 'affine'; node: Node; input: string; output: string; batch: number; negate: boolean; scale?: Float32Array; shift?: Float32Array }
  | { kind: 'add'; node: Node; inputs: [string, string]; output: string; size: number }
  | { kind: 'alias'; node: Node; input: string; output: string }
  /** out[i] = concat(inputs)[index[i]], or the public constant `fill` where index[i] = −1 (local). */
  | { kind: 'gather'; node: Node; inputs: string[]; output: string; index: Int32Array; fill: number }
  /** min(max(x, lo), hi) with public bounds from the architecture. */
  | { kind: 'clip'; node: Node; input: string; output: string; lo?: number; hi?: number }
  /** LeakyRelu with its public slope attribute. */
  | { kind: 'leaky'; node: Node; input: string; output: string; alpha: number }
  /** PRelu: slope is a weight, given per sample. */
  | { kind: 'prelu'; node: Node; input: string; output: string; batch: number; slope: Float32Array };

/** A compiled model. */
export interface MpcPlan {
  source: string;
  batch: number;
  input: string;
  inputShape: number[];
  /** The value revealed to party 0 (before `post`). */
  output: string;
  outputShape: number[];
  steps: Step[];
  /** Names of the ReLU-like steps (Relu and MaxPool nodes), in execution order, for per-layer bit ranges. */
  nonlinear: string[];
  /** An output Softmax/LogSoftmax over the last axis, applied by party 0 after the reveal. */
  post?: 'Softmax' | 'LogSoftmax';
}

/** Ops the MPC planner accepts (after canonicalisation), for messages. */
export const MPC_OPS = [
  'Conv',
  'Gemm',
  'MatMul',
  'Relu',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'BatchNormalization',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Flatten',
  'Reshape',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Dropout',
  'Transpose',
  'Concat',
  'Pad',
  'Slice',
  'Clip',
  'LeakyRelu',
  'PRelu',
  'Softmax (output)',
  'LogSoftmax (output)',
] as const;

/** A node-level refusal, collected so every offending node is named in one error. */
class Refusal extends Error {}

/**
 * Pooling geometry from the shared lowering, ceil_mode folded into extra bottom/right padding (the
 * MPC max pool excludes padding; extra average-pool cells are refused unless the divisor stays uniform).
 */
function poolGeom(node: Node, xs: number[], fail: (m: string) => never): { geom: PoolGeom; divisor: number } {
  if (xs.length !== 4) fail('only 2-D pooling is supported');
  const wg = lowered(() => windowGeometry(node, xs.slice(2)), fail);
  if (wg.dilations.some((d) => d !== 1)) fail('dilated pooling is not supported');
  const [kh, kw] = wg.kernel as [number, number];
  const padB = Math.max(wg.pads[2]!, wg.effectiveEndPads[0]!),
    padR = Math.max(wg.pads[3]!, wg.effectiveEndPads[1]!);
  const geom: PoolGeom = {
    n: xs[0]!,
    c: xs[1]!,
    h: xs[2]!,
    w: xs[3]!,
    kh,
    kw,
    strideH: wg.strides[0]!,
    strideW: wg.strides[1]!,
    padT: wg.pads[0]!,
    padL: wg.pads[1]!,
    padB,
    padR,
  };
  let divisor = kh * kw;
  if (node.opType === 'AveragePool') {
    const d = avgPoolDivisors(wg, xs.slice(2), attrInt(node, 'count_include_pad', 0) === 1);
    const all = d[0]!.flatMap((a) => d[1]!.map((b) => a * b));
    if (all.some((v) => v !== all[0]))
      fail('average pooling whose divisor varies by position (padding without count_include_pad, or ceil_mode cells) is not supported in MPC');
    divisor = all[0]!;
    // The MPC average pool sums zero-padded windows: the uniform divisor is exact then.
  }
  return { geom, divisor };
}

/** Run a shared-lowering helper, turning its geometry errors into this node's refusal. */
function lowered<T>(f: () => T, fail: (m: string) => never): T {
  try {
    return f();
  } catch (e) {
    return fail((e as Error).message);
  }
}

/** Compile `model` for private inference at batch size `batch`. */
export function planModel(original: Model, batch: number, source = original.graph.name): MpcPlan {
  // Every runtime starts from the canonical form (constants folded, one semantics per op).
  const canon = canonicalize(original, { source, throwOnProblems: false });
  const model = canon.model;
  const g = model.graph;
  const inits = g.initializers;
  const feeds = g.inputs.filter((v) => !inits.has(v.name));
  if (feeds.length !== 1) throw new ModelError(`${source}: private inference needs exactly one input, the model has ${feeds.length}`);
  if (g.outputs.length !== 1) throw new ModelError(`${source}: private inference needs exactly one output, the model has ${g.outputs.length}`);
  const inInfo = feeds[0]!;
  if (inInfo.dtype !== 'float32') throw new ModelError(`${source}: input '${inInfo.name}' must be float32, is ${inInfo.dtype}`);
  // Fix the batch dimension so every shape is concrete.
  const fixed: Model = {
    ...model,
    graph: { ...g, inputs: g.inputs.map((v) => (v === inInfo ? { ...v, shape: v.shape?.map((d, i) => (i === 0 ? batch : d)) } : v)) },
  };
  const shapes = inferShapes(fixed);
  const graphOut = g.outputs[0]!.name;
  const consumers = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) consumers.set(i, (consumers.get(i) ?? 0) + 1);

  const steps: Step[] = [];
  const nonlinear: string[] = [];
  const problems: Problem[] = [...canon.problems];
  /** Values downstream of a refused node: their consumers are only checked for op support. */
  const poisoned = new Set<string>();
  /** Conv/Gemm steps by output name, while a following per-channel affine may still be folded in. */
  const foldable = new Map<string, Extract<Step, { kind: 'conv' | 'gemm' }>>();
  let post: MpcPlan['post'];
  let revealed = graphOut;
  let unsupported = false;

  for (const node of g.nodes) {
    const out = node.outputs[0]!;
    const fail = (msg: string): never => {
      throw new Refusal(msg);
    };
    const known = (name: string): number[] => {
      const s = shapes.get(name)?.shape;
      if (!s || s.some((d) => typeof d !== 'number')) fail(`shape of '${name}' is not fully known`);
      return s as number[];
    };
    const weight = (i: number): Tensor => {
      const name = node.inputs[i];
      const t = name ? inits.get(name) : undefined;
      if (!t) fail(`input #${i} must be a weight (initializer)`);
      if (t!.dtype !== 'float32') fail(`weight '${name}' must be float32, is ${t!.dtype}`);
      return t!;
    };
    /** An architecture constant (public): pads, axes, shapes, a pad value. */
    const archConst = (i: number): number[] | undefined => {
      const name = node.inputs[i];
      if (!name) return undefined;
      const t = inits.get(name);
      if (!t) fail(`input #${i} ('${name}') must be a constant; run the canonical pass first`);
      return tensorToNumbers(t!);
    };
    try {
      if (node.domain && node.domain !== 'ai.onnx') fail(`domain '${node.domain}' is not supported by the MPC runtime`);
      if (!(MPC_OPS as readonly string[]).includes(node.opType) && node.opType !== 'Softmax' && node.opType !== 'LogSoftmax') {
        unsupported = true;
        fail('op is not supported by the MPC runtime');
      }
      if (node.inputs.some((i) => poisoned.has(i))) {
        // Shapes downstream of a refusal are unknown: only the checks that need none.
        for (const o of node.outputs) poisoned.add(o);
        const why = shapeFreeProblem(node, inits, graphOut, consumers);
        if (why) fail(why);
        continue;
      }
      if (node.outputs.filter(Boolean).length > 1 && node.outputs.slice(1).some((o) => o && (consumers.get(o) || o === graphOut))) {
        fail('extra outputs (e.g. a Dropout mask or MaxPool Indices) are not supported');
      }
      const dataInputs = node.inputs.filter((i) => i && !inits.has(i));
      if (dataInputs.length === 0) fail('a node on constants only should have been folded by the canonical pass');
      switch (node.opType) {
        case 'Conv': {
          const xs = known(node.inputs[0]!);
          if (xs.length !== 4) fail('only 2-D convolutions are supported');
          const w = weight(1);
          const [co, ci, kh, kw] = w.dims as [number, number, number, number];
          const wg = lowered(() => windowGeometry(node, xs.slice(2), [kh, kw]), fail);
          if (wg.dilations.some((d) => d !== 1)) fail('dilations > 1 are not supported');
          const [padT, padL, padB, padR] = wg.pads as [number, number, number, number];
          const group = attrInt(node, 'group', 1);
          if (ci * group !== xs[1]) fail(`weight [${w.dims}] does not match ${xs[1]} input channels in ${group} groups`);
          const geom: ConvGeom = {
            n: xs[0]!,
            c: xs[1]!,
            h: xs[2]!,
            w: xs[3]!,
            co,
            kh,
            kw,
            strideH: wg.strides[0]!,
            strideW: wg.strides[1]!,
            padT,
            padL,
            padB,
            padR,
            group,
          };
          const bias = node.inputs[2] ? Float32Array.from(weight(2).data as Float32Array) : undefined;
          if (bias && bias.length !== co) fail(`bias has ${bias.length} values for ${co} output channels`);
          const st: Step = { kind: 'conv', node, input: node.inputs[0]!, output: out, geom, weight: Float32Array.from(w.data as Float32Array), bias };
          steps.push(st);
          foldable.set(out, st);
          break;
        }
        case 'Gemm':
        case 'MatMul': {
          const xs = known(node.inputs[0]!);
          if (inits.has(node.inputs[0]!)) fail('the data must be the first input (constant × data is not supported)');
          const w = weight(1);
          if (w.dims.length !== 2) fail('the weight must be 2-D');
          if (node.opType === 'Gemm') {
            if (xs.length !== 2) fail(`the data input must be 2-D, is [${xs}]`);
            if (attrInt(node, 'transA', 0) !== 0) fail('transA=1 is not supported');
          } else if (xs.length < 2) fail(`the data input must be at least 2-D, is [${xs}]`);
          const lin = lowered(() => linearLayer(node, w, node.opType === 'Gemm' && node.inputs[2] ? weight(2) : undefined), fail);
          const { k, n } = lin;
          if (xs[xs.length - 1] !== k) fail(`inner dimensions differ: [${xs}] × weight [${w.dims}]`);
          // Leading dims of a MatMul's data are rows (row-major data does not move). Stored k×n row-major.
          const m = sizeOf(xs.slice(0, -1));
          const wk = lin.weight;
          const bias = lin.bias;
          const st: Step = { kind: 'gemm', node, input: node.inputs[0]!, output: out, m, k, n, weight: wk, bias };
          steps.push(st);
          if (xs.length === 2) foldable.set(out, st);
          break;
        }
        case 'Relu':
          steps.push({ kind: 'relu', node, input: node.inputs[0]!, output: out, size: sizeOf(known(out)) });
          nonlinear.push(node.name);
          break;
        case 'MaxPool': {
          const { geom } = poolGeom(node, known(node.inputs[0]!), fail);
          if (attrInt(node, 'storage_order', 0) !== 0) fail('storage_order=1 is not supported');
          steps.push({ kind: 'maxpool', node, input: node.inputs[0]!, output: out, geom });
          nonlinear.push(node.name);
          break;
        }
        case 'AveragePool': {
          const { geom, divisor } = poolGeom(node, known(node.inputs[0]!), fail);
          steps.push({ kind: 'avgpool', node, input: node.inputs[0]!, output: out, geom, divisor });
          break;
        }
        case 'GlobalAveragePool': {
          const xs = known(node.inputs[0]!);
          if (xs.length < 3) fail(`input must be [N, C, …], is [${xs}]`);
          steps.push({ kind: 'gap', node, input: node.inputs[0]!, output: out, n: xs[0]!, c: xs[1]!, hw: sizeOf(xs.slice(2)) });
          break;
        }
        case 'BatchNormalization':
        case 'Add':
        case 'Sub':
        case 'Mul':
        case 'Div':
          affineStep(node, known, fail, inits, steps, foldable, consumers, graphOut);
          break;
        case 'Flatten':
        case 'Reshape':
        case 'Squeeze':
        case 'Unsqueeze':
        case 'Identity':
        case 'Dropout':
          // Row-major data does not move: these are renames (Reshape's target is resolved by shape inference).
          known(out);
          steps.push({ kind: 'alias', node, input: node.inputs[0]!, output: out });
          break;
        case 'Transpose': {
          const xs = known(node.inputs[0]!);
          const perm = attrInts(
            node,
            'perm',
            xs.map((_, i) => xs.length - 1 - i),
          );
          steps.push({ kind: 'gather', node, inputs: [node.inputs[0]!], output: out, index: transposeIndex(xs, perm), fill: 0 });
          break;
        }
        case 'Concat': {
          const ins = node.inputs.filter(Boolean);
          if (ins.some((i) => inits.has(i))) fail('concatenating a constant is not supported');
          const ss = ins.map(known);
          const axis = attrInt(node, 'axis');
          const ax = axis < 0 ? axis + ss[0]!.length : axis;
          steps.push({ kind: 'gather', node, inputs: ins, output: out, index: concatIndex(ss, ax), fill: 0 });
          break;
        }
        case 'Pad': {
          const xs = known(node.inputs[0]!);
          const mode = attrString(node, 'mode', 'constant');
          if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') fail(`mode '${mode}' is not supported`);
          let pads = archConst(1) ?? attrInts(node, 'pads');
          const value = node.inputs[2] ? (archConst(2)?.[0] ?? 0) : attrFloat(node, 'value', 0);
          const axes = archConst(3);
          if (axes) {
            const full = new Array<number>(2 * xs.length).fill(0);
            axes.forEach((a, i) => {
              const ax = a < 0 ? a + xs.length : a;
              full[ax] = pads[i]!;
              full[ax + xs.length] = pads[i + axes.length]!;
            });
            pads = full;
          }
          if (pads.length !== 2 * xs.length) fail(`pads has ${pads.length} values for a rank-${xs.length} input`);
          if (pads[0] !== 0 || pads[xs.length] !== 0) fail('padding the batch axis is not supported');
          const { index } = padIndex(xs, pads, mode as PadMode);
          steps.push({ kind: 'gather', node, inputs: [node.inputs[0]!], output: out, index, fill: value });
          break;
        }
        case 'Slice': {
          const xs = known(node.inputs[0]!);
          const starts = archConst(1) ?? attrInts(node, 'starts');
          const ends = archConst(2) ?? attrInts(node, 'ends');
          const axes =
            archConst(3) ??
            attrInts(
              node,
              'axes',
              starts.map((_, i) => i),
            );
          const stepsV = archConst(4) ?? starts.map(() => 1);
          const ranges = xs.map((d) => ({ start: 0, step: 1, count: d }));
          axes.forEach((a, i) => {
            const ax = a < 0 ? a + xs.length : a;
            const d = xs[ax]!,
              st = stepsV[i]!;
            if (ax === 0) fail('slicing the batch axis is not supported');
            if (st === 0) fail('a step of 0 is invalid');
            const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
            const s = st > 0 ? clamp(starts[i]!, 0, d) : clamp(starts[i]!, -1, d - 1);
            const e = st > 0 ? clamp(ends[i]!, 0, d) : clamp(ends[i]!, -1, d - 1);
            ranges[ax] = { start: s, step: st, count: Math.max(0, Math.ceil((e - s) / st)) };
          });
          steps.push({ kind: 'gather', node, inputs: [node.inputs[0]!], output: out, index: sliceIndex(xs, ranges).index, fill: 0 });
          break;
        }
        case 'Clip': {
          const bound = (i: number, attr: string): number | undefined => {
            if (node.inputs[i]) {
              const t = inits.get(node.inputs[i]!);
              if (!t) fail(`bound #${i} must be a constant`);
              return tensorToNumbers(t!)[0];
            }
            const a = node.attrs[attr];
            return a?.kind === 'float' ? a.value : undefined;
          };
          const lo = bound(1, 'min'),
            hi = bound(2, 'max');
          if (lo !== undefined && hi !== undefined && !(lo <= hi)) fail(`min ${lo} exceeds max ${hi}`);
          if ([lo, hi].some((v) => v !== undefined && !Number.isFinite(v))) fail('bounds must be finite');
          steps.push({ kind: 'clip', node, input: node.inputs[0]!, output: out, lo, hi });
          break;
        }
        case 'LeakyRelu':
          steps.push({ kind: 'leaky', node, input: node.inputs[0]!, output: out, alpha: attrFloat(node, 'alpha', 0.01) });
          break;
        case 'PRelu': {
          const xs = known(node.inputs[0]!);
          const s = weight(1);
          const slope = expandToSample(s.data as Float32Array, s.dims, xs);
          if (!slope) fail(`slope of shape [${s.dims}] does not broadcast to [${xs}] per sample`);
          steps.push({ kind: 'prelu', node, input: node.inputs[0]!, output: out, batch: xs[0]!, slope: slope! });
          break;
        }
        case 'Softmax':
        case 'LogSoftmax': {
          const xs = known(node.inputs[0]!);
          const axis = attrInt(node, 'axis', -1);
          if (out !== graphOut || consumers.get(out)) fail('only an output Softmax/LogSoftmax is supported (party 0 applies it after the reveal)');
          if (xs.length !== 2 || (axis !== -1 && axis !== 1))
            fail(`only a softmax over the last axis of a 2-D output is supported, input [${xs}] axis ${axis}`);
          post = node.opType;
          revealed = node.inputs[0]!;
          break;
        }
      }
    } catch (e) {
      if (!(e instanceof Refusal) && !(e instanceof ModelError)) throw e;
      problems.push({ op: node.opType, node: node.name, reason: e.message.replace(/^.*?: node '[^']*' \([^)]*\): /, '') });
      for (const o of node.outputs) poisoned.add(o);
    }
  }
  if (unsupported) problems.push({ op: '', node: '', reason: `the MPC runtime supports ${MPC_OPS.join(', ')}` });
  if (problems.length) throw new ModelProblems(`${source} (MPC)`, problems);
  const shapeOf = (name: string): number[] => {
    const s = shapes.get(name)?.shape;
    if (!s || s.some((d) => typeof d !== 'number')) throw new ModelError(`${source}: shape of '${name}' is not fully known`);
    return s as number[];
  };
  if (revealed === inInfo.name) throw new ModelError(`${source}: the model computes nothing on its input`);
  if (!steps.some((s) => s.output === revealed)) throw new ModelError(`${source}: output '${revealed}' is not computed by any supported node`);
  return { source, batch, input: inInfo.name, inputShape: shapeOf(inInfo.name), output: revealed, outputShape: shapeOf(revealed), steps, nonlinear, post };
}

/** Refusals that need no shapes (checked on nodes downstream of another refusal too). */
function shapeFreeProblem(node: Node, inits: Map<string, Tensor>, graphOut: string, consumers: Map<string, number>): string | undefined {
  const consts = node.inputs.filter((i) => i && inits.has(i)).length;
  if ((node.opType === 'Mul' || node.opType === 'Sub' || node.opType === 'Div') && consts === 0)
    return `${node.opType} of two data values is not supported (only Add)`;
  if ((node.opType === 'Softmax' || node.opType === 'LogSoftmax') && (node.outputs[0] !== graphOut || consumers.get(node.outputs[0]!))) {
    return 'only an output Softmax/LogSoftmax is supported (party 0 applies it after the reveal)';
  }
  if (node.opType === 'Concat' && consts > 0) return 'concatenating a constant is not supported';
  return undefined;
}

/**
 * A node combining a data value with a constant: folded into the preceding Conv/Gemm when it is
 * that step's only consumer and the constant is per output channel, else an explicit affine step.
 */
function affineStep(
  node: Node,
  known: (name: string) => number[],
  fail: (m: string) => never,
  inits: Map<string, Tensor>,
  steps: Step[],
  foldable: Map<string, Extract<Step, { kind: 'conv' | 'gemm' }>>,
  consumers: Map<string, number>,
  graphOut: string,
): void {
  const out = node.outputs[0]!;
  let x: string;
  let negate = false;
  // scale/shift as (values, dims) of the constant before broadcasting
  let scale: { v: ArrayLike<number>; dims: number[] } | undefined;
  let shift: { v: ArrayLike<number>; dims: number[] } | undefined;
  if (node.opType === 'BatchNormalization') {
    x = node.inputs[0]!;
    const xs = known(x);
    if (xs.length < 2) fail(`input must be [N, C, …], is [${xs}]`);
    const p = [1, 2, 3, 4].map((i) => {
      const t = inits.get(node.inputs[i] ?? '');
      if (!t) fail(`parameter #${i} must be an initializer`);
      if (sizeOf(t!.dims) !== xs[1]) fail(`parameter #${i} has ${sizeOf(t!.dims)} values for ${xs[1]} channels`);
      return t!;
    });
    const ts = p;
    const aff = lowered(() => batchNormAffine(node, ...(ts as [Tensor, Tensor, Tensor, Tensor])), fail);
    const dims = [xs[1]!, ...xs.slice(2).map(() => 1)];
    scale = { v: aff.scale, dims };
    shift = { v: aff.shift, dims };
  } else {
    const [a, b] = node.inputs as [string, string];
    if (!inits.has(a) && !inits.has(b)) {
      if (node.opType !== 'Add') fail(`${node.opType} of two data values is not supported (only Add)`);
      const sa = known(a),
        sb = known(b);
      if (sa.join() !== sb.join()) fail(`residual Add needs equal shapes, got [${sa}] and [${sb}]`);
      steps.push({ kind: 'add', node, inputs: [a, b], output: out, size: sizeOf(sa) });
      return;
    }
    const constFirst = inits.has(a);
    x = constFirst ? b : a;
    const t = inits.get(constFirst ? a : b)!;
    if (t.dtype !== 'float32') fail(`constant '${constFirst ? a : b}' must be float32, is ${t.dtype}`);
    const v = t.data as Float32Array;
    const c = { v, dims: t.dims };
    if (node.opType === 'Add') shift = c;
    else if (node.opType === 'Mul') scale = c;
    else if (node.opType === 'Sub') {
      if (constFirst) (negate = true), (shift = c);
      else shift = { v: Float32Array.from(v, (e) => -e), dims: t.dims };
    } else {
      if (constFirst) fail('dividing a constant by data is not supported');
      scale = { v: Float32Array.from(v, (e) => 1 / e), dims: t.dims };
    }
  }
  const xs = known(x);
  if (known(out).join() !== xs.join()) fail(`the constant would broadcast [${xs}] to [${known(out)}]`);
  const prev = foldable.get(x);
  const perChannel = (!scale || isPerChannel(scale.dims, xs)) && (!shift || isPerChannel(shift.dims, xs));
  if (prev && perChannel && consumers.get(x) === 1 && x !== graphOut) {
    // y' = s·(W·x + b) + t = (s·W)·x + (s·b + t), per output channel.
    const co = prev.kind === 'conv' ? prev.geom.co : prev.n;
    const inner = sizeOf(xs.slice(2));
    const sv = scale && expandToSample(scale.v, scale.dims, xs)!;
    const tv = shift && expandToSample(shift.v, shift.dims, xs)!;
    const s = Float32Array.from({ length: co }, (_, o) => (negate ? -1 : 1) * (sv ? sv[o * inner]! : 1));
    const w = prev.weight;
    if (prev.kind === 'conv') {
      const per = w.length / co;
      for (let o = 0; o < co; o++) for (let j = 0; j < per; j++) w[o * per + j]! *= s[o]!;
    } else {
      for (let i = 0; i < prev.k; i++) for (let o = 0; o < co; o++) w[i * co + o]! *= s[o]!;
    }
    const b = prev.bias ?? new Float32Array(co);
    for (let o = 0; o < co; o++) b[o] = b[o]! * s[o]! + (tv ? tv[o * inner]! : 0);
    prev.bias = b;
    prev.output = out;
    foldable.delete(x);
    foldable.set(out, prev);
    return;
  }
  const sv = scale && expandToSample(scale.v, scale.dims, xs);
  const tv = shift && expandToSample(shift.v, shift.dims, xs);
  if ((scale && !sv) || (shift && !tv)) fail(`a constant varying along the batch axis is not supported`);
  steps.push({ kind: 'affine', node, input: x, output: out, batch: xs[0]!, negate, scale: sv ?? undefined, shift: tv ?? undefined });
}

/** Party 0's post-processing of the revealed output (rows of the last axis). */
export function applyPost(plan: MpcPlan, y: Float32Array): Float32Array {
  if (!plan.post) return y;
  const k = plan.outputShape[plan.outputShape.length - 1]!;
  const out = new Float32Array(y.length);
  for (let r = 0; r < y.length; r += k) {
    let mx = -Infinity;
    for (let j = 0; j < k; j++) mx = Math.max(mx, y[r + j]!);
    let sum = 0;
    for (let j = 0; j < k; j++) sum += Math.exp(y[r + j]! - mx);
    for (let j = 0; j < k; j++) out[r + j] = plan.post === 'Softmax' ? Math.exp(y[r + j]! - mx) / sum : y[r + j]! - mx - Math.log(sum);
  }
  return out;
}

/** Every weight array of the plan with the node it belongs to (for validation). */
export function planWeights(plan: MpcPlan): { node: Node; what: string; values: Float32Array }[] {
  const out: { node: Node; what: string; values: Float32Array }[] = [];
  for (const s of plan.steps) {
    if (s.kind === 'conv' || s.kind === 'gemm') {
      out.push({ node: s.node, what: 'weight', values: s.weight });
      if (s.bias) out.push({ node: s.node, what: 'bias', values: s.bias });
    } else if (s.kind === 'affine') {
      if (s.scale) out.push({ node: s.node, what: 'scale', values: s.scale });
      if (s.shift) out.push({ node: s.node, what: 'shift', values: s.shift });
    } else if (s.kind === 'prelu') out.push({ node: s.node, what: 'slope', values: s.slope });
  }
  return out;
}

/** Smallest accepted --frac-bits: below it the rounding of inputs and weights costs agreement (see test/mpc/plan-fixed.test.ts). */
export const MIN_FRAC_BITS = 10;
/** Largest accepted --frac-bits for any model: beyond it even a one-layer model's products wrap too often. */
const CAP_FRAC_BITS = 24;
/** Largest weight magnitude accepted: a larger one is a broken or hostile model, not a classifier. */
export const MAX_WEIGHT = 4096;

/**
 * Largest --frac-bits the fixed-point headroom allows for `plan`. Each truncated product holds
 * v·2^(2f) in the ring and the local truncation fails (an error of 2^(64−f) in value) with
 * probability |v|·2^(2f−64); summed over the T products of one inference, requiring
 * T·2^(2f−64)·2^6 ≤ 2^−4 (|v| up to 64 for a logit or activation) gives f ≤ (54 − log2 T)/2.
 */
export function maxFracBits(plan: MpcPlan): number {
  let products = 0;
  for (const s of plan.steps) {
    if (s.kind === 'conv') {
      const { oh, ow } = convOutSize(s.geom);
      products += s.geom.n * s.geom.co * oh * ow;
    } else if (s.kind === 'gemm') products += s.m * s.n;
    else if (s.kind === 'affine' && s.scale) products += s.batch * s.scale.length;
    else if (s.kind === 'prelu') products += s.batch * s.slope.length;
  }
  const perImage = Math.max(1, products / plan.batch);
  return Math.min(CAP_FRAC_BITS, Math.floor((54 - Math.log2(perImage)) / 2));
}

/** Refuse non-finite or huge weights (after BN folding), naming the node. */
export function checkPlanWeights(plan: MpcPlan): void {
  for (const { node, what, values } of planWeights(plan)) {
    let worst = 0;
    for (const v of values) {
      if (!Number.isFinite(v))
        throw new ModelError(
          `${plan.source}: node '${node.name}' (${node.opType}): ${what} holds a non-finite value (${v}); the fixed-point encoding cannot represent it`,
        );
      worst = Math.max(worst, Math.abs(v));
    }
    if (worst > MAX_WEIGHT)
      throw new ModelError(
        `${plan.source}: node '${node.name}' (${node.opType}): ${what} magnitude ${worst.toExponential(2)} exceeds ${MAX_WEIGHT}, beyond the fixed-point headroom`,
      );
  }
}
