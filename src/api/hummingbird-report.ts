/**
 * `privml hummingbird report`: check configs from {@link search}, measure private inference with each
 * (and the 64-bit baselines) under emulated networks, and write the HTML report with its JSON.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { DataError, FileError, firstLine, ModelError, OptionError } from '../errors.js';
import type { HbConfig } from '../hummingbird/config.js';
import type { HbReport, ReportConfig, ReportRun } from '../hummingbird/report.js';
import type { BitRange } from '../hummingbird/simulate.js';
import type { Model } from '../onnx/ir.js';
import { ensureWritable } from './files.js';
import { resolveModel } from './model-ref.js';
import type { InferResult } from './mpc-session.js';

export type { HbReport, ReportConfig, ReportRun } from '../hummingbird/report.js';

/** Options of {@link report} (the flags of `privml hummingbird report`, lists already split). */
export interface ReportOptions {
  /** HTML file to write; the JSON goes next to it (.json). */
  output: string;
  /** Config files from `hummingbird search` (required unless `from`). */
  configs?: string[];
  /** Re-render the HTML from a previous report JSON instead of measuring. */
  from?: string;
  /** 64-bit baseline model (default: the model of the first config that was not fine-tuned). */
  model?: string;
  /** Network emulations to measure: 'lan', 'wan', 'none' (default lan, wan). */
  nets?: string[];
  /** Batch sizes to measure (default 1, 64). */
  batches?: number[];
  /** 64-bit baselines: 'signonly', 'crypten' (default both). */
  baselines?: string[];
  /** Batches per measurement (default 1). */
  reps?: number;
  /** Run private inference (default true); false: plots from the configs only. */
  mpc?: boolean;
  /** Called before each private-inference measurement. */
  onProgress?: (done: number, total: number, note: string) => void;
}

/** What {@link report} wrote: the report, and the JSON file next to the HTML (absent when re-rendering `from`). */
export interface ReportResult {
  report: HbReport;
  json?: string;
}

