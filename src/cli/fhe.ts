/**
 * `privml fhe`: CKKS encrypted inference of PAF models.
 *   plan MODEL            depth, ring degree, modulus chain, rotations (explained)
 *   keygen --model M -o keys/         client: secret key in keys/, server keys in keys/public/
 *   encrypt --keys keys/ (--dataset D --index I | --image x.json) -o x.ct
 *   infer MODEL x.ct --public-keys keys/public -o y.ct     server: refuses any secret key
 *   decrypt y.ct --keys keys/
 *   run MODEL --dataset D --limit N   all of it in one process, per-layer timing/level/precision
 * MODEL is a PAF model: PafRelu nodes or the expanded form with `privml.paf.layers` metadata;
 * `--paf NAME` makes a development PAF model from a plain ReLU model (scales profiled on 16 images).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { infer as apiInfer } from '../api/fhe.js';
import { compileModel, simulateProgram } from '../fhe/compile.js';
import {
  decodeCiphertext,
  encodeCiphertextPayload,
  FheContext,
  galoisCacheSize,
  galoisKeyBytes,
  generateKeys,
  hasSecretKey,
  KEY_FILES,
  loadClientKeys,
  readKeyParams,
  saveKeys,
  WASM_MEMORY_BYTES,
} from '../fhe/context.js';
import { predictCost } from '../fhe/cost.js';
import {
  decryptBatch,
  decryptOutput,
  encryptInput,
  encryptInputSeeded,
  inferEncrypted,
  localRefresh,
  type OutputMeta,
  outputMeta,
  precisionProbe,
  type StepReport,
} from '../fhe/executor.js';
import { inputLayout } from '../fhe/lower.js';
import { PlainCache } from '../fhe/ops.js';
import { makePafModel } from '../fhe/pafmodel.js';
import { type PlanOptions, planFhe, planSummary, splitFlowProblem } from '../fhe/planner.js';
import { floatTensor, type Model } from '../onnx/ir.js';
import { runOrt } from '../onnx/ort.js';
import { CliError, loadDataset, Progress, posInt, printJson, resolveModel } from './common.js';

interface PlanFlags {
  maskBits?: number;
  refresh?: boolean;
  network?: string;
  minScaleBits?: number;
  maxScaleBits?: number;
  paf?: string;
  json?: boolean;
}

async function pafModel(ref: string, flags: PlanFlags, dataset = 'fashion-mnist-sample'): Promise<{ model: Model; source: string }> {
  const { model, source } = resolveModel(ref);
  if (!flags.paf) return { model, source };
  const ds = loadDataset({ dataset, limit: 16 }, 'test');
  const r = await makePafModel(model, flags.paf, ds.images, ds.n, ds.shape);
  return { model: r.model, source: `${source} (+${flags.paf})` };
}

export function planOpts(f: PlanFlags): PlanOptions {
  for (const [flag, v] of [
    ['--min-scale-bits', f.minScaleBits],
    ['--max-scale-bits', f.maxScaleBits],
  ] as const) {
    if (v !== undefined && (v < 20 || v > 59)) throw new CliError(`${flag} must be between 20 and 59 (SEAL primes are 20..60 bits), got ${v}`, 2);
  }
  const lo = f.minScaleBits ?? Math.min(30, f.maxScaleBits ?? 30);
  const hi = f.maxScaleBits ?? Math.max(40, lo);
  if (lo > hi) throw new CliError(`--min-scale-bits ${lo} is larger than --max-scale-bits ${hi}`, 2);
  const [rttMs, mbitPerSecond] = (f.network ?? '20,100').split(',').map(Number);
  if (!(rttMs! >= 0) || !(mbitPerSecond! > 0)) throw new CliError(`--network must be 'rttMs,Mbit/s' like 20,100, got '${f.network}'`, 2);
  return { refresh: f.refresh, minScaleBits: lo, maxScaleBits: hi, network: { rttMs: rttMs!, mbitPerSecond: mbitPerSecond! }, maskBits: f.maskBits };
}

interface EncryptFlags {
  keys: string;
  dataset?: string;
  index: number;
  count: number;
  dims: string;
  out: string;
  json?: boolean;
}

/** `fhe encrypt --count n` (keys from `fhe keygen --batch`): images --index … of --dataset in one slot-batched ciphertext. */
async function encryptCount(image: string | undefined, f: EncryptFlags): Promise<void> {
  if (image || !f.dataset) throw new CliError('keys for several images per ciphertext: take the images from --dataset with --index/--count', 2);
  const ds = loadDataset({ dataset: f.dataset, limit: f.index + f.count }, 'test');
  if (f.index + f.count > ds.n) throw new CliError(`--index ${f.index} --count ${f.count} out of range (${ds.n} images)`);
  const sz = ds.shape[0] * ds.shape[1] * ds.shape[2];
  const xs = Array.from({ length: f.count }, (_, i) => ds.images.slice((f.index + i) * sz, (f.index + i + 1) * sz));
  const labels = Array.from(ds.labels.subarray(f.index, f.index + f.count));
  const r = await (await import('../api/fhe.js')).encryptImages(f.keys, xs, ds.shape, f.out, { labels });
  if (f.json) return printJson({ out: f.out, bytes: r.bytes, dims: ds.shape, images: r.images, batch: r.batch, labels });
  process.stdout.write(`${f.out}: ${(r.bytes / 1e6).toFixed(2)} MB, ${r.images} images (labels ${labels.join(', ')})\n`);
}

