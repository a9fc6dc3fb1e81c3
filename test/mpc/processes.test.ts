/**
 * Process-level tests of the MPC engine: `privml mpc infer` end to end, the three roles started by
 * hand (handshake refusals), the launcher killed, bad input, and (in process) the
 * distribution of what party 1 receives during a ReLU.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AndTriples, BeaverTriple, BitMulTriples, Correlations, PartyContext, PeerChannel, SharedBits } from '../../src/mpc/context.js';
import { runTwoParty } from '../../src/mpc/local.js';
import { type CompareOptions, relu } from '../../src/mpc/protocols/compare.js';
import { loadModel } from '../../src/onnx/proto.js';
import { inferShapes } from '../../src/onnx/shape.js';
import { rng } from '../helpers/splitmix.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'privml.js');
const MODEL = join(ROOT, 'models', 'fmnist-cnn.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'privml-mpc-proc-'));

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed (with its process group) when the file ends.
// ---------------------------------------------------------------------------------------------

interface Proc {
  name: string;
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Exit code (null when killed by a signal), the signal, and when it happened (performance.now()). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

const live = new Set<ChildProcess>();

function killGroup(c: ChildProcess): void {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  try {
    process.kill(-c.pid, 'SIGKILL'); // the role and anything it forked (`mpc infer` forks three)
  } catch {
    c.kill('SIGKILL');
  }
}

const killAll = (): void => {
  for (const c of live) killGroup(c);
};
process.on('exit', killAll);
after(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

/** Start `privml ...args` in its own process group; output is collected as it arrives. */
function start(name: string, args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: tmp,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, PRIVML_DATA: '' },
  });
  live.add(child);
  const p: Proc = {
    name,
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => {
      // 'close', not 'exit': the role's last stderr line may still be in the pipe at 'exit'.
      let at = 0;
      child.on('exit', () => {
        at = performance.now();
      });
      child.on('close', (code, signal) => {
        live.delete(child);
        resolve({ code, signal, at: at || performance.now() });
      });
    }),
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (p.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (p.stderr += d));
  return p;
}

/** Resolve with the match once `p`'s stderr matches `re`; reject if `p` exits first or after `ms`. */
function waitStderr(p: Proc, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${p.name}: no ${re} on stderr within ${ms} ms; stderr: ${p.stderr}`)), ms);
    const poll = setInterval(() => {
      const m = re.exec(p.stderr);
      if (m) done(undefined, m);
    }, 20);
    p.exited.then(({ code }) => {
      const m = re.exec(p.stderr);
      done(m ? undefined : new Error(`${p.name} exited (${code}) before printing ${re}; stderr: ${p.stderr}`), m ?? undefined);
    });
    function done(err?: Error, m?: RegExpMatchArray) {
      clearTimeout(timer);
      clearInterval(poll);
      if (err) reject(err);
      else resolve(m!);
    }
  });
}

/** Wait for `p` to exit within `ms` (SIGKILL and fail otherwise). */
async function exitWithin(p: Proc, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p.exited, new Promise<null>((res) => (timer = setTimeout(() => res(null), ms)))]);
  clearTimeout(timer);
  if (r === null) {
    killGroup(p.child);
    assert.fail(`${p.name} did not exit within ${ms} ms; stderr: ${p.stderr}`);
  }
  return r;
}

/** Run `privml ...args` to completion (bounded); returns code, output and wall time. */
async function privml(args: string[], ms = 30_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const p = start(args.slice(0, 3).join(' '), args);
  const r = await exitWithin(p, ms);
  return { code: r.code, stdout: p.stdout, stderr: p.stderr, ms: r.at - t0 };
}

/** A failed run printed exactly one `privml: error:` line (no stack trace) matching `pattern`. */
function assertOneLineError(name: string, r: { code: number | null; stderr: string }, pattern: RegExp): void {
  assert.ok(r.code !== null && r.code !== 0, `${name}: expected a non-zero exit, got ${r.code}; stderr: ${r.stderr}`);
  const errs = r.stderr.split('\n').filter((l) => l.startsWith('privml: error:'));
  assert.equal(errs.length, 1, `${name}: expected one error line, stderr:\n${r.stderr}`);
  assert.match(errs[0]!, pattern, `${name}: ${errs[0]}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${name}: stack trace printed:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /(Type|Reference|Range)Error|node:internal/, `${name}: internal error printed:\n${r.stderr}`);
}

