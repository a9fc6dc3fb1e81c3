/**
 * Internal width changes of a sentinel: one channel count inside the graph (a convolution's or
 * matrix product's output width, carried through per-channel ops to the weights that read it)
 * set to another realistic width, the interface untouched. A group's sentinels repeated a few
 * designs while the real piece's design was never repeated, so "the member whose architecture no
 * other member shares" found the real one in up to a third of the groups; a sentinel whose design
 * is taken gets a width of its own instead (`SentinelOptions.designs`).
 */

import type { Model, Node, Tensor } from '../onnx/ir.js';
import { sizeOf } from '../onnx/ir.js';
import type { Rng } from './rng.js';

/** Ops that act on each value (or channel) alone: a width passes through them unchanged. */
const ELEMENTWISE = new Set([
  'Relu',
  'Clip',
  'Sigmoid',
  'Tanh',
  'Erf',
  'LeakyRelu',
  'HardSigmoid',
  'HardSwish',
  'Gelu',
  'Softplus',
  'Identity',
  'Elu',
  'Selu',
  'Neg',
  'Abs',
  'Sqrt',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
]);

/** A weight dimension to set to the new width. */
interface Edit {
  t: Tensor;
  axis: number;
}

/** One width that can change: its current value, the weight dims and depthwise groups that carry it. */
export interface WidthSite {
  width: number;
  edits: Edit[];
  depthwise: Node[];
}

const intAttr = (n: Node, name: string, dflt: number): number => {
  const a = n.attrs[name];
  return a?.kind === 'int' ? a.value : dflt;
};

/**
 * Where a width produced by node `p` can change: every weight dim and depthwise group that carries
 * it up to the weights that read it. Undefined when the width reaches anything else (a residual
 * join with another value, a reshape, a graph output), where changing it would change the interface.
 */
function siteOf(m: Model, p: Node, readers: Map<string, { n: Node; slot: number }[]>, outputs: Set<string>): WidthSite | undefined {
  const g = m.graph;
  const w = g.initializers.get(p.inputs[1] ?? '');
  if (!w || w.dtype !== 'float32') return undefined;
  const edits: Edit[] = [];
  // Position of the channel axis counted from the last: NCHW activations of a Conv, last for matrices.
  let fromEnd: number;
  if (p.opType === 'Conv') {
    if (intAttr(p, 'group', 1) !== 1 || w.dims.length < 3) return undefined;
    edits.push({ t: w, axis: 0 });
    fromEnd = w.dims.length - 2;
  } else if (p.opType === 'Gemm') {
    if (w.dims.length !== 2 || intAttr(p, 'transA', 0) !== 0) return undefined;
    edits.push({ t: w, axis: intAttr(p, 'transB', 0) ? 0 : 1 });
    fromEnd = 0;
  } else if (p.opType === 'MatMul') {
    if (w.dims.length !== 2) return undefined;
    edits.push({ t: w, axis: 1 });
    fromEnd = 0;
  } else return undefined;
  const width = w.dims[edits[0]!.axis]!;
  // A bias read by the producer itself (Conv's third input, Gemm's C).
  const bias = g.initializers.get(p.inputs[2] ?? '');
  if (bias) {
    if (bias.dims.length === 0 || sizeOf(bias.dims) === 1) {
      // a scalar: nothing to resize
    } else if (bias.dims[bias.dims.length - 1] === width && sizeOf(bias.dims) === width) edits.push({ t: bias, axis: bias.dims.length - 1 });
    else return undefined;
  }
  // The values that carry the width, and the nodes they pass through.
  const carried = new Set<string>([p.outputs[0]!]);
  const through: Node[] = [];
  const depthwise: Node[] = [];
  const queue = [p.outputs[0]!];
  let ends = 0;
  const seen = new Set<Node>();
  while (queue.length) {
    const v = queue.pop()!;
    if (outputs.has(v)) return undefined;
    for (const { n, slot } of readers.get(v) ?? []) {
      if (seen.has(n)) continue;
      seen.add(n);
      const nw = g.initializers.get(n.inputs[1] ?? '');
      if (n.opType === 'Conv' && slot === 0 && nw && nw.dims.length >= 3) {
        const group = intAttr(n, 'group', 1);
        if (group === 1) {
          edits.push({ t: nw, axis: 1 });
          ends++;
          continue;
        }
        // Depthwise: one filter per channel, so the width passes through (weights, bias and group change with it).
        if (group !== width || nw.dims[0] !== width || nw.dims[1] !== 1) return undefined;
        edits.push({ t: nw, axis: 0 });
        const nb = g.initializers.get(n.inputs[2] ?? '');
        if (nb) edits.push({ t: nb, axis: 0 });
        depthwise.push(n);
      } else if ((n.opType === 'MatMul' || n.opType === 'Gemm') && slot === 0 && nw && nw.dims.length === 2) {
        if (n.opType === 'Gemm' && intAttr(n, 'transA', 0) !== 0) return undefined;
        edits.push({ t: nw, axis: n.opType === 'Gemm' && intAttr(n, 'transB', 0) ? 1 : 0 });
        ends++;
        continue;
      } else if (n.opType === 'BatchNormalization' && slot === 0) {
        if (n.outputs.filter(Boolean).length > 1) return undefined;
        for (const t of n.inputs.slice(1)) {
          const s = g.initializers.get(t);
          if (!s || s.dims.length !== 1 || s.dims[0] !== width) return undefined;
          edits.push({ t: s, axis: 0 });
        }
      } else if (ELEMENTWISE.has(n.opType)) {
        through.push(n);
        // Per-channel or scalar constants are resized or kept; activations are checked below.
        for (const t of n.inputs) {
          const c = g.initializers.get(t);
          if (!c) continue;
          const size = sizeOf(c.dims);
          if (size === 1) continue;
          const axis = c.dims.length - 1 - fromEnd;
          if (axis < 0 || c.dims[axis] !== width || size !== width) return undefined;
          edits.push({ t: c, axis });
        }
      } else return undefined;
      const out = n.outputs[0]!;
      if (!carried.has(out)) {
        carried.add(out);
        queue.push(out);
      }
    }
  }
  // An elementwise node joining the width with any other activation (a residual Add) pins it.
  for (const n of through) for (const t of n.inputs) if (t && !g.initializers.has(t) && !carried.has(t)) return undefined;
  if (!ends || new Set(edits.map((e) => e.t)).size !== edits.length) return undefined;
  return { width, edits, depthwise };
}

