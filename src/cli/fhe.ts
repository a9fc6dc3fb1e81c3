/**
 * `privml fhe`: CKKS encrypted inference of PAF models.
 *   plan MODEL            depth, ring degree, modulus chain, rotations (explained)
 *   keygen --model M -o keys/         client: secret key in keys/, server keys in keys/public/
 *   encrypt --keys keys/ (--dataset D --index I | --image x.json) -o x.ct
 *   infer MODEL x.ct --public-keys keys/public -o y.ct     server: refuses any secret key
 *   refresh r.ct --keys keys/ -o f.ct      client: answers a refresh request (plans with refresh points)
 *   infer MODEL f.ct --resume r.ct.state …  server: continues after the client's refresh
 *   decrypt y.ct --keys keys/
 *   run MODEL --dataset D --limit N   all of it in one process, per-layer timing/level/precision
 * MODEL is a PAF model: PafRelu nodes or the expanded form with `privml.paf.layers` metadata;
 * `--paf NAME` makes a development PAF model from a plain ReLU model (scales profiled on 16 images).
 * Every command is a thin layer over the public API (src/api/fhe.ts): flags in, text or JSON out.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Model } from '../api/core.js';
import * as api from '../api/fhe.js';
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
  const calib = loadDataset({ dataset, limit: 16 }, 'test');
  return { model: await api.pafModel(model, flags.paf, calib), source: `${source} (+${flags.paf})` };
}

/** The planner flags as API options (the API checks the scale range and the rest). */
export function planOpts(f: PlanFlags): api.PlanOptions {
  const [rttMs, mbitPerSecond] = (f.network ?? '20,100').split(',').map(Number);
  if (!(rttMs! >= 0) || !(mbitPerSecond! > 0)) throw new CliError(`--network must be 'rttMs,Mbit/s' like 20,100, got '${f.network}'`, 2);
  return {
    refresh: f.refresh,
    minScaleBits: f.minScaleBits,
    maxScaleBits: f.maxScaleBits,
    network: { rttMs: rttMs!, mbitPerSecond: mbitPerSecond! },
    maskBits: f.maskBits,
  };
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
  const r = await api.encryptImages(f.keys, xs, ds.shape, f.out, { labels });
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
  if (bad >= 0) {
    const what = typeof flat[bad] === 'number' ? String(flat[bad]) : JSON.stringify(flat[bad]);
    throw new CliError(`${path}: value ${bad} is ${what}, not a finite number`, 2);
  }
  return { x: Float32Array.from(flat as number[]), dims };
}

const argmax = (v: ArrayLike<number>) => {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[b]!) b = i;
  return b;
};

function printSteps(steps: api.StepReport[]): void {
  for (const s of steps) {
    const prec = s.maxAbsError !== undefined ? `  err ${s.maxAbsError.toExponential(2)} (|ref| ≤ ${s.maxAbsRef!.toPrecision(3)})` : '';
    const time = `${s.seconds.toFixed(2).padStart(7)} s  level ${String(s.level).padStart(2)}`;
    process.stdout.write(`  ${s.name.padEnd(22)} ${s.kind.padEnd(14)} ${time}  rot ${s.rotations}  mul ${s.mults}  pmul ${s.plainMults}${prec}\n`);
  }
}

function printPlan(s: api.PlanReport): void {
  const w = (line: string) => process.stdout.write(`${line}\n`);
  const bits = `${s.primeBits.length} primes (${s.totalModulusBits}/${s.maxModulusBits128} bits)`;
  w(
    `${s.model} (${s.form}): N=${s.polyModulusDegree}, scale 2^${s.scaleBits}, ${bits}, depth ${s.depth}, ` +
      `${s.refreshRoundTrips} refresh round trips, ${s.rotations} rotations, ${s.galoisSteps.length} Galois keys`,
  );
  for (const st of s.steps) w(`  ${st.name.padEnd(22)} ${st.kind.padEnd(14)} depth ${st.depth}  rot ${st.rotations}  ${st.note}`);
  for (const r of s.rejected) w(`  rejected ${r}`);
  const p = s.predicted;
  w(
    `choice: ${s.choice}; predicted ${p.totalSeconds.toFixed(1)} s (${p.serverSeconds.toFixed(1)} s server CPU; ` +
      `${p.cachedTotalSeconds.toFixed(1)} s per image once the model plaintexts are cached), ` +
      `server keys ≈ ${(s.predictedServerKeyBytes / 1e6).toFixed(0)} MB`,
  );
  for (const c of s.candidates)
    w(
      `  candidate N=${c.polyModulusDegree} scale 2^${c.scaleBits} ${c.primes} primes, ${c.refreshes} refreshes: ` +
        `${c.predicted.totalSeconds.toFixed(1)} s (${c.predicted.cachedTotalSeconds.toFixed(1)} s cached), ` +
        `keys ≈ ${(c.predictedServerKeyBytes / 1e6).toFixed(0)} MB`,
    );
}

