/**
 * Models, tensors and plaintext sessions of the public API. Heavy modules (tfjs, onnxruntime, the ONNX
 * protobuf codec) are imported inside the calls, so `import 'privml'` costs only this file.
 */
import { existsSync } from 'node:fs';
import type { InferenceSession as OrtSession } from 'onnxruntime-node';
import { DataError, FileError, firstLine, ModelError, OptionError, PrivmlError } from '../errors.js';
import type { FloatModel } from '../nn/runtime.js';
import type { ModelInfo } from '../onnx/info.js';
import type { Model, Tensor } from '../onnx/ir.js';
import { ensureWritable } from './files.js';

export type { Dataset } from '../nn/data/index.js';
export type { ModelInfo } from '../onnx/info.js';
export type { DType, Model, Tensor, TensorArray } from '../onnx/ir.js';

/** Tensors by graph input or output name. */
export type Feeds = Record<string, Tensor>;

/** A float32 tensor of shape `dims` (zeros when `data` is omitted); `data` must hold exactly prod(dims) values. */
export function tensor(dims: number[], data?: ArrayLike<number>): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  if (data !== undefined && data.length !== n) throw new DataError(`tensor of shape [${dims}] needs ${n} values, got ${data.length}`);
  return { dtype: 'float32', dims: [...dims], data: data ? Float32Array.from(data) : new Float32Array(n) };
}

/** Re-throw `e` as a typed privml error (errors privml raised keep their class; the model layer's become ModelError). */
export function typed(e: unknown): never {
  const err = e as Error & { exitCode?: number };
  // The CLI layer's CliError (a PrivmlError too) becomes the API's OptionError for usage errors.
  if (err?.name === 'CliError') throw err.exitCode === 2 ? new OptionError(firstLine(err)) : new PrivmlError(firstLine(err));
  if (e instanceof PrivmlError) throw e;
  if (err?.name === 'ModelError') throw new ModelError(firstLine(err));
  throw e;
}

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /** Build options when `ref` names a zoo model, e.g. `{ pool: 'max' }`. */
  zoo?: Record<string, string | number>;
}

/** Load an .onnx file, or build a zoo model when `ref` is a zoo name (`fmnist-cnn`, `resnet20`, …). */
export async function loadModel(ref: string, opts: LoadModelOptions = {}): Promise<Model> {
  const { loadModel: load } = await import('../onnx/proto.js');
  const { buildZoo, zooNames } = await import('../onnx/zoo/index.js');
  try {
    if (existsSync(ref)) return load(ref);
    if (zooNames.includes(ref)) return buildZoo(ref, opts.zoo ?? {});
  } catch (e) {
    typed(e);
  }
  throw new ModelError(`${ref}: no such model file (nor a zoo model; known: ${zooNames.join(', ')})`);
}

/** Write `model` as an .onnx file, creating the parent folder. */
export async function saveModel(model: Model, path: string): Promise<void> {
  const { saveModel: save } = await import('../onnx/proto.js');
  ensureWritable(path);
  try {
    save(model, path);
  } catch (e) {
    throw new FileError(`${path}: ${firstLine(e)}`);
  }
}

/** The ONNX protobuf bytes of `model` (what {@link saveModel} writes). */
export async function encodeModel(model: Model): Promise<Uint8Array> {
  const { encodeModel: encode } = await import('../onnx/proto.js');
  return encode(model);
}

/** Operators, parameter count, shapes and MACs of a model (what `privml info` prints). */
export async function modelInfo(model: Model): Promise<ModelInfo> {
  const { modelInfo: info } = await import('../onnx/info.js');
  return info(model);
}

/** Common interface of the plaintext sessions. */
export interface Session {
  /** Graph inputs that must be fed. */
  readonly inputNames: string[];
  /** Graph outputs. */
  readonly outputNames: string[];
  /** Run the model once on `feeds`. */
  run(feeds: Feeds): Promise<Feeds>;
  /** Free native/wasm memory; the session is unusable afterwards. */
  release(): Promise<void>;
}

/** privml's own float runtime (tfjs-wasm): the plaintext model every private protocol is compared with. */
export class FloatSession implements Session {
  private constructor(private readonly fm: FloatModel) {}

  /** Load `model` (a Model, an .onnx path or a zoo name). */
  static async create(model: Model | string): Promise<FloatSession> {
    const m = typeof model === 'string' ? await loadModel(model) : model;
    const { FloatModel } = await import('../nn/runtime.js');
    try {
      return new FloatSession(await FloatModel.create(m, { source: typeof model === 'string' ? model : m.graph.name }));
    } catch (e) {
      return typed(e);
    }
  }
  get inputNames(): string[] {
    return this.fm.inputNames;
  }
  get outputNames(): string[] {
    return this.fm.outputNames;
  }
  async run(feeds: Feeds): Promise<Feeds> {
    try {
      return this.fm.run(feeds);
    } catch (e) {
      return typed(e);
    }
  }
  async release(): Promise<void> {
    this.fm.dispose();
  }
}

/** onnxruntime-node over a privml Model: the ground truth privml's runtimes are tested against. */
export class InferenceSession implements Session {
  private constructor(
    private readonly model: Model,
    private readonly session: OrtSession,
  ) {}

  /** Load `model` (a Model, an .onnx path or a zoo name) into onnxruntime. */
  static async create(model: Model | string): Promise<InferenceSession> {
    const m = typeof model === 'string' ? await loadModel(model) : model;
    const { ortSession } = await import('../onnx/ort.js');
    try {
      return new InferenceSession(m, await ortSession(m));
    } catch (e) {
      return typed(e);
    }
  }
  get inputNames(): string[] {
    return [...this.session.inputNames];
  }
  get outputNames(): string[] {
    return [...this.session.outputNames];
  }
  async run(feeds: Feeds): Promise<Feeds> {
    const { runOrt } = await import('../onnx/ort.js');
    try {
      return await runOrt(this.model, feeds, this.session);
    } catch (e) {
      return typed(e);
    }
  }
  async release(): Promise<void> {
    await this.session.release();
  }
}
