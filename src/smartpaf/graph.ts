/**
 * Graph passes between ordinary models and PAF models:
 * - `replaceActivations`: Relu / MaxPool nodes → trainable PafRelu / PafMaxPool (coefficients as
 *   float initializers, hence trainable variables in the float runtime);
 * - `withStaticScales`: dynamic-scale PAF nodes → static scale (deployment);
 * - `expandPafs`: PAF nodes → plain ONNX (Mul/Add/Sub, Slice/Concat for windows) with the static
 *   scales baked in, plus metadata describing every PAF layer, so onnxruntime and the FHE runtime
 *   consume it without knowing the custom domain.
 */
import {
  type Attribute,
  attrFloat,
  attrInt,
  attrString,
  cloneModel,
  floatTensor,
  int64Tensor,
  type Model,
  ModelError,
  type Node,
  tensorToNumbers,
  type ValueInfo,
} from '../onnx/ir.js';
import { inferShapes } from '../onnx/shape.js';
import { registerSmartpafOps, SMARTPAF_DOMAIN } from './ops.js';
import type { Paf } from './paf.js';
import { type PlanArith, planOdd, runPlan } from './poly.js';
import { maxTree, poolGeometry, windowOffsets } from './pool.js';

/** Metadata keys written by `expandPafs`. */
export const META_PAF = 'privml.paf';
/** JSON object: node name → static scale. */
export const META_PAF_SCALES = 'privml.paf.scales';
/** JSON array of `PafLayerInfo` (coefficients included). */
export const META_PAF_LAYERS = 'privml.paf.layers';

/** Scale handling of the PAF ops. */
export type ScaleMode = 'dynamic' | 'static';

/** Options of `replaceActivations`. */
export interface ReplaceOptions {
  /** Also replace MaxPool nodes (default true). */
  maxPool?: boolean;
  /** Replace only these nodes (Progressive Approximation replaces one at a time). */
  nodes?: readonly string[];
  /** Default 'dynamic'. */
  scaleMode?: ScaleMode;
  /** Static scale per node (required for every replaced node in static mode). */
  scales?: Readonly<Record<string, number>>;
  /** Per-node stage coefficients (e.g. from Coefficient Tuning); default: the PAF's. */
  coefficients?: Readonly<Record<string, readonly (readonly number[])[]>>;
  /** Model file, for error messages. */
  source?: string;
}

/** One PAF layer of a model. */
export interface PafLayerInfo {
  node: string;
  kind: 'relu' | 'maxpool';
  paf: string;
  scaleMode: ScaleMode;
  /** Static scale (undefined in dynamic mode). */
  scale?: number;
  input: string;
  output: string;
  /** Names of the coefficient initializers, one per stage. */
  coefficientNames: string[];
  /** Current coefficient values per stage. */
  stages: number[][];
  /** MaxPool window attributes (kernel_shape, strides, pads, …), for PafMaxPool. */
  window?: Record<string, number[] | number | string>;
}

const isPafNode = (n: Node): boolean => n.domain === SMARTPAF_DOMAIN && (n.opType === 'PafRelu' || n.opType === 'PafMaxPool');
const WINDOW_ATTRS = ['kernel_shape', 'strides', 'pads', 'auto_pad', 'ceil_mode', 'dilations', 'storage_order'];

/** A name not yet used by any value/initializer in the graph. */
function namer(model: Model): (base: string) => string {
  const used = new Set<string>([...model.graph.initializers.keys(), ...model.graph.inputs.map((v) => v.name)]);
  for (const n of model.graph.nodes) for (const v of [...n.inputs, ...n.outputs]) if (v) used.add(v);
  return (base) => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };
}

function ensureOpset(model: Model, domain: string, version: number): void {
  if (!model.opsetImports.some((o) => o.domain === domain)) model.opsetImports.push({ domain, version });
}

/**
 * Rewrite Relu (and MaxPool) nodes into PafRelu / PafMaxPool using `paf`'s stages. Node and value
 * names are kept; coefficients become initializers `<node>.paf.s<i>`. Registers the ops.
 */
