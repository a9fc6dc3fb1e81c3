/**
 * Opset normalisation: rewrite every default-domain node into its form at `CANONICAL_OPSET`, so
 * runtimes implement one semantics per op (parameters as inputs, no legacy attributes).
 * A version change this pass does not know how to bridge is reported, never silently passed on.
 */

import type { Problem } from './canonical.js';
import { type Attribute, floatTensor, type Graph, int64Tensor, type Model, ModelError, type Node, type Tensor } from './ir.js';
import { inferShapes } from './shape.js';

const TARGET = 18;

/** Default-domain opset version a model imports (1 if it imports none, as ONNX says). */
export function opsetOf(model: Model): number {
  return model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 1;
}

/** Fresh-name allocator and node factory over one graph. */
export class Rewriter {
  private readonly used = new Set<string>();
  private k = 0;
  constructor(readonly g: Graph) {
    for (const v of [...g.inputs, ...g.outputs, ...g.valueInfo]) this.used.add(v.name);
    for (const n of g.initializers.keys()) this.used.add(n);
    for (const n of g.nodes) {
      for (const o of n.outputs) this.used.add(o);
      this.used.add(n.name);
    }
  }
  /** A name nothing in the graph uses yet. */
  fresh(base: string): string {
    let name = base;
    while (this.used.has(name)) name = `${base}__${++this.k}`;
    this.used.add(name);
    return name;
  }
  /** Add an initializer under a fresh name; returns the name. */
  init(base: string, t: Tensor): string {
    const name = this.fresh(base);
    this.g.initializers.set(name, t);
    return name;
  }
  /** A new node named after `like` with fresh output names (unless given). */
  node(like: Node, opType: string, inputs: string[], attrs: Record<string, Attribute> = {}, outputs?: string[]): Node {
    return {
      name: this.fresh(`${like.name || like.opType}/${opType}`),
      opType,
      domain: '',
      inputs,
      outputs: outputs ?? [this.fresh(`${like.outputs[0] || like.name}/${opType}`)],
      attrs,
    };
  }
}

const REDUCE_AXES_INPUT_SINCE: Record<string, number> = {
  ReduceSum: 13,
  ReduceMean: 18,
  ReduceMax: 18,
  ReduceMin: 18,
  ReduceProd: 18,
  ReduceL1: 18,
  ReduceL2: 18,
  ReduceLogSum: 18,
  ReduceLogSumExp: 18,
  ReduceSumSquare: 18,
};

const LEGACY_BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Greater', 'Less', 'PRelu']);
const SOFTMAX_FAMILY = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);
const VARIADIC: Record<string, string> = { Max: 'Max', Min: 'Min', Sum: 'Add', Mean: 'Add' };
/** Ops removed from the standard (experimental ops of opsets 1–9) that no runtime here knows. */
const REMOVED = new Set([
  'ImageScaler',
  'Crop',
  'ScaledTanh',
  'ThresholdedRelu_experimental',
  'Affine',
  'ParametricSoftplus',
  'GivenTensorFill',
  'ConstantFill',
  'MeanVarianceNormalization_1',
]);

const ONNX_DTYPE_BY_NAME: Record<string, number> = { FLOAT: 1, UINT8: 2, INT8: 3, INT16: 5, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 };

