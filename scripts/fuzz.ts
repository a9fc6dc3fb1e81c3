/**
 * Fuzz campaign (bounded in time, seeded with a non-secret PRNG): frames against a listening dealer
 * and party 1 (random bytes, huge length prefixes, valid prefixes with bad payloads, mutated
 * hellos), mutated ONNX models through the loader, relu-config files, FHE file headers, and Proteus
 * manifests and keys through their public load functions.
 *
 *   npm run fuzz -- [--seconds 60] [--seed 1] [--targets frames,onnx,relu,fhe,proteus] [--crash-dir DIR] [--json]
 *
 * Per target it counts inputs tried, clean errors (one-line Error), accepted inputs, crashes
 * (TypeError/RangeError/…, multi-line messages, a listener that died other than by a clean
 * session refusal), hangs (one input over 2 s, or a listener that stops answering) and memory
 * spikes (RSS over 1 GB). Exit status 1 when any crash, hang or spike was seen.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readReluConfig } from '../src/api/mpc-session.js';
import { decodeFheFile, encodeFheFile } from '../src/fhe/context.js';
import { NET_PRESETS } from '../src/mpc/net/emulate.js';
import { MPC_PROTOCOL_VERSION, runDealer, runParty } from '../src/mpc/roles.js';
import { decodeModel } from '../src/onnx/proto.js';
import { KEY_FORMAT, keyDigest, MANIFEST_FORMAT, readKey, readManifest } from '../src/proteus/bundle.js';
import { seededUniform } from '../src/seeded-rng.js';

const ROOT = join(import.meta.dirname, '..');
const MODEL_PATH = join(ROOT, 'models', 'fmnist-cnn.onnx');
const HANG_MS = 2000;
/** A listener that keeps a bad (already half-closed) connection this long has hung on it (generous: CI machines are loaded). */
const DROP_MS = 5000;
const SPIKE_BYTES = 1 << 30;

interface Counts {
  inputs: number;
  cleanErrors: number;
  accepted: number;
  crashes: number;
  hangs: number;
  spikes: number;
  /** Up to 5 examples of each bad outcome (first line only). */
  examples: string[];
}

const newCounts = (): Counts => ({ inputs: 0, cleanErrors: 0, accepted: 0, crashes: 0, hangs: 0, spikes: 0, examples: [] });

function note(c: Counts, what: string): void {
  if (c.examples.length < 8) c.examples.push(what.split('\n')[0]!.slice(0, 200));
}

/** Where crashing inputs are written (`--crash-dir`), so each can become a regression test. */
let crashDir: string | undefined;

/** Classify one synchronous loader call (`bytes`: the input, saved to the crash folder if it crashes). */
function classify(c: Counts, label: string, f: () => unknown, bytes?: Uint8Array): void {
  c.inputs++;
  const t0 = performance.now();
  try {
    f();
    c.accepted++;
  } catch (e) {
    const internal = !(e instanceof Error) || e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof SyntaxError;
    const multi = e instanceof Error && e.message.includes('\n');
    if (internal || multi) {
      c.crashes++;
      note(c, `${label}: ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}`);
      if (crashDir && bytes) writeFileSync(join(crashDir, `${label.replace(/[^\w-]+/g, '_')}.bin`), bytes);
    } else c.cleanErrors++;
  }
  const ms = performance.now() - t0;
  if (ms > HANG_MS) {
    c.hangs++;
    note(c, `${label}: took ${ms.toFixed(0)} ms`);
  }
  if (process.memoryUsage.rss() > SPIKE_BYTES) {
    c.spikes++;
    note(c, `${label}: RSS ${(process.memoryUsage.rss() / 2 ** 20).toFixed(0)} MB`);
  }
}

// ------------------------------------------------------------------------------- mutation

function mutate(rnd: () => number, src: Uint8Array): Uint8Array {
  // Buffer slices and concatenations (not arrays of numbers): a model is ~100 kB.
  let b = Buffer.from(src);
  const ops = 1 + Math.floor(rnd() * 8);
  const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
  for (let i = 0; i < ops; i++) {
    const at = Math.floor(rnd() * (b.length + 1));
    const r = rnd();
    if (r < 0.5 && b.length) {
      b = Buffer.from(b);
      const j = Math.min(at, b.length - 1);
      b[j] = r < 0.35 ? b[j]! ^ (1 << Math.floor(rnd() * 8)) : [0, 0xff, 0x7f, 0x80][Math.floor(rnd() * 4)]!;
    } else if (r < 0.6) b = Buffer.concat([b.subarray(0, at), b.subarray(at + Math.floor(rnd() * 64))]);
    else if (r < 0.7) b = Buffer.concat([b.subarray(0, at), randomBytes(1 + Math.floor(rnd() * 16)), b.subarray(at)]);
    else if (r < 0.8)
      b = b.subarray(0, Math.floor(rnd() * b.length)); // truncate
    else if (r < 0.9)
      b = Buffer.concat([b.subarray(0, at), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), b.subarray(at)]); // huge varint
    else if (b.length > 16) {
      // a chunk copied elsewhere (duplicated fields)
      const s = Math.floor(rnd() * (b.length - 8));
      b = Buffer.concat([b.subarray(0, at), b.subarray(s, s + 1 + Math.floor(rnd() * 32)), b.subarray(at)]);
    }
  }
  return new Uint8Array(b);
}

