/**
 * ONNX backend conformance for the float runtime: each case directory (model.onnx plus
 * test_data_set_0/input_*.pb and output_*.pb, ONNX's own layout) is run and compared with the
 * reference outputs. A case is `pass`, `wrong` (ran, gave different numbers — the outcome that must
 * never happen), `refused` (a clear ModelError) or `crash` (any other exception: a bug).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listOps, registerStandardOps } from '../src/nn/ops/index.js';
import { FloatModel } from '../src/nn/runtime.js';
import { initTf } from '../src/nn/tf.js';
import { ModelError, type Tensor } from '../src/onnx/ir.js';
import { decodeTensorProto, loadModel } from '../src/onnx/proto.js';

/** Outcome of one backend case. */
export interface CaseResult {
  name: string;
  /** Op types of the model's nodes (default domain shown bare). */
  ops: string[];
  /** True when privml lists every op of the case as supported. */
  listed: boolean;
  status: 'pass' | 'wrong' | 'refused' | 'crash';
  detail?: string;
}

/** The case directories under `dir` (each holding model.onnx). */
export function listCases(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'model.onnx')))
    .sort();
}

function readSet(caseDir: string, kind: 'input' | 'output'): Tensor[] {
  const set = join(caseDir, 'test_data_set_0');
  const files = readdirSync(set).filter((f) => f.startsWith(`${kind}_`) && f.endsWith('.pb'));
  files.sort((a, b) => parseInt(a.slice(kind.length + 1)) - parseInt(b.slice(kind.length + 1)));
  return files.map((f) => decodeTensorProto(readFileSync(join(set, f)), join(set, f)));
}

/** Compare one output: dtype family, shape and values (rtol 1e-3, atol 1e-5 as ONNX's runner; ints exact). */
export function compareTensor(got: Tensor, want: Tensor): string | undefined {
  if (got.dims.length !== want.dims.length || got.dims.some((d, i) => d !== want.dims[i])) return `shape [${got.dims}] ≠ [${want.dims}]`;
  if (got.dtype !== want.dtype) return `dtype ${got.dtype} ≠ ${want.dtype}`;
  const g = got.data as ArrayLike<number | bigint>;
  const w = want.data as ArrayLike<number | bigint>;
  for (let i = 0; i < w.length; i++) {
    const a = Number(g[i]);
    const b = Number(w[i]);
    if (Number.isNaN(b) ? !Number.isNaN(a) : Number.isNaN(a) || Math.abs(a - b) > 1e-5 + 1e-3 * Math.abs(b) || (a === Infinity) !== (b === Infinity)) {
      return `element ${i}: ${a} ≠ ${b}`;
    }
  }
  return undefined;
}

/** Run one case directory through the float runtime. */
export async function runCase(caseDir: string, name: string): Promise<CaseResult> {
  await initTf('wasm');
  registerStandardOps();
  const supported = new Set(
    listOps()
      .filter((o) => !o.domain)
      .map((o) => o.opType),
  );
  let ops: string[] = [];
  try {
    const model = loadModel(join(caseDir, 'model.onnx'));
    ops = [...new Set(model.graph.nodes.map((n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType)))];
    const listed = ops.every((o) => supported.has(o));
    const base = { name, ops, listed };
    try {
      const inputs = readSet(caseDir, 'input');
      const outputs = readSet(caseDir, 'output');
      const fm = await FloatModel.create(model, { source: name });
      try {
        const feeds: Record<string, Tensor> = {};
        fm.inputNames.forEach((n, i) => {
          if (inputs[i]) feeds[n] = inputs[i]!;
        });
        const res = fm.run(feeds);
        const names = fm.outputNames;
        for (let i = 0; i < outputs.length; i++) {
          const got = res[names[i]!];
          if (!got) return { ...base, status: 'wrong', detail: `output #${i} missing` };
          const bad = compareTensor(got, outputs[i]!);
          if (bad) return { ...base, status: 'wrong', detail: `output '${names[i]}': ${bad}` };
        }
        return { ...base, status: 'pass' };
      } finally {
        fm.dispose();
      }
    } catch (e) {
      return { ...base, status: e instanceof ModelError ? 'refused' : 'crash', detail: (e as Error).message.split('\n').slice(0, 3).join(' ') };
    }
  } catch (e) {
    return { name, ops, listed: false, status: e instanceof ModelError ? 'refused' : 'crash', detail: (e as Error).message.split('\n')[0] };
  }
}

/** Key a case by its op(s) for the per-op table. */
export function caseKey(r: CaseResult): string {
  const ops = r.ops.filter((o) => o !== 'Constant');
  return ops.length === 0 ? 'Constant' : ops.length <= 2 ? ops.join('+') : `expanded(${ops.length} ops)`;
}
