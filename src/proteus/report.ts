/**
 * Proteus HTML report: per model, an SVG drawing of the partition (nodes laid out by depth, coloured
 * by subgraph, dataflow edges) and a table of subgraph sizes, sentinel count and search space.
 */
import type { Model } from '../onnx/ir.js';
import { nodeGraph } from './graph.js';
import type { Partition } from './partition.js';

/** One model's section of the report. */
export interface ReportEntry {
  name: string;
  model: Model;
  partition: Partition;
  /** Rows shown in the model's table (label → value). */
  rows: [string, string | number][];
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** SVG of a partitioned graph: one column per depth level, colour = subgraph, hover shows op and part. */
export function partitionSvg(model: Model, partition: Partition): string {
  const g = model.graph;
  const ng = nodeGraph(g);
  const part = new Array<number>(ng.n).fill(0);
  partition.parts.forEach((p, i) => p.forEach((v) => (part[v] = i)));
  const depth = new Array<number>(ng.n).fill(0);
  for (const v of ng.order) for (const s of ng.succ[v]!) depth[s] = Math.max(depth[s]!, depth[v]! + 1);
  const rows = new Map<number, number>();
  const pos = depth.map((d) => {
    const r = rows.get(d) ?? 0;
    rows.set(d, r + 1);
    return [d, r] as const;
  });
  const dx = 14;
  const dy = 16;
  const width = (Math.max(0, ...depth) + 2) * dx;
  const height = (Math.max(1, ...rows.values()) + 1) * dy;
  const colour = (i: number): string => `hsl(${(i * 137.508) % 360},65%,50%)`;
  const xy = (v: number): [number, number] => [dx + pos[v]![0] * dx, dy + pos[v]![1] * dy];
  const edges: string[] = [];
  for (let u = 0; u < ng.n; u++) {
    for (const v of ng.succ[u]!) {
      const [x1, y1] = xy(u);
      const [x2, y2] = xy(v);
      edges.push(
        `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${part[u] === part[v] ? '#bbb' : '#d33'}" stroke-width="${part[u] === part[v] ? 0.6 : 1}"/>`,
      );
    }
  }
  const dots = g.nodes.map((n, v) => {
    const [x, y] = xy(v);
    return `<circle cx="${x}" cy="${y}" r="5" fill="${colour(part[v]!)}"><title>${esc(n.opType)} · subgraph ${part[v]}</title></circle>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${edges.join('')}${dots.join('')}</svg>`;
}

/** A standalone HTML page with one section (SVG + table) per model. */
export function proteusReportHtml(title: string, entries: readonly ReportEntry[], extra = ''): string {
  const sections = entries.map((e) => {
    const rows = e.rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(String(v))}</td></tr>`).join('');
    return (
      `<section><h2>${esc(e.name)}</h2><table>${rows}</table><p>Nodes by depth (left → right), coloured by ` +
      `subgraph; red edges cross a cut.</p><div class="svg">${partitionSvg(e.model, e.partition)}</div></section>`
    );
  });
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>body{font:14px ` +
    `sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:2px ` +
    `8px;text-align:left}.svg{overflow-x:auto;border:1px solid ` +
    `#eee}</style></head><body><h1>${esc(title)}</h1>${extra}${sections.join('')}</body></html>\n`
  );
}
