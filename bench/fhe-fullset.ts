/**
 * CKKS accuracy on the whole Fashion-MNIST test set against the plaintext PAF model (issue 17), without
 * running 10,000 encrypted inferences (~6 h of CPU here). The plaintext PAF model runs on onnxruntime
 * over every test image; CKKS can change an image's class only if its error moves the two top logits
 * past each other, i.e. only where the plaintext top-2 margin (relative to the largest |logit|, the
 * scale `fhe run` reports errors in) is below twice the CKKS error. So: every image whose margin is
 * below `--margin` runs under CKKS (the risky ones), plus `--control` others spread evenly over the
 * rest, and the summary says whether `--margin` is above twice the largest error measured. Then the
 * CKKS accuracy over the full set is exact: the encrypted classes where they were run, the plaintext
 * classes (which CKKS cannot flip) elsewhere.
 *
 * Usage: node --import tsx bench/fhe-fullset.ts [--model models/fmnist-cnn.onnx] [--paf f1g2]
 *          [--margin 0.04] [--control 40] [--dry] > out.json      (needs the full Fashion-MNIST)
 * --dry: the plaintext pass only (counts, no encryption). Progress on stderr, JSON on stdout.
 */
import { fhe, loadDataset as loadDatasetSync, loadModel } from '../src/index.js';
import { floatTensor } from '../src/onnx/ir.js';
import { runOrt } from '../src/onnx/ort.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1]! : dflt);
const modelPath = opt('model', 'models/fmnist-cnn.onnx');
const pafName = opt('paf', 'f1g2');
const marginBound = Number(opt('margin', '0.04'));
const control = Number(opt('control', '40'));
const dry = argv.includes('--dry');

const test = loadDatasetSync('fashion-mnist', { split: 'test' });
// the calibration `privml fhe run --dataset fashion-mnist --paf NAME` uses: the set's first 16 images
const calib = loadDatasetSync('fashion-mnist', { split: 'test', limit: 16 });
const model = await fhe.pafModel(await loadModel(modelPath), pafName, calib);
const inputName = model.graph.inputs[0]!.name;
const outputName = model.graph.outputs[0]!.name;
const sz = test.shape[0] * test.shape[1] * test.shape[2];

// plaintext PAF model on onnxruntime, in chunks
const plainClass = new Int32Array(test.n);
const margin = new Float64Array(test.n);
let plainCorrect = 0;
for (let s = 0; s < test.n; s += 1000) {
  const n = Math.min(1000, test.n - s);
  const out = await runOrt(model, { [inputName]: floatTensor([n, ...test.shape], test.images.subarray(s * sz, (s + n) * sz)) });
  const logits = out[outputName]!.data as Float32Array;
  const k = logits.length / n;
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * k, (i + 1) * k);
    let a = 0;
    for (let j = 1; j < k; j++) if (row[j]! > row[a]!) a = j;
    let b = a === 0 ? 1 : 0;
    let top = 0;
    for (let j = 0; j < k; j++) {
      if (j !== a && row[j]! > row[b]!) b = j;
      top = Math.max(top, Math.abs(row[j]!));
    }
    plainClass[s + i] = a;
    margin[s + i] = (row[a]! - row[b]!) / top;
    if (a === test.labels[s + i]) plainCorrect++;
  }
}
const risky: number[] = [];
const rest: number[] = [];
for (let i = 0; i < test.n; i++) (margin[i]! < marginBound ? risky : rest).push(i);
const controls =
  control > 0 ? Array.from({ length: Math.min(control, rest.length) }, (_, j) => rest[Math.floor((j * rest.length) / Math.min(control, rest.length))]!) : [];
const chosen = [...risky, ...controls];
process.stderr.write(
  `plaintext PAF model: ${plainCorrect}/${test.n} correct; ${risky.length} images with margin < ${marginBound}, ${controls.length} controls\n`,
);

const summary: Record<string, unknown> = {
  model: modelPath,
  paf: pafName,
  images: test.n,
  plainAccuracy: plainCorrect / test.n,
  marginBound,
  risky: risky.length,
  controls: controls.length,
};
if (!dry) {
  // the chosen images as one data set, so one `fhe.run` (one key set, cached plaintexts) does them all
  const images = new Float32Array(chosen.length * sz);
  const labels = new Uint8Array(chosen.length);
  chosen.forEach((idx, j) => {
    images.set(test.images.subarray(idx * sz, (idx + 1) * sz), j * sz);
    labels[j] = test.labels[idx]!;
  });
  const subset = { ...test, name: `${test.name} (${chosen.length} chosen)`, images, labels, n: chosen.length };
  const t0 = performance.now();
  const res = await fhe.run(model, subset, {
    source: `${modelPath} (+${pafName})`,
    onProgress: (done, total) => process.stderr.write(`\r${done}/${total} encrypted inferences`),
  });
  process.stderr.write('\n');
  const fheClass = Int32Array.from(plainClass);
  let maxErr = 0;
  let riskyDisagree = 0;
  let controlDisagree = 0;
  res.results.forEach((r, j) => {
    const idx = chosen[j]!;
    fheClass[idx] = r.fheClass;
    maxErr = Math.max(maxErr, r.maxRelErrVsOrt);
    if (r.fheClass !== plainClass[idx]) j < risky.length ? riskyDisagree++ : controlDisagree++;
    if (r.ortClass !== plainClass[idx]) throw new Error(`image ${idx}: onnxruntime class differs between the two passes`);
  });
  let fheCorrect = 0;
  for (let i = 0; i < test.n; i++) if (fheClass[i] === test.labels[i]) fheCorrect++;
  Object.assign(summary, {
    encrypted: chosen.length,
    riskyDisagreements: riskyDisagree,
    controlDisagreements: controlDisagree,
    maxRelErrVsOrt: maxErr,
    // every untested image has margin ≥ marginBound; a flip needs an error of at least half its margin
    boundHolds: marginBound > 2 * maxErr,
    fheAccuracy: fheCorrect / test.n,
    accuracyGapPoints: (100 * (plainCorrect - fheCorrect)) / test.n,
    params: res.params,
    refreshRoundTripsPerImage: res.refreshRoundTripsPerImage,
    meanCpuSecondsAfterFirst: res.meanCpuSecondsAfterFirst,
    wallSeconds: (performance.now() - t0) / 1000,
  });
}
process.stdout.write(`${JSON.stringify(summary, null, 1)}\n`);
