/**
 * Seam repair after stitching. At level 'all' onnxruntime runs a CNN in a blocked channel layout
 * (domain com.microsoft.nchwc) and converts back to plain NCHW only at the graph's outputs. Each
 * subgraph is optimized alone, so every cut costs a ReorderOutput → ReorderInput pair (two full
 * copies) and a residual Add that meets a cut stays an NCHW op instead of becoming the Conv's Sum
 * input: a recovered resnet50 kept 62–74 % of the whole-graph gain. Inside a whole graph ORT writes
 * neither; this pass undoes both the way its NCHWc transformer would have, and nothing else.
 */
import type { Attribute, Dim, Graph, Node } from '../onnx/ir.js';

/** Domain of onnxruntime's blocked-layout ops. */
export const NCHWC = 'com.microsoft.nchwc';

/** A source of names (`base`, `base#1`, …) not used by any node, value or initializer of the graph. */
export function freshNamer(graph: Graph): (base: string) => string {
  const names = new Set([...graph.nodes.flatMap((n) => [n.name, ...n.outputs]), ...graph.initializers.keys(), ...graph.inputs.map((v) => v.name)]);
  return (base) => {
    let n = base;
    for (let k = 1; names.has(n); k++) n = `${base}#${k}`;
    names.add(n);
    return n;
  };
}

/** What `repairSeams` changed. */
export interface SeamReport {
  /** ReorderOutput → ReorderInput pairs replaced by the blocked tensor itself. */
  reorders: number;
  /** Residual Adds (and a following Relu) folded into the Sum input of the Conv that feeds them. */
  sums: number;
  /** Channel Concats of blocked values joined in the blocked layout. */
  concats: number;
}

const isOp = (n: Node | undefined, domain: string, op: string): n is Node => !!n && n.domain === domain && n.opType === op;
/** An int attribute of a node, if it has one. */
export const intAttr = (n: Node, key: string): number | undefined => {
  const a = n.attrs[key];
  return a?.kind === 'int' ? a.value : undefined;
};
/** A ReorderOutput back to NCHW (not channels-last): the only form the seams produce. */
const toNchw = (n: Node | undefined): n is Node => isOp(n, NCHWC, 'ReorderOutput') && (intAttr(n, 'channels_last') ?? 0) === 0;

/** Index of producers and consumers of every value of a graph. */
class Uses {
  readonly producer = new Map<string, Node>();
  readonly consumers = new Map<string, Node[]>();
  constructor(readonly graph: Graph) {
    for (const n of graph.nodes) {
      for (const o of n.outputs) if (o) this.producer.set(o, n);
      for (const i of n.inputs) if (i) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n]);
    }
  }
  /** The single consumer of a value that is not a graph output, else undefined. */
  only(value: string): Node | undefined {
    const c = this.consumers.get(value) ?? [];
    return c.length === 1 && !this.graph.outputs.some((v) => v.name === value) ? c[0] : undefined;
  }
}

const ints = (n: Node, key: string, dflt: number[]): number[] => {
  const a = n.attrs[key];
  return a?.kind === 'ints' ? a.value : dflt;
};
const SAME_SPATIAL = new Set(['Relu', 'Sigmoid', 'Clip', 'Identity', 'LeakyRelu', 'HardSigmoid', 'Tanh']);

/**
 * Batch and spatial dims [N, H, W] of a 4-D value, from the known shapes and the window ops between
 * (the blocked layout hides them from the graph); undefined when not sure. ORT's own transformer
 * folds an Add into a Conv only when both operands have one shape, and its Conv kernel refuses a Sum
 * of another (a broadcast Add of a pooled [N, C, 1, 1] operand has the same channel count).
 */
