/**
 * The optimizer party's tool: run onnxruntime's graph optimizer on a model and save the result
 * (`graphOptimizationLevel` + `optimizedModelFilePath`). Level 'extended' is the default; 'all'
 * also applies hardware-specific layouts (com.microsoft.nchwc) that tie the file to this CPU.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Model } from '../onnx/ir.js';
import { ModelError } from '../onnx/ir.js';
import { encodeModel, loadModel } from '../onnx/proto.js';

/** ORT graph optimization levels a caller may ask for. */
export type OptLevel = 'basic' | 'extended' | 'all';

/** Options of `optimizeModel`. */
export interface OptimizeOptions {
  /** ORT graph optimization level (default 'extended'). */
  level?: OptLevel;
  /** Where to save the optimized model; default: a temporary file removed after reading. */
  outPath?: string;
}

const LEVELS: readonly OptLevel[] = ['basic', 'extended', 'all'];

/**
 * Optimize a model (ONNX bytes, a file path, or an IR model) with onnxruntime and return the
 * optimized model as IR (it may contain com.microsoft ops such as FusedConv).
 */
export async function optimizeModel(input: Uint8Array | string | Model, opts: OptimizeOptions = {}): Promise<Model> {
  const level = opts.level ?? 'extended';
  if (!LEVELS.includes(level)) throw new ModelError(`unknown optimization level '${level}' (known: ${LEVELS.join(', ')})`);
  const what = typeof input === 'string' ? input : input instanceof Uint8Array ? 'model bytes' : `model '${input.graph.name}'`;
  const source = typeof input === 'string' || input instanceof Uint8Array ? input : encodeModel(input);
  const tmp = opts.outPath ? undefined : mkdtempSync(join(tmpdir(), 'privml-opt-'));
  const outPath = opts.outPath ?? join(tmp!, 'optimized.onnx');
  try {
    let session: ort.InferenceSession;
    const options: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: level, optimizedModelFilePath: outPath, logSeverityLevel: 3 };
    try {
      session = typeof source === 'string' ? await ort.InferenceSession.create(source, options) : await ort.InferenceSession.create(source, options);
    } catch (e) {
      throw new ModelError(`${what}: onnxruntime could not optimize it: ${(e as Error).message.split('\n')[0]}`);
    }
    await session.release();
    return loadModel(outPath);
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

/** Optimize several models one after another (the optimizer party's batch job). */
export async function optimizeModels(models: readonly Model[], opts: Omit<OptimizeOptions, 'outPath'> = {}): Promise<Model[]> {
  const out: Model[] = [];
  for (const m of models) out.push(await optimizeModel(m, opts));
  return out;
}
