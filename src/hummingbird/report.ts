/**
 * The HummingBird report: one self-contained HTML page with hand-written SVG plots (accuracy vs
 * kept bits with its Pareto front, bits kept per layer, communication and end-to-end time under
 * LAN/WAN against the 64-bit baselines) and the same numbers as tables. Pure: data in, text out.
 */
import type { HbEval, HbMeta, HbMode } from './config.js';

/** One config as summarised in the report. */
export interface ReportConfig {
  name: string;
  path: string;
  model: string;
  mode?: HbMode;
  budget?: number;
  bitsKept: number;
  bitsDiscarded: number;
  calibration?: HbEval;
  test?: HbEval;
  mpcCheck?: HbMeta['mpcCheck'];
  finetuned: boolean;
  layers: { node: string; msb: number; lsb: number; bits: number; elements?: number }[];
}

/** One measured private inference. */
export interface ReportRun {
  label: string;
  kind: 'signonly' | 'crypten' | 'config';
  config?: string;
  net: string;
  batch: number;
  /** End-to-end wall time per batch (dealer online, network emulated). */
  msPerBatch: number;
  /** Bytes sent by both parties per batch. */
  bytesPerBatch: number;
  /** Of which in ReLU/MaxPool layers. */
  reluBytesPerBatch: number;
  rounds: number;
  /** Network time modelled from bytes and rounds. */
  modeledMs: number;
  /** Agreement of the private predictions with the plaintext model. */
  agreement: number;
}

/** Speedup of one config run over the baselines measured with the same network and batch. */
export interface Speedup {
  config: string;
  net: string;
  batch: number;
  vsSignonly?: number;
  vsCrypten?: number;
  commVsSignonly?: number;
  commVsCrypten?: number;
}

/** Everything the report shows. */
export interface HbReport {
  model: string;
  modelHash: string;
  generated: string;
  configs: ReportConfig[];
  runs: ReportRun[];
  /** Exact ReLU cost per element and party in bits (engine cost model). */
  reluCost: { signonly64: number; crypten: number; configs: { config: string; bitsPerElement: number }[] };
  speedups?: Speedup[];
}

