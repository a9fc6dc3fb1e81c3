/**
 * `privml demo` as an API entry: the committed pretrained fmnist-cnn on the committed Fashion-MNIST
 * sample, in the float runtime, in onnxruntime (the ground truth) and with two-party private
 * inference; offline.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelError, ProtocolError } from '../errors.js';
import { typed } from './core.js';
import { loadDatasetSync } from './data.js';
import type { InferResult } from './mpc-session.js';

/** Options of {@link demo}. */
export interface DemoOptions {
  /** Model file instead of the committed default (models/fmnist-cnn.onnx). */
  model?: string;
  /** Use only the first N sample images. */
  limit?: number;
  /** Images classified with two-party private inference (default 20; 0 skips it). */
  private?: number;
  /** Progress lines (what the command prints). */
  log?: (line: string) => void;
  /** Float-runtime progress: images done of total. */
  onProgress?: (done: number, total: number) => void;
}

/** What {@link demo} measured (the JSON `privml demo --json` prints). */
export interface DemoResult {
  model: string;
  parameters: number;
  macs: number;
  images: number;
  floatRuntime: { accuracy: number; imagesPerSecond: number; confusion: number[][] };
  onnxruntime: { accuracy: number; imagesPerSecond: number; agreement: number };
  privateInference?: Pick<InferResult, 'batch' | 'agreement' | 'msPerBatch' | 'bytesSentPerBatch' | 'roundsPerBatch'> & { images: number };
  next: string[];
}

/** The other pillars, pointed to so a user knows where to go next (too slow or too large for the demo). */
export const NEXT = [
  'smartpaf: npx privml smartpaf models/fmnist-cnn-max.onnx --dataset fashion-mnist --paf f1sq-g1sq --techniques ct,pa,at,ss -o m.paf.onnx',
  'fhe: npx privml fhe run models/fmnist-cnn.onnx --paf f1g2 --dataset fashion-mnist-sample --limit 1 (CKKS: ~12 s for the whole command here, of which ~4.5 s from key generation to the answer)',
  'proteus: npx privml proteus obfuscate models/fmnist-cnn.onnx -k 20 -o bundle/ --key owner.key',
];

/** Path of the committed pretrained default model. */
export async function defaultModelPath(): Promise<string> {
  const { packageRoot } = await import('../nn/data/paths.js');
  return join(packageRoot(), 'models', 'fmnist-cnn.onnx');
}

/** Run the demo; the result says whether the runtimes agreed ({@link checkDemo} turns a disagreement into an error). */
export async function demo(o: DemoOptions = {}): Promise<DemoResult> {
  const path = o.model ?? (await defaultModelPath());
  if (!existsSync(path)) throw new ModelError(`${path}: model not found`);
  const log = o.log ?? (() => {});
  const { loadModel } = await import('../onnx/proto.js');
  const { modelInfo } = await import('../onnx/info.js');
  const { FloatModel } = await import('../nn/runtime.js');
  const { evaluate } = await import('../nn/train.js');
  const { ortSession, runOrt } = await import('../onnx/ort.js');
  let model: import('../onnx/ir.js').Model;
  try {
    model = loadModel(path);
  } catch (e) {
    return typed(e);
  }
  const info = modelInfo(model);
  const ds = loadDatasetSync('fashion-mnist-sample', { limit: o.limit });
  log(`privml demo — model ${path}`);
  log(`  ${info.nodes} nodes, ${info.parameters.toLocaleString('en-US')} parameters, ${(info.macs / 1e6).toFixed(2)} M MACs per image`);
  const trained = model.metadata['privml.trained'];
  if (trained) log(`  trained: ${trained}`);

  const fm = await FloatModel.create(model, { source: path }).catch(typed);
  const t0 = performance.now();
  let r: import('../nn/train.js').EvalResult;
  try {
    r = evaluate(fm, ds, { onBatch: (n) => o.onProgress?.(n, ds.n) });
  } finally {
    fm.dispose();
  }
  const floatSeconds = (performance.now() - t0) / 1000;
  log(`  float runtime (tfjs-wasm): top-1 accuracy ${pct(r.accuracy)} on ${ds.n} test images (${(ds.n / floatSeconds).toFixed(0)} images/s)`);

  // Ground truth: onnxruntime on the same images must agree with the float runtime.
  const session = await ortSession(model);
  const input = model.graph.inputs[0]!.name;
  const output = model.graph.outputs[0]!.name;
  const t1 = performance.now();
  const ref = await runOrt(model, { [input]: { dtype: 'float32', dims: [ds.n, ...ds.shape], data: ds.images } }, session).finally(() => session.release());
  const ortSeconds = (performance.now() - t1) / 1000;
  const logits = ref[output]!.data as Float32Array;
  const k = ds.classes.length;
  let agree = 0;
  let ortCorrect = 0;
  for (let i = 0; i < ds.n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (logits[i * k + j]! > logits[i * k + best]!) best = j;
    if (best === r.predictions[i]) agree++;
    if (best === ds.labels[i]) ortCorrect++;
  }
  log(`  onnxruntime-node:          top-1 accuracy ${pct(ortCorrect / ds.n)}; predictions agree with the float runtime on ${agree}/${ds.n}`);
  let priv: InferResult | undefined;
  const nPrivate = o.private ?? 20;
  if (nPrivate > 0) {
    // The main job: the same images, classified without party 1 ever seeing them.
    const n = Math.min(nPrivate, ds.n);
    const { defaultJobFlags, privateInference } = await import('./mpc-session.js');
    priv = await privateInference(path, defaultJobFlags({ dataset: 'fashion-mnist-sample', limit: n, batch: Math.min(10, n) }));
    log(
      `  private inference (dealer + 2 parties over TCP, sign-only ReLU): ${n} images, agreement with plaintext ${pct(priv.agreement)}, ` +
        `${priv.msPerBatch.toFixed(1)} ms per batch of ${priv.batch}, ` +
        `${(priv.bytesSentPerBatch[0]! / 1e6).toFixed(2)} MB sent per party per batch, ` +
        `${priv.roundsPerBatch} rounds`,
    );
  }
  log('  also try:');
  for (const n of NEXT) log(`    - ${n}`);
  return {
    model: path,
    parameters: info.parameters,
    macs: info.macs,
    images: ds.n,
    floatRuntime: { accuracy: r.accuracy, imagesPerSecond: ds.n / floatSeconds, confusion: r.confusion },
    onnxruntime: { accuracy: ortCorrect / ds.n, imagesPerSecond: ds.n / ortSeconds, agreement: agree / ds.n },
    privateInference: priv && {
      images: priv.count,
      batch: priv.batch,
      agreement: priv.agreement,
      msPerBatch: priv.msPerBatch,
      bytesSentPerBatch: priv.bytesSentPerBatch,
      roundsPerBatch: priv.roundsPerBatch,
    },
    next: NEXT,
  };
}

/** Throw a ProtocolError when the demo's runtimes disagreed (float vs onnxruntime, private vs plaintext). */
export function checkDemo(r: DemoResult): void {
  const n = r.images;
  const off = Math.round((1 - r.onnxruntime.agreement) * n);
  if (off !== 0) throw new ProtocolError(`float runtime and onnxruntime disagree on ${off} of ${n} images`);
  const p = r.privateInference;
  if (p && p.agreement < 1)
    throw new ProtocolError(`private inference disagrees with the plaintext model on ${Math.round((1 - p.agreement) * p.images)} images`);
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
