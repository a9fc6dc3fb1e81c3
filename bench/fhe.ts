/**
 * FHE bench (JSON on stdout): per-PAF-layer latency at N=32768 on one ciphertext of slots (the
 * SmartPAF Table 4 shape: ReLU = u + u·sign(u) with each PAF's stages, same evaluator for all), and
 * end-to-end encrypted inference per image of a PAF fmnist-cnn (f1g2 with profiled static scales).
 *   node --import tsx bench/fhe.ts [--n 32768] [--images 1] [--skip-e2e] [--skip-layers] [--pafs f1g2,...]
 *       [--model models/fmnist-cnn-max.f1sq-g1sq.paf.onnx]   (a trained PAF model instead; client-aided refresh allowed)
 *   node --import tsx bench/fhe.ts --n 32768 --pairs 5 [--pafs f1sq-g1sq,minimax27]
 *       alternating same-process pairs of two PAF layers (each PAF keeps its own context and keys,
 *       created once); reports every pair's ratio and the median — one run of each is too noisy
 *       on a shared machine.
 */

import { compileModel, simulateProgram } from '../src/fhe/compile.js';
import { type Ciphertext, FheContext, galoisCacheSize, generateKeys } from '../src/fhe/context.js';
import { decryptOutput, decryptSlots, encryptInput, inferEncrypted, localRefresh, outputMeta } from '../src/fhe/executor.js';
import { HeEval } from '../src/fhe/ops.js';
import { makePafModel } from '../src/fhe/pafmodel.js';
import { chainFor, planFhe } from '../src/fhe/planner.js';
import { loadFashionMnistSample } from '../src/nn/data/index.js';
import { loadModel } from '../src/onnx/proto.js';
import { getPaf, PAF_NAMES } from '../src/smartpaf/paf.js';

const arg = (name: string, d?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : d;
};
const N = Number(arg('n', '32768'));
const images = Number(arg('images', '1'));
const pafs = (arg('pafs') ?? PAF_NAMES.join(',')).split(',');
const log = (s: string) => process.stderr.write(s + '\n');

/** A ReLU-layer runner for one PAF (context and keys made once); returns seconds per call. */
async function layerRunner(name: string): Promise<{ run(): number; dispose(): void; depth: number; primes: number }> {
  const paf = getPaf(name);
  const depth = paf.reluCost.depth;
  const params = { polyModulusDegree: N, primeBits: chainFor(depth, 40), scaleBits: 40 };
  const ctx = await FheContext.create(params);
  const keys = generateKeys(ctx, []);
  const he = new HeEval(ctx, keys.relinKeys, keys.galois);
  const x = Float64Array.from({ length: ctx.slots }, (_, i) => Math.sin(i) * 0.9);
  const enc = ctx.seal.Encryptor(ctx.context, keys.publicKey);
  const pt = ctx.encode(x, ctx.scale);
  const ct = enc.encrypt(pt) as Ciphertext;
  return {
    depth,
    primes: params.primeBits.length,
    run() {
      const t = performance.now();
      const y = he.pafRelu(ct, paf.stages, name);
      const s = (performance.now() - t) / 1000;
      y.delete();
      return s;
    },
    dispose() {
      for (const o of [ct, pt, enc]) o.delete();
      keys.dispose();
      ctx.dispose();
    },
  };
}

async function pairs(k: number): Promise<Record<string, unknown>> {
  const [a, b] = pafs as [string, string];
  const ra = await layerRunner(a);
  const rb = await layerRunner(b);
  const runs: { [k: string]: number }[] = [];
  for (let i = 0; i < k; i++) {
    // Alternate which goes first, so a load change hits both sides alike.
    const first = i % 2 === 0;
    const ta = first ? ra.run() : 0;
    const tb = rb.run();
    const ta2 = first ? ta : ra.run();
    runs.push({ [a]: +ta2.toFixed(3), [b]: +tb.toFixed(3), ratio: +(tb / ta2).toFixed(3) });
    log(`pair ${i + 1}: ${a} ${ta2.toFixed(2)} s, ${b} ${tb.toFixed(2)} s, ratio ${(tb / ta2).toFixed(2)}`);
  }
  ra.dispose();
  rb.dispose();
  const ratios = runs.map((r) => r['ratio']!).sort((x, y) => x - y);
  const med = (v: number[]) => (v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2);
  return {
    pafs: [a, b],
    depths: [ra.depth, rb.depth],
    primes: [ra.primes, rb.primes],
    runs,
    medianRatio: med(ratios),
    median: { [a]: med(runs.map((r) => r[a]!).sort((x, y) => x - y)), [b]: med(runs.map((r) => r[b]!).sort((x, y) => x - y)) },
  };
}