/** A non-negative integer flag (an index). */
const indexFlag = (name: string) => (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new CliError(`${name} must be an integer ≥ 0, got '${v}'`, 2);
  return n;
};

/** Read a JSON image file: an array of finite numbers whose length matches `dims`. */
function readJsonImage(path: string, dimsFlag: string): { x: Float32Array; dims: number[] } {
  const dims = dimsFlag.split(',').map((d) => Number(d));
  if (dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d < 1))
    throw new CliError(`--dims must be positive integers like 1,28,28, got '${dimsFlag}'`, 2);
  if (!existsSync(path)) throw new CliError(`${path}: no such file`, 2);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`${path}: not valid JSON (${(e as Error).message.slice(0, 80)})`, 2);
  }
  const flat = Array.isArray(v) ? (v as unknown[]).flat(3) : undefined;
  if (!flat) throw new CliError(`${path}: expected a JSON array of numbers`, 2);
  const want = dims.reduce((a, b) => a * b, 1);
  if (flat.length !== want) throw new CliError(`${path}: ${flat.length} values, but --dims ${dims.join(',')} needs ${want}`, 2);
  const bad = flat.findIndex((e) => typeof e !== 'number' || !Number.isFinite(e) || Math.abs(e) > 3.4e38);
  if (bad >= 0)
    throw new CliError(`${path}: value ${bad} is ${typeof flat[bad] === 'number' ? String(flat[bad]) : JSON.stringify(flat[bad])}, not a finite number`, 2);
  return { x: Float32Array.from(flat as number[]), dims };
}

const argmax = (v: ArrayLike<number>) => {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[b]!) b = i;
  return b;
};

function printSteps(steps: StepReport[]): void {
  for (const s of steps) {
    const prec = s.maxAbsError !== undefined ? `  err ${s.maxAbsError.toExponential(2)} (|ref| ≤ ${s.maxAbsRef!.toPrecision(3)})` : '';
    process.stdout.write(
      `  ${s.name.padEnd(22)} ${s.kind.padEnd(14)} ${s.seconds.toFixed(2).padStart(7)} s  level ${String(s.level).padStart(2)}  rot ${s.rotations}  mul ${s.mults}  pmul ${s.plainMults}${prec}\n`,
    );
  }
}