/** Load, check and summarise one config for the report. */
async function reportConfig(path: string, fallbackModel?: string): Promise<{ rc: ReportConfig; modelPath: string; model: Model }> {
  const { bitsKept, readConfig, validateConfig } = await import('../hummingbird/config.js');
  let cfg: HbConfig;
  try {
    cfg = readConfig(path);
  } catch (e) {
    throw new DataError(firstLine(e));
  }
  const modelPath = cfg.hummingbird?.model ?? fallbackModel;
  if (!modelPath) throw new OptionError(`${path}: no model recorded in the config; give --model`);
  const { model } = resolveModel(modelPath);
  try {
    validateConfig(cfg, model, path);
  } catch (e) {
    throw new ModelError(firstLine(e));
  }
  const m = cfg.hummingbird;
  // Element counts per node from the config's levels (when present) for the per-layer plot.
  const elems = new Map<string, number>();
  for (const l of m?.levels ?? []) for (const n of l.nodes) elems.set(n, l.elements / l.nodes.length);
  const layers = Object.entries(cfg.layers).map(([node, r]) => ({ node, msb: r.msb, lsb: r.lsb, bits: r.msb - r.lsb, elements: elems.get(node) }));
  const kept = m?.bitsKept ?? (m?.levels ? bitsKept(m.levels) : layers.reduce((a, l) => a + l.bits, 0) / Math.max(1, layers.length));
  return {
    rc: {
      name: path.replace(/^.*\//, '').replace(/\.json$/i, ''),
      path,
      model: modelPath,
      mode: m?.mode,
      budget: m?.budget,
      bitsKept: kept,
      bitsDiscarded: 1 - kept / 64,
      calibration: m?.calibration,
      test: m?.test,
      mpcCheck: m?.mpcCheck,
      finetuned: !!m?.finetune,
      layers,
    },
    modelPath,
    model,
  };
}

function runOf(label: string, kind: ReportRun['kind'], r: InferResult, netName: string, config?: string): ReportRun {
  const relu = r.layers.filter((l) => l.op === 'Relu' || l.op === 'MaxPool');
  return {
    label,
    kind,
    config,
    net: netName,
    batch: r.batch,
    msPerBatch: r.msPerBatch,
    bytesPerBatch: r.bytesSentPerBatch[0]! + r.bytesSentPerBatch[1]!,
    reluBytesPerBatch: relu.reduce((a, l) => a + l.bytesSent[0]! + l.bytesSent[1]!, 0),
    rounds: r.roundsPerBatch,
    modeledMs: r.modeledMsPerBatch,
    agreement: r.agreement,
  };
}

/** Element-weighted mean of `f` over a config's layers (plain mean when element counts are unknown). */
function weightedCost(layers: ReportConfig['layers'], f: (r: BitRange) => number): number {
  let w = 0,
    s = 0;
  for (const l of layers) {
    const e = l.elements ?? 1;
    w += e;
    s += e * f(l);
  }
  return w ? s / w : 0;
}

/** The HummingBird report: configs checked first, then private inference per net × batch × (baseline | config); writes HTML + JSON. */
export async function report(o: ReportOptions): Promise<ReportResult> {
  const { computeSpeedups, renderReport } = await import('../hummingbird/report.js');
  // Create the output folder first, so minutes of measurement are never lost to a missing directory.
  const jsonPath = o.output.replace(/\.html?$/i, '') + '.json';
  ensureWritable(o.output);
  ensureWritable(jsonPath);
  if (o.from) {
    // Re-render a previous report's JSON (no private inference).
    let data: HbReport;
    try {
      data = JSON.parse(readFileSync(o.from, 'utf8')) as HbReport;
    } catch (e) {
      throw new FileError(`${o.from}: cannot read report JSON (${firstLine(e)})`);
    }
    if (!Array.isArray(data?.configs) || !Array.isArray(data?.runs)) throw new DataError(`${o.from}: not a hummingbird report JSON`);
    writeFileSync(o.output, renderReport(data));
    return { report: data };
  }
  if (!o.configs) throw new OptionError('give --configs (or --from a report JSON)');
  const paths = o.configs.map((s) => s.trim()).filter(Boolean);
  if (paths.length === 0) throw new OptionError('--configs needs at least one config file');
  const nets = o.nets ?? ['lan', 'wan'];
  for (const n of nets) if (n !== 'lan' && n !== 'wan' && n !== 'none') throw new OptionError(`--nets entries must be lan, wan or none, got '${n}'`);
  const batches = o.batches ?? [1, 64];
  if (batches.some((b) => !Number.isInteger(b) || b < 1)) throw new OptionError(`--batches must be positive integers, got '${batches.join(',')}'`);
  const baselines = o.baselines ?? ['signonly', 'crypten'];
  for (const b of baselines) if (b !== 'signonly' && b !== 'crypten') throw new OptionError(`--baselines entries must be signonly or crypten, got '${b}'`);
  const reps = o.reps ?? 1;
  if (!(Number.isInteger(reps) && reps >= 1)) throw new OptionError(`--reps must be a positive integer, got '${reps}'`);
  // Every config is checked (layers, ranges, model hash) before any party starts.
  const loaded: Awaited<ReturnType<typeof reportConfig>>[] = [];
  for (const p of paths) loaded.push(await reportConfig(p, o.model));
  const baseModel = o.model ?? loaded.find((l) => !l.rc.finetuned)?.modelPath ?? loaded[0]!.modelPath;
  const { model: bm } = resolveModel(baseModel);
  const runs: ReportRun[] = [];
  if (o.mpc ?? true) {
    const { defaultJobFlags, privateInference } = await import('./mpc-session.js');
    const jobs: { label: string; kind: ReportRun['kind']; model: string; protocol: 'signonly' | 'crypten'; config?: string; net: string; batch: number }[] = [];
    for (const net of nets) {
      for (const batch of batches) {
        for (const b of baselines)
          jobs.push({
            label: b === 'crypten' ? 'CrypTen 64-bit' : 'sign-only 64-bit',
            kind: b === 'crypten' ? 'crypten' : 'signonly',
            model: baseModel,
            protocol: b as 'signonly' | 'crypten',
            net,
            batch,
          });
        for (const l of loaded) jobs.push({ label: l.rc.name, kind: 'config', model: l.modelPath, protocol: 'signonly', config: l.rc.path, net, batch });
      }
    }
    for (const [i, j] of jobs.entries()) {
      o.onProgress?.(i, jobs.length, `${j.label} ${j.net} batch ${j.batch}`);
      // An untimed warm-up batch (JIT, allocator) matters for small batches; at batch 64 it would only double the run.
      const flags = defaultJobFlags({
        dataset: 'fashion-mnist-sample',
        limit: j.batch * reps,
        batch: j.batch,
        warmup: j.batch <= 8,
        net: j.net,
        reluProtocol: j.protocol,
        reluConfig: j.config,
      });
      const r = await privateInference(j.model, flags);
      runs.push(runOf(j.label, j.kind, r, j.net, j.config));
    }
    o.onProgress?.(jobs.length, jobs.length, '');
  }
  // Exact per-element ReLU costs (bits, rounds) as computed by the engine's cost model, for reference.
  const { reluCost } = await import('../mpc/protocols/compare.js');
  const { modelHash } = await import('../hummingbird/graph.js');
  const costs = loaded.map((l) => ({
    config: l.rc.name,
    bitsPerElement: weightedCost(l.rc.layers, (r) => reluCost(r.msb - r.lsb === 0 ? { msb: 0, lsb: 0 } : r).bits),
  }));
  const rep: HbReport = {
    model: baseModel,
    modelHash: modelHash(bm),
    generated: new Date().toISOString(),
    configs: loaded.map((l) => l.rc),
    runs,
    reluCost: { signonly64: reluCost().bits, crypten: reluCost({ protocol: 'crypten' }).bits, configs: costs },
    speedups: computeSpeedups(runs),
  };
  writeFileSync(o.output, renderReport(rep));
  writeFileSync(jsonPath, JSON.stringify(rep, null, 2) + '\n');
  return { report: rep, json: jsonPath };
}

/** Candidate widths the aggressive search tries by default. */
export { DEFAULT_WIDTHS } from '../hummingbird/search.js';
