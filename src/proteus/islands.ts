/**
 * Blocked-layout islands, the seams `repairSeams` cannot undo alone. A part whose first ops read a
 * boundary value through a per-channel op (DenseNet's Concat → BatchNorm → ReLU → Conv) keeps that
 * op in plain NCHW: onnxruntime's NCHWc transformer converts a BatchNorm only when its input is
 * already blocked. After stitching this leaves `ReorderOutput → BatchNorm → Relu → ReorderInput`,
 * two full copies per layer (a recovered DenseNet-121 kept 82 % of the whole-graph gain). The
 * blocked form of such an island depends on the CPU's block size, so it is not written by hand:
 * onnxruntime compiles the island alone between two identity convolutions, on this machine, and the
 * blocked nodes it writes replace the NCHW ones. Nothing leaves the owner's machine.
 */
import type { Model, Node, Tensor } from '../onnx/ir.js';
import { optimizeModel } from './optimize.js';
import { dropUnreadReorders, freshNamer, intAttr, NCHWC } from './seams.js';

/** Per-channel ops an island may hold (one data input, same shape out). */
const ISLAND_OPS = new Set(['BatchNormalization', 'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSigmoid']);

/** An NCHW run `ReorderOutput → ops → ReorderInput` in a stitched graph. */
interface Island {
  reorderOut: Node;
  ops: Node[];
  reorderIn: Node;
}

/** Every island of the graph (no graph output inside; each op's result read by the next op only). */
function findIslands(model: Model): Island[] {
  const g = model.graph;
  const producer = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const readers = new Map<string, number>();
  for (const n of g.nodes) for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  const outputs = new Set(g.outputs.map((v) => v.name));
  const out: Island[] = [];
  for (const ri of g.nodes) {
    if (ri.domain !== NCHWC || ri.opType !== 'ReorderInput' || (intAttr(ri, 'channels_last') ?? 0) !== 0) continue;
    const ops: Node[] = [];
    let v = ri.inputs[0]!;
    let p = producer.get(v);
    while (p && p.domain === '' && ISLAND_OPS.has(p.opType) && readers.get(v) === 1 && !outputs.has(v)) {
      ops.unshift(p);
      v = p.inputs[0]!;
      p = producer.get(v);
    }
    const ro = p;
    if (!ops.length || !ro || ro.domain !== NCHWC || ro.opType !== 'ReorderOutput' || (intAttr(ro, 'channels_last') ?? 0) !== 0) continue;
    // Every other input of an island op is a weight (a BatchNorm's four vectors).
    if (!ops.every((n) => n.inputs.slice(1).every((i) => !i || g.initializers.has(i)))) continue;
    out.push({ reorderOut: ro, ops, reorderIn: ri });
  }
  return out;
}

/** An identity 1×1 convolution's weights for `c` channels. */
function identity(c: number): Tensor {
  const data = new Float32Array(c * c);
  for (let i = 0; i < c; i++) data[i * c + i] = 1;
  return { dtype: 'float32', dims: [c, c, 1, 1], data };
}

/**
 * The island as onnxruntime blocks it: x → Conv(identity) → island → Conv(identity), the first conv's
 * result also a graph output (so no fusion folds the island into it). Returns the nodes strictly
 * between the two convolutions and their weights, or undefined when the result is not that shape.
 */
