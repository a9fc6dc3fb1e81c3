/**
 * Anonymisation of bundle members: one scheme applied identically to real subgraphs and sentinels,
 * so that names, header fields, attribute order and constant layout carry no trace of origin.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_IR_VERSION } from '../onnx/builder.js';
import type { Attribute, Model, Node, OpsetImport, Tensor } from '../onnx/ir.js';

/** Header every member gets. */
export interface MemberHeader {
  irVersion: number;
  opsetImports: OpsetImport[];
}

/** Content key of a small constant, for de-duplication. */
function constKey(t: Tensor): string | undefined {
  if (t.data.length > 16) return undefined;
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return `${t.dtype}|${t.dims.join(',')}|${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Rename everything positionally (inputs `x0…`, outputs `y0…`, values `v0…` in node order, weights
 * `w0…` in order of first use, nodes `n0…`), merge identical small constants, sort attributes,
 * strip doc strings, metadata and value annotations, and write a uniform header.
 */
export function anonymize(m: Model, header: MemberHeader): Model {
  const g = m.graph;
  const rename = new Map<string, string>();
  g.inputs.forEach((v, i) => rename.set(v.name, `x${i}`));
  g.outputs.forEach((v, i) => rename.set(v.name, `y${i}`));
  const inits = new Map<string, Tensor>();
  const byContent = new Map<string, string>();
  let nv = 0;
  const nodes: Node[] = g.nodes.map((n, i) => {
    const inputs = n.inputs.map((t) => {
      if (!t) return t;
      const r = rename.get(t);
      if (r) return r;
      const w = g.initializers.get(t);
      if (!w) return t; // dangling: left for validation to report
      const key = constKey(w);
      const dup = key ? byContent.get(key) : undefined;
      const name = dup ?? `w${inits.size}`;
      if (!dup) {
        inits.set(name, w);
        if (key) byContent.set(key, name);
      }
      rename.set(t, name);
      return name;
    });
    const outputs = n.outputs.map((t) => {
      if (!t) return t;
      const r = rename.get(t) ?? `v${nv++}`;
      rename.set(t, r);
      return r;
    });
    const attrs: Record<string, Attribute> = {};
    for (const k of Object.keys(n.attrs).sort()) attrs[k] = n.attrs[k]!;
    return { name: `n${i}`, opType: n.opType, domain: n.domain === 'ai.onnx' ? '' : n.domain, inputs, outputs, attrs };
  });
  return {
    irVersion: Math.max(header.irVersion, DEFAULT_IR_VERSION),
    opsetImports: header.opsetImports.map((o) => ({ ...o })),
    producerName: 'privml',
    producerVersion: '0.1.0',
    domain: '',
    modelVersion: 1,
    docString: '',
    metadata: {},
    graph: {
      name: 'member',
      nodes,
      inputs: g.inputs.map((v) => ({ name: rename.get(v.name)!, dtype: v.dtype, shape: v.shape?.slice() })),
      outputs: g.outputs.map((v) => ({ name: rename.get(v.name)!, dtype: v.dtype, shape: v.shape?.slice() })),
      initializers: inits,
      valueInfo: [],
    },
  };
}