/** Mutate a JSON value structurally (types, nesting, huge numbers) then maybe its text. */
function mutateJson(rnd: () => number, v: unknown, depth = 0): unknown {
  const r = rnd();
  const weird = [null, -1, 1e308, NaN, '', 'x'.repeat(1 + Math.floor(rnd() * 100)), [], {}, true, 2 ** 53, -0.5, '__proto__'];
  if (r < 0.15) return weird[Math.floor(rnd() * weird.length)];
  if (Array.isArray(v)) return v.map((x) => (rnd() < 0.3 && depth < 6 ? mutateJson(rnd, x, depth + 1) : x));
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (rnd() < 0.1) continue;
      o[rnd() < 0.05 ? `${k}_` : k] = rnd() < 0.4 && depth < 6 ? mutateJson(rnd, x, depth + 1) : x;
    }
    return o;
  }
  return r < 0.5 ? weird[Math.floor(rnd() * weird.length)] : v;
}

function jsonInput(rnd: () => number, base: unknown): string {
  const text = JSON.stringify(mutateJson(rnd, base)) ?? 'null';
  return rnd() < 0.3 ? Buffer.from(mutate(rnd, Buffer.from(text))).toString('latin1') : text;
}

// ------------------------------------------------------------------------------- targets

function fuzzOnnx(rnd: () => number, until: number, c: Counts): void {
  const base = readFileSync(MODEL_PATH);
  while (performance.now() < until) {
    const bytes = mutate(rnd, base);
    classify(c, `onnx #${c.inputs}`, () => decodeModel(bytes, 'fuzz.onnx'), bytes);
  }
}

function fuzzRelu(rnd: () => number, until: number, c: Counts, dir: string): void {
  const model = decodeModel(readFileSync(MODEL_PATH), 'fmnist-cnn.onnx');
  const relus = model.graph.nodes.filter((n) => n.opType === 'Relu').map((n) => n.name);
  const base = { layers: Object.fromEntries(relus.map((n) => [n, { msb: 24, lsb: 6 }])) };
  const path = join(dir, 'relu.json');
  while (performance.now() < until) {
    writeFileSync(path, jsonInput(rnd, base));
    classify(c, `relu-config #${c.inputs}`, () => readReluConfig(path, model));
  }
}

function fuzzFhe(rnd: () => number, until: number, c: Counts): void {
  const payload = Uint8Array.from({ length: 64 }, () => Math.floor(rnd() * 256));
  const header = { version: 1, kind: 'ciphertext' as const, paramsHash: 'ab'.repeat(32), keyId: 'cd'.repeat(8), meta: { shape: [1, 10] } };
  const valid = encodeFheFile(header, payload);
  while (performance.now() < until) {
    // Half byte mutations of a valid file; half a re-encoded file with a mutated header (valid checksum).
    const bytes =
      rnd() < 0.5
        ? mutate(rnd, valid)
        : (() => {
            const json = Buffer.from(jsonInput(rnd, { ...header, payloadBytes: payload.length }), 'latin1');
            const raw = Buffer.from(valid);
            const len = Buffer.alloc(4);
            len.writeUInt32LE(json.length);
            return Buffer.concat([raw.subarray(0, 8), len, json, raw.subarray(raw.length - 32 - payload.length)]);
          })();
    classify(c, `fhe file #${c.inputs}`, () => decodeFheFile(bytes, 'fuzz.ct', 'ciphertext'), bytes);
  }
}