async function compile(model: Model, island: Island, channels: number): Promise<{ nodes: Node[]; inits: Map<string, Tensor> } | undefined> {
  const g = model.graph;
  const inits = new Map<string, Tensor>([['w_id', identity(channels)]]);
  const nodes: Node[] = [{ name: 'conv_a', opType: 'Conv', domain: '', inputs: ['x', 'w_id'], outputs: ['a'], attrs: {} }];
  let prev = 'a';
  island.ops.forEach((n, k) => {
    const ins = n.inputs.map((i, j) => {
      if (j === 0) return prev;
      if (i) inits.set(`w${k}_${j}`, g.initializers.get(i)!);
      return i ? `w${k}_${j}` : '';
    });
    nodes.push({ ...n, name: `op${k}`, inputs: ins, outputs: [`v${k}`] });
    prev = `v${k}`;
  });
  nodes.push({ name: 'conv_b', opType: 'Conv', domain: '', inputs: [prev, 'w_id'], outputs: ['y'], attrs: {} });
  const micro: Model = {
    ...model,
    graph: {
      name: 'island',
      nodes,
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, channels, 4, 4] }],
      outputs: [
        { name: 'a', dtype: 'float32', shape: [1, channels, 4, 4] },
        { name: 'y', dtype: 'float32', shape: [1, channels, 4, 4] },
      ],
      initializers: inits,
      valueInfo: [],
    },
  };
  const opt = await optimizeModel(micro, { level: 'all' });
  const og = opt.graph;
  const producer = new Map(og.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  // The first conv, blocked: it reads the reordered input and its result is reordered back to 'a'.
  const convA = producer.get(producer.get('a')?.inputs[0] ?? '');
  const convB = producer.get(producer.get('y')?.inputs[0] ?? '');
  if (!convA || !convB || convA === convB || convA.domain !== NCHWC || convB.domain !== NCHWC || convB.opType !== 'Conv') return undefined;
  const between: Node[] = [];
  let v = convB.inputs[0]!;
  for (let p = producer.get(v); p && p !== convA; p = producer.get(v)) {
    if (p.domain !== NCHWC && !(p.domain === '' && ISLAND_OPS.has(p.opType) && p.opType !== 'BatchNormalization')) return undefined;
    if (p.domain === NCHWC && p.opType.startsWith('Reorder')) return undefined;
    between.unshift(p);
    v = p.inputs[0]!;
  }
  if (!between.length || v !== convA.outputs[0]) return undefined;
  const weights = new Map<string, Tensor>();
  for (const n of between) for (const i of n.inputs.slice(1)) if (i && og.initializers.has(i)) weights.set(i, og.initializers.get(i)!);
  if (between.some((n) => n.inputs.slice(1).some((i) => i && !weights.has(i)))) return undefined;
  return { nodes: between, inits: weights };
}

/**
 * Replace every island of a stitched level-'all' graph by its blocked form (in place; a no-op
 * without blocked nodes). Returns the number replaced; an island onnxruntime does not block the
 * expected way is left as it is.
 */
export async function compileIslands(model: Model): Promise<number> {
  const g = model.graph;
  if (!g.nodes.some((n) => n.domain === NCHWC)) return 0;
  const fresh = freshNamer(g);
  let done = 0;
  for (const island of findIslands(model)) {
    const channels = intAttr(island.reorderOut, 'channels');
    if (!channels) continue;
    const blocked = await compile(model, island, channels);
    if (!blocked) continue;
    const rename = new Map<string, string>([[blocked.nodes[0]!.inputs[0]!, island.reorderOut.inputs[0]!]]);
    for (const [name, t] of blocked.inits) {
      const n = fresh(`${island.ops[0]!.name}/${name}`);
      g.initializers.set(n, t);
      rename.set(name, n);
    }
    const last = blocked.nodes[blocked.nodes.length - 1]!;
    blocked.nodes.forEach((n) => {
      for (const o of n.outputs) if (!rename.has(o)) rename.set(o, n === last ? island.reorderIn.outputs[0]! : fresh(`${island.ops[0]!.name}/${o}`));
    });
    const spliced = blocked.nodes.map((n) => ({
      ...n,
      name: fresh(`${island.ops[0]!.name}/blocked`),
      inputs: n.inputs.map((i) => rename.get(i) ?? i),
      outputs: n.outputs.map((o) => rename.get(o)!),
    }));
    const drop = new Set<Node>([...island.ops, island.reorderIn]);
    const at = g.nodes.indexOf(island.reorderIn);
    g.nodes = g.nodes.flatMap((n, k) => (k === at ? spliced : drop.has(n) ? [] : [n]));
    done++;
  }
  if (done) dropUnreadReorders(g);
  return done;
}
