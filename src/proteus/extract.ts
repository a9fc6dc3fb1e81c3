/**
 * Subgraph extraction: each part of a partition becomes a standalone ONNX model (its nodes, the
 * initializers it reads, boundary values as typed graph inputs/outputs), and a JSON wiring records
 * which original value each subgraph input/output carries, by position, so reassembly works even
 * after every name in the subgraphs has been changed.
 */
import { DEFAULT_IR_VERSION } from '../onnx/builder.js';
import type { Model, Node, OpsetImport, Tensor, ValueInfo } from '../onnx/ir.js';
import { ModelError } from '../onnx/ir.js';
import { inferShapes } from '../onnx/shape.js';
import { nodeGraph } from './graph.js';
import type { Partition } from './partition.js';

/** Original value names carried by one subgraph's graph inputs and outputs, in order. */
export interface PartWiring {
  inputs: string[];
  outputs: string[];
}

/** How the subgraphs connect back into the original model; JSON-serializable. */
export interface Wiring {
  /** Name of the original graph. */
  graphName: string;
  /** IR version and opset imports of the original model. */
  irVersion: number;
  opsetImports: OpsetImport[];
  /** The original graph's inputs and outputs (names, order, types, shapes). */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** One entry per subgraph, in the partition's (topological) order. */
  parts: PartWiring[];
}

/** Subgraph models plus their wiring. */
export interface Extracted {
  models: Model[];
  wiring: Wiring;
}

/** Typed value info of a boundary value; a ModelError when its type could not be inferred. */
function boundaryInfo(info: Map<string, ValueInfo>, name: string, part: number): ValueInfo {
  const v = info.get(name);
  if (!v) throw new ModelError(`value '${name}' crosses the boundary of subgraph ${part} but its type could not be inferred`);
  return { name, dtype: v.dtype, shape: v.shape ? [...v.shape] : undefined };
}

/**
 * Split `model` along `partition` into standalone models. Boundary types and (symbolic) shapes come
 * from `inferShapes`; initializers are shared by reference (each subgraph that reads one gets it).
 */
export function extractParts(model: Model, partition: Partition): Extracted {
  const g = model.graph;
  const ng = nodeGraph(g);
  const info = inferShapes(model);
  for (const v of g.inputs) info.set(v.name, v);
  const partOf = new Array<number>(ng.n).fill(-1);
  partition.parts.forEach((p, pi) =>
    p.forEach((v) => {
      if (v < 0 || v >= ng.n || partOf[v] !== -1) throw new ModelError(`partition of '${g.name}': node index ${v} is out of range or in two subgraphs`);
      partOf[v] = pi;
    }),
  );
  const missing = partOf.indexOf(-1);
  if (missing >= 0) throw new ModelError(`partition of '${g.name}': node '${g.nodes[missing]!.name}' is in no subgraph`);
  for (const o of g.outputs) {
    if (!ng.producer.has(o.name))
      throw new ModelError(`graph output '${o.name}' of '${g.name}' is not computed by a node (Proteus needs every output computed)`);
  }

  const models: Model[] = [];
  const parts: PartWiring[] = [];
  partition.parts.forEach((members, pi) => {
    const nodes: Node[] = members.map((v) => g.nodes[v]!);
    const produced = new Set(nodes.flatMap((n) => n.outputs.filter((o) => o)));
    const inputs: string[] = [];
    const inits = new Map<string, Tensor>();
    for (const n of nodes) {
      for (const t of n.inputs) {
        if (!t || produced.has(t)) continue;
        if (ng.constants.has(t)) inits.set(t, g.initializers.get(t)!);
        else if (!inputs.includes(t)) inputs.push(t);
      }
    }
    const outputs: string[] = [];
    for (const n of nodes) {
      for (const t of n.outputs) {
        if (!t) continue;
        const external = (ng.consumers.get(t) ?? []).some((c) => partOf[c] !== pi);
        if (external || ng.outputs.has(t)) outputs.push(t);
      }
    }
    // A subgraph whose results nobody reads still needs an output to be a valid model.
    if (outputs.length === 0) for (const n of nodes) for (const t of n.outputs) if (t && !ng.consumers.has(t)) outputs.push(t);
    if (outputs.length === 0) throw new ModelError(`subgraph ${pi} of '${g.name}' (node '${nodes[0]?.name}') has no outputs`);
    models.push({
      // IR < 4 would require initializers to be listed as inputs too; subgraphs never are.
      irVersion: Math.max(model.irVersion, DEFAULT_IR_VERSION),
      opsetImports: model.opsetImports.map((o) => ({ ...o })),
      producerName: 'privml',
      producerVersion: '0.1.0',
      domain: '',
      modelVersion: 1,
      docString: '',
      metadata: {},
      graph: {
        name: `${g.name}.part${pi}`,
        nodes: nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
        inputs: inputs.map((t) => boundaryInfo(info, t, pi)),
        outputs: outputs.map((t) => boundaryInfo(info, t, pi)),
        initializers: inits,
        valueInfo: [],
      },
    });
    parts.push({ inputs, outputs });
  });
  const wiring: Wiring = {
    graphName: g.name,
    irVersion: model.irVersion,
    opsetImports: model.opsetImports.map((o) => ({ ...o })),
    inputs: g.inputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape ? [...v.shape] : undefined })),
    // Declared output types win; inferred shapes fill in outputs declared without one.
    outputs: g.outputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: (v.shape ?? info.get(v.name)?.shape)?.slice() })),
    parts,
  };
  return { models, wiring };
}