/** Register `privml fhe …`. */
export function registerFhe(program: Command): void {
  const fhe = program.command('fhe').description('CKKS encrypted inference of SmartPAF models (node-seal)');
  const common = (c: Command) =>
    c
      .option('--refresh', 'use client-aided refresh wherever it is predicted faster (by default only when nothing fits without)')
      .option('--no-refresh', 'never use client-aided refresh (fail when the depth does not fit)')
      .option('--network <rttMs,mbps>', 'network profile for refresh round trips', '20,100')
      .option('--mask-bits <n>', 'statistical hiding of a refresh mask in bits (room kept in the modulus)', posInt('--mask-bits'), 40)
      .option('--min-scale-bits <n>', 'smallest CKKS scale the planner may choose', posInt('--min-scale-bits'))
      .option('--max-scale-bits <n>', 'largest CKKS scale', posInt('--max-scale-bits'))
      .option('--paf <name>', 'make a development PAF model from a plain ReLU model (static scales profiled on 16 sample images)')
      .option('--json', 'machine-readable output');

  common(fhe.command('plan <model>').description('depth, ring degree, modulus chain and rotations of a PAF model')).action(
    async (ref: string, f: PlanFlags) => {
      const { model, source } = await pafModel(ref, f);
      const prog = compileModel(model, source);
      const plan = planFhe(prog, planOpts(f));
      const s = planSummary(plan, prog);
      if (f.json) return printJson(s);
      process.stdout.write(
        `${source} (${prog.form}): N=${plan.params.polyModulusDegree}, scale 2^${plan.params.scaleBits}, ${plan.params.primeBits.length} primes (${plan.totalBits}/${plan.maxBits} bits), depth ${plan.depth}, ${plan.refreshes} refresh round trips, ${plan.lowered.rotations} rotations, ${plan.lowered.rotationSteps.length} Galois keys\n`,
      );
      for (const st of plan.steps) process.stdout.write(`  ${st.name.padEnd(22)} ${st.kind.padEnd(14)} depth ${st.depth}  rot ${st.rotations}  ${st.note}\n`);
      for (const r of plan.rejected) process.stdout.write(`  rejected ${r}\n`);
      process.stdout.write(
        `choice: ${plan.choice}; predicted ${plan.chosen.predicted.totalSeconds.toFixed(1)} s (${plan.chosen.predicted.serverSeconds.toFixed(1)} s server CPU; ${plan.chosen.predicted.cachedTotalSeconds.toFixed(1)} s per image once the model plaintexts are cached), server keys ≈ ${(plan.chosen.predictedServerKeyBytes / 1e6).toFixed(0)} MB\n`,
      );
      for (const c of plan.candidates)
        process.stdout.write(
          `  candidate N=${c.polyModulusDegree} scale 2^${c.scaleBits} ${c.primes} primes, ${c.refreshes} refreshes: ${c.predicted.totalSeconds.toFixed(1)} s (${c.predicted.cachedTotalSeconds.toFixed(1)} s cached), keys ≈ ${(c.predictedServerKeyBytes / 1e6).toFixed(0)} MB\n`,
        );
    },
  );

  common(fhe.command('keygen').description('generate keys for a model (secret key stays in DIR, server keys in DIR/public)'))
    .requiredOption('--model <model>', 'PAF model the keys are for (decides parameters and rotation steps)')
    .requiredOption('-o, --out <dir>', 'key directory')
    .option('--batch <n>', 'images per ciphertext (slot batching, a power of two; fhe encrypt --count)', posInt('--batch'), 1)
    .action(async (f: PlanFlags & { model: string; out: string; batch: number }) => {
      const { model, source } = await pafModel(f.model, f);
      const plan = planFhe(compileModel(model, source), { ...planOpts(f), batch: f.batch });
      const problem = splitFlowProblem(plan, source);
      // Refresh chosen because nothing else fits: refuse before generating keys nobody can use.
      // Asked for with --refresh: keep going (key sizes of the refresh plan), but say it.
      if (problem && f.refresh !== true) throw new CliError(problem);
      if (problem) process.stderr.write(`note: ${problem}\n`);
      const ctx = await FheContext.create(plan.params);
      const t = performance.now();
      const keys = generateKeys(ctx, plan.lowered.rotationSteps, 1);
      try {
        const r = saveKeys(ctx, keys, f.out, { batch: f.batch });
        const out = {
          dir: f.out,
          keyId: keys.keyId,
          params: plan.params,
          galoisSteps: keys.galois.steps,
          files: r.files.length,
          bytes: r.bytes,
          serverBytes: r.serverBytes,
          seconds: (performance.now() - t) / 1000,
        };
        if (f.json) printJson(out);
        else
          process.stdout.write(
            `keys ${keys.keyId} in ${f.out} (server part: ${join(f.out, KEY_FILES.publicDir)}), ${out.galoisSteps.length} Galois keys, server keys ${(r.serverBytes / 1e6).toFixed(1)} MB (all files ${(r.bytes / 1e6).toFixed(1)} MB), ${out.seconds.toFixed(1)} s\n`,
          );
      } finally {
        keys.dispose();
        ctx.dispose();
      }
    });

  fhe
    .command('encrypt [image]')
    .description('client: encrypt one image (JSON array of floats, or --dataset/--index)')
    .requiredOption('--keys <dir>', 'key directory (public key used)')
    .option('--dataset <name>', 'data set to take the image from')
    .option('--index <i>', 'image index', indexFlag('--index'), 0)
    .option('--count <n>', 'with --dataset: images --index … --index+n−1 in one ciphertext (keys from fhe keygen --batch)', posInt('--count'), 1)
    .option('--dims <c,h,w>', 'image shape for a JSON image', '1,28,28')
    .requiredOption('-o, --out <file>', 'ciphertext file')
    .option('--json', 'machine-readable output')
    .action(async (image: string | undefined, f: EncryptFlags) => {
      if (f.count > 1 || readKeyParams(f.keys).batch > 1) return encryptCount(image, f);
      let x: Float32Array;
      let dims: number[];
      let label: number | undefined;
      if (image) {
        ({ x, dims } = readJsonImage(image, f.dims));
      } else if (f.dataset) {
        const ds = loadDataset({ dataset: f.dataset, limit: f.index + 1 }, 'test');
        if (f.index >= ds.n) throw new CliError(`--index ${f.index} out of range (${ds.n} images)`);
        const sz = ds.shape[0] * ds.shape[1] * ds.shape[2];
        x = ds.images.slice(f.index * sz, (f.index + 1) * sz);
        dims = ds.shape;
        label = ds.labels[f.index];
      } else throw new CliError('give an image file or --dataset', 2);
      const { params } = readKeyParams(f.keys);
      const ctx = await FheContext.create(params);
      const keys = loadClientKeys(ctx, f.keys);
      try {
        const { payload, meta } = encryptInputSeeded(ctx, keys.publicKey, keys.secretKey, inputLayout(dims, ctx.slots, image ?? f.dataset!), x);
        const bytes = encodeCiphertextPayload(ctx, keys.keyId, payload, { ...meta, label });
        writeFileSync(f.out, bytes);
        if (f.json) printJson({ out: f.out, bytes: bytes.length, dims, label });
        else process.stdout.write(`${f.out}: ${(bytes.length / 1e6).toFixed(2)} MB${label !== undefined ? ` (label ${label})` : ''}\n`);
      } finally {
        keys.dispose();
        ctx.dispose();
      }
    });

  common(fhe.command('infer <model> <ct>').description('server: run a PAF model on an encrypted image (no secret key here)'))
    .requiredOption('--public-keys <dir>', 'server keys (the public subdirectory of keygen output)')
    .requiredOption('-o, --out <file>', 'output ciphertext file')
    .action(async (ref: string, ctPath: string, f: PlanFlags & { publicKeys: string; out: string }) => {
      if (hasSecretKey(f.publicKeys))
        throw new CliError(`${f.publicKeys}: holds a secret key; the server must only get the public keys (pass ${join(f.publicKeys, KEY_FILES.publicDir)})`);
      const { model, source } = await pafModel(ref, f);
      // The API's infer is the one server implementation (checks, keys, run, output file).
      const out = await apiInfer(model, ctPath, f.publicKeys, f.out, { source });
      if (f.json) printJson(out);
      else {
        process.stdout.write(`${f.out}: ${out.seconds.toFixed(1)} s (${out.keySeconds.toFixed(1)} s loading Galois keys)\n`);
        printSteps(out.steps);
      }
    });

  fhe
    .command('decrypt <ct>')
    .description('client: decrypt an output ciphertext')
    .requiredOption('--keys <dir>', 'key directory with the secret key')
    .option('--json', 'machine-readable output')
    .action(async (ctPath: string, f: { keys: string; json?: boolean }) => {
      if (!existsSync(join(f.keys, KEY_FILES.secret))) throw new CliError(`${f.keys}: no secret key (${KEY_FILES.secret}) here`);
      const { params } = readKeyParams(f.keys);
      const ctx = await FheContext.create(params);
      const keys = loadClientKeys(ctx, f.keys);
      try {
        const { ct, meta } = decodeCiphertext(ctx, keys.keyId, readFileSync(ctPath), ctPath);
        if (meta['role'] !== 'output') {
          ct.delete();
          throw new CliError(`${ctPath}: not a model output ciphertext`);
        }
        try {
          const ys = decryptBatch(ctx, keys.secretKey, ct, meta as OutputMeta);
          const outs = ys.map((y) => ({ output: Array.from(y), argmax: argmax(y) }));
          // A slot-batched output (fhe encrypt --count): one entry per image.
          if (f.json) printJson(meta['batch'] ? { images: outs } : outs[0]);
          else for (const o of outs) process.stdout.write(`class ${o.argmax}  [${o.output.map((v) => v.toFixed(4)).join(', ')}]\n`);
        } finally {
          ct.delete();
        }
      } finally {
        keys.dispose();
        ctx.dispose();
      }
    });

  common(
    fhe
      .command('session <model>')
      .description('server for one client that keeps its keys (run by privml serve --fhe over IPC): keys once, then encrypted images'),
  )
    .option('--ipc', 'talk to the parent process (required: privml serve starts this)')
    .action(async (ref: string, f: PlanFlags & { ipc?: boolean }) => {
      if (!f.ipc || !process.send) throw new CliError('fhe session only talks to privml serve over IPC (--ipc, started by serve --fhe)', 2);
      const { model, source } = await pafModel(ref, f);
      const { FheServerSession } = await import('../api/fhe-session.js');
      const send = (m: unknown) => process.send!(m);
      // The same planning options as `fhe run` (refresh allowed: the page is online for round trips).
      const session = await FheServerSession.create(model, { ...planOpts({ ...f, refresh: f.refresh ?? true }), source }, (frame) =>
        send({ type: 'frame', data: frame }),
      );
      process.on('message', (m: { type?: string; data?: Uint8Array }) => {
        if (m?.type === 'frame' && m.data instanceof Uint8Array) session.handle(m.data);
      });
      send({ type: 'plan', plan: session.plan });
      // The parent (serve) ends the session by disconnecting or killing this process.
      await new Promise<void>((r) => process.once('disconnect', () => r()));
      session.dispose();
    });

  common(
    fhe.command('run <model>').description('encrypt, infer and decrypt test images in one process, with a per-layer report (refresh allowed wherever faster)'),
  )
    .option('--dataset <name>', 'data set', 'fashion-mnist-sample')
    .option('--limit <n>', 'number of test images', posInt('--limit'), 1)
    .option('--start <i>', 'index of the first test image (to split a long run across processes)', indexFlag('--start'), 0)
    .option('--steps', 'per-step report for every image in --json (default: first image only)')
    .option('--cache-mb <n>', 'WASM memory for model plaintexts reused across images (0: encode per use)', (v) => Number(v), 1000)
    .option('--queue <url>', 'run the inferences as jobs of `privml worker`s on this Redis (this process keeps the keys, encrypts and decrypts)')
    .option('--per-job <n>', 'with --queue: images per job', posInt('--per-job'), 1)
    .option('--batch <n>', 'images per ciphertext (slot batching, a power of two): one evaluation classifies n images', posInt('--batch'), 1)
    .action(
      async (
        ref: string,
        f: PlanFlags & { dataset: string; limit: number; start: number; steps?: boolean; cacheMb: number; queue?: string; perJob: number; batch: number },
      ) => {
        if (f.batch > 1 && f.queue) throw new CliError('--batch is not supported with --queue yet (jobs carry one image per ciphertext)', 2);
        if (f.queue) {
          const { model, source } = await pafModel(ref, f, f.dataset);
          // Planned as the local run plans (plaintexts cached: workers keep a loaded server across jobs),
          // except that a queued job cannot make refresh round trips.
          return (await import('./queue-hooks.js')).fheRunQueued(model, source, { ...planOpts(f), cachedPlaintexts: f.cacheMb > 0 }, { ...f, queue: f.queue });
        }
        if (!(f.cacheMb >= 0)) throw new CliError(`--cache-mb must be a number ≥ 0, got ${f.cacheMb}`, 2);
        if (!Number.isInteger(f.start) || f.start < 0) throw new CliError(`--start must be an integer ≥ 0, got ${f.start}`, 2);
        const { model, source } = await pafModel(ref, f, f.dataset);
        const prog = compileModel(model, source);
        // The client is in this process, so client-aided refresh is allowed wherever it is predicted
        // faster (--no-refresh forbids it); the split keygen/infer flow has no client to refresh.
        // With the plaintext cache on, every image after the first skips the model encodes: rank plans by that time.
        const plan = planFhe(prog, { ...planOpts({ ...f, refresh: f.refresh ?? true }), cachedPlaintexts: f.cacheMb > 0 });
        const all = loadDataset({ dataset: f.dataset, limit: f.start + f.limit }, 'test');
        if (f.start >= all.n) throw new CliError(`--start ${f.start} out of range (${all.n} images)`, 2);
        const sz0 = all.shape[0] * all.shape[1] * all.shape[2];
        const ds = { ...all, n: all.n - f.start, images: all.images.subarray(f.start * sz0, all.n * sz0), labels: all.labels.subarray(f.start, all.n) };
        if (ds.shape.join(',') !== prog.inputDims.join(','))
          throw new CliError(`${source}: expects images [${prog.inputDims}], ${f.dataset} has [${ds.shape}]`);
        const sz = ds.shape[0] * ds.shape[1] * ds.shape[2];
        // Plaintext PAF model on onnxruntime (the same ONNX graph): the reference for agreement.
        const ortOut = await runOrt(model, { [prog.inputName]: floatTensor([ds.n, ...ds.shape], ds.images.subarray(0, ds.n * sz)) });
        const ortLogits = ortOut[prog.outputName]!.data as Float32Array;
        const outSize = ortLogits.length / ds.n;
        if (f.batch > 1) {
          const { runBatched } = await import('../api/fhe-batch.js');
          const bar = new Progress(!f.json);
          bar.start('fhe run', Math.ceil(ds.n / f.batch));
          const r = await runBatched(model, source, ds, ortLogits, {
            ...planOpts({ ...f, refresh: f.refresh ?? true }),
            batch: f.batch,
            cacheMb: f.cacheMb,
            allSteps: f.steps,
            start: f.start,
            onBatch: (done, _t, line) => (
              bar.update(done, `${Number(line['seconds']).toFixed(1)} s/batch`), f.json && process.stderr.write(`${JSON.stringify(line)}\n`)
            ),
          }).finally(() => bar.stop());
          if (f.json) return printJson(r);
          const a = r['amortizedSecondsPerImage'] as number | undefined;
          return void process.stdout.write(
            `${source}: ${f.batch} images per ciphertext, N=${(r['params'] as { polyModulusDegree: number }).polyModulusDegree}; ${r['images']} images, agreement with the plaintext PAF model ${(100 * (r['agreementWithPlaintextPaf'] as number)).toFixed(1)}%, ${a === undefined ? 'one batch' : `${a.toFixed(2)} s/image amortized after the first batch`}\n`,
          );
        }
        const ctx = await FheContext.create(plan.params);
        // Model plaintexts are encoded once and reused for every image, in the WASM memory that all
        // Galois keys (+ SEAL's pools) leave free, at most --cache-mb; Galois keys keep priority.
        const keyBytes = galoisKeyBytes(plan.params);
        const cacheBytes = Math.max(0, Math.min(f.cacheMb * 1e6, WASM_MEMORY_BYTES - (plan.lowered.rotationSteps.length + 10) * keyBytes));
        const cache = new PlainCache(cacheBytes);
        const cacheStats = { mb: 0, hits: 0, misses: 0 };
        const cached = galoisCacheSize(plan.params, WASM_MEMORY_BYTES - cacheBytes);
        const keys = generateKeys(ctx, plan.lowered.rotationSteps, cached);
        const { secretKey, ...server } = keys;
        const bar = new Progress(!f.json);
        const mem = () => {
          const u = process.memoryUsage();
          // WebAssembly memory is counted in `external` (not in `arrayBuffers`); it grows and never shrinks.
          return { rssMB: Math.round(u.rss / 1e6), wasmHeapMB: Math.round((u.external - u.arrayBuffers) / 1e6) };
        };
        const mem0 = mem();
        const predicted = predictCost(plan.lowered, plan.params.polyModulusDegree, plan.levels, plan.network);
        // After the first image the model plaintexts come from the cache (when it holds them).
        const predictedCached = predictCost(plan.lowered, plan.params.polyModulusDegree, plan.levels, plan.network, { cachedPlaintexts: true });
        const results: {
          index: number;
          label: number;
          plainClass: number;
          ortClass: number;
          fheClass: number;
          maxRelErr: number;
          maxRelErrVsOrt: number;
          seconds: number;
          computeSeconds: number;
          cpuSeconds: number;
          refreshes: number;
          rssMB: number;
          wasmHeapMB: number;
          steps?: StepReport[];
        }[] = [];
        try {
          bar.start('fhe run', ds.n);
          for (let i = 0; i < ds.n; i++) {
            const x = ds.images.subarray(i * sz, (i + 1) * sz);
            const { ct } = encryptInput(ctx, keys.publicKey, plan.lowered.input, x);
            let res;
            try {
              res = await inferEncrypted(ctx, server, plan.lowered, ct, {
                onStep: precisionProbe(ctx, secretKey, prog, plan.lowered, x),
                refresh: localRefresh(ctx, secretKey, keys.publicKey),
                cache,
              });
            } finally {
              ct.delete();
            }
            let y: Float64Array;
            try {
              y = decryptOutput(ctx, secretKey, res.ct, outputMeta(plan.lowered, source));
            } finally {
              res.ct.delete();
            }
            const ref = simulateProgram(prog, x).at(-1)!;
            const ortY = ortLogits.subarray(i * outSize, (i + 1) * outSize);
            const relErr = (want: ArrayLike<number>) => {
              const scale = Math.max(...Array.from(want, Math.abs));
              let rel = 0;
              for (let j = 0; j < y.length; j++) rel = Math.max(rel, Math.abs(y[j]! - want[j]!) / scale);
              return rel;
            };
            results.push({
              index: f.start + i,
              label: ds.labels[i]!,
              plainClass: argmax(ref),
              ortClass: argmax(ortY),
              fheClass: argmax(y),
              maxRelErr: relErr(ref),
              maxRelErrVsOrt: relErr(ortY),
              seconds: res.seconds,
              computeSeconds: res.computeSeconds,
              cpuSeconds: res.cpuSeconds,
              refreshes: res.refreshes,
              ...mem(),
              steps:
                i === 0 || f.steps
                  ? res.steps.map((st, k) => ({ ...st, predictedSeconds: +(i > 0 && cacheBytes > 0 ? predictedCached : predicted).steps[k]!.toFixed(3) }))
                  : undefined,
            });
            bar.update(i + 1, `${res.seconds.toFixed(1)} s/img`);
            if (f.json) {
              // One line per image on stderr, so a long run can be read while it is going.
              const { steps: _s, ...line } = results.at(-1)!;
              process.stderr.write(JSON.stringify(line) + '\n');
            }
          }
        } finally {
          bar.stop();
          cacheStats.mb = Math.round(cache.bytes / 1e6);
          cacheStats.hits = cache.hits;
          cacheStats.misses = cache.misses;
          cache.dispose();
          keys.dispose();
          ctx.dispose();
        }
        const n = results.length;
        const agree = results.filter((r) => r.ortClass === r.fheClass).length / n;
        const agreeSim = results.filter((r) => r.plainClass === r.fheClass).length / n;
        const acc = results.filter((r) => r.label === r.fheClass).length / n;
        const plainAcc = results.filter((r) => r.label === r.ortClass).length / n;
        // Memory after the second image (keys generated, pools warm) against the last one.
        const warm = results[Math.min(1, n - 1)]!;
        const summary = {
          model: source,
          form: prog.form,
          params: plan.params,
          depth: plan.depth,
          levelsPerChain: plan.levels,
          refreshRoundTripsPerImage: plan.refreshes,
          refreshRoundTripsTotal: results.reduce((a, r) => a + r.refreshes, 0),
          galoisKeys: plan.lowered.rotationSteps.length,
          galoisKeysCached: cached,
          images: n,
          agreementWithPlaintextPaf: agree,
          agreementWithFloat64Reference: agreeSim,
          accuracy: acc,
          plaintextPafAccuracy: plainAcc,
          maxRelErr: Math.max(...results.map((r) => r.maxRelErrVsOrt)),
          maxRelErrVsFloat64: Math.max(...results.map((r) => r.maxRelErr)),
          meanSecondsPerImage: results.reduce((a, r) => a + r.seconds, 0) / n,
          meanComputeSecondsPerImage: results.reduce((a, r) => a + r.computeSeconds, 0) / n,
          cpuSecondsFirstImage: results[0]!.cpuSeconds,
          meanCpuSecondsAfterFirst: n > 1 ? results.slice(1).reduce((a, r) => a + r.cpuSeconds, 0) / (n - 1) : undefined,
          plaintextCache: cacheStats,
          predictedSecondsPerImage: predicted.totalSeconds,
          predictedSecondsPerImageCached: predictedCached.totalSeconds,
          choice: plan.choice,
          memory: {
            beforeFirstImage: mem0,
            afterImage2: { rssMB: warm.rssMB, wasmHeapMB: warm.wasmHeapMB },
            afterLastImage: { rssMB: results[n - 1]!.rssMB, wasmHeapMB: results[n - 1]!.wasmHeapMB },
            wasmHeapGrowthAfterImage2MB: results[n - 1]!.wasmHeapMB - warm.wasmHeapMB,
            rssGrowthAfterImage2MB: results[n - 1]!.rssMB - warm.rssMB,
          },
          results,
        };
        if (f.json) return printJson(summary);
        process.stdout.write(
          `${source}: N=${plan.params.polyModulusDegree}, depth ${plan.depth} (${plan.levels} levels per chain), ${plan.refreshes} client-aided refresh round trips/image (${summary.refreshRoundTripsTotal} in total); ${n} images, agreement with the plaintext PAF model (onnxruntime) ${(100 * agree).toFixed(1)}%, accuracy ${(100 * acc).toFixed(1)}% (plaintext ${(100 * plainAcc).toFixed(1)}%), max rel err vs onnxruntime ${summary.maxRelErr.toExponential(2)}, ${summary.meanSecondsPerImage.toFixed(1)} s/image (${summary.meanComputeSecondsPerImage.toFixed(1)} s without key generation); RSS ${warm.rssMB} → ${results[n - 1]!.rssMB} MB, WASM heap ${warm.wasmHeapMB} → ${results[n - 1]!.wasmHeapMB} MB (image ${Math.min(2, n)} → ${n})\n`,
        );
        printSteps(results[0]!.steps!);
      },
    );
}