function spatialDims(u: Uses, known: (value: string) => readonly Dim[] | undefined): (value: string) => Dim[] | undefined {
  const memo = new Map<string, Dim[] | undefined>();
  const of = (value: string): Dim[] | undefined => {
    if (memo.has(value)) return memo.get(value);
    memo.set(value, undefined); // a cycle (never in a valid graph) reads as unknown
    const shape = known(value);
    let r: Dim[] | undefined = shape?.length === 4 ? [shape[0]!, shape[2]!, shape[3]!] : undefined;
    const n = u.producer.get(value);
    if (!r && n) r = through(n);
    memo.set(value, r);
    return r;
  };
  const through = (n: Node): Dim[] | undefined => {
    const x = n.inputs[0] ? of(n.inputs[0]) : undefined;
    if (!x) return undefined;
    if (n.domain === NCHWC && (n.opType === 'ReorderInput' || n.opType === 'ReorderOutput')) return x;
    if (n.domain === '' && SAME_SPATIAL.has(n.opType)) return x;
    if (n.opType === 'GlobalAveragePool' || n.opType === 'GlobalMaxPool') return [x[0]!, 1, 1];
    const windowed = n.domain === NCHWC && ['Conv', 'MaxPool', 'AveragePool'].includes(n.opType);
    const autoPad = n.attrs.auto_pad;
    if (!windowed || (autoPad && !(autoPad.kind === 'string' && autoPad.value === 'NOTSET'))) return undefined;
    const k = ints(n, 'kernel_shape', []);
    const st = ints(n, 'strides', [1, 1]);
    const d = ints(n, 'dilations', [1, 1]);
    const p = ints(n, 'pads', [0, 0, 0, 0]);
    const ceil = intAttr(n, 'ceil_mode') === 1;
    if (k.length !== 2 || typeof x[1] !== 'number' || typeof x[2] !== 'number') return undefined;
    const out = [x[1], x[2]].map((len, i) => {
      const span = len + p[i]! + p[i + 2]! - ((k[i]! - 1) * d[i]! + 1);
      return (ceil ? Math.ceil(span / st[i]!) : Math.floor(span / st[i]!)) + 1;
    });
    return [x[0]!, ...out];
  };
  return of;
}

const sameDims = (a: Dim[] | undefined, b: Dim[] | undefined): boolean => !!a && !!b && a.length === b.length && a.every((d, i) => d !== null && d === b[i]);

/** Fold one `Conv → ReorderOutput → Add(·, ReorderOutput(s)) [→ Relu]` into Conv(Sum = s); false if none. */
function foldOneSum(graph: Graph, fresh: (base: string) => string, known: (value: string) => readonly Dim[] | undefined): boolean {
  const u = new Uses(graph);
  const dims = spatialDims(u, known);
  for (const add of graph.nodes) {
    if (add.domain !== '' || add.opType !== 'Add' || add.inputs.length !== 2) continue;
    const [ra, rb] = add.inputs.map((i) => u.producer.get(i));
    if (!toNchw(ra) || !toNchw(rb) || intAttr(ra, 'channels') !== intAttr(rb, 'channels')) continue;
    if (!sameDims(dims(add.inputs[0]!), dims(add.inputs[1]!))) continue;
    for (const [ro, other] of [
      [ra, rb],
      [rb, ra],
    ] as const) {
      const conv = u.producer.get(ro.inputs[0]!);
      if (!isOp(conv, NCHWC, 'Conv') || conv.inputs.length > 3 || conv.attrs.activation) continue;
      if (u.only(conv.outputs[0]!) !== ro || u.only(ro.outputs[0]!) !== add) continue;
      const relu = u.only(add.outputs[0]!);
      const act = relu && relu.domain === '' && relu.opType === 'Relu' ? relu : undefined;
      const last = act ?? add;
      const blocked = fresh(`${last.outputs[0]}_nchwc`);
      const inputs = [...conv.inputs];
      while (inputs.length < 3) inputs.push('');
      inputs.push(other.inputs[0]!);
      const attrs: Record<string, Attribute> = { ...conv.attrs };
      if (act) attrs.activation = { kind: 'string', value: 'Relu' };
      const fused: Node = { ...conv, inputs, outputs: [blocked], attrs };
      const back: Node = { ...ro, name: fresh(`${ro.name}_seam`), inputs: [blocked], outputs: [last.outputs[0]!] };
      const drop = new Set<Node>([conv, ro, add, ...(act ? [act] : [])]);
      graph.nodes = graph.nodes.flatMap((n) => (n === conv ? [fused, back] : drop.has(n) ? [] : [n]));
      return true;
    }
  }
  return false;
}