export function replaceActivations(model: Model, paf: Paf, opts: ReplaceOptions = {}): Model {
  registerSmartpafOps();
  const source = opts.source ?? model.graph.name ?? 'model';
  const mode = opts.scaleMode ?? 'dynamic';
  const wantPool = opts.maxPool ?? true;
  const m = cloneModel(model);
  const fresh = namer(m);
  const only = opts.nodes ? new Set(opts.nodes) : undefined;
  const replaced: string[] = [];
  m.graph.nodes = m.graph.nodes.map((n) => {
    const std = n.domain === '' || n.domain === 'ai.onnx';
    const kind = std && n.opType === 'Relu' ? 'relu' : std && n.opType === 'MaxPool' && (wantPool || only?.has(n.name)) ? 'maxpool' : undefined;
    if (!kind || (only && !only.has(n.name))) return n;
    if (kind === 'maxpool' && n.outputs.length > 1 && n.outputs[1])
      throw new ModelError(`${source}: node '${n.name}' (MaxPool): the Indices output cannot be replaced by a PAF`);
    const stages = opts.coefficients?.[n.name] ?? paf.stages;
    if (stages.length !== paf.stages.length)
      throw new ModelError(`${source}: node '${n.name}': coefficients have ${stages.length} stages, PAF '${paf.name}' has ${paf.stages.length}`);
    const coefNames = stages.map((s, i) => {
      const name = fresh(`${n.name}.paf.s${i + 1}`);
      m.graph.initializers.set(name, floatTensor([s.length], s));
      return name;
    });
    const attrs: Record<string, Attribute> = {
      paf: { kind: 'string', value: paf.name },
      stages: { kind: 'int', value: stages.length },
      scale_mode: { kind: 'string', value: mode },
    };
    if (mode === 'static') {
      const s = opts.scales?.[n.name];
      if (s === undefined || !(s > 0)) throw new ModelError(`${source}: node '${n.name}': static scale mode needs a positive scale for this node (got ${s})`);
      attrs['scale'] = { kind: 'float', value: s };
    }
    if (kind === 'maxpool') for (const a of WINDOW_ATTRS) if (n.attrs[a]) attrs[a] = n.attrs[a]!;
    replaced.push(n.name);
    return {
      name: n.name,
      opType: kind === 'relu' ? 'PafRelu' : 'PafMaxPool',
      domain: SMARTPAF_DOMAIN,
      inputs: [n.inputs[0]!, ...coefNames],
      outputs: [n.outputs[0]!],
      attrs,
      docString: n.docString,
    };
  });
  if (only) {
    const missing = [...only].filter((name) => !replaced.includes(name));
    if (missing.length) throw new ModelError(`${source}: no Relu${wantPool ? '/MaxPool' : ''} node named ${missing.map((s) => `'${s}'`).join(', ')}`);
  }
  if (replaced.length === 0) throw new ModelError(`${source}: no Relu${wantPool ? ' or MaxPool' : ''} node to replace with a PAF`);
  ensureOpset(m, SMARTPAF_DOMAIN, 1);
  return m;
}

/** The PAF layers of a model, in graph order. */
export function pafLayers(model: Model): PafLayerInfo[] {
  const out: PafLayerInfo[] = [];
  for (const n of model.graph.nodes) {
    if (!isPafNode(n)) continue;
    const k = attrInt(n, 'stages');
    const coefficientNames = n.inputs.slice(1, 1 + k);
    const stages = coefficientNames.map((c) => {
      const t = model.graph.initializers.get(c);
      return t ? tensorToNumbers(t) : [];
    });
    const mode = attrString(n, 'scale_mode', 'dynamic') as ScaleMode;
    let scale: number | undefined;
    if (mode === 'static') {
      const si = n.inputs[1 + k];
      const t = si ? model.graph.initializers.get(si) : undefined;
      scale = t ? Number(t.data[0]) : n.attrs['scale'] ? attrFloat(n, 'scale') : undefined;
    }
    const info: PafLayerInfo = {
      node: n.name,
      kind: n.opType === 'PafRelu' ? 'relu' : 'maxpool',
      paf: attrString(n, 'paf', ''),
      scaleMode: mode,
      scale,
      input: n.inputs[0]!,
      output: n.outputs[0]!,
      coefficientNames,
      stages,
    };
    if (n.opType === 'PafMaxPool') {
      info.window = {};
      for (const a of WINDOW_ATTRS) {
        const v = n.attrs[a];
        if (v && (v.kind === 'ints' || v.kind === 'int' || v.kind === 'string')) info.window[a] = v.value;
      }
    }
    out.push(info);
  }
  return out;
}

/** True when initializer `name` holds PAF coefficients (for choosing trainable groups). */
export function isPafCoefficient(name: string, model: Model): boolean {
  return model.graph.nodes.some((n) => isPafNode(n) && n.inputs.slice(1, 1 + attrInt(n, 'stages')).includes(name));
}

