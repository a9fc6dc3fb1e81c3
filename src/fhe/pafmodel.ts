/**
 * A development PAF model without training: every Relu replaced by a static-scale library PAF whose
 * scale is the largest |input| seen on a few calibration images (times a margin), then expanded
 * to plain ONNX with `privml.paf.*` metadata — the form `privml fhe` reads. Trained SmartPAF
 * models (`*.paf.onnx`) are consumed the same way.
 */
import { cloneModel, floatTensor, type Model, ModelError } from '../onnx/ir.js';
import { runOrt } from '../onnx/ort.js';
import { expandPafs, replaceActivations } from '../smartpaf/graph.js';
import { getPaf } from '../smartpaf/paf.js';

/** Max |value| of every Relu input over `images` (n images of shape `dims`, NCHW flat). */
export async function profileReluInputs(model: Model, images: Float32Array, n: number, dims: number[]): Promise<Record<string, number>> {
  const m = cloneModel(model);
  const relus = m.graph.nodes.filter((x) => x.opType === 'Relu');
  if (relus.length === 0) throw new ModelError(`${model.graph.name}: no Relu nodes to profile`);
  for (const r of relus) m.graph.outputs.push({ name: r.inputs[0]!, dtype: 'float32' });
  const input = m.graph.inputs.find((v) => !m.graph.initializers.has(v.name))!;
  const out = await runOrt(m, { [input.name]: floatTensor([n, ...dims], images.subarray(0, n * dims.reduce((a, b) => a * b, 1))) });
  const scales: Record<string, number> = {};
  for (const r of relus) {
    const t = out[r.inputs[0]!]!;
    let mx = 0;
    for (const v of t.data as Float32Array) mx = Math.max(mx, Math.abs(v));
    scales[r.name] = mx;
  }
  return scales;
}

/** Replace Relu by `paf` with profiled static scales (× `margin`) and expand; returns the model and scales. */
export async function makePafModel(
  model: Model,
  paf: string,
  images: Float32Array,
  n: number,
  dims: number[],
  margin = 1.1,
): Promise<{ model: Model; scales: Record<string, number> }> {
  const raw = await profileReluInputs(model, images, n, dims);
  const scales = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v * margin]));
  const nodes = replaceActivations(model, getPaf(paf), { scaleMode: 'static', scales, maxPool: false });
  return { model: expandPafs(nodes), scales };
}
