/**
 * The split FHE flow as separate processes (JSON on stdout): `fhe keygen` once, then per image
 * `fhe encrypt`, `fhe infer` (stops at each client-aided refresh), `fhe refresh`, `fhe infer --resume`
 * …, `fhe decrypt` — each under /usr/bin/time -v (wall, user+sys CPU, peak RSS) — and the decrypted
 * class against onnxruntime on the plaintext PAF model (the same ONNX graph).
 *   node --import tsx bench/fhe-split.ts [--model models/fmnist-cnn.onnx] [--paf f1g2] [--images 3] [--start 0]
 *       [--keygen-flags "--refresh"] [--dir /tmp/privml-fhe-split]
 * Runs the CLI from bin/privml.js (dist/ when built and current, else through tsx).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadDatasetSync } from '../src/api/data.js';
import { pafModel } from '../src/api/fhe.js';
import { compileModel } from '../src/fhe/compile.js';
import { floatTensor } from '../src/onnx/ir.js';
import { runOrt } from '../src/onnx/ort.js';
import { loadModel } from '../src/onnx/proto.js';

const arg = (name: string, d?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : d;
};
const modelPath = arg('model', 'models/fmnist-cnn.onnx')!;
const paf = arg('paf', 'f1g2')!;
const images = Number(arg('images', '3'));
const start = Number(arg('start', '0'));
const keygenFlags = (arg('keygen-flags', '--refresh') ?? '').split(' ').filter(Boolean);
const dir = arg('dir', '/tmp/privml-fhe-split')!;
const log = (s: string) => process.stderr.write(`${s}\n`);

interface Measured {
  step: string;
  wall: number;
  cpu: number;
  rssMB: number;
  json: Record<string, unknown>;
}

/** One CLI process under /usr/bin/time -v. */
function cli(step: string, args: string[]): Measured {
  const timeFile = join(dir, 'time.txt');
  const out = execFileSync('/usr/bin/time', ['-v', '-o', timeFile, process.execPath, 'bin/privml.js', 'fhe', ...args, '--json'], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const t = readFileSync(timeFile, 'utf8');
  const num = (re: RegExp) => Number(re.exec(t)![1]);
  const [, m, s] = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:\d+:)?(\d+):([\d.]+)/.exec(t)!;
  const r: Measured = {
    step,
    wall: Number(m) * 60 + Number(s),
    cpu: num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/),
    rssMB: Math.round(num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024),
    json: JSON.parse(out),
  };
  log(`${step}: ${r.wall.toFixed(1)} s wall, ${r.cpu.toFixed(1)} s CPU, ${r.rssMB} MB peak RSS`);
  return r;
}

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const keys = join(dir, 'keys');
const kg = cli('keygen', ['keygen', '--model', modelPath, '--paf', paf, '-o', keys, ...keygenFlags]);
const data = loadDatasetSync('fashion-mnist-sample', { split: 'test', limit: start + images });
const sz = data.shape[0] * data.shape[1] * data.shape[2];
// Plaintext PAF model on onnxruntime: the reference for agreement (same --paf construction as the CLI).
const model = await pafModel(await loadModel(modelPath), paf, loadDatasetSync('fashion-mnist-sample', { split: 'test', limit: 16 }));
const prog = compileModel(model, modelPath);
const ort = await runOrt(model, { [prog.inputName]: floatTensor([images, ...data.shape], data.images.subarray(start * sz, (start + images) * sz)) });
const ortLogits = ort[prog.outputName]!.data as Float32Array;
const per: Record<string, unknown>[] = [];
for (let i = 0; i < images; i++) {
  const idx = start + i;
  const steps: Measured[] = [];
  steps.push(cli('encrypt', ['encrypt', '--dataset', 'fashion-mnist-sample', '--index', String(idx), '--keys', keys, '-o', join(dir, 'x.ct')]));
  let input = join(dir, 'x.ct');
  let resume: string[] = [];
  for (let trip = 0; ; trip++) {
    const out = join(dir, `y${trip}.ct`);
    const inf = cli(`infer${trip}`, ['infer', modelPath, input, '--paf', paf, '--public-keys', join(keys, 'public'), '-o', out, ...resume]);
    steps.push(inf);
    const rf = inf.json['refresh'] as { state: string } | undefined;
    if (!rf) break;
    steps.push(cli(`refresh${trip}`, ['refresh', out, '--keys', keys, '-o', join(dir, `r${trip}.ct`)]));
    input = join(dir, `r${trip}.ct`);
    resume = ['--resume', rf.state];
    if (trip > 16) throw new Error('too many refresh round trips');
  }
  const last = steps.at(-1)!.json['out'] as string;
  const dec = cli('decrypt', ['decrypt', last, '--keys', keys]);
  steps.push(dec);
  const y = (dec.json['output'] as number[]).map(Number);
  const ortY = ortLogits.subarray(i * 10, i * 10 + 10);
  const argmax = (v: ArrayLike<number>) => Array.from(v).reduce((b, x, j, a) => (x > a[b]! ? j : b), 0);
  const maxAbs = Math.max(...Array.from(ortY, Math.abs));
  const relErr = Math.max(...y.map((v, j) => Math.abs(v - ortY[j]!))) / maxAbs;
  const infers = steps.filter((s) => s.step.startsWith('infer'));
  per.push({
    index: idx,
    label: data.labels[idx],
    fheClass: argmax(y),
    ortClass: argmax(ortY),
    maxRelErr: relErr,
    // Server time of the image: its infer processes (node start, context, keys, steps).
    serverWall: infers.reduce((a, s) => a + s.wall, 0),
    serverCpu: infers.reduce((a, s) => a + s.cpu, 0),
    serverStepCpu: infers.reduce((a, s) => a + Number(s.json['cpuSeconds']), 0),
    inferPeakRssMB: Math.max(...infers.map((s) => s.rssMB)),
    clientWall: steps.filter((s) => !s.step.startsWith('infer')).reduce((a, s) => a + s.wall, 0),
    totalWall: steps.reduce((a, s) => a + s.wall, 0),
    steps: steps.map(({ json: _j, ...s }) => s),
  });
}
const { json: _kj, ...keygen } = kg;
process.stdout.write(
  `${JSON.stringify(
    {
      model: modelPath,
      paf,
      keygenFlags,
      params: kg.json['params'],
      galoisKeys: (kg.json['galoisSteps'] as number[]).length,
      serverKeyBytes: kg.json['serverBytes'],
      keygen,
      agreement: per.filter((p) => p['fheClass'] === p['ortClass']).length / images,
      images: per,
    },
    null,
    2,
  )}\n`,
);