function fuzzProteus(rnd: () => number, until: number, c: Counts, dir: string): void {
  const manifest = { format: MANIFEST_FORMAT, bundleId: 'f'.repeat(32), members: ['member-0.onnx', 'member-1.onnx'] };
  const keyBody = {
    format: KEY_FORMAT,
    bundleId: manifest.bundleId,
    k: 2,
    size: 2,
    groups: [{ real: 'member-0.onnx', members: manifest.members, signature: { inputs: [], outputs: [] } }],
    hashes: {},
    wiring: {},
    partition: {},
  };
  const key = { ...keyBody, digest: keyDigest(keyBody as never) };
  const mpath = join(dir, 'manifest.json');
  const kpath = join(dir, 'owner.key');
  while (performance.now() < until) {
    writeFileSync(mpath, jsonInput(rnd, manifest));
    classify(c, `proteus manifest #${c.inputs}`, () => readManifest(dir));
    // Keys: mutated, then re-signed half the time so the checks after the digest are reached too.
    const mk = mutateJson(rnd, key) as Record<string, unknown> | null;
    if (mk && typeof mk === 'object' && !Array.isArray(mk) && rnd() < 0.5) {
      try {
        mk.digest = keyDigest(mk as never);
      } catch {
        // an unsignable key: keep its digest as it is
      }
    }
    writeFileSync(kpath, rnd() < 0.3 ? jsonInput(rnd, key) : JSON.stringify(mk));
    classify(c, `proteus key #${c.inputs}`, () => readKey(kpath));
  }
}

