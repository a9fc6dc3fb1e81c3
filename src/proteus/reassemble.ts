/**
 * Reassembly: stitch (optimized) subgraph models back into one model using the wiring. Boundary
 * values get their original names back by position; everything internal to a subgraph is renamed
 * under a per-subgraph prefix so nothing collides; identical initializers are stored once; opset
 * imports are merged (including com.microsoft for fused ops).
 */
import { createHash } from 'node:crypto';
import type { Graph, Model, Node, OpsetImport, Tensor, ValueInfo } from '../onnx/ir.js';
import { ModelError } from '../onnx/ir.js';
import type { Wiring } from './extract.js';
import { nodeGraph } from './graph.js';
import { repairSeams } from './seams.js';

/** Merge opset imports: one entry per domain at the highest version; the default domain must agree. */
export function mergeOpsets(lists: readonly (readonly OpsetImport[])[]): OpsetImport[] {
  const out = new Map<string, number>();
  for (const list of lists) {
    for (const o of list) {
      const d = o.domain === 'ai.onnx' ? '' : o.domain;
      const prev = out.get(d);
      if (d === '' && prev !== undefined && prev !== o.version) throw new ModelError(`subgraphs import different default opsets (${prev} and ${o.version})`);
      out.set(d, Math.max(prev ?? 0, o.version));
    }
  }
  return [...out].map(([domain, version]) => ({ domain, version }));
}