/** Every internal width of `m` that can change without touching its interface. */
export function widthSites(m: Model): WidthSite[] {
  const g = m.graph;
  const readers = new Map<string, { n: Node; slot: number }[]>();
  for (const n of g.nodes)
    n.inputs.forEach((t, slot) => {
      if (t) (readers.get(t) ?? readers.set(t, []).get(t)!).push({ n, slot });
    });
  const outputs = new Set(g.outputs.map((o) => o.name));
  const sites: WidthSite[] = [];
  for (const n of g.nodes) {
    const s = siteOf(m, n, readers, outputs);
    if (s) sites.push(s);
  }
  return sites;
}

/**
 * Set a site's width to `to` (in place, before weights are drawn: values are drawn for the dims a
 * tensor has when it is filled); returns the undo.
 */
export function setWidth(site: WidthSite, to: number): () => void {
  const before = site.edits.map((e) => e.t.dims);
  const groups = site.depthwise.map((n) => n.attrs.group);
  for (const e of site.edits) e.t.dims = e.t.dims.map((d, i) => (i === e.axis ? to : d));
  for (const n of site.depthwise) n.attrs.group = { kind: 'int', value: to };
  return () => {
    site.edits.forEach((e, i) => {
      e.t.dims = before[i]!;
    });
    site.depthwise.forEach((n, i) => {
      n.attrs.group = groups[i]!;
    });
  };
}

/**
 * Widths a site of `width` may take: halved or doubled, or another width the real piece has within
 * a factor of 4 (networks keep to a few widths, mostly powers of two; an arbitrary count would stand
 * out). At least 8 and never below half the real piece's narrowest.
 */
export function widthChoices(width: number, realWidths: readonly number[]): number[] {
  const narrowest = Math.min(...realWidths, width);
  const out = new Set<number>([width / 2, width * 2, ...realWidths.filter((w) => w <= 4 * width && w >= width / 4)]);
  return [...out].filter((w) => Number.isInteger(w) && w !== width && w >= Math.max(8, narrowest / 2)).sort((a, b) => a - b);
}

/**
 * Every width change of `m` (each site at each choice, see `widthChoices`), in random order: apply
 * one with `setWidth`; the caller keeps the one it likes best.
 */
export function widthChanges(m: Model, realWidths: readonly number[], rng: Rng): { site: WidthSite; to: number }[] {
  const out = widthSites(m).flatMap((site) => widthChoices(site.width, realWidths).map((to) => ({ site, to })));
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Output widths of a graph's convolutions and matrix products (weights read at input 1). */
export function producedWidths(m: Model): number[] {
  const g = m.graph;
  const out = new Set<number>();
  for (const n of g.nodes) {
    const w = g.initializers.get(n.inputs[1] ?? '');
    if (!w || w.dims.length < 2) continue;
    if (n.opType === 'Conv') out.add(w.dims[0]!);
    else if (n.opType === 'MatMul' && w.dims.length === 2) out.add(w.dims[1]!);
    else if (n.opType === 'Gemm' && w.dims.length === 2) out.add(w.dims[intAttr(n, 'transB', 0) ? 0 : 1]!);
  }
  return [...out];
}