/** Switch PAF nodes to static scale with the given per-node scales (e.g. `recorder.scales()`). */
export function withStaticScales(model: Model, scales: Readonly<Record<string, number>>, source = model.graph.name): Model {
  const m = cloneModel(model);
  for (const n of m.graph.nodes) {
    if (!isPafNode(n)) continue;
    const s = scales[n.name];
    if (s === undefined || !(s > 0) || !Number.isFinite(s))
      throw new ModelError(`${source}: node '${n.name}' (${n.opType}): no positive static scale given (got ${s})`);
    const k = attrInt(n, 'stages');
    n.inputs = n.inputs.slice(0, 1 + k); // a scale input would override the attribute
    n.attrs = { ...n.attrs, scale_mode: { kind: 'string', value: 'static' }, scale: { kind: 'float', value: s } };
  }
  return m;
}

/** Options of `expandPafs`. */
export interface ExpandOptions {
  /** Scales overriding the nodes' own (required for dynamic-scale nodes). */
  scales?: Readonly<Record<string, number>>;
  source?: string;
}

/**
 * Replace every PafRelu / PafMaxPool by plain ONNX ops evaluating the same plan (static scale baked
 * in as a constant 1/s), and record `privml.paf`, `privml.paf.scales` and `privml.paf.layers`
 * metadata. MaxPool windows are Slice views of an edge-padded input (Slice + Concat), combined
 * by a level-wise PAF max tree, exactly as the PafMaxPool kernel does.
 */