/** Speedups of every config run over the baselines of the same network and batch. */
export function computeSpeedups(runs: readonly ReportRun[]): Speedup[] {
  const out: Speedup[] = [];
  for (const r of runs) {
    if (r.kind !== 'config') continue;
    const base = (k: ReportRun['kind']) => runs.find((b) => b.kind === k && b.net === r.net && b.batch === r.batch);
    const s = base('signonly'),
      c = base('crypten');
    out.push({
      config: r.label,
      net: r.net,
      batch: r.batch,
      vsSignonly: s && s.msPerBatch / r.msPerBatch,
      vsCrypten: c && c.msPerBatch / r.msPerBatch,
      commVsSignonly: s && s.bytesPerBatch / r.bytesPerBatch,
      commVsCrypten: c && c.bytesPerBatch / r.bytesPerBatch,
    });
  }
  return out;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f1 = (x: number): string => (Math.round(x * 10) / 10).toString();

/** Round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

interface Frame {
  w: number;
  h: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

const FRAME: Frame = { w: 640, h: 320, left: 60, right: 20, top: 20, bottom: 60 };

function axes(f: Frame, xl: string, yl: string): string {
  const x0 = f.left,
    y0 = f.h - f.bottom;
  return (
    `<line x1="${x0}" y1="${y0}" x2="${f.w - f.right}" y2="${y0}" stroke="#333"/>` +
    `<line x1="${x0}" y1="${f.top}" x2="${x0}" y2="${y0}" stroke="#333"/>` +
    `<text x="${(x0 + f.w - f.right) / 2}" y="${f.h - 8}" text-anchor="middle" font-size="12">${esc(xl)}</text>` +
    `<text x="14" y="${(f.top + y0) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${(f.top + y0) / 2})">${esc(yl)}</text>`
  );
}

/** Scatter of (x, y) points with labels, x on a log2 axis, and the Pareto front (fewer bits, higher accuracy). */
export function paretoSvg(points: { x: number; y: number; label: string; color?: string }[], xl: string, yl: string): string {
  const f = FRAME;
  if (points.length === 0) return '<p>no data</p>';
  const xs = points.map((p) => Math.log2(Math.max(0.5, p.x)));
  const xmin = Math.floor(Math.min(...xs, 0)),
    xmax = Math.ceil(Math.max(...xs, 6));
  const ys = points.map((p) => p.y);
  const ylo = Math.floor(Math.min(...ys) - 1),
    yhi = Math.ceil(Math.max(...ys) + 0.5);
  const px = (x: number) => f.left + ((Math.log2(Math.max(0.5, x)) - xmin) / (xmax - xmin || 1)) * (f.w - f.left - f.right);
  const py = (y: number) => f.h - f.bottom - ((y - ylo) / (yhi - ylo || 1)) * (f.h - f.top - f.bottom);
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${f.w}" height="${f.h}" font-family="sans-serif">`;
  for (let e = xmin; e <= xmax; e++) {
    const x = px(2 ** e);
    s +=
      `<line x1="${x}" y1="${f.top}" x2="${x}" y2="${f.h - f.bottom}" stroke="#eee"/><text x="${x}" ` +
      `y="${f.h - f.bottom + 16}" text-anchor="middle" font-size="11">${2 ** e}</text>`;
  }
  for (const t of ticks(ylo, yhi)) {
    const y = py(t);
    s +=
      `<line x1="${f.left}" y1="${y}" x2="${f.w - f.right}" y2="${y}" stroke="#eee"/><text x="${f.left - 6}" ` +
      `y="${y + 4}" text-anchor="end" font-size="11">${t}</text>`;
  }
  s += axes(f, xl, yl);
  // Pareto front: sort by bits, keep points better than everything cheaper.
  const sorted = [...points].sort((a, b) => a.x - b.x || b.y - a.y);
  const front: typeof points = [];
  for (const p of sorted) if (!front.length || p.y > front[front.length - 1]!.y) front.push(p);
  s += `<polyline fill="none" stroke="#999" stroke-dasharray="4 3" points="${front.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}"/>`;
  points.forEach((p, i) => {
    const c = p.color ?? PALETTE[i % PALETTE.length]!;
    s += `<circle cx="${px(p.x)}" cy="${py(p.y)}" r="5" fill="${c}"><title>${esc(p.label)}: ${f1(p.x)} bits, ${p.y.toFixed(2)}</title></circle>`;
    const right = px(p.x) > f.w - 140; // labels near the right edge grow leftwards
    s +=
      `<text x="${px(p.x) + (right ? -7 : 7)}" y="${py(p.y) - 6 - (i % 2) * 10}" font-size="10" ` +
      `fill="${c}"${right ? ' text-anchor="end"' : ''}>${esc(p.label)}</text>`;
  });
  return s + '</svg>';
}

/** Floating bars [lsb, msb) per layer and config on a 0..64 bit axis. */
export function layerBitsSvg(configs: readonly ReportConfig[]): string {
  const nodes = [...new Set(configs.flatMap((c) => c.layers.map((l) => l.node)))];
  if (nodes.length === 0) return '<p>no layers</p>';
  const f = { ...FRAME, w: Math.max(640, 80 + nodes.length * (configs.length * 10 + 14)), bottom: 90 };
  const top = Math.min(64, Math.max(...configs.flatMap((c) => c.layers.map((l) => l.msb))) + 2);
  const py = (b: number) => f.h - f.bottom - (b / top) * (f.h - f.top - f.bottom);
  const gw = (f.w - f.left - f.right) / nodes.length;
  const bw = Math.max(3, Math.min(14, (gw - 6) / configs.length));
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${f.w}" height="${f.h}" font-family="sans-serif">`;
  for (const t of ticks(0, top))
    s +=
      `<line x1="${f.left}" y1="${py(t)}" x2="${f.w - f.right}" y2="${py(t)}" stroke="#eee"/><text ` +
      `x="${f.left - 6}" y="${py(t) + 4}" text-anchor="end" font-size="11">${t}</text>`;
  s += axes(f, '', 'bit position (bars span [lsb, msb))');
  // The fixed-point binary point (16 fractional bits): bits below it are fractions of one unit.
  if (top > 16)
    s +=
      `<line x1="${f.left}" y1="${py(16)}" x2="${f.w - f.right}" y2="${py(16)}" stroke="#888" ` +
      `stroke-dasharray="5 4"/><text x="${f.left + 4}" y="${py(16) - 4}" font-size="10" fill="#444" ` +
      `stroke="#fff" stroke-width="3" paint-order="stroke">binary point (16 fractional bits)</text>`;
  nodes.forEach((n, i) => {
    const gx = f.left + i * gw + 3;
    configs.forEach((c, j) => {
      const l = c.layers.find((x) => x.node === n);
      if (!l) return;
      const x = gx + j * bw;
      const color = PALETTE[j % PALETTE.length]!;
      if (l.bits === 0) s += `<text x="${x + bw / 2}" y="${py(0) - 3}" text-anchor="middle" font-size="9" fill="${color}">×</text>`;
      else
        s +=
          `<rect x="${x}" y="${py(Math.min(l.msb, top))}" width="${bw - 1}" ` +
          `height="${Math.max(1, py(l.lsb) - py(Math.min(l.msb, top)))}" fill="${color}"><title>${esc(c.name)} ` +
          `${esc(n)}: [${l.lsb}, ${l.msb}) = ${l.bits} bits</title></rect>`;
    });
    const lx = gx + (configs.length * bw) / 2;
    s += `<text x="${lx}" y="${f.h - f.bottom + 12}" font-size="10" text-anchor="end" transform="rotate(-45 ${lx} ${f.h - f.bottom + 12})">${esc(n)}</text>`;
  });
  s += legend(
    configs.map((c, j) => ({ label: c.name, color: PALETTE[j % PALETTE.length]! })),
    f.left,
    f.h -
      8 -
      14 *
        (legendRows(
          configs.map((c) => c.name),
          f.w - f.left,
        ) -
          1),
    f.w,
  );
  return s + '</svg>';
}

/** Grouped bars on a log10 axis: one group per (net, batch), one bar per run label. */
export function groupedBarsSvg(
  groups: { name: string; bars: { label: string; value: number; note?: string }[] }[],
  yl: string,
  labels: string[],
  colors: string[],
): string {
  const vals = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v > 0);
  if (vals.length === 0) return '<p>no measurements</p>';
  // Leave at least a third of a decade below the smallest bar so it stays visible.
  const lo = Math.floor(Math.log10(Math.min(...vals)) - 0.35),
    hi = Math.ceil(Math.log10(Math.max(...vals)) + 0.05);
  const w0 = Math.max(640, 80 + groups.length * (labels.length * 22 + 20));
  const rows = legendRows(labels, w0 - FRAME.left);
  const f = { ...FRAME, w: w0, h: FRAME.h + 14 * (rows - 1), bottom: 56 + 14 * rows };
  const py = (v: number) => f.h - f.bottom - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo || 1)) * (f.h - f.top - f.bottom);
  const gw = (f.w - f.left - f.right) / groups.length;
  const bw = Math.min(22, (gw - 10) / labels.length);
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${f.w}" height="${f.h}" font-family="sans-serif">`;
  for (let e = lo; e <= hi; e++)
    s +=
      `<line x1="${f.left}" y1="${py(10 ** e)}" x2="${f.w - f.right}" y2="${py(10 ** e)}" stroke="#eee"/><text ` +
      `x="${f.left - 6}" y="${py(10 ** e) + 4}" text-anchor="end" font-size="11">1e${e}</text>`;
  s += axes(f, '', yl);
  groups.forEach((g, i) => {
    const gx = f.left + i * gw + 5;
    for (const b of g.bars) {
      const j = labels.indexOf(b.label);
      const x = gx + j * bw;
      s +=
        `<rect x="${x}" y="${py(b.value)}" width="${bw - 2}" height="${py(10 ** lo) - py(b.value)}" ` +
        `fill="${colors[j]}"><title>${esc(b.label)} ${esc(g.name)}: ` +
        `${b.value.toPrecision(4)}${b.note ? ' ' + esc(b.note) : ''}</title></rect>`;
      if (b.note) s += `<text x="${x + bw / 2}" y="${py(b.value) - 3}" font-size="8" text-anchor="middle">${esc(b.note)}</text>`;
    }
    s += `<text x="${gx + (labels.length * bw) / 2}" y="${f.h - f.bottom + 16}" font-size="11" text-anchor="middle">${esc(g.name)}</text>`;
  });
  s += legend(
    labels.map((l, j) => ({ label: l, color: colors[j]! })),
    f.left,
    f.h - 8 - 14 * (rows - 1),
    f.w,
  );
  return s + '</svg>';
}