/** Frames against an in-process dealer (with party 1 connected) and party 1's listener. */
async function fuzzFrames(rnd: () => number, until: number, c: Counts): Promise<void> {
  let dropsSeen = 0;
  const log = () => {
    dropsSeen++;
  };
  const hooks = { log, connectTimeoutMs: 3_600_000, idleTimeoutMs: 3_600_000 };
  let dealerPort = 0;
  let partyPort = 0;
  let restarts = 0;
  let alive = true;
  let restarting: Promise<void> | undefined;
  /** Start dealer + party 1 (relu job); a clean session refusal restarts both, anything else is a crash. */
  const startPair = async (): Promise<void> => {
    let dealerUp!: () => void;
    let partyUp!: () => void;
    const dReady = new Promise<void>((r) => (dealerUp = r));
    const pReady = new Promise<void>((r) => (partyUp = r));
    const d = runDealer({ listen: { host: '127.0.0.1', port: 0 }, net: NET_PRESETS.none, hooks, onListening: (p) => ((dealerPort = p), dealerUp()) });
    await dReady;
    const p = runParty({
      id: 1,
      job: { kind: 'relu', n: 16, msb: 64, lsb: 0, reluProtocol: 'signonly', reps: 1, preprocess: false },
      peer: { host: '127.0.0.1', port: 0 },
      dealer: { host: '127.0.0.1', port: dealerPort },
      net: NET_PRESETS.none,
      fracBits: 16,
      hooks,
      onListening: (port) => ((partyPort = port), partyUp()),
    });
    await pReady;
    const ended = (who: string) => (e: unknown) => {
      if (!alive) return;
      const msg = e instanceof Error ? e.message : String(e);
      // A hello with the right role and magic but other settings is a (clean) session refusal.
      if (
        /different|mismatch|did not (say|send)|already connected|dealer: party 0 left|link to party 1 failed|closed the connection|not a privml|idle timeout|party 0 and party 1 announced/.test(
          msg,
        )
      ) {
        restarts++;
      } else {
        c.crashes++;
        note(c, `${who} ended: ${msg}`);
      }
      alive = false;
    };
    d.then(() => ended('dealer')(new Error('dealer: closed the connection (session ended)')), ended('dealer'));
    p.then(() => ended('party 1')(new Error('party 1: closed the connection (session ended)')), ended('party 1'));
  };
  await startPair();
  const hello = (role: string, version = MPC_PROTOCOL_VERSION) => ({ magic: 'privml-mpc-hello', role, version });
  const frame = (payload: Uint8Array, len = payload.length) => {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(len >>> 0);
    return Buffer.concat([h, payload]);
  };
  const gen = (): Buffer => {
    const r = rnd();
    if (r < 0.25) return Buffer.from(Array.from({ length: Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256)));
    if (r < 0.45) return frame(Buffer.alloc(Math.floor(rnd() * 64), 0x41), 65_537 + Math.floor(rnd() * (2 ** 32 - 65_538)));
    if (r < 0.65) return frame(Buffer.from(Array.from({ length: Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256))));
    // Hellos with wrong roles or mangled fields (the right role + wrong settings is rare: a clean refusal).
    const roles = ['party 0', 'party 1', 'dealer', 'party 2', '', 'x'.repeat(5000)];
    return frame(Buffer.from(jsonInput(rnd, hello(roles[Math.floor(rnd() * roles.length)]!, rnd() < 0.9 ? 'v0' : MPC_PROTOCOL_VERSION)), 'latin1'));
  };
  /** Send one input and half-close; resolves with the ms until the listener closed it, or -1 if it kept it past DROP_MS. */
  const send = (port: number, bytes: Buffer) =>
    new Promise<number>((resolve) => {
      const t0 = performance.now();
      const s = net.connect({ host: '127.0.0.1', port });
      const done = (ms: number) => () => {
        clearTimeout(t);
        s.destroy();
        resolve(ms < 0 ? ms : performance.now() - t0);
      };
      const t = setTimeout(done(-1), DROP_MS);
      s.on('error', done(0));
      s.on('close', done(0));
      s.on('connect', () => s.end(bytes));
    });
  // Eight connections in flight at all times (a pool, not batches: one slow drop must not idle the rest).
  const inFlight = 8;
  const lane = async (): Promise<void> => {
    while (performance.now() < until) {
      if (!alive) {
        if (!restarting) {
          restarting = (async () => {
            await startPair();
            alive = true;
          })().finally(() => (restarting = undefined));
        }
        await restarting;
        continue;
      }
      c.inputs++;
      const bytes = gen();
      // A listener must drop a bad connection (the client already half-closed it) within DROP_MS.
      const toDealer = rnd() < 0.5;
      const pair = restarts;
      // (A pair that ended meanwhile is gone in real life: its process would have exited.)
      if ((await send(toDealer ? dealerPort : partyPort, bytes)) < 0 && alive && pair === restarts) {
        c.hangs++;
        note(c, `${toDealer ? 'the dealer' : 'party 1'} kept a bad connection open for ${DROP_MS} ms: ${bytes.subarray(4, 200).toString('latin1')}`);
      }
      if (process.memoryUsage.rss() > SPIKE_BYTES) {
        c.spikes++;
        note(c, `frames: RSS ${(process.memoryUsage.rss() / 2 ** 20).toFixed(0)} MB`);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  // Let the last drops be logged; every input must have been handled (dropped) by a live listener.
  await new Promise((r) => setTimeout(r, 300));
  c.cleanErrors = Math.min(c.inputs, dropsSeen);
  if (restarts > 0) note(c, `${restarts} clean session refusal(s) (a hello with the right role and other settings); listeners restarted`);
  alive = false;
}

// ------------------------------------------------------------------------------- main

const TARGETS = ['frames', 'onnx', 'relu', 'fhe', 'proteus'] as const;

/** Parse argv, run each target for its share of the time, print the counts. */
export async function main(argv: string[]): Promise<number> {
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const seconds = Number(arg('--seconds') ?? 20);
  const seed = Number(arg('--seed') ?? 1);
  const json = argv.includes('--json');
  crashDir = arg('--crash-dir');
  if (crashDir) mkdirSync(crashDir, { recursive: true });
  const targets = (arg('--targets')?.split(',') ?? [...TARGETS]) as (typeof TARGETS)[number][];
  if (!(seconds > 0) || !Number.isInteger(seed) || targets.some((t) => !TARGETS.includes(t))) {
    process.stderr.write(`usage: npm run fuzz -- [--seconds N>0] [--seed INT] [--targets ${TARGETS.join(',')}] [--crash-dir DIR] [--json]\n`);
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'privml-fuzz-'));
  const results: Record<string, Counts> = {};
  try {
    for (const t of targets) {
      const rnd = seededUniform(seed * 7919 + TARGETS.indexOf(t));
      const until = performance.now() + (seconds * 1000) / targets.length;
      const c = newCounts();
      if (t === 'frames') await fuzzFrames(rnd, until, c);
      else if (t === 'onnx') fuzzOnnx(rnd, until, c);
      else if (t === 'relu') fuzzRelu(rnd, until, c, dir);
      else if (t === 'fhe') fuzzFhe(rnd, until, c);
      else fuzzProteus(rnd, until, c, dir);
      results[t] = c;
      if (!json) {
        process.stdout.write(
          `${t.padEnd(8)} inputs ${String(c.inputs).padStart(7)}  clean errors ${String(c.cleanErrors).padStart(7)}  accepted ${String(c.accepted).padStart(6)}  crashes ${c.crashes}  hangs ${c.hangs}  memory spikes ${c.spikes}\n`,
        );
        for (const e of c.examples) process.stdout.write(`         ${e}\n`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (json) process.stdout.write(`${JSON.stringify({ seed, seconds, results }, null, 1)}\n`);
  const bad = Object.values(results).some((c) => c.crashes + c.hangs + c.spikes > 0);
  return bad ? 1 : 0;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
  // Listeners still open from the frames target: end here.
  process.exit();
}