function printRun(s: api.RunSummary): void {
  const n = s.images;
  const warm = s.memory.afterImage2;
  const last = s.memory.afterLastImage;
  process.stdout.write(
    `${s.model}: N=${s.params.polyModulusDegree}, depth ${s.depth} (${s.levelsPerChain} levels per chain), ` +
      `${s.refreshRoundTripsPerImage} client-aided refresh round trips/image (${s.refreshRoundTripsTotal} in total); ` +
      `${n} images, agreement with the plaintext PAF model (onnxruntime) ${(100 * s.agreementWithPlaintextPaf).toFixed(1)}%, ` +
      `accuracy ${(100 * s.accuracy).toFixed(1)}% (plaintext ${(100 * s.plaintextPafAccuracy).toFixed(1)}%), ` +
      `max rel err vs onnxruntime ${s.maxRelErr.toExponential(2)}, ${s.meanSecondsPerImage.toFixed(1)} s/image ` +
      `(${s.meanComputeSecondsPerImage.toFixed(1)} s without key generation); RSS ${warm.rssMB} → ${last.rssMB} MB, ` +
      `WASM heap ${warm.wasmHeapMB} → ${last.wasmHeapMB} MB (image ${Math.min(2, n)} → ${n})\n`,
  );
  printSteps(s.results[0]!.steps!);
}

