/**
 * The SmartPAF report: the paper's Table 3 shape for one model — rows are technique combinations,
 * columns PAF types — plus the ReLU model's accuracy, as JSON and as HTML with a hand-written SVG
 * grouped bar chart.
 */

import type { Dataset } from '../nn/data/dataset.js';
import type { Model } from '../onnx/ir.js';
import type { FineTuneRates } from './at.js';
import { replaceActivations, withStaticScales } from './graph.js';
import { getPaf } from './paf.js';
import { evaluatePaf, type PafEvaluation, type PipelineResult, recordScales, runPipeline } from './pipeline.js';

/** Table rows, in the paper's order. */
export const TABLE_ROWS = [
  { key: 'replace', label: 'replace only (DS, no fine-tune)', short: 'replace only' },
  { key: 'ct', label: '+ CT (DS, no fine-tune)', short: '+ CT' },
  { key: 'ftAllDs', label: 'replace + fine-tune all (DS)', short: 'fine-tune all, DS' },
  { key: 'ftAllSs', label: 'prior work: fine-tune all (SS)', short: 'prior work, SS' },
  { key: 'smartDs', label: 'CT + PA + AT (DS)', short: 'CT+PA+AT, DS' },
  { key: 'smartSs', label: 'CT + PA + AT + SS (SmartPAF)', short: 'SmartPAF (SS)' },
] as const;
/** Row key. */
export type RowKey = (typeof TABLE_ROWS)[number]['key'];

/** Options of {@link runTable}. */
export interface TableOptions {
  pafs: string[];
  train: Dataset;
  validation: Dataset;
  calib: Dataset;
  test: Dataset;
  epochsPerGroup: number;
  maxGroups: number;
  ctEpochs?: number;
  ctSamples?: number;
  rates?: Partial<FineTuneRates>;
  batchSize?: number;
  seed?: number;
  source?: string;
  log?: (line: string) => void;
  /** Called with each SmartPAF (CT+PA+AT+SS) result, e.g. to save the deployable model. */
  onSmartPaf?: (paf: string, result: PipelineResult) => void;
  onStep?: (label: string, p: { epoch: number; step: number; steps: number; loss: number }) => void;
}

/** One PAF column of the table. */
export interface TableColumn {
  paf: string;
  cells: Record<RowKey, PafEvaluation>;
  /** Fine-tuning epochs of the SmartPAF run; the fine-tune-all baseline gets the same budget. */
  epochs: number;
  /** Wall time of the SmartPAF pipeline alone (CT+PA+AT+SS, evaluation excluded). */
  smartPafSeconds: number;
  /** Per-layer CT MSE before/after. */
  ct: { node: string; mseBefore: number; mseAfter: number }[];
  seconds: number;
}

/** The whole report. */
export interface TableResult {
  model: string;
  dataset: string;
  reluAccuracy: number;
  testN: number;
  settings: Record<string, unknown>;
  columns: TableColumn[];
}