async function pafLayers(): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const name of pafs) {
    const paf = getPaf(name);
    const depth = paf.reluCost.depth;
    const params = { polyModulusDegree: N, primeBits: chainFor(depth, 40), scaleBits: 40 };
    const ctx = await FheContext.create(params);
    const keys = generateKeys(ctx, []);
    const { secretKey, ...server } = keys;
    const he = new HeEval(ctx, server.relinKeys, server.galois);
    const x = Float64Array.from({ length: ctx.slots }, (_, i) => Math.sin(i) * 0.9);
    const enc = ctx.seal.Encryptor(ctx.context, keys.publicKey);
    const pt = ctx.encode(x, ctx.scale);
    const ct = enc.encrypt(pt) as Ciphertext;
    const t = performance.now();
    const y = he.pafRelu(ct, paf.stages, name);
    const seconds = (performance.now() - t) / 1000;
    const got = decryptSlots(ctx, secretKey, y);
    let err = 0;
    for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(got[i]! - (x[i]! + x[i]! * paf.sign(x[i]!))));
    out.push({
      paf: name,
      title: paf.title,
      degree: paf.degree,
      depth,
      ctMults: he.stats.mults,
      scalarMults: he.stats.plainMults,
      seconds,
      maxAbsErrorVsFloat: err,
      primes: params.primeBits.length,
    });
    log(`${name}: ${seconds.toFixed(2)} s, depth ${depth}, ${he.stats.mults} ct mults`);
    for (const o of [ct, y, pt, enc]) o.delete();
    keys.dispose();
    ctx.dispose();
  }
  return out;
}

async function endToEnd(): Promise<Record<string, unknown>> {
  const ds = loadFashionMnistSample({ limit: Math.max(16, images) });
  const path = arg('model');
  const { model, scales } = path
    ? { model: loadModel(path), scales: undefined }
    : await makePafModel(loadModel('models/fmnist-cnn.onnx'), 'f1g2', ds.images, 16, ds.shape);
  const prog = compileModel(model, path ?? 'fmnist-cnn+f1g2');
  const plan = planFhe(prog, { degrees: [N], refresh: !!path });
  const ctx = await FheContext.create(plan.params);
  const keys = generateKeys(ctx, plan.lowered.rotationSteps, galoisCacheSize(plan.params));
  const { secretKey, ...server } = keys;
  const runs: Record<string, unknown>[] = [];
  try {
    for (let i = 0; i < images; i++) {
      const sz = 28 * 28;
      const x = ds.images.subarray(i * sz, (i + 1) * sz);
      const { ct } = encryptInput(ctx, keys.publicKey, plan.lowered.input, x);
      const res = await inferEncrypted(ctx, server, plan.lowered, ct, { refresh: localRefresh(ctx, secretKey, keys.publicKey) });
      const y = decryptOutput(ctx, secretKey, res.ct, outputMeta(plan.lowered, 'fmnist'));
      const ref = simulateProgram(prog, x).at(-1)!;
      const scale = Math.max(...Array.from(ref, Math.abs));
      let rel = 0;
      for (let j = 0; j < y.length; j++) rel = Math.max(rel, Math.abs(y[j]! - ref[j]!) / scale);
      const am = (v: ArrayLike<number>) => Array.from(v).indexOf(Math.max(...Array.from(v)));
      runs.push({
        image: i,
        refreshes: res.refreshes,
        seconds: res.seconds,
        keyGenSeconds: res.keySeconds,
        computeSeconds: res.computeSeconds,
        stats: res.stats,
        agree: am(y) === am(ref),
        maxRelErr: rel,
        steps: res.steps.map((s) => ({ name: s.name, seconds: +s.seconds.toFixed(3), level: s.level, rotations: s.rotations })),
      });
      log(`image ${i}: ${res.seconds.toFixed(1)} s total, ${res.computeSeconds.toFixed(1)} s compute, rel err ${rel.toExponential(2)}`);
      ct.delete();
      res.ct.delete();
    }
  } finally {
    keys.dispose();
    ctx.dispose();
  }
  return {
    model: path ?? 'fmnist-cnn (avg-pool) + f1g2, static scales profiled on 16 sample images',
    scales,
    params: plan.params,
    depth: plan.depth,
    refreshRoundTrips: plan.refreshes,
    rotations: plan.lowered.rotations,
    galoisKeys: plan.lowered.rotationSteps.length,
    runs,
    rssMB: Math.round(process.memoryUsage().rss / 1e6),
  };
}

const t0 = performance.now();
if (arg('pairs')) {
  process.stdout.write(JSON.stringify({ N, ...(await pairs(Number(arg('pairs')))), totalSeconds: (performance.now() - t0) / 1000 }, null, 2) + '\n');
  process.exit(0);
}
const layers = process.argv.includes('--skip-layers') ? [] : await pafLayers();
const byName: Record<string, number> = Object.fromEntries(layers.map((l) => [l.paf as string, l.seconds as number]));
const result: Record<string, unknown> = {
  N,
  slotsPerLayer: N / 2,
  pafLayers: layers,
  speedupVsMinimax27: Object.fromEntries(Object.entries(byName).map(([k, v]) => [k, byName['minimax27'] ? +(byName['minimax27']! / v).toFixed(2) : null])),
};
if (!process.argv.includes('--skip-e2e')) result['endToEnd'] = await endToEnd();
result['totalSeconds'] = (performance.now() - t0) / 1000;
process.stdout.write(JSON.stringify(result, null, 2) + '\n');