/** Register `privml fhe …`. */
/** `fhe run --batch B`: B images per ciphertext (slot batching), progress per batch. */
async function runBatched(ref: string, f: PlanFlags & { dataset: string; limit: number; start: number; steps?: boolean; cacheMb: number; batch: number }) {
  const { model, source } = await pafModel(ref, f, f.dataset);
  const data = loadDataset({ dataset: f.dataset, limit: f.start + f.limit }, 'test');
  const bar = new Progress(!f.json);
  bar.start('fhe run', Math.ceil(Math.max(0, data.n - f.start) / f.batch));
  let r: Record<string, unknown>;
  try {
    r = await api.runBatch(model, source, data, {
      ...api.plannerOptions(planOpts({ ...f, refresh: f.refresh ?? true })),
      batch: f.batch,
      cacheMb: f.cacheMb,
      allSteps: f.steps,
      start: f.start,
      onBatch: (done, _total, line) => {
        bar.update(done, `${Number(line['seconds']).toFixed(1)} s/batch`);
        if (f.json) process.stderr.write(`${JSON.stringify(line)}\n`);
      },
    });
  } finally {
    bar.stop();
  }
  if (f.json) return printJson(r);
  const a = r['amortizedSecondsPerImage'] as number | undefined;
  const n = (r['params'] as { polyModulusDegree: number }).polyModulusDegree;
  process.stdout.write(
    `${source}: ${f.batch} images per ciphertext, N=${n}; ${r['images']} images, agreement with the plaintext PAF model ` +
      `${(100 * (r['agreementWithPlaintextPaf'] as number)).toFixed(1)}%, ` +
      `${a === undefined ? 'one batch' : `${a.toFixed(2)} s/image amortized after the first batch`}\n`,
  );
}

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

  common(fhe.command('plan <model>').description('depth, ring degree, modulus chain and rotations of a PAF model'))
    .option('--split', "plan as fhe keygen does for the split flow (each refresh also costs a 'fhe refresh' and a 'fhe infer --resume' process)")
    .action(async (ref: string, f: PlanFlags & { split?: boolean }) => {
      const { model, source } = await pafModel(ref, f);
      const s = await api.plan(model, { ...planOpts(f), source, split: f.split });
      if (f.json) return printJson(s);
      printPlan(s);
    });

  common(fhe.command('keygen').description('generate keys for a model (secret key stays in DIR, server keys in DIR/public)'))
    .requiredOption('--model <model>', 'PAF model the keys are for (decides parameters and rotation steps)')
    .requiredOption('-o, --out <dir>', 'key directory')
    .option('--batch <n>', 'images per ciphertext (slot batching, a power of two; fhe encrypt --count)', posInt('--batch'), 1)
    .action(async (f: PlanFlags & { model: string; out: string; batch: number }) => {
      const { model, source } = await pafModel(f.model, f);
      // A plan with refresh points: say that `fhe infer` will stop for the client at each.
      const onNote = (m: string) => process.stderr.write(`note: ${m}\n`);
      const r = await api.keygen(model, f.out, { ...planOpts(f), batch: f.batch, source, onNote });
      const out = {
        dir: f.out,
        keyId: r.keyId,
        params: r.params,
        galoisSteps: r.galoisSteps,
        files: r.files,
        bytes: r.bytes,
        serverBytes: r.serverBytes,
        seconds: r.seconds,
      };
      if (f.json) return printJson(out);
      process.stdout.write(
        `keys ${r.keyId} in ${f.out} (server part: ${r.publicDir}), ${r.galoisSteps.length} Galois keys, ` +
          `server keys ${(r.serverBytes / 1e6).toFixed(1)} MB (all files ${(r.bytes / 1e6).toFixed(1)} MB), ${r.seconds.toFixed(1)} s\n`,
      );
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
      if (f.count > 1) return encryptCount(image, f);
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
      const { bytes } = await api.encrypt(f.keys, x, dims, f.out, { label, name: image ?? f.dataset });
      if (f.json) printJson({ out: f.out, bytes, dims, label });
      else process.stdout.write(`${f.out}: ${(bytes / 1e6).toFixed(2)} MB${label !== undefined ? ` (label ${label})` : ''}\n`);
    });

  common(fhe.command('infer <model> <ct>').description('server: run a PAF model on an encrypted image (no secret key here)'))
    .requiredOption('--public-keys <dir>', 'server keys (the public subdirectory of keygen output)')
    .requiredOption('-o, --out <file>', 'output ciphertext file (or the refresh request, when the plan stops for the client)')
    .option('--state <file>', 'where the server keeps its refresh masks when the plan stops for the client (default: OUT.state; never send it)')
    .option('--resume <state>', "continue after a client-aided refresh: <ct> is the client's 'fhe refresh' reply, <state> the server's state file")
    .option('--plain-cache <file>', "the server's encoded model plaintexts (default: MODEL.<plan digest>.fheplain beside a model file)")
    .option('--no-plain-cache', 'encode the model plaintexts in this process only (no file)')
    .action(
      async (
        ref: string,
        ctPath: string,
        f: PlanFlags & { publicKeys: string; out: string; state?: string; resume?: string; plainCache?: string | boolean },
      ) => {
        const { model, source } = await pafModel(ref, f);
        const out = await api.infer(model, ctPath, f.publicKeys, f.out, {
          source,
          state: f.state,
          resume: f.resume,
          plainCacheFile: typeof f.plainCache === 'string' ? f.plainCache : f.plainCache === false ? false : undefined,
          modelFile: existsSync(ref) ? ref : undefined,
        });
        if (f.json) return printJson(out);
        const r = out.refresh;
        process.stdout.write(
          r
            ? `${f.out}: refresh request for the client at '${r.step}' (${r.remaining} round trip(s) to go), ${out.seconds.toFixed(1)} s; ` +
                `masks kept in ${r.state}.\n  client: privml fhe refresh ${f.out} --keys KEYS -o REPLY\n  ` +
                `server: privml fhe infer MODEL REPLY --resume ${r.state} --public-keys ${f.publicKeys} -o OUT\n`
            : `${f.out}: ${out.seconds.toFixed(1)} s (${out.keySeconds.toFixed(1)} s loading Galois keys)\n`,
        );
        printSteps(out.steps);
      },
    );

  fhe
    .command('refresh <request>')
    .description("client: answer the server's client-aided refresh request (decrypt the masked values, encrypt afresh)")
    .requiredOption('--keys <dir>', 'key directory with the secret key')
    .requiredOption('-o, --out <file>', 'reply file for fhe infer --resume')
    .option('--json', 'machine-readable output')
    .action(async (req: string, f: { keys: string; out: string; json?: boolean }) => {
      const r = await api.refresh(req, f.keys, f.out);
      if (f.json) printJson({ out: f.out, ...r });
      else process.stdout.write(`${f.out}: ${(r.bytes / 1e6).toFixed(2)} MB, ${r.ciphertexts} ciphertext(s)\n`);
    });

  fhe
    .command('decrypt <ct>')
    .description('client: decrypt an output ciphertext')
    .requiredOption('--keys <dir>', 'key directory with the secret key')
    .option('--json', 'machine-readable output')
    .action(async (ctPath: string, f: { keys: string; json?: boolean }) => {
      const ys = await api.decryptAll(ctPath, f.keys);
      const outs = ys.map((y) => ({ output: Array.from(y), argmax: argmax(y) }));
      // A slot-batched output (fhe encrypt --count): one entry per image.
      if (f.json) printJson(outs.length > 1 ? { images: outs } : outs[0]);
      else for (const o of outs) process.stdout.write(`class ${o.argmax}  [${o.output.map((v) => v.toFixed(4)).join(', ')}]\n`);
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
      const session = await FheServerSession.create(
        model,
        // The encoded model is kept beside a model file, as fhe run does (a new page skips the model encodes).
        { ...api.plannerOptions(planOpts({ ...f, refresh: f.refresh ?? true })), source, modelFile: existsSync(ref) ? ref : undefined },
        (frame) => send({ type: 'frame', data: frame }),
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
    .option(
      '--plain-cache <file>',
      "the server's encoded model plaintexts: loaded when made for this model and plan, else written after the run (default: MODEL.<plan digest>.fheplain beside a model file)",
    )
    .option('--no-plain-cache', 'encode the model plaintexts in this run only (no file)')
    .option('--no-client-rotations', 'the server rotates the input for the first layer (default: the client encrypts those rotations too)')
    .action(
      async (
        ref: string,
        f: PlanFlags & {
          dataset: string;
          limit: number;
          start: number;
          steps?: boolean;
          cacheMb: number;
          queue?: string;
          perJob: number;
          batch: number;
          clientRotations: boolean;
          plainCache?: string | boolean;
        },
      ) => {
        if (f.batch > 1 && f.queue) throw new CliError('--batch is not supported with --queue yet (jobs carry one image per ciphertext)', 2);
        if (f.batch > 1) return runBatched(ref, f);
        if (f.queue) {
          const { model, source } = await pafModel(ref, f, f.dataset);
          // Planned as the local run plans (plaintexts cached: workers keep a loaded server across jobs),
          // except that a queued job cannot make refresh round trips.
          const plan = { ...api.plannerOptions(planOpts(f)), cachedPlaintexts: f.cacheMb > 0 };
          return (await import('./queue-hooks.js')).fheRunQueued(model, source, plan, { ...f, queue: f.queue });
        }
        const { model, source } = await pafModel(ref, f, f.dataset);
        const data = loadDataset({ dataset: f.dataset, limit: f.start + f.limit }, 'test');
        const bar = new Progress(!f.json);
        const onProgress = (done: number, total: number, r?: api.ImageResult) => {
          if (done === 0) return bar.start('fhe run', total);
          bar.update(done, `${r!.seconds.toFixed(1)} s/img`);
          if (!f.json) return;
          // One line per image on stderr, so a long run can be read while it is going.
          const { steps: _s, ...line } = r!;
          process.stderr.write(JSON.stringify(line) + '\n');
        };
        let summary: api.RunSummary;
        try {
          summary = await api.run(model, data, {
            ...planOpts(f),
            source,
            start: f.start,
            cacheMb: f.cacheMb,
            steps: f.steps,
            clientRotations: f.clientRotations,
            // Default: the encoded model beside the model file (a public encoding of the owner's weights).
            plainCacheFile: typeof f.plainCache === 'string' ? f.plainCache : f.plainCache === false ? false : undefined,
            modelFile: existsSync(ref) ? ref : undefined,
            onProgress,
          });
        } finally {
          bar.stop();
        }
        if (f.json) return printJson(summary);
        printRun(summary);
      },
    );
}