export function expandPafs(model: Model, opts: ExpandOptions = {}): Model {
  const source = opts.source ?? model.graph.name ?? 'model';
  const layers = pafLayers(model);
  if (layers.length === 0) throw new ModelError(`${source}: no PAF layers to expand`);
  const scales: Record<string, number> = {};
  for (const l of layers) {
    const s = opts.scales?.[l.node] ?? l.scale;
    if (s === undefined || !(s > 0) || !Number.isFinite(s)) {
      throw new ModelError(`${source}: node '${l.node}' has ${l.scaleMode} scale and no static scale was given; record one (PafScaleRecorder) and pass it`);
    }
    if (l.stages.some((st) => st.length === 0)) throw new ModelError(`${source}: node '${l.node}': coefficients must be initializers to expand`);
    scales[l.node] = s;
  }
  const byNode = new Map(layers.map((l) => [l.node, l]));
  const shapes = layers.some((l) => l.kind === 'maxpool') ? shapeTwin(model, source) : undefined;
  const m = cloneModel(model);
  const fresh = namer(m);
  const nodes: Node[] = [];
  const consumedCoefs = new Set<string>();
  const constant = (base: string, v: number): string => {
    const name = fresh(base);
    m.graph.initializers.set(name, floatTensor([], [v]));
    return name;
  };
  const ints = (base: string, v: number[]): string => {
    const name = fresh(base);
    m.graph.initializers.set(name, int64Tensor([v.length], v));
    return name;
  };
  for (const n of model.graph.nodes) {
    const l = isPafNode(n) ? byNode.get(n.name) : undefined;
    if (!l) {
      nodes.push(n);
      continue;
    }
    l.coefficientNames.forEach((c) => consumedCoefs.add(c));
    const p = `${n.name}/paf`;
    let k = 0;
    const emit = (opType: string, inputs: string[], out?: string, attrs: Record<string, Attribute> = {}): string => {
      const o = out ?? fresh(`${p}/${opType.toLowerCase()}`);
      nodes.push({ name: fresh(`${p}/${opType}_${k++}`), opType, domain: '', inputs, outputs: [o], attrs });
      return o;
    };
    // Coefficients as scalar constants, one per (stage, term); shared by every sign in the layer.
    const coefNames = l.stages.map((st, i) => st.map((c, j) => constant(`${p}.s${i + 1}c${j}`, c)));
    const invS = constant(`${p}.inv_scale`, 1 / scales[l.node]!);
    const half = constant(`${p}.half`, 0.5);
    const arith: PlanArith<string, string> = {
      mul: (a, b) => emit('Mul', [a, b]),
      mulConst: (a, c) => emit('Mul', [a, c]),
      add: (a, b) => emit('Add', [a, b]),
    };
    const sign = (v: string): string => {
      let u = emit('Mul', [v, invS]);
      l.stages.forEach((st, i) => (u = runPlan(planOdd(st.length), u, (j) => coefNames[i]![j]!, arith)));
      return u;
    };
    if (l.kind === 'relu') {
      const x = l.input;
      emit('Mul', [emit('Add', [x, emit('Mul', [x, sign(x)])]), half], l.output);
      continue;
    }
    const shape = shapes!.get(l.input)?.shape;
    if (!shape || typeof shape[2] !== 'number' || typeof shape[3] !== 'number') {
      throw new ModelError(`${source}: node '${l.node}' (PafMaxPool): spatial size of input '${l.input}' must be known to expand the window`);
    }
    const g = poolGeometry(n, [shape[2], shape[3]], source);
    let xp = l.input;
    for (const [axis, before, after, size] of [
      [2, g.pads[0], g.pads[1], g.inHW[0]],
      [3, g.pads[2], g.pads[3], g.inHW[1]],
    ] as const) {
      if (before === 0 && after === 0) continue;
      const ax = ints(`${p}.axis${axis}`, [axis]);
      const first = emit('Slice', [xp, ints(`${p}.start`, [0]), ints(`${p}.end`, [1]), ax]);
      const last = emit('Slice', [xp, ints(`${p}.start`, [size - 1]), ints(`${p}.end`, [size]), ax]);
      const parts = [...new Array<string>(before).fill(first), xp, ...new Array<string>(after).fill(last)];
      xp = emit('Concat', parts, undefined, { axis: { kind: 'int', value: axis } });
    }
    const [oh, ow] = g.outHW;
    const [sh, sw] = g.strides;
    const axes = ints(`${p}.axes`, [2, 3]);
    const steps = ints(`${p}.steps`, [sh, sw]);
    const views = windowOffsets(g).map(([i, j]) =>
      emit('Slice', [xp, ints(`${p}.start`, [i, j]), ints(`${p}.end`, [i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1]), axes, steps]),
    );
    const total = views.length;
    let done = 0;
    maxTree(views, (pairs) =>
      pairs.map(([a, b]) => {
        const d = emit('Sub', [a, b]);
        const out = ++done === total - 1 ? l.output : undefined;
        return emit('Mul', [emit('Add', [emit('Add', [a, b]), emit('Mul', [d, sign(d)])]), half], out);
      }),
    );
    if (total === 1) emit('Identity', [views[0]!], l.output);
  }
  m.graph.nodes = nodes;
  // Drop coefficient initializers nothing reads any more (they live on as scalar constants).
  const stillUsed = new Set(nodes.flatMap((n) => n.inputs));
  for (const c of consumedCoefs) if (!stillUsed.has(c) && !m.graph.outputs.some((o) => o.name === c)) m.graph.initializers.delete(c);
  m.graph.inputs = m.graph.inputs.filter((v) => !consumedCoefs.has(v.name) || stillUsed.has(v.name));
  if (!nodes.some((n) => n.domain === SMARTPAF_DOMAIN)) m.opsetImports = m.opsetImports.filter((o) => o.domain !== SMARTPAF_DOMAIN);
  const onnxOpset = m.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0;
  if (shapes && onnxOpset < 10) throw new ModelError(`${source}: expanding PafMaxPool needs ONNX opset ≥ 10 (Slice with steps), model has ${onnxOpset}`);
  const names = [...new Set(layers.map((l) => l.paf))];
  m.metadata = {
    ...m.metadata,
    [META_PAF]: names.join(','),
    [META_PAF_SCALES]: JSON.stringify(scales),
    [META_PAF_LAYERS]: JSON.stringify(
      layers.map((l) => ({
        node: l.node,
        kind: l.kind,
        paf: l.paf,
        scale: scales[l.node],
        input: l.input,
        output: l.output,
        stages: l.stages,
        window: l.window,
      })),
    ),
  };
  return m;
}

/** Shapes of a PAF model, inferred on a twin where PAF ops are their exact counterparts. */
function shapeTwin(model: Model, source: string): Map<string, ValueInfo> {
  const twin = cloneModel(model);
  twin.graph.nodes = twin.graph.nodes.map((n) => {
    if (!isPafNode(n)) return n;
    const attrs: Record<string, Attribute> = {};
    if (n.opType === 'PafMaxPool') for (const a of WINDOW_ATTRS) if (n.attrs[a]) attrs[a] = n.attrs[a]!;
    return { ...n, domain: '', opType: n.opType === 'PafRelu' ? 'Relu' : 'MaxPool', inputs: [n.inputs[0]!], attrs };
  });
  try {
    return inferShapes(twin);
  } catch (e) {
    throw new ModelError(`${source}: shape inference failed while expanding PAFs: ${(e as Error).message}`);
  }
}
