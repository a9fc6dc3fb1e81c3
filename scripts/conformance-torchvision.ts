/**
 * `node --import tsx scripts/conformance-torchvision.ts DIR [--reps N] [--threads N] [--only A,B]
 * [--conv-kernel auto|sgemm|tfjs]` (the float runtime's convolution kernels; default auto): for every
 * DIR/NAME.onnx with DIR/NAME.input.npy (torchvision exports, see the report), the float runtime's
 * max relative difference to onnxruntime and the batch-1 latency ratio float/onnxruntime (median of
 * alternating pairs after a warm-up). Models are not committed (tens to hundreds of MB).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { FloatModel } from '../src/nn/runtime.js';
import { loadNpy } from '../src/onnx/npy.js';
import { toOrtTensor } from '../src/onnx/ort.js';
import { encodeModel, loadModel } from '../src/onnx/proto.js';

const args = process.argv.slice(2);
const dir = args[0] ?? '/tmp/tv';
const opt = (k: string, d: number): number => (args.includes(k) ? Number(args[args.indexOf(k) + 1]) : d);
const reps = opt('--reps', 5);
const threads = opt('--threads', 1);
const convKernel = args.includes('--conv-kernel') ? args[args.indexOf('--conv-kernel') + 1] : 'auto';
const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',') : undefined;
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

for (const f of readdirSync(dir)
  .filter((x) => x.endsWith('.onnx'))
  .sort()) {
  const name = f.slice(0, -5);
  if (only && !only.includes(name)) continue;
  const model = loadModel(join(dir, f));
  const x = loadNpy(join(dir, `${name}.input.npy`));
  const inName = model.graph.inputs[0]!.name;
  const outName = model.graph.outputs[0]!.name;
  const sess = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const fm = await FloatModel.create(model, { source: name, options: { convKernel } });
  const runOrt = async (): Promise<Float32Array> => (await sess.run({ [inName]: toOrtTensor(x) }))[outName]!.data as Float32Array;
  const runF = (): Float32Array => fm.run({ [inName]: x })[outName]!.data as Float32Array;
  const ref = await runOrt();
  const got = runF();
  runF(); // the second run must work too (weights never freed)
  let scale = 0;
  let d = 0;
  for (let i = 0; i < ref.length; i++) {
    scale = Math.max(scale, Math.abs(ref[i]!));
    d = Math.max(d, Math.abs(ref[i]! - got[i]!));
  }
  const tf: number[] = [];
  const to: number[] = [];
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    runF();
    tf.push(performance.now() - t);
    t = performance.now();
    await runOrt();
    to.push(performance.now() - t);
  }
  fm.dispose();
  await sess.release();
  const line = {
    model: name,
    maxRelDiff: d / scale,
    floatMs: Math.round(median(tf)),
    ortMs: Math.round(median(to)),
    ratio: +(median(tf) / median(to)).toFixed(2),
  };
  process.stdout.write(JSON.stringify(line) + '\n');
}