/** Rewrite all default-domain nodes of `m` to opset `TARGET` form; set the opset import. */
export function normalizeOpsets(m: Model, problems: Problem[]): void {
  const from = opsetOf(m);
  const g = m.graph;
  const rw = new Rewriter(g);
  let shapes: Map<string, { shape?: (number | string | null)[] }> | undefined;
  const rankOf = (v: string): number | undefined => {
    if (!shapes) {
      try {
        shapes = inferShapes(m);
      } catch (e) {
        if (!(e instanceof ModelError)) throw e;
        shapes = new Map();
      }
    }
    return shapes.get(v)?.shape?.length;
  };
  const out: Node[] = [];
  for (const n of g.nodes) {
    if (n.domain && n.domain !== 'ai.onnx') {
      out.push(n);
      continue;
    }
    const bad = (reason: string): void => void problems.push({ op: n.opType, node: n.name, reason });
    try {
      out.push(...rewrite(n, from, rw, bad, rankOf));
    } catch (e) {
      // A malformed attribute (wrong kind) surfaces here; report it with the node instead of throwing.
      bad((e as Error).message.replace(/^node '[^']*' \([^)]*\) /, ''));
      out.push(n);
    }
  }
  g.nodes = out;
  const imp = m.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (imp) imp.version = Math.max(imp.version, TARGET);
  else m.opsetImports.unshift({ domain: '', version: TARGET });
}

/** Move int-list attribute `name` to input slot `slot` (an int64 initializer); '' fills skipped slots. */
function attrToInput(n: Node, rw: Rewriter, name: string, slot: number, asFloat = false): void {
  const a = n.attrs[name];
  if (!a) return;
  delete n.attrs[name];
  let t: Tensor;
  if (a.kind === 'ints') t = int64Tensor([a.value.length], a.value);
  else if (a.kind === 'floats') t = floatTensor([a.value.length], a.value);
  else if (a.kind === 'int') t = asFloat ? floatTensor([], [a.value]) : int64Tensor([], [a.value]);
  else if (a.kind === 'float') t = floatTensor([], [a.value]);
  else throw new Error(`attribute '${name}' has unexpected kind ${a.kind}`);
  while (n.inputs.length < slot) n.inputs.push('');
  n.inputs[slot] = rw.init(`${n.name || n.opType}.${name}`, t);
}

function rewrite(n: Node, from: number, rw: Rewriter, bad: (r: string) => void, rankOf: (v: string) => number | undefined): Node[] {
  const op = n.opType;
  const a = n.attrs;
  for (const legacy of ['consumed_inputs']) delete a[legacy];
  if (REMOVED.has(op)) {
    bad(`op was removed from the ONNX standard (opset ${from}); re-export with a current exporter`);
    return [n];
  }
  if (from < 7 && LEGACY_BROADCAST.has(op) && a['broadcast']) {
    // Opset < 7 broadcast with an explicit axis aligns B at `axis`, not at the trailing dims.
    if (a['axis']) bad(`legacy broadcast with axis (opset ${from}) is not supported; re-export at opset >= 7`);
    delete a['broadcast'];
    delete a['axis'];
  }
  switch (op) {
    case 'Slice':
      if (from < 10) {
        const starts = a['starts'];
        attrToInput(n, rw, 'starts', 1);
        attrToInput(n, rw, 'ends', 2);
        if (a['axes']) attrToInput(n, rw, 'axes', 3);
        if (!starts) bad('Slice-1 without starts');
      }
      break;
    case 'Pad':
      if (from < 11) {
        const value = a['value'];
        const pads = a['pads'] ?? a['paddings'];
        if (a['paddings']) {
          a['pads'] = a['paddings'];
          delete a['paddings'];
        }
        if (!pads) bad("Pad without 'pads'");
        attrToInput(n, rw, 'pads', 1);
        delete a['value'];
        if (value && value.kind === 'float' && value.value !== 0) n.inputs[2] = rw.init(`${n.name || 'Pad'}.value`, floatTensor([], [value.value]));
      }
      break;
    case 'Clip':
      if (from < 11) {
        const lo = a['min'];
        const hi = a['max'];
        delete a['min'];
        delete a['max'];
        n.inputs = [n.inputs[0]!];
        if (lo) n.inputs[1] = rw.init(`${n.name || 'Clip'}.min`, floatTensor([], [Number(lo.value)]));
        if (hi) {
          if (!lo) n.inputs[1] = '';
          n.inputs[2] = rw.init(`${n.name || 'Clip'}.max`, floatTensor([], [Number(hi.value)]));
        }
      }
      break;
    case 'Reshape':
      if (from < 5) attrToInput(n, rw, 'shape', 1);
      break;
    case 'Squeeze':
    case 'Unsqueeze':
      if (from < 13) attrToInput(n, rw, 'axes', 1);
      break;
    case 'Split':
      if (from < 13) attrToInput(n, rw, 'split', 1);
      if (!n.inputs[1] && !a['num_outputs']) a['num_outputs'] = { kind: 'int', value: n.outputs.length };
      break;
    case 'TopK':
      if (from < 10) attrToInput(n, rw, 'k', 1);
      break;
    case 'Cast':
      if (a['to']?.kind === 'string') {
        const code = ONNX_DTYPE_BY_NAME[a['to'].value.toUpperCase()];
        if (code === undefined) bad(`Cast to '${a['to'].value}' is not supported`);
        else a['to'] = { kind: 'int', value: code };
      }
      break;
    case 'Concat':
      if (!a['axis']) a['axis'] = { kind: 'int', value: 1 }; // opset < 4 default
      break;
    case 'BatchNormalization':
      if (a['spatial'] && a['spatial'].kind === 'int' && a['spatial'].value === 0) bad('BatchNormalization with spatial=0 (opset < 9) is not supported');
      delete a['spatial'];
      delete a['is_test'];
      // Opset 14+ training_mode=1 has outputs Y, running_mean, running_var (the float runtime computes
      // them); older extra outputs (saved mean / inverse std) have other semantics: refused.
      if (from >= 14 && a['training_mode']?.kind === 'int' && a['training_mode'].value === 1) n.outputs = n.outputs.slice(0, 3);
      else {
        if (n.outputs.slice(1).some((o) => o)) bad('training-mode outputs of BatchNormalization (before opset 14) are not supported');
        n.outputs = [n.outputs[0]!];
      }
      break;
    case 'Dropout':
      if (from < 12) {
        if (from < 10 && n.outputs[1]) bad('the mask output of Dropout before opset 10 has the data type; not supported');
        delete a['is_test'];
        delete a['ratio']; // inference ignores the ratio
      }
      break;
    case 'Gemm':
      delete a['broadcast'];
      break;
    case 'Scatter':
      n.opType = 'ScatterElements';
      break;
    case 'Upsample': {
      const mode = a['mode']?.kind === 'string' ? a['mode'].value : 'nearest';
      if (mode !== 'nearest' && mode !== 'linear' && mode !== 'bilinear') bad(`Upsample mode '${mode}' is not supported`);
      let scales = n.inputs[1];
      if (a['scales']) {
        attrToInput(n, rw, 'scales', 1, true);
        scales = n.inputs[1];
      } else if (a['height_scale'] || a['width_scale']) {
        const hs = Number(a['height_scale']?.value ?? 1);
        const ws = Number(a['width_scale']?.value ?? 1);
        scales = rw.init(`${n.name || 'Upsample'}.scales`, floatTensor([4], [1, 1, hs, ws]));
      }
      return [resizeFrom(n, scales ?? '', mode === 'nearest' ? 'nearest' : 'linear')];
    }
    case 'Resize':
      if (from < 11) {
        const mode = a['mode']?.kind === 'string' ? a['mode'].value : 'nearest';
        return [resizeFrom(n, n.inputs[1] ?? '', mode)];
      }
      break;
    case 'Shape':
      if (a['start'] || a['end']) {
        // One semantics for Shape: slice the full shape with an explicit Slice (folded when static).
        const start = a['start']?.kind === 'int' ? a['start'].value : 0;
        const end = a['end']?.kind === 'int' ? a['end'].value : Number.MAX_SAFE_INTEGER;
        delete a['start'];
        delete a['end'];
        const full = rw.fresh(`${n.outputs[0]}/full`);
        const shape: Node = { ...n, outputs: [full] };
        const sl = rw.node(n, 'Slice', [full, rw.init(`${n.name}.start`, int64Tensor([1], [start])), rw.init(`${n.name}.end`, int64Tensor([1], [end]))], {}, [
          n.outputs[0]!,
        ]);
        return [shape, sl];
      }
      break;
    default:
      break;
  }
  const since = REDUCE_AXES_INPUT_SINCE[op];
  if (since !== undefined && from < since) attrToInput(n, rw, 'axes', 1);
  if (op in VARIADIC && n.inputs.length !== 2) return variadic(n, rw, bad);
  if (SOFTMAX_FAMILY.has(op) && from < 13) return softmaxV13(n, rw, rankOf);
  return [n];
}

/** Upsample / Resize-10 (asymmetric coordinates, floor for nearest) as a Resize-18 node. */
function resizeFrom(n: Node, scales: string, mode: string): Node {
  const attrs: Record<string, Attribute> = {
    mode: { kind: 'string', value: mode === 'bilinear' ? 'linear' : mode },
    coordinate_transformation_mode: { kind: 'string', value: 'asymmetric' },
  };
  if (mode === 'nearest') attrs['nearest_mode'] = { kind: 'string', value: 'floor' };
  return { ...n, opType: 'Resize', inputs: [n.inputs[0]!, '', scales], attrs };
}

/** Max/Min/Sum/Mean of 1 or ≥3 inputs as a chain of binary nodes (Mean divides by the count). */
function variadic(n: Node, rw: Rewriter, bad: (r: string) => void): Node[] {
  const ins = n.inputs.filter((i) => i);
  if (ins.length === 0) {
    bad('needs at least one input');
    return [n];
  }
  const bin = VARIADIC[n.opType]!;
  const out = n.outputs[0]!;
  if (ins.length === 1) return [{ ...n, opType: 'Identity', inputs: ins, attrs: {} }];
  const nodes: Node[] = [];
  let acc = ins[0]!;
  for (let i = 1; i < ins.length; i++) {
    const last = i === ins.length - 1 && n.opType !== 'Mean';
    const node = rw.node(n, bin, [acc, ins[i]!], {}, last ? [out] : undefined);
    nodes.push(node);
    acc = node.outputs[0]!;
  }
  if (n.opType === 'Mean') nodes.push(rw.node(n, 'Div', [acc, rw.init(`${n.name}.count`, floatTensor([], [ins.length]))], {}, [out]));
  return nodes;
}

/** Softmax-family before opset 13 works on the input flattened to 2-D at `axis` (default 1). */
function softmaxV13(n: Node, rw: Rewriter, rankOf: (v: string) => number | undefined): Node[] {
  const axis = n.attrs['axis']?.kind === 'int' ? n.attrs['axis'].value : 1;
  const rank = rankOf(n.inputs[0]!);
  if (rank !== undefined && (axis === rank - 1 || axis === -1)) {
    n.attrs['axis'] = { kind: 'int', value: -1 };
    return [n];
  }
  const x = n.inputs[0]!;
  const flat = rw.node(n, 'Flatten', [x], { axis: { kind: 'int', value: axis } });
  const sm: Node = { ...n, inputs: [flat.outputs[0]!], outputs: [rw.fresh(`${n.outputs[0]}/2d`)], attrs: { axis: { kind: 'int', value: -1 } } };
  const shape = rw.node(n, 'Shape', [x]);
  const back = rw.node(n, 'Reshape', [sm.outputs[0]!, shape.outputs[0]!], {}, [n.outputs[0]!]);
  return [flat, sm, shape, back];
}
