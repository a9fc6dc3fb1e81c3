/**
 * Hand-written SVG plots of PAFs against the exact functions (no plotting library): a small line
 * chart with axes, ticks, legend, and one panel each for sign and ReLU on [−1, 1].
 */
import { exactSign, type Paf } from './paf.js';

/** One curve of a line chart. */
export interface Series {
  name: string;
  points: [number, number][];
  color: string;
  /** SVG stroke-dasharray, e.g. '4 3'. */
  dash?: string;
}

/** A line chart panel. */
export interface LinePlot {
  title: string;
  series: Series[];
  xRange: [number, number];
  yRange: [number, number];
  width?: number;
  height?: number;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => (Math.abs(v) < 1e-12 ? '0' : Number(v.toPrecision(3)).toString());

/** Evenly spaced ticks covering [lo, hi] with a "nice" step. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) out.push(Math.round(v / step) * step);
  return out;
}

/** The panel's SVG elements (no <svg> wrapper), placed at (ox, oy). */
function panel(p: LinePlot, ox: number, oy: number): string {
  const w = p.width ?? 420;
  const h = p.height ?? 300;
  const m = { l: 48, r: 12, t: 28, b: 34 };
  const [x0, x1] = p.xRange;
  const [y0, y1] = p.yRange;
  const sx = (x: number) => ox + m.l + ((x - x0) / (x1 - x0)) * (w - m.l - m.r);
  const sy = (y: number) => oy + h - m.b - ((y - y0) / (y1 - y0)) * (h - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<rect x="${ox}" y="${oy}" width="${w}" height="${h}" fill="#fff"/>`);
  parts.push(`<text x="${ox + w / 2}" y="${oy + 18}" text-anchor="middle" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
  for (const t of niceTicks(x0, x1)) {
    parts.push(`<line x1="${sx(t).toFixed(1)}" y1="${sy(y0).toFixed(1)}" x2="${sx(t).toFixed(1)}" y2="${sy(y1).toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${sx(t).toFixed(1)}" y="${(sy(y0) + 14).toFixed(1)}" text-anchor="middle" font-size="10">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line x1="${sx(x0).toFixed(1)}" y1="${sy(t).toFixed(1)}" x2="${sx(x1).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`);
    parts.push(`<text x="${(sx(x0) - 5).toFixed(1)}" y="${(sy(t) + 3).toFixed(1)}" text-anchor="end" font-size="10">${fmt(t)}</text>`);
  }
  parts.push(
    `<rect x="${sx(x0).toFixed(1)}" y="${sy(y1).toFixed(1)}" width="${(sx(x1) - sx(x0)).toFixed(1)}" ` +
      `height="${(sy(y0) - sy(y1)).toFixed(1)}" fill="none" stroke="#888"/>`,
  );
  // Clip curves to the plot area so overshooting polynomials do not cover the labels.
  const clip = `clip${ox}_${oy}`;
  parts.push(`<clipPath id="${clip}"><rect x="${sx(x0)}" y="${sy(y1)}" width="${sx(x1) - sx(x0)}" height="${sy(y0) - sy(y1)}"/></clipPath>`);
  for (const s of p.series) {
    const d = s.points.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(2)},${sy(y).toFixed(2)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} clip-path="url(#${clip})"/>`);
  }
  // Legend on a translucent box so curves passing under it stay readable.
  const legendW = 30 + 6 * Math.max(...p.series.map((s) => s.name.length));
  parts.push(`<rect x="${ox + m.l + 4}" y="${oy + m.t - 2}" width="${legendW}" height="${14 * p.series.length + 4}" fill="#fff" fill-opacity="0.85"/>`);
  p.series.forEach((s, i) => {
    const ly = oy + m.t + 6 + 14 * i;
    const lx = ox + m.l + 8;
    parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 18}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    parts.push(`<text x="${lx + 22}" y="${ly + 3}" font-size="10">${esc(s.name)}</text>`);
  });
  return parts.join('\n');
}

/** A standalone SVG document with panels side by side. */
export function plotSvg(panels: LinePlot[]): string {
  const w = panels.reduce((a, p) => a + (p.width ?? 420), 0);
  const h = Math.max(...panels.map((p) => p.height ?? 300));
  let ox = 0;
  const body = panels.map((p) => {
    const s = panel(p, ox, 0);
    ox += p.width ?? 420;
    return s;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif">\n${body.join('\n')}\n</svg>\n`;
}

/** Sample f on [lo, hi] at n+1 points. */
export function sample(f: (x: number) => number, lo: number, hi: number, n = 400): [number, number][] {
  return Array.from({ length: n + 1 }, (_, i) => {
    const x = lo + ((hi - lo) * i) / n;
    return [x, f(x)];
  });
}

/** Sign panel: the PAF's sign approximation vs exact sign on [−1, 1]. */
export function signPanel(paf: Paf): LinePlot {
  const approx = sample(paf.sign, -1, 1);
  const lim = Math.min(2, Math.max(1.2, ...approx.map(([, y]) => Math.abs(y) + 0.05)));
  return {
    title: `${paf.title}: sign(x)`,
    series: [
      { name: 'exact sign', points: sample(exactSign, -1, 1, 2000), color: '#444', dash: '4 3' },
      { name: `${paf.name} (degree ${paf.degree}, depth ${paf.cost.depth})`, points: approx, color: '#d62728' },
    ],
    xRange: [-1, 1],
    yRange: [-lim, lim],
  };
}

/** ReLU panel: (x + x·sign(x))/2 vs ReLU on [−1, 1] (scale 1). */
export function reluPanel(paf: Paf): LinePlot {
  return {
    title: `${paf.title}: ReLU(x)`,
    series: [
      { name: 'exact ReLU', points: sample((x) => Math.max(x, 0), -1, 1), color: '#444', dash: '4 3' },
      { name: `${paf.name} ReLU`, points: sample((x) => paf.relu(x, 1), -1, 1), color: '#1f77b4' },
    ],
    xRange: [-1, 1],
    yRange: [-0.2, 1.05],
  };
}

/** SVG with the sign and ReLU panels of one PAF. */
export function pafSvg(paf: Paf): string {
  return plotSvg([signPanel(paf), reluPanel(paf)]);
}
