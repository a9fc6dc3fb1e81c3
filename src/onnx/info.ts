/**
 * Model summary for `privml info`: header fields, op histogram, parameter count and the
 * multiply-accumulate count of the linear layers (the cost every private runtime pays per element).
 */

import { canonicalize, formatProblems, type Problem } from './canonical.js';
import type { Dim, DType, Model, ValueInfo } from './ir.js';
import { printable, sizeOf } from './ir.js';
import { formatShape, inferShapes } from './shape.js';

/** Name, dtype and shape of a graph input or output. */
export interface IOInfo {
  name: string;
  dtype: DType;
  shape?: Dim[];
}

/** Summary of a model as computed by `modelInfo`. */
export interface ModelInfo {
  name: string;
  /** Version of the default ('' / 'ai.onnx') opset; 0 if not imported. */
  opset: number;
  irVersion: number;
  /** "producer_name producer_version". */
  producer: string;
  /** Node count of the main graph. */
  nodes: number;
  opsHistogram: Record<string, number>;
  /**
   * Elements of the weights: float and non-int64 integer constants of the canonical form (initializers
   * and Constant nodes; an Identity-aliased weight counts once per alias, as in PyTorch's count).
   */
  parameters: number;
  parameterBytes: number;
  /** Graph inputs that are not initializers (those are parameters with an overridable default). */
  inputs: IOInfo[];
  /** Graph outputs; a shape the graph leaves undeclared is filled in by shape inference. */
  outputs: IOInfo[];
  /** Multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul at batch 1 (symbolic dims taken as 1). */
  macs: number;
  macsByOp: Record<string, number>;
  /** Symbolic dims of the graph inputs (taken as 1 for the MAC count), e.g. ['batch']. */
  symbolicDims: string[];
  /** Structural problems found by the canonical pass (empty for a valid model). */
  problems: Problem[];
}

/** Size of a dim for MAC counting: a symbolic or unknown dim counts as 1 (batch 1). */
const dimOr1 = (d: Dim | undefined): number => (typeof d === 'number' ? d : 1);
const count = (s: readonly Dim[] | undefined): number => (s ?? []).reduce<number>((p, d) => p * dimOr1(d), 1);

/** MACs of one node given inferred value info; 0 for ops that are not counted or lack shapes. */
function nodeMacs(op: string, inputs: (ValueInfo | undefined)[], output: ValueInfo | undefined): number {
  const [a, b] = [inputs[0]?.shape, inputs[1]?.shape];
  const out = output?.shape;
  if (!a || !b || !out) return 0;
  switch (op) {
    case 'Conv': // each output element sums over C/group input channels × kernel
      return count(out) * count(b.slice(1));
    case 'ConvTranspose': // each input element is scattered to M/group channels × kernel
      return count(a) * count(b.slice(1));
    case 'Gemm': // A is [M, K] or [K, M] (transA) and the output [M, N]: K = |A| / M
      return dimOr1(out[0]) === 0 ? 0 : (count(out) * count(a)) / dimOr1(out[0]);
    case 'MatMul': // output elements × inner dim
      return count(out) * dimOr1(a[a.length - 1]);
    default:
      return 0;
  }
}

/**
 * Summarise a model. Parameters and MACs are counted on the canonical form, so weights held in
 * Constant nodes count and folded shape subgraphs resolve; the op histogram is the file's own.
 */
export function modelInfo(model: Model): ModelInfo {
  const g = model.graph;
  const c = canonicalize(model, { throwOnProblems: false, checkWeights: true });
  const cg = c.model.graph;
  let shapes: Map<string, ValueInfo>;
  try {
    shapes = inferShapes(c.model);
  } catch {
    shapes = new Map(); // an inconsistent graph still gets a summary; `problems` says what is wrong
  }
  const opsHistogram: Record<string, number> = {};
  for (const n of g.nodes) {
    const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    opsHistogram[op] = (opsHistogram[op] ?? 0) + 1;
  }
  const macsByOp: Record<string, number> = {};
  let macs = 0;
  for (const n of cg.nodes) {
    const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    const m = nodeMacs(
      op,
      n.inputs.map((i) => shapes.get(i)),
      shapes.get(n.outputs[0] ?? ''),
    );
    if (m > 0) {
      macsByOp[op] = (macsByOp[op] ?? 0) + m;
      macs += m;
    }
  }
  let parameters = 0;
  let parameterBytes = 0;
  for (const t of cg.initializers.values()) {
    // int64 constants are shapes, axes and indices (ONNX never stores weights as int64), folded
    // shape subgraphs add more: not parameters. Bool masks neither.
    if (t.dtype === 'bool' || t.dtype === 'int64') continue;
    parameters += sizeOf(t.dims);
    parameterBytes += t.data.byteLength;
  }
  const io = (v: ValueInfo): IOInfo => ({ name: v.name, dtype: v.dtype, shape: v.shape ? [...v.shape] : undefined });
  return {
    name: g.name,
    opset: model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0,
    irVersion: model.irVersion,
    producer: `${model.producerName} ${model.producerVersion}`.trim(),
    nodes: g.nodes.length,
    opsHistogram,
    parameters,
    parameterBytes,
    inputs: g.inputs.filter((v) => !g.initializers.has(v.name)).map(io),
    outputs: g.outputs.map((v) => io(v.shape ? v : { ...v, shape: shapes.get(v.name)?.shape })),
    macs,
    macsByOp,
    symbolicDims: c.symbolicDims,
    problems: c.problems,
  };
}

/** The problems of a summarised model as one multi-line message (empty string when none). */
export function formatInfoProblems(source: string, info: ModelInfo): string {
  return info.problems.length ? formatProblems(source, info.problems, true) : '';
}

/** 1234567 → "1,234,567". */
const num = (n: number): string => n.toLocaleString('en-US');

/** 4800 → "4.7 KiB". */
function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

/** Left-aligned columns, two spaces apart. */
function table(rows: string[][], indent = '  '): string[] {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map(
    (r) =>
      indent +
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
  );
}

/** Multi-line, human-readable rendering of a ModelInfo for the terminal. */
export function formatInfo(info: ModelInfo): string {
  const lines = table(
    [
      ['model', printable(info.name) || '(unnamed)'],
      ['producer', printable(info.producer) || '(unknown)'],
      ['ir / opset', `${info.irVersion} / ${info.opset}`],
      ['nodes', num(info.nodes)],
      ['parameters', `${num(info.parameters)} (${bytes(info.parameterBytes)})`],
      ['MACs', `${num(info.macs)} (batch 1${info.symbolicDims.length ? `; symbolic dims taken as 1: ${info.symbolicDims.join(', ')}` : ''})`],
    ],
    '',
  );
  const ios = (title: string, vs: IOInfo[]) => {
    lines.push('', title);
    lines.push(...table(vs.map((v) => [printable(v.name), v.dtype, printable(formatShape(v.shape))])));
  };
  ios('inputs', info.inputs);
  ios('outputs', info.outputs);
  const ops = Object.entries(info.opsHistogram).sort(
    (x, y) => (info.macsByOp[y[0]] ?? 0) - (info.macsByOp[x[0]] ?? 0) || y[1] - x[1] || x[0].localeCompare(y[0]),
  );
  lines.push(
    '',
    ...table(
      [
        ['op', 'count', 'MACs', 'share'],
        ...ops.map(([op, n]) => {
          const m = info.macsByOp[op] ?? 0;
          return [printable(op), num(n), m ? num(m) : '-', m && info.macs ? `${((100 * m) / info.macs).toFixed(1)} %` : ''];
        }),
      ],
      '',
    ),
  );
  return lines.join('\n');
}