/** Content key of a tensor (dtype, dims, SHA-256 of the bytes) for de-duplication. */
function tensorKey(t: Tensor): string {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return `${t.dtype}|${t.dims.join(',')}|${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A prefix no boundary name starts with, so internal names cannot collide with boundary ones. */
function choosePrefix(boundary: Set<string>): string {
  let prefix = 'p';
  while ([...boundary].some((n) => n.startsWith(prefix))) prefix += '_';
  return prefix;
}

/**
 * Stitch subgraph models (in wiring order) back into one model whose inputs and outputs are the
 * original graph's, names and order included. Mismatched counts or types are ModelErrors.
 * `seams: false` leaves level-'all' layout seams in place (only to measure what `repairSeams` gains).
 */
export function reassemble(parts: readonly Model[], wiring: Wiring, opts: { seams?: boolean } = {}): Model {
  if (parts.length !== wiring.parts.length) throw new ModelError(`reassembly needs ${wiring.parts.length} subgraphs, got ${parts.length}`);
  const boundary = new Set<string>([...wiring.inputs.map((v) => v.name), ...wiring.outputs.map((v) => v.name)]);
  for (const w of wiring.parts) for (const t of [...w.inputs, ...w.outputs]) boundary.add(t);
  const prefix = choosePrefix(boundary);

  const nodes: Node[] = [];
  const initializers = new Map<string, Tensor>();
  const byContent = new Map<string, string>();
  const valueInfo: ValueInfo[] = [];
  const nodeNames = new Set<string>();
  /** A node name not used yet (ONNX tolerates repeats; tools and ORT's logs are clearer without). */
  const uniqueNodeName = (base: string): string => {
    let n = base;
    for (let k = 1; nodeNames.has(n); k++) n = `${base}#${k}`;
    nodeNames.add(n);
    return n;
  };
  /** dtype of each boundary value as its producer declares it, to check consumers against. */
  const boundaryType = new Map<string, ValueInfo>(wiring.inputs.map((v) => [v.name, v]));

  parts.forEach((m, i) => {
    const w = wiring.parts[i]!;
    const g = m.graph;
    if (g.inputs.length !== w.inputs.length || g.outputs.length !== w.outputs.length) {
      throw new ModelError(
        `subgraph ${i} ('${g.name}') has ${g.inputs.length} inputs / ${g.outputs.length} outputs, the wiring expects ${w.inputs.length} / ${w.outputs.length}`,
      );
    }
    const internal = (name: string): string => `${prefix}${i}/${name}`;
    const rename = new Map<string, string>();
    g.inputs.forEach((v, j) => rename.set(v.name, w.inputs[j]!));
    for (const [name, t] of g.initializers) {
      if (rename.has(name)) continue; // an input overriding an initializer stays an input
      const key = tensorKey(t);
      const canonical = byContent.get(key);
      if (canonical) rename.set(name, canonical);
      else {
        const nn = internal(name);
        byContent.set(key, nn);
        initializers.set(nn, t);
        rename.set(name, nn);
      }
    }
    // Outputs that are not computed here (pass-through inputs, folded constants, repeats) get an Identity.
    const copies: [string, string][] = [];
    g.outputs.forEach((v, j) => {
      const orig = w.outputs[j]!;
      if (rename.has(v.name)) copies.push([v.name, orig]);
      else rename.set(v.name, orig);
      const prev = boundaryType.get(orig);
      if (prev && prev.dtype !== v.dtype) throw new ModelError(`value '${orig}' is ${prev.dtype} in one subgraph and ${v.dtype} in subgraph ${i}`);
      boundaryType.set(orig, { name: orig, dtype: v.dtype, shape: v.shape });
    });
    g.inputs.forEach((v, j) => {
      const prev = boundaryType.get(w.inputs[j]!);
      if (prev && prev.dtype !== v.dtype)
        throw new ModelError(`value '${w.inputs[j]}' is ${prev.dtype} where produced but ${v.dtype} as input of subgraph ${i}`);
    });
    const mapName = (t: string): string => {
      if (!t) return t;
      let r = rename.get(t);
      if (r === undefined) {
        r = internal(t);
        rename.set(t, r);
      }
      return r;
    };
    g.nodes.forEach((n, k) => {
      nodes.push({
        ...n,
        name: uniqueNodeName(internal(n.name || `node${k}`)),
        inputs: n.inputs.map(mapName),
        outputs: n.outputs.map(mapName),
        attrs: { ...n.attrs },
      });
    });
    copies.forEach(([src, dst], k) => {
      nodes.push({ name: uniqueNodeName(internal(`copy${k}`)), opType: 'Identity', domain: '', inputs: [mapName(src)], outputs: [dst], attrs: {} });
    });
    for (const v of g.valueInfo) {
      const r = rename.get(v.name);
      if (r && !boundary.has(r)) valueInfo.push({ ...v, name: r });
    }
  });

  for (const w of wiring.parts) {
    for (const t of w.inputs)
      if (!boundaryType.has(t)) throw new ModelError(`wiring: subgraph input '${t}' is produced by no subgraph and is not a model input`);
  }
  const graph: Graph = {
    name: wiring.graphName,
    nodes,
    inputs: wiring.inputs.map((v) => ({ ...v, shape: v.shape?.slice() })),
    outputs: wiring.outputs.map((v) => {
      if (!boundaryType.has(v.name)) throw new ModelError(`wiring: model output '${v.name}' is produced by no subgraph`);
      return { ...v, shape: v.shape?.slice() };
    }),
    initializers,
    valueInfo,
  };
  // Cuts through a blocked-layout (level 'all') CNN left reorder pairs and unfused residual Adds.
  if (opts.seams !== false) {
    const declared = new Map(valueInfo.map((v) => [v.name, v.shape]));
    repairSeams(graph, (value) => boundaryType.get(value)?.shape ?? declared.get(value));
  }
  // Subgraphs arrive in wiring order, but a topological sort makes the result valid regardless.
  const stitched = graph.nodes;
  graph.nodes = nodeGraph(graph).order.map((k) => stitched[k]!);
  return {
    irVersion: Math.max(wiring.irVersion, ...parts.map((m) => m.irVersion)),
    opsetImports: mergeOpsets([wiring.opsetImports, ...parts.map((m) => m.opsetImports)]),
    producerName: 'privml',
    producerVersion: '0.1.0',
    domain: '',
    modelVersion: 1,
    docString: '',
    metadata: {},
    graph,
  };
}