// ---------------------------------------------------------------------------------------------
// Three roles started by hand (dealer and party 1 on port 0; their ports are read from stderr).
// ---------------------------------------------------------------------------------------------

interface Session {
  dealer: Proc;
  p1: Proc;
  p0: Proc;
  /** party 1's listening port. */
  peerPort: number;
}

async function startSession(p1Args: string[], p0Args: string[]): Promise<Session> {
  const dealer = start('dealer', ['mpc', 'dealer', '--listen', '127.0.0.1:0']);
  const dport = Number((await waitStderr(dealer, /dealer listening on port (\d+)/, 15_000))[1]);
  const p1 = start('party 1', ['mpc', 'party', ...p1Args, '--id', '1', '--peer', '127.0.0.1:0', '--dealer', `127.0.0.1:${dport}`]);
  const peerPort = Number((await waitStderr(p1, /party 1 listening on port (\d+)/, 15_000))[1]);
  const p0 = start('party 0', ['mpc', 'party', ...p0Args, '--id', '0', '--peer', `127.0.0.1:${peerPort}`, '--dealer', `127.0.0.1:${dport}`]);
  return { dealer, p1, p0, peerPort };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// 1. End to end
// ---------------------------------------------------------------------------------------------

interface InferJson {
  count: number;
  batch: number;
  predictions: number[];
  agreement: number;
  maxLogitDiff: number;
  batches: number;
  msPerBatch: number;
  bytesSentPerBatch: [number, number];
  roundsPerBatch: number;
  modeledMsPerBatch: number;
  layers: { name: string; op: string; rounds: number; bytesSent: [number, number]; ms: number }[];
}

/** Elements per image of each Relu node's output, from shape inference on the model. */
const reluElems: Map<string, number> = (() => {
  const model = loadModel(MODEL);
  const shapes = inferShapes(model);
  const out = new Map<string, number>();
  for (const n of model.graph.nodes.filter((n) => n.opType === 'Relu')) {
    const shape = shapes.get(n.outputs[0]!)!.shape!;
    out.set(
      n.name,
      shape.slice(1).reduce<number>((a, d) => a * (d as number), 1),
    );
  }
  return out;
})();

const timings: string[] = [];
after(() => {
  if (timings.length) console.log(`# e2e wall times: ${timings.join('; ')}`);
});

async function infer(extra: string[], label = extra.join(' ') || 'default'): Promise<InferJson> {
  const args = ['mpc', 'infer', MODEL, '--dataset', 'fashion-mnist-sample', '--limit', '16', '--batch', '8', '--json', ...extra];
  const r = await privml(args, 60_000);
  assert.equal(r.code, 0, `mpc infer ${extra.join(' ')} failed: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as InferJson;
  timings.push(`${label} ${(r.ms / 1000).toFixed(2)} s (${j.msPerBatch.toFixed(0)} ms/batch of 8)`);
  assert.equal(j.count, 16);
  assert.equal(j.batches, 2);
  assert.equal(j.predictions.length, 16);
  return j;
}

/** Every Relu layer sent exactly bitsPerElem · elements / 8 bytes per party per batch, in `rounds` rounds. */
function assertReluBytes(j: InferJson, bitsPerElem: number, rounds: number): void {
  const relus = j.layers.filter((l) => l.op === 'Relu');
  assert.equal(relus.length, reluElems.size, 'one accounting row per Relu node');
  for (const l of relus) {
    const elems = reluElems.get(l.name);
    assert.ok(elems, `unknown Relu layer ${l.name}`);
    const want = (bitsPerElem * elems * j.batch) / 8;
    assert.deepEqual(l.bytesSent, [want, want], `${l.name}: bytes per party per batch`);
    assert.equal(l.rounds, rounds, `${l.name}: rounds`);
  }
}

let plainPredictions: number[] | undefined;

test('mpc infer: agrees with the plaintext runtime, per-layer accounting, 427 bits per ReLU element', { timeout: 60_000 }, async () => {
  const j = await infer([]);
  assert.equal(j.agreement, 1);
  assert.ok(j.maxLogitDiff < 1e-2, `maxLogitDiff ${j.maxLogitDiff}`);
  // Every node of the model has an accounting row, in graph order.
  const model = loadModel(MODEL);
  assert.deepEqual(
    j.layers.map((l) => l.name),
    model.graph.nodes.map((n) => n.name),
  );
  for (const l of j.layers) {
    assert.ok(l.ms >= 0 && Number.isFinite(l.ms));
    if (l.op !== 'Relu') assert.deepEqual(l.bytesSent, [0, 0], `${l.name} (public weights) communicates nothing`);
  }
  assertReluBytes(j, 427, 8);
  // Totals: the ReLUs plus the input share (party 0) and the output reveal (party 1).
  const reluBytes = j.layers.reduce((s, l) => s + l.bytesSent[0], 0);
  assert.equal(j.bytesSentPerBatch[0], reluBytes + 8 * 8 * 28 * 28);
  assert.equal(j.bytesSentPerBatch[1], reluBytes + 8 * 8 * 10);
  assert.equal(j.roundsPerBatch, 8 * reluElems.size + 1);
  assert.equal(j.modeledMsPerBatch, 0, 'no emulation: nothing modeled');
  plainPredictions = j.predictions;
});

test('mpc infer --relu-protocol crypten: 1,856 bits per ReLU element, ~4.37 MB per party per image', { timeout: 60_000 }, async () => {
  const j = await infer(['--relu-protocol', 'crypten']);
  assert.equal(j.agreement, 1);
  assert.ok(j.maxLogitDiff < 1e-2, `maxLogitDiff ${j.maxLogitDiff}`);
  assertReluBytes(j, 1856, 9);
  for (const b of j.bytesSentPerBatch) {
    const perImage = b / j.batch;
    assert.ok(Math.abs(perImage / 4.37e6 - 1) < 0.005, `${perImage} bytes per party per image`);
  }
});

test('mpc infer --weights secret: agreement 1, the linear layers now communicate', { timeout: 60_000 }, async () => {
  const j = await infer(['--weights', 'secret']);
  assert.equal(j.agreement, 1);
  assert.ok(j.maxLogitDiff < 1e-2, `maxLogitDiff ${j.maxLogitDiff}`);
  assertReluBytes(j, 427, 8);
  for (const l of j.layers.filter((l) => l.op === 'Conv' || l.op === 'Gemm')) {
    assert.ok(l.bytesSent[0] > 0 && l.bytesSent[1] > 0 && l.rounds > 0, `${l.name} with secret weights must open Beaver masks`);
  }
});

test('mpc infer --net lan: works, modeled time = bytes·8/1 Gbit/s + rounds·0.5 ms', { timeout: 60_000 }, async () => {
  const j = await infer(['--net', 'lan']);
  assert.equal(j.agreement, 1);
  assert.ok(j.modeledMsPerBatch > 0);
  const want = (Math.max(...j.bytesSentPerBatch) * 8) / 1e6 + j.roundsPerBatch * 0.5;
  assert.ok(Math.abs(j.modeledMsPerBatch - want) < 1e-6 * want, `modeled ${j.modeledMsPerBatch} ms, expected ${want}`);
  // The emulated link really delays: a batch cannot beat its modeled network time.
  assert.ok(j.msPerBatch >= j.modeledMsPerBatch * 0.9, `${j.msPerBatch} ms per batch < modeled ${j.modeledMsPerBatch} ms`);
});

test('mpc infer --relu-config: a 16-bit range on one layer costs 143 bits per element there', { timeout: 60_000 }, async () => {
  const [first, second] = [...reluElems.keys()];
  const cfg = join(tmp, 'relu16.json');
  writeFileSync(cfg, JSON.stringify({ layers: { [first!]: { msb: 22, lsb: 6 } } }));
  const j = await infer(['--relu-config', cfg], '--relu-config (16 bits on one layer)');
  const l1 = j.layers.find((l) => l.name === first)!,
    l2 = j.layers.find((l) => l.name === second)!;
  const b1 = (143 * reluElems.get(first!)! * 8) / 8,
    b2 = (427 * reluElems.get(second!)! * 8) / 8;
  assert.deepEqual(l1.bytesSent, [b1, b1]);
  assert.equal(l1.rounds, 6);
  assert.deepEqual(l2.bytesSent, [b2, b2]);
  assert.equal(l2.rounds, 8);
});

// ---------------------------------------------------------------------------------------------
// 2. Fault injection: the matrix (each role killed/stopped at each phase, links cut) is in
//    faults.test.ts / faults-matrix.ts; here, killing the launcher.
// ---------------------------------------------------------------------------------------------

/** Pids of the running processes whose parent is `ppid` (from /proc), but tsx's compiler service (`esbuild`), which a launcher run from source starts. */
function childrenOf(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // fields after the parenthesised command: state, ppid, …
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (Number(rest[1]) === ppid && rest[0] !== 'Z' && comm !== 'esbuild') out.push(Number(d));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** Running (not ended, not a zombie awaiting a reaper) — an orphan's zombie is not a leak. */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

test('killing the `mpc infer` launcher: its dealer and parties exit within 10 s (no orphans)', {
  skip: process.platform !== 'linux',
  timeout: 60_000,
}, async () => {
  const p = start('mpc infer', ['mpc', 'infer', MODEL, '--dataset', 'fashion-mnist-sample', '--limit', '1000', '--batch', '1']);
  const pid = p.child.pid!;
  let roles: number[] = [];
  const t0 = performance.now();
  while (roles.length < 3 && performance.now() - t0 < 30_000 && p.child.exitCode === null) {
    await sleep(100);
    roles = childrenOf(pid);
  }
  assert.equal(roles.length, 3, `expected 3 role processes, saw ${roles.length}; stderr: ${p.stderr}`);
  await sleep(500);
  p.child.kill('SIGKILL'); // the launcher only, not its process group
  await exitWithin(p, 5000);
  const killedAt = performance.now();
  while (roles.some(alive) && performance.now() - killedAt < 10_000) await sleep(100);
  const left = roles.filter(alive);
  for (const r of left) process.kill(r, 'SIGKILL');
  assert.deepEqual(left, [], 'role processes outlived their launcher');
});

// ---------------------------------------------------------------------------------------------
// 3. Handshake refusal
// ---------------------------------------------------------------------------------------------

const other = { seed: join(tmp, 'fmnist-seed1.onnx'), max: join(tmp, 'fmnist-max.onnx') };

before(async () => {
  // Same architecture with other weights, and another architecture (max pooling).
  const rs = await Promise.all([
    privml(['zoo', 'export', 'fmnist-cnn', '--opt', 'seed=1', '-o', other.seed]),
    privml(['zoo', 'export', 'fmnist-cnn', '--opt', 'pool=max', '-o', other.max]),
  ]);
  for (const r of rs) assert.equal(r.code, 0, r.stderr);
});

/** Run a short session to the end; every role must exit (within 20 s). */
async function shortSession(p1: string[], p0: string[]) {
  const s = await startSession(['--count', '4', ...p1], ['--dataset', 'fashion-mnist-sample', '--limit', '4', ...p0]);
  const [d, r1, r0] = await Promise.all([exitWithin(s.dealer, 20_000), exitWithin(s.p1, 20_000), exitWithin(s.p0, 20_000)]);
  return {
    dealer: { ...d, stderr: s.dealer.stderr, stdout: s.dealer.stdout },
    p1: { ...r1, stderr: s.p1.stderr, stdout: s.p1.stdout },
    p0: { ...r0, stderr: s.p0.stderr, stdout: s.p0.stdout },
  };
}

test('parties that loaded different models refuse each other (other weights, other architecture)', { timeout: 45_000 }, async () => {
  const runs = await Promise.all([shortSession([MODEL], [other.seed]), shortSession([other.max], [MODEL])]);
  for (const r of runs) {
    assertOneLineError('party 0', r.p0, /handshake failed: party 1 loaded a different model/);
    assertOneLineError('party 1', r.p1, /handshake failed: party 0 loaded a different model/);
    // The dealer never sees a model; it sees a party leave before the session ended (party 0 now
    // sends an end frame, so whichever party closes first is the one it names).
    assertOneLineError('dealer', r.dealer, /party [01] left before the session ended|link to party 1 failed/);
  }
});

test('parties with different --relu-protocol, --batch or --lanes are refused, naming the setting', { timeout: 45_000 }, async () => {
  const [proto, batch, lanes] = await Promise.all([
    shortSession([MODEL, '--relu-protocol', 'crypten'], [MODEL]),
    shortSession([MODEL, '--batch', '2'], [MODEL]),
    shortSession([MODEL, '--lanes', '1'], [MODEL]),
  ]);
  // lanes split a layer's messages differently: a mismatch must be refused, never run garbled
  assertOneLineError('party 0', lanes.p0, /party 1 has a different lanes \(1 vs auto here\)/);
  assertOneLineError('party 0', proto.p0, /party 1 has a different protocol \(crypten vs signonly here\)/);
  assertOneLineError('party 1', proto.p1, /party 0 has a different protocol \(signonly vs crypten here\)/);
  assertOneLineError('dealer', proto.dealer, /different session configurations: protocol is signonly for party 0, crypten for party 1/);
  assertOneLineError('party 0', batch.p0, /party 1 has a different batch \(2 vs 1 here\)/);
  assertOneLineError('party 1', batch.p1, /party 0 has a different batch \(1 vs 2 here\)/);
  assertOneLineError('dealer', batch.dealer, /different session configurations: batch is 1 for party 0, 2 for party 1/);
});

test('with --weights secret party 0 needs only the architecture: other weights are accepted, party 1 weights count', { timeout: 45_000 }, async () => {
  const r = await shortSession([MODEL, '--weights', 'secret'], [other.seed, '--weights', 'secret', '--json']);
  for (const [name, x] of Object.entries(r)) assert.equal(x.code, 0, `${name}: ${x.stderr}`);
  const preds = (JSON.parse(r.p0.stdout) as { predictions: number[] }).predictions;
  // the reference: the public-weight run of party 1's model on the same images (agreement 1 with plaintext)
  if (plainPredictions) assert.deepEqual(preds, plainPredictions.slice(0, 4));
  assert.equal(preds.length, 4);
});

// ---------------------------------------------------------------------------------------------
// 4. Bad input
// ---------------------------------------------------------------------------------------------

test('mpc infer rejects bad input with one line and no stack trace', { timeout: 45_000 }, async () => {
  const badNode = join(tmp, 'bad-node.json'),
    badMsb = join(tmp, 'bad-msb.json'),
    badJson = join(tmp, 'bad.json');
  writeFileSync(badNode, JSON.stringify({ layers: { no_such_node: { msb: 20 } } }));
  writeFileSync(badMsb, JSON.stringify({ layers: { [[...reluElems.keys()][0]!]: { msb: 65 } } }));
  writeFileSync(badJson, '{oops');
  const data = ['--dataset', 'fashion-mnist-sample', '--limit', '2'];
  const cases: [string[], RegExp][] = [
    [[join(tmp, 'missing.onnx'), ...data], /missing\.onnx: no such model file/],
    [[MODEL, ...data, '--relu-protocol', 'fancy'], /--relu-protocol must be signonly, crypten, fss or fss2, got 'fancy'/],
    [[MODEL, ...data, '--relu-config', badNode], /'no_such_node' is not a Relu or MaxPool node/],
    [[MODEL, ...data, '--relu-config', badMsb], /needs integers 0 ≤ lsb ≤ msb ≤ 64, got msb=65 lsb=0/],
    [[MODEL, ...data, '--relu-config', badJson], /bad\.json: cannot read ReLU config/],
    [[MODEL, ...data, '--relu-config', join(tmp, 'nope.json')], /nope\.json: cannot read ReLU config/],
    [[MODEL, ...data, '--net', 'bogus'], /unknown --net value 'bogus'/],
    [[MODEL, ...data, '--weights', 'hidden'], /--weights must be public or secret/],
    [[MODEL, '--dataset', 'nope', '--limit', '2'], /unknown dataset 'nope'/],
    [[MODEL, ...data, '--connect-timeout', '0'], /--connect-timeout must be between 0\.1 s and 1 day/],
  ];
  const rs = await Promise.all(cases.map(([args]) => privml(['mpc', 'infer', ...args], 20_000)));
  rs.forEach((r, i) => {
    assertOneLineError(`mpc infer ${cases[i]![0].join(' ')}`, r, cases[i]![1]);
    assert.equal(r.stdout, '');
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Party 1's view during a ReLU does not depend on party 0's input
// ---------------------------------------------------------------------------------------------

/** Party 1's view: every message it receives from party 0, in order (and what it sent in exchanges). */
function recording(peer: PeerChannel, log: Uint8Array[], sent: Uint8Array[] = []): PeerChannel {
  return {
    get stats() {
      return peer.stats;
    },
    exchange: async (m) => {
      sent.push(m.slice());
      const got = await peer.exchange(m);
      log.push(got.slice());
      return got;
    },
    send: (m) => peer.send(m),
    recv: async () => {
      const got = await peer.recv();
      log.push(got.slice());
      return got;
    },
  };
}

/** A dealer handing out all-zero correlations: valid (0·0 = 0) but masks nothing — the negative control. */
const zeroDealer: Correlations = {
  beaver: async (n): Promise<BeaverTriple> => ({ a: new BigInt64Array(n), b: new BigInt64Array(n), c: new BigInt64Array(n) }),
  matmulTriple: async () => assert.fail('not used'),
  andTriples: async (n): Promise<AndTriples> => ({ a: new Uint8Array((n + 7) >> 3), b: new Uint8Array((n + 7) >> 3), c: new Uint8Array((n + 7) >> 3) }),
  sharedBits: async (n): Promise<SharedBits> => ({ xor: new Uint8Array((n + 7) >> 3), arith: new BigInt64Array(n) }),
  bitMulTriples: async (n): Promise<BitMulTriples> => ({
    xor: new Uint8Array((n + 7) >> 3),
    arith: new BigInt64Array(n),
    a: new BigInt64Array(n),
    c: new BigInt64Array(n),
  }),
};

/**
 * Byte histograms (256 bins) of each message party 1 receives during `relu`, summed over `trials`
 * sessions. Party 0's share is the secret itself and party 1's share is 0, so party 1's view may
 * depend on party 0's input only through the protocol's messages. For the sign-only protocol one
 * more histogram covers a joint view: the opened sign bits c = c0 ⊕ c1 (the head of the last
 * message, both halves) XOR party 1's own share r1 of the dealer bit — sign ⊕ r0, so uniform
 * only if party 0's half was masked by its own share r0 (the marginal bytes cannot show that).
 */
async function reluView(input: (i: number) => bigint, n: number, trials: number, opts: CompareOptions, dealer?: Correlations): Promise<number[][]> {
  const hists: number[][] = [];
  const joint = opts.protocol === 'signonly';
  for (let t = 0; t < trials; t++) {
    const x = BigInt64Array.from({ length: n }, (_, i) => input(t * n + i));
    const log: Uint8Array[] = [],
      sent: Uint8Array[] = [];
    let r1: Uint8Array | undefined;
    await runTwoParty(async (ctx) => {
      let c: PartyContext = dealer ? { ...ctx, dealer } : ctx;
      if (ctx.party === 1) {
        const d = c.dealer;
        const spy: Correlations = {
          beaver: (k) => d.beaver(k),
          matmulTriple: (a, b, k) => d.matmulTriple(a, b, k),
          andTriples: (k) => d.andTriples(k),
          sharedBits: async (k) => {
            const b = await d.sharedBits(k);
            r1 = b.xor.slice();
            return b;
          },
          bitMulTriples: async (k) => {
            const b = await d.bitMulTriples(k);
            r1 = b.xor.slice();
            return b;
          },
        };
        c = { ...c, dealer: spy, peer: recording(ctx.peer, log, sent) };
      }
      await relu(c, ctx.party === 0 ? x : new BigInt64Array(n), opts);
      return 0;
    });
    const views = log.slice();
    if (joint) {
      const nb = (n + 7) >> 3,
        last = log.length - 1;
      views.push(Uint8Array.from({ length: nb }, (_, i) => log[last]![i]! ^ sent[last]![i]! ^ r1![i]!));
    }
    if (t === 0) for (const _ of views) hists.push(new Array<number>(256).fill(0));
    assert.equal(views.length, hists.length, 'the number of messages must not depend on the input');
    views.forEach((m, k) => {
      for (const byte of m) hists[k]![byte]!++;
    });
  }
  return hists;
}

/** Chi-square of a histogram against uniform, and of two histograms against each other (df = used bins − 1). */
function chi2Uniform(h: number[]): { stat: number; df: number } {
  const total = h.reduce((s, v) => s + v, 0),
    e = total / h.length;
  return { stat: h.reduce((s, v) => s + (v - e) ** 2 / e, 0), df: h.length - 1 };
}
function chi2Two(a: number[], b: number[]): { stat: number; df: number } {
  let stat = 0,
    bins = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i]! + b[i]! === 0) continue;
    bins++;
    stat += (a[i]! - b[i]!) ** 2 / (a[i]! + b[i]!);
  }
  return { stat, df: Math.max(1, bins - 1) };
}
/** Upper 1e-6 quantile of χ²(df) (Wilson–Hilferty): a correct protocol essentially never exceeds it. */
function chi2Limit(df: number): number {
  const z = 4.753,
    k = 2 / (9 * df);
  return df * (1 - k + z * Math.sqrt(k)) ** 3;
}

test('party 1 receives the same distribution during relu whether party 0 holds zeros or large values', { timeout: 30_000 }, async () => {
  const r = rng(7);
  const zeros = () => 0n;
  const large = () => r() >> 20n; // |x| up to 2^43, both signs
  for (const [opts, n, trials, uniform] of [
    [{ protocol: 'signonly' }, 2048, 16, true],
    [{ protocol: 'signonly', msb: 24, lsb: 8 }, 2048, 16, true],
    // CrypTen's B2A opens each masked bit as a 64-bit word: not uniform bytes, but input-independent
    [{ protocol: 'crypten' }, 512, 16, false],
  ] as const) {
    const what = JSON.stringify(opts);
    const v0 = await reluView(zeros, n, trials, opts);
    const v1 = await reluView(large, n, trials, opts);
    assert.equal(v0.length, v1.length, `${what}: message count`);
    v0.forEach((h, k) => {
      assert.deepEqual(
        h.reduce((s, c) => s + c, 0),
        v1[k]!.reduce((s, c) => s + c, 0),
        `${what}: message ${k} length`,
      );
      const two = chi2Two(h, v1[k]!);
      assert.ok(two.stat < chi2Limit(two.df), `${what}: message ${k} differs between inputs: χ² = ${two.stat.toFixed(1)} (df ${two.df})`);
      if (uniform) {
        for (const hh of [h, v1[k]!]) {
          const u = chi2Uniform(hh);
          assert.ok(u.stat < chi2Limit(u.df), `${what}: message ${k} not uniform: χ² = ${u.stat.toFixed(1)}`);
        }
      }
    });
    // Negative control: with unmasked openings (an all-zero dealer) the same statistic tells the inputs apart.
    const c0 = await reluView(zeros, n, 2, opts, zeroDealer);
    const c1 = await reluView(large, n, 2, opts, zeroDealer);
    const worst = Math.max(...c0.map((h, k) => chi2Two(h, c1[k]!).stat / chi2Limit(chi2Two(h, c1[k]!).df)));
    assert.ok(worst > 10, `${what}: the test cannot see unmasked openings (worst χ²/limit ${worst})`);
  }
});