/** A legend row (wrapping) at the bottom of a chart. */
function legend(items: { label: string; color: string }[], x0: number, y0: number, width: number): string {
  let s = '',
    x = x0,
    y = y0;
  for (const it of items) {
    const w = 24 + 6.5 * it.label.length;
    if (x + w > width && x > x0) {
      x = x0;
      y += 14;
    }
    s += `<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${it.color}"/><text x="${x + 14}" y="${y}" font-size="11">${esc(it.label)}</text>`;
    x += w;
  }
  return s;
}

/** Rows a legend needs. */
function legendRows(labels: string[], width: number): number {
  let rows = 1,
    x = 0;
  for (const l of labels) {
    const w = 24 + 6.5 * l.length;
    if (x + w > width && x > 0) {
      rows++;
      x = 0;
    }
    x += w;
  }
  return rows;
}

const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(100 * x).toFixed(2)} %`);

/** One table row of `cells` (`th` for a header row). */
const tr = (cells: readonly (string | number)[], tag: 'td' | 'th' = 'td') => `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;

const REPORT_STYLE =
  'body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}' +
  'td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f4f4f4}' +
  'td:first-child{text-align:left}h2{margin-top:1.6em}';

/** The report page. */
export function renderReport(r: HbReport): string {
  const speedups = r.speedups ?? computeSpeedups(r.runs);
  // Accuracy vs bits: test accuracy when measured, else calibration accuracy; plus the 64-bit point.
  const pts: { x: number; y: number; label: string; color?: string }[] = [];
  const acc64 = r.configs.find((c) => c.test)?.test?.accuracy64 ?? r.configs.find((c) => c.calibration)?.calibration?.accuracy64;
  if (acc64 !== undefined) pts.push({ x: 64, y: 100 * acc64, label: '64-bit', color: '#000' });
  r.configs.forEach((c, j) => {
    const e = c.test ?? c.calibration;
    if (e) pts.push({ x: c.bitsKept, y: 100 * e.accuracy, label: c.name, color: PALETTE[j % PALETTE.length] });
  });
  const groups = new Map<string, ReportRun[]>();
  for (const run of r.runs) {
    const k = `${run.net} b${run.batch}`;
    groups.set(k, [...(groups.get(k) ?? []), run]);
  }
  const labels = [...new Set(r.runs.map((x) => x.label))];
  // Baselines in greys, configs in the same colours as in the other plots.
  const colors = labels.map((l) => {
    const run = r.runs.find((x) => x.label === l)!;
    if (run.kind === 'signonly') return '#9a9a9a';
    if (run.kind === 'crypten') return '#333';
    const j = r.configs.findIndex((c) => c.name === l);
    return PALETTE[Math.max(j, 0) % PALETTE.length]!;
  });
  const bars = (f: (x: ReportRun) => number, note?: (x: ReportRun) => string | undefined) =>
    [...groups].map(([name, rs]) => ({ name, bars: rs.map((x) => ({ label: x.label, value: f(x), note: note?.(x) })) }));
  const sp = (x: ReportRun) => {
    const s = speedups.find((q) => q.config === x.label && q.net === x.net && q.batch === x.batch);
    return s?.vsCrypten ? `${s.vsCrypten.toFixed(1)}×` : undefined;
  };
  const cfgHead = tr(
    ['config', 'mode', 'budget', 'bits kept', 'discarded', 'calib 64-bit', 'calib', 'test 64-bit', 'test', 'test agreement', 'MPC identical'],
    'th',
  );
  const runHead = tr(['run', 'net', 'batch', 'ms / batch', 'MB / batch', 'ReLU MB', 'rounds', 'modelled net ms', 'agreement'], 'th');
  const spHead = tr(['config', 'net', 'batch', 'time vs sign-only 64', 'time vs CrypTen', 'bytes vs sign-only 64', 'bytes vs CrypTen'], 'th');
  const cfgRows = r.configs
    .map((c) =>
      tr([
        esc(c.name),
        `${c.mode ?? ''}${c.finetuned ? ' (fine-tuned)' : ''}`,
        c.budget ?? '',
        c.bitsKept.toFixed(2),
        pct(c.bitsDiscarded),
        pct(c.calibration?.accuracy64),
        pct(c.calibration?.accuracy),
        pct(c.test?.accuracy64),
        pct(c.test?.accuracy),
        pct(c.test?.agreement),
        c.mpcCheck ? `${c.mpcCheck.identical}/${c.mpcCheck.n}` : '–',
      ]),
    )
    .join('\n');
  const runRows = r.runs
    .map((x) =>
      tr([
        esc(x.label),
        x.net,
        x.batch,
        x.msPerBatch.toFixed(1),
        (x.bytesPerBatch / 1e6).toFixed(3),
        (x.reluBytesPerBatch / 1e6).toFixed(3),
        x.rounds,
        x.modeledMs.toFixed(1),
        pct(x.agreement),
      ]),
    )
    .join('\n');
  const spRows = speedups
    .map((s) => {
      const ratios = [s.vsSignonly, s.vsCrypten, s.commVsSignonly, s.commVsCrypten].map((v) => `${v?.toFixed(2) ?? '–'}×`);
      return tr([esc(s.config), s.net, s.batch, ...ratios]);
    })
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>HummingBird report: ${esc(r.model)}</title>
<style>${REPORT_STYLE}</style>
</head><body>
<h1>HummingBird report</h1>
<p>Model <code>${esc(r.model)}</code> (hash <code>${r.modelHash.slice(0, 16)}…</code>), generated ${esc(r.generated)}.
ReLU cost per element and party (engine cost model): 64-bit sign-only ${r.reluCost.signonly64} bits, CrypTen ${r.reluCost.crypten} bits;
${r.reluCost.configs.map((c) => `${esc(c.config)} ${c.bitsPerElement.toFixed(1)} bits`).join(', ')}.</p>
<h2>Accuracy vs kept bits per ReLU element</h2>
${paretoSvg(pts, 'kept bits per ReLU element (log scale)', 'accuracy (%)')}
<table>${cfgHead}
${cfgRows}</table>
<h2>Bits kept per layer</h2>
${layerBitsSvg(r.configs)}
${
  r.runs.length
    ? `<h2>End-to-end time per batch (ms, log scale; label: speedup vs CrypTen)</h2>
${groupedBarsSvg(
  bars((x) => x.msPerBatch, sp),
  'ms per batch',
  labels,
  colors,
)}
<h2>Communication per batch (bytes sent by both parties, log scale)</h2>
${groupedBarsSvg(
  bars((x) => x.bytesPerBatch),
  'bytes per batch',
  labels,
  colors,
)}
<table>${runHead}
${runRows}</table>
<h2>Speedups</h2>
<table>${spHead}
${spRows}</table>`
    : '<p>No private inference was measured (--no-mpc).</p>'
}
</body></html>
`;
}