/** Compute the table for each PAF (exact ReLU model in, all six rows out). */
export async function runTable(model: Model, relu: number, o: TableOptions): Promise<TableResult> {
  const log = o.log ?? (() => {});
  const columns: TableColumn[] = [];
  const common = {
    train: o.train,
    validation: o.validation,
    calib: o.calib,
    epochsPerGroup: o.epochsPerGroup,
    maxGroups: o.maxGroups,
    rates: o.rates,
    batchSize: o.batchSize,
    seed: o.seed,
    source: o.source,
    ct: { epochs: o.ctEpochs, samples: o.ctSamples },
    onStep: o.onStep,
  };
  for (const name of o.pafs) {
    const t0 = performance.now();
    const paf = getPaf(name);
    log(`== ${name}`);
    const cells = {} as Record<RowKey, PafEvaluation>;
    const ev = async (key: RowKey, m: Model) => {
      cells[key] = await evaluatePaf(m, o.test, o.source);
      log(`  ${key}: ${(100 * cells[key].accuracy).toFixed(2)}%`);
    };
    await ev('replace', replaceActivations(model, paf, { source: o.source }));
    const smart = await runPipeline(model, { ...common, paf, techniques: new Set(['ct', 'pa', 'at', 'ss']), log: (s) => log(`  ${s}`) });
    log(`  SmartPAF pipeline: ${smart.seconds.toFixed(0)} s, ${smart.epochs} fine-tuning epochs`);
    o.onSmartPaf?.(name, smart);
    const ctOnly = replaceActivations(model, paf, { source: o.source, coefficients: Object.fromEntries((smart.ct ?? []).map((r) => [r.node, r.stages])) });
    await ev('ct', ctOnly);
    await ev('smartDs', smart.dynamicModel);
    await ev('smartSs', smart.staticModel!);
    // Prior work with the same epoch budget as SmartPAF used.
    const budget = Math.max(1, smart.epochs);
    const all = await runPipeline(model, { ...common, paf, techniques: new Set(), fineTuneEpochs: budget, log: (s) => log(`  ${s}`) });
    await ev('ftAllDs', all.dynamicModel);
    await ev('ftAllSs', withStaticScales(all.dynamicModel, await recordScales(all.dynamicModel, o.calib, o.source), o.source));
    columns.push({
      paf: name,
      cells,
      epochs: smart.epochs,
      smartPafSeconds: smart.seconds,
      ct: (smart.ct ?? []).map((r) => ({ node: r.node, mseBefore: r.mseBefore, mseAfter: r.mseAfter })),
      seconds: (performance.now() - t0) / 1000,
    });
  }
  return {
    model: o.source ?? model.graph.name,
    dataset: o.test.name,
    reluAccuracy: relu,
    testN: o.test.n,
    settings: {
      trainExamples: o.train.n,
      validationExamples: o.validation.n,
      calibExamples: o.calib.n,
      epochsPerGroup: o.epochsPerGroup,
      maxGroups: o.maxGroups,
      ctEpochs: o.ctEpochs ?? 40,
      ctSamples: o.ctSamples ?? 256,
      rates: o.rates ?? 'defaults',
    },
    columns,
  };
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS = ['#bbb', '#9ecae1', '#fdae6b', '#e6550d', '#74c476', '#006d2c'];

/** Grouped bar chart (one group per PAF, one bar per row) with the ReLU accuracy as a dashed line. */
export function tableSvg(r: TableResult): string {
  const W = 760;
  const H = 320;
  const left = 50;
  const bottom = 40;
  const top = 20;
  const plotH = H - top - bottom;
  const groupW = (W - left - 180) / Math.max(1, r.columns.length);
  const barW = (groupW - 16) / TABLE_ROWS.length;
  const y = (acc: number) => top + plotH * (1 - acc);
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`];
  for (let t = 0; t <= 10; t += 2) {
    const v = t / 10;
    parts.push(
      `<line x1="${left}" x2="${W - 180}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${t * 10}%</text>`,
    );
  }
  r.columns.forEach((c, gi) => {
    const x0 = left + gi * groupW + 8;
    TABLE_ROWS.forEach((row, ri) => {
      const acc = c.cells[row.key]?.accuracy ?? 0;
      parts.push(
        `<rect x="${(x0 + ri * barW).toFixed(1)}" y="${y(acc).toFixed(1)}" width="${(barW - 1).toFixed(1)}" ` +
          `height="${(plotH * acc).toFixed(1)}" fill="${COLORS[ri]}"><title>${esc(c.paf)} — ${esc(row.label)}: ` +
          `${(100 * acc).toFixed(2)}%</title></rect>`,
      );
    });
    parts.push(`<text x="${(x0 + (groupW - 16) / 2).toFixed(1)}" y="${H - bottom + 16}" text-anchor="middle">${esc(c.paf)}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${W - 180}" y1="${y(r.reluAccuracy)}" y2="${y(r.reluAccuracy)}" stroke="#000" stroke-dasharray="4 3"/>`);
  parts.push(`<text x="${W - 176}" y="${y(r.reluAccuracy) + 4}">ReLU ${(100 * r.reluAccuracy).toFixed(2)}%</text>`);
  TABLE_ROWS.forEach((row, ri) => {
    const ly = top + 30 + ri * 16;
    parts.push(`<rect x="${W - 176}" y="${ly}" width="10" height="10" fill="${COLORS[ri]}"/><text x="${W - 162}" y="${ly + 9}">${esc(row.short)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** The page's style sheet and the legend of the DS/SS row names. */
const TABLE_STYLE =
  'body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}' +
  'td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}';
const SCALE_LEGEND =
  'DS = dynamic scale (s = max|x| of each evaluation batch of 256), ' + 'SS = static scale (running max over the calibration set of training data).';

/** A table cell: accuracy in percent, or a dash for a technique not run. */
const accuracyCell = (cell: { accuracy: number } | undefined) => (cell ? (100 * cell.accuracy).toFixed(2) + '%' : '—');

/** The report as a self-contained HTML page. */
export function tableHtml(r: TableResult): string {
  const head = `<tr><th>technique</th>${r.columns.map((c) => `<th>${esc(c.paf)}</th>`).join('')}</tr>`;
  const rows = TABLE_ROWS.map(
    (row) => `<tr><td>${esc(row.label)}</td>${r.columns.map((c) => `<td>${accuracyCell(c.cells[row.key])}</td>`).join('')}</tr>`,
  ).join('\n');
  const range = r.columns
    .map((c) => {
      const rr = c.cells.smartSs?.range ?? {};
      const items = Object.entries(rr).map(
        ([k, v]) =>
          `${esc(k)}: ${v.outside} of ${v.total} inputs outside [−s, s] (${v.fraction.toExponential(1)}), max ` +
          `|x|/s ${v.maxRatio == null ? '∞ (overflow)' : v.maxRatio.toPrecision(3)}`,
      );
      return (
        `<li><b>${esc(c.paf)}</b>: ${items.join('; ') || 'n/a'} (fine-tuning epochs ${c.epochs}; SmartPAF ` +
        `pipeline ${c.smartPafSeconds.toFixed(0)} s; whole column ${c.seconds.toFixed(0)} s)</li>`
      );
    })
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>SmartPAF report — ${esc(r.model)}</title>
<style>${TABLE_STYLE}</style></head><body>
<h1>SmartPAF accuracy recovery — ${esc(r.model)}</h1>
<p>Test accuracy on ${esc(r.dataset)} (${r.testN} examples). ReLU model: <b>${(100 * r.reluAccuracy).toFixed(2)}%</b>. ${SCALE_LEGEND}</p>
<table>${head}\n<tr><td>ReLU model</td>${r.columns.map(() => `<td>${(100 * r.reluAccuracy).toFixed(2)}%</td>`).join('')}</tr>\n${rows}</table>
${tableSvg(r)}
<h2>Static-scale range at deployment (SmartPAF row, test set)</h2><ul>${range}</ul>
<h2>Settings</h2><pre>${esc(JSON.stringify(r.settings, null, 2))}</pre>
</body></html>
`;
}

/** Merge tables of the same model (e.g. PAF columns computed by separate processes) into one. */
export function mergeTables(tables: readonly TableResult[]): TableResult {
  if (tables.length === 0) throw new Error('mergeTables: no tables');
  const first = tables[0]!;
  for (const t of tables) {
    if (t.model !== first.model || t.reluAccuracy !== first.reluAccuracy || t.testN !== first.testN) {
      throw new Error(`cannot merge reports of different models/test sets: '${first.model}' (${first.testN}) vs '${t.model}' (${t.testN})`);
    }
  }
  const settings = tables.map((t) => ({ pafs: t.columns.map((c) => c.paf), ...t.settings }));
  return { ...first, settings: { runs: settings }, columns: tables.flatMap((t) => t.columns) };
}
