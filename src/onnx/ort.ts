/** onnxruntime-node as privml's ground truth: run an IR model on plain tensors. */
import * as ort from 'onnxruntime-node';
import { type DType, type Model, ModelError, type Tensor } from './ir.js';
import { encodeModel } from './proto.js';

/** An onnxruntime session over an IR model. */
export async function ortSession(model: Model, opts: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3, ...opts });
  } catch (e) {
    throw new ModelError(`onnxruntime rejected model '${model.graph.name}': ${(e as Error).message.split('\n')[0]}`);
  }
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32',
  float64: 'float64',
  int64: 'int64',
  int32: 'int32',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

/** Convert an IR tensor to an ort.Tensor. */
export function toOrtTensor(t: Tensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new Error(`dtype ${t.dtype} cannot be fed to onnxruntime`);
  return new ort.Tensor(type, t.data as never, t.dims);
}

/** Run `model` once in onnxruntime; outputs come back as IR tensors (float32/int64 kept). */
export async function runOrt(model: Model, feeds: Record<string, Tensor>, session?: ort.InferenceSession): Promise<Record<string, Tensor>> {
  const s = session ?? (await ortSession(model));
  try {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = toOrtTensor(v);
    const out = await s.run(f);
    const res: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) {
      const dtype: DType = v.type === 'int64' ? 'int64' : v.type === 'float64' ? 'float64' : 'float32';
      res[k] = { dtype, dims: [...v.dims], data: v.data as Tensor['data'] };
    }
    return res;
  } finally {
    if (!session) await s.release();
  }
}
