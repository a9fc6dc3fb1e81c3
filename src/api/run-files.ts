/**
 * Plaintext inference on the user's own tensor files (`privml run`): NumPy .npy or JSON arrays in, an
 * output summary out, optionally the outputs saved as .npy and compared with onnxruntime.
 */
import { readFileSync } from 'node:fs';
import { DataError, FileError, firstLine, OptionError, PrivmlError } from '../errors.js';
import { allocArray, type DType, type Model, printable, sizeOf, type Tensor } from '../onnx/ir.js';
import { loadNpy, saveNpy } from '../onnx/npy.js';
import { typed } from './core.js';
import { resolveModel } from './model-ref.js';

export { printable } from '../onnx/ir.js';

/** A .npy file as a tensor; a malformed file is a DataError naming it. */
function npy(file: string): Tensor {
  try {
    return loadNpy(file);
  } catch (e) {
    if (e instanceof PrivmlError) throw e;
    throw new DataError(firstLine(e));
  }
}

/** A nested JSON array of numbers as a tensor of `dtype` (the model input's declared type). */
function fromJson(path: string, dtype: DType): Tensor {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FileError(`${path}: cannot read JSON (${firstLine(e)})`);
  }
  const dims: number[] = [];
  for (let t = v; Array.isArray(t); t = t[0]) dims.push(t.length);
  const flat = (Array.isArray(v) ? (v as unknown[]).flat(Infinity) : [v]) as unknown[];
  if (flat.length !== sizeOf(dims) || flat.some((x) => typeof x !== 'number' && typeof x !== 'boolean')) {
    throw new DataError(`${path}: must be a rectangular nested array of numbers`);
  }
  const data = allocArray(dtype, flat.length);
  if (data instanceof BigInt64Array) flat.forEach((x, i) => (data[i] = BigInt(Math.trunc(Number(x)))));
  else flat.forEach((x, i) => ((data as Float32Array)[i] = Number(x)));
  return { dtype, dims, data };
}

/** Feeds from `--input` values: positional files, or name=file. */
function readFeeds(model: Model, specs: string[]): Record<string, Tensor> {
  const inputs = model.graph.inputs.filter((v) => !model.graph.initializers.has(v.name));
  if (specs.length !== inputs.length) {
    throw new OptionError(`the model has ${inputs.length} input(s) (${inputs.map((v) => printable(v.name)).join(', ')}); give one --input each`);
  }
  const feeds: Record<string, Tensor> = {};
  specs.forEach((spec, i) => {
    const eq = spec.indexOf('=');
    const named = eq > 0 && inputs.some((v) => v.name === spec.slice(0, eq));
    const info = named ? inputs.find((v) => v.name === spec.slice(0, eq))! : inputs[i]!;
    const file = named ? spec.slice(eq + 1) : spec;
    const t = file.endsWith('.json') ? fromJson(file, info.dtype) : npy(file);
    if (t.dtype !== info.dtype) throw new DataError(`${file}: input '${printable(info.name)}' must be ${info.dtype}, the file holds ${t.dtype}`);
    feeds[info.name] = t;
  });
  return feeds;
}

/** min / max / mean and, for [N, K] outputs, the argmax of each row. */
function summary(t: Tensor): Record<string, unknown> {
  const v = Array.from(t.data as ArrayLike<number | bigint>, Number);
  const n = v.length;
  const out: Record<string, unknown> = { dtype: t.dtype, shape: t.dims };
  if (n === 0) return out;
  out.min = Math.min(...v);
  out.max = Math.max(...v);
  out.mean = v.reduce((p, q) => p + q, 0) / n;
  if (t.dims.length === 2 && t.dims[1]! > 1) {
    const k = t.dims[1]!;
    out.argmax = Array.from({ length: t.dims[0]! }, (_, r) => v.slice(r * k, r * k + k).reduce((b, x, j, a) => (x > a[b]! ? j : b), 0));
  }
  out.first = v.slice(0, 8);
  return out;
}

/** Largest absolute difference, and that relative to the largest reference magnitude. */
function diff(a: Tensor, b: Tensor): { maxAbs: number; maxRel: number } {
  if (a.dims.join() !== b.dims.join()) throw new DataError(`shapes differ: [${a.dims}] vs onnxruntime [${b.dims}]`);
  const x = Array.from(a.data as ArrayLike<number | bigint>, Number);
  const y = Array.from(b.data as ArrayLike<number | bigint>, Number);
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < y.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(x[i]! - y[i]!));
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return { maxAbs, maxRel: scale > 0 ? maxAbs / scale : maxAbs };
}

async function runOnce(model: Model, source: string, runtime: string, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const { runOrt } = await import('../onnx/ort.js');
  if (runtime === 'ort') return runOrt(model, feeds);
  const { FloatModel } = await import('../nn/runtime.js');
  const fm = await FloatModel.create(model, { source });
  try {
    return fm.run(feeds);
  } finally {
    fm.dispose();
  }
}

/** Options of {@link runFiles}. */
export interface RunFilesOptions {
  /** 'float' (privml, default) or 'ort' (onnxruntime). */
  runtime?: string;
  /** Also run on this runtime ('ort') and report the largest differences. */
  compare?: string;
  /** Write the first output as .npy here; other outputs go to FILE.<name>.npy. */
  output?: string;
}

/** Summary of one output: dtype, shape, min/max/mean, the first values, and per-row argmax of [N, K] outputs. */
export interface OutputSummary {
  dtype: string;
  shape: number[];
  min?: number;
  max?: number;
  mean?: number;
  argmax?: number[];
  first?: number[];
}

/** What {@link runFiles} returns (the JSON `privml run --json` prints). */
export interface RunFilesReport {
  source: string;
  runtime: string;
  ms: number;
  outputs: Record<string, OutputSummary>;
  compare?: Record<string, { maxAbs: number; maxRel: number }>;
  saved?: string;
}

/** Run `ref` (an .onnx path or zoo name) on tensor files, one per graph input in order (or `name=file`). */
export async function runFiles(ref: string, inputs: string[], o: RunFilesOptions = {}): Promise<RunFilesReport> {
  const runtime = o.runtime ?? 'float';
  if (!['float', 'ort'].includes(runtime)) throw new OptionError(`--runtime must be float or ort, is '${runtime}'`);
  if (o.compare && o.compare !== 'ort') throw new OptionError(`--compare supports ort only, is '${o.compare}'`);
  const { model, source } = resolveModel(ref);
  const feeds = readFeeds(model, inputs);
  try {
    const t0 = performance.now();
    const outs = await runOnce(model, source, runtime, feeds);
    const ms = performance.now() - t0;
    const names = model.graph.outputs.map((v) => v.name);
    const report: RunFilesReport = {
      source,
      runtime,
      ms: Math.round(ms),
      outputs: Object.fromEntries(names.map((n) => [n, summary(outs[n]!) as unknown as OutputSummary])),
    };
    if (o.compare) {
      const { runOrt } = await import('../onnx/ort.js');
      const ref2 = await runOrt(model, feeds);
      report.compare = Object.fromEntries(names.map((n) => [n, diff(outs[n]!, ref2[n]!)]));
    }
    if (o.output) {
      const out = o.output;
      names.forEach((n, i) => saveNpy(i === 0 ? out : out.replace(/(\.npy)?$/, `.${n.replace(/[^\w.-]/g, '_')}.npy`), outs[n]!));
      report.saved = o.output;
    }
    return report;
  } catch (e) {
    return typed(e);
  }
}