/**
 * Channel counts a blocked Concat may join: multiples of the largest block MLAS uses (16 with
 * AVX-512, 8 with AVX2), so no padding lands inside the result whatever machine optimized the parts.
 */
const CONCAT_ALIGN = 16;

/** Join `Concat(ReorderOutput(a), ReorderOutput(b), …)` on channels in the blocked layout; the count. */
function foldConcats(graph: Graph, fresh: (base: string) => string): number {
  const u = new Uses(graph);
  let folded = 0;
  const replace = new Map<Node, Node[]>();
  for (const cat of graph.nodes) {
    if (cat.domain !== '' || cat.opType !== 'Concat' || cat.inputs.length < 2) continue;
    const axis = intAttr(cat, 'axis');
    if (axis !== 1 && axis !== -3) continue;
    const ros = cat.inputs.map((i) => u.producer.get(i));
    if (!ros.every((r): r is Node => toNchw(r) && (intAttr(r, 'channels') ?? 0) % CONCAT_ALIGN === 0)) continue;
    const blocked = fresh(`${cat.outputs[0]}_nchwc`);
    const channels = ros.reduce((c, r) => c + intAttr(r, 'channels')!, 0);
    replace.set(cat, [
      { ...cat, inputs: ros.map((r) => r.inputs[0]!), outputs: [blocked], attrs: { axis: { kind: 'int', value: 1 } } },
      {
        ...ros[0]!,
        name: fresh(`${cat.name}_seam`),
        inputs: [blocked],
        outputs: [cat.outputs[0]!],
        attrs: { ...ros[0]!.attrs, channels: { kind: 'int', value: channels } },
      },
    ]);
    folded++;
  }
  if (folded) graph.nodes = graph.nodes.flatMap((n) => replace.get(n) ?? [n]);
  return folded;
}

/** Replace every ReorderInput of a ReorderOutput's result by the blocked tensor itself; the count. */
function cancelPairs(graph: Graph): number {
  const u = new Uses(graph);
  const rename = new Map<string, string>();
  const drop = new Set<Node>();
  for (const ri of graph.nodes) {
    if (!isOp(ri, NCHWC, 'ReorderInput') || (intAttr(ri, 'channels_last') ?? 0) !== 0) continue;
    const ro = u.producer.get(ri.inputs[0]!);
    if (!toNchw(ro) || graph.outputs.some((v) => v.name === ri.outputs[0])) continue;
    rename.set(ri.outputs[0]!, ro.inputs[0]!);
    drop.add(ri);
  }
  if (!drop.size) return 0;
  graph.nodes = graph.nodes.filter((n) => !drop.has(n)).map((n) => ({ ...n, inputs: n.inputs.map((i) => rename.get(i) ?? i) }));
  dropUnreadReorders(graph);
  return drop.size;
}

/** Remove the ReorderOutputs whose result nobody reads any more (after a repair rewired their readers). */
export function dropUnreadReorders(graph: Graph): void {
  const read = new Set([...graph.nodes.flatMap((n) => n.inputs), ...graph.outputs.map((v) => v.name)]);
  graph.nodes = graph.nodes.filter((n) => !toNchw(n) || read.has(n.outputs[0]!));
}

/**
 * Undo the layout seams of a stitched graph in place (no-op without com.microsoft.nchwc nodes).
 * `known` gives the declared shape of a value where there is one (graph and boundary values); an Add
 * is folded only when both operands' shapes follow from them. The caller restores topological
 * order: a folded Conv reads its Sum operand from another node.
 */
export function repairSeams(graph: Graph, known: (value: string) => readonly Dim[] | undefined = () => undefined): SeamReport {
  if (!graph.nodes.some((n) => n.domain === NCHWC)) return { reorders: 0, sums: 0, concats: 0 };
  const fresh = freshNamer(graph);
  let sums = 0;
  while (foldOneSum(graph, fresh, known)) sums++;
  let concats = 0;
  for (let k = foldConcats(graph, fresh); k; k = foldConcats(graph, fresh)) concats += k; // a joined Concat may feed another
  return { reorders: cancelPairs(graph), sums, concats };
}
