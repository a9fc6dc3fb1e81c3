/**
 * `privml run MODEL --input x.npy|x.json [-o y.npy] [--runtime float|ort] [--compare ort] [--json]`:
 * plaintext inference on the user's own tensors (NumPy .npy in and out), with an output summary
 * and, with --compare ort, the largest difference against onnxruntime.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { FloatModel } from '../nn/runtime.js';
import { allocArray, type DType, type Model, printable, sizeOf, type Tensor } from '../onnx/ir.js';
import { loadNpy, saveNpy } from '../onnx/npy.js';
import { runOrt } from '../onnx/ort.js';
import { CliError, printJson, resolveModel } from './common.js';

interface RunOptions {
  input: string[];
  output?: string;
  runtime: string;
  compare?: string;
  json?: boolean;
}

/** A nested JSON array of numbers as a tensor of `dtype` (the model input's declared type). */
function fromJson(path: string, dtype: DType): Tensor {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`${path}: cannot read JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const dims: number[] = [];
  for (let t = v; Array.isArray(t); t = t[0]) dims.push(t.length);
  const flat = (Array.isArray(v) ? (v as unknown[]).flat(Infinity) : [v]) as unknown[];
  if (flat.length !== sizeOf(dims) || flat.some((x) => typeof x !== 'number' && typeof x !== 'boolean')) {
    throw new CliError(`${path}: must be a rectangular nested array of numbers`);
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
    throw new CliError(`the model has ${inputs.length} input(s) (${inputs.map((v) => printable(v.name)).join(', ')}); give one --input each`, 2);
  }
  const feeds: Record<string, Tensor> = {};
  specs.forEach((spec, i) => {
    const eq = spec.indexOf('=');
    const named = eq > 0 && inputs.some((v) => v.name === spec.slice(0, eq));
    const info = named ? inputs.find((v) => v.name === spec.slice(0, eq))! : inputs[i]!;
    const file = named ? spec.slice(eq + 1) : spec;
    const t = file.endsWith('.json') ? fromJson(file, info.dtype) : loadNpy(file);
    if (t.dtype !== info.dtype) throw new CliError(`${file}: input '${printable(info.name)}' must be ${info.dtype}, the file holds ${t.dtype}`);
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
  if (a.dims.join() !== b.dims.join()) throw new CliError(`shapes differ: [${a.dims}] vs onnxruntime [${b.dims}]`);
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
  if (runtime === 'ort') return runOrt(model, feeds);
  const fm = await FloatModel.create(model, { source });
  try {
    return fm.run(feeds);
  } finally {
    fm.dispose();
  }
}

/** Register `run`. */
export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a model on your own tensors (.npy or JSON), print an output summary, optionally save .npy and compare with onnxruntime')
    .argument('<model>', 'path to an .onnx file, or a zoo model name')
    .requiredOption('--input <file...>', 'one .npy or .json per graph input, in order (or name=file)')
    .option('-o, --output <file.npy>', 'write the (first) output as .npy; other outputs go to FILE.<name>.npy')
    .option('--runtime <name>', 'float (privml) or ort (onnxruntime)', 'float')
    .option('--compare <runtime>', 'also run on this runtime (ort) and print the largest difference')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, o: RunOptions) => {
      if (!['float', 'ort'].includes(o.runtime)) throw new CliError(`--runtime must be float or ort, is '${o.runtime}'`, 2);
      if (o.compare && o.compare !== 'ort') throw new CliError(`--compare supports ort only, is '${o.compare}'`, 2);
      const { model, source } = resolveModel(ref);
      const feeds = readFeeds(model, o.input);
      const t0 = performance.now();
      const outs = await runOnce(model, source, o.runtime, feeds);
      const ms = performance.now() - t0;
      const names = model.graph.outputs.map((v) => v.name);
      const report: Record<string, unknown> = {
        source,
        runtime: o.runtime,
        ms: Math.round(ms),
        outputs: Object.fromEntries(names.map((n) => [n, summary(outs[n]!)])),
      };
      if (o.compare) {
        const ref2 = await runOrt(model, feeds);
        report.compare = Object.fromEntries(names.map((n) => [n, diff(outs[n]!, ref2[n]!)]));
      }
      if (o.output) {
        names.forEach((n, i) => saveNpy(i === 0 ? o.output! : o.output!.replace(/(\.npy)?$/, `.${n.replace(/[^\w.-]/g, '_')}.npy`), outs[n]!));
        report.saved = o.output;
      }
      if (o.json) return printJson(report);
      const lines = [`${source} (${o.runtime}, ${report.ms} ms)`];
      for (const n of names) {
        const s = (report.outputs as Record<string, Record<string, unknown>>)[n]!;
        const num = (x: unknown): string => (typeof x === 'number' ? Number(x.toPrecision(6)).toString() : String(x));
        lines.push(
          `  ${printable(n)}: ${s.dtype} [${(s.shape as number[]).join(', ')}]  min ${num(s.min)}  max ` +
            `${num(s.max)}  mean ${num(s.mean)}${s.argmax ? `  argmax ${(s.argmax as number[]).join(' ')}` : ''}`,
        );
        if (o.compare) {
          const d = (report.compare as Record<string, { maxAbs: number; maxRel: number }>)[n]!;
          lines.push(`    vs onnxruntime: max abs diff ${d.maxAbs.toExponential(2)}, max rel diff ${d.maxRel.toExponential(2)}`);
        }
      }
      if (o.output) lines.push(`saved ${o.output}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
