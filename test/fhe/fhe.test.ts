import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerFhe } from '../../src/cli/fhe.js';
import { type AffineMap, compileModel, simulateProgram } from '../../src/fhe/compile.js';
import {
  type Ciphertext,
  decodeCiphertext,
  decodeFheFile,
  encodeCiphertext,
  encodeFheFile,
  FheContext,
  generateKeys,
  loadServerKeys,
  saveKeys,
} from '../../src/fhe/context.js';
import { decryptOutput, decryptSlots, encryptInput, inferEncrypted, localRefresh, outputMeta, precisionProbe } from '../../src/fhe/executor.js';
import { bsgs, lowerProgram } from '../../src/fhe/lower.js';
import { HeEval, LevelsExhaustedError, PlainCache } from '../../src/fhe/ops.js';
import { maskReserve, planFhe, splitFlowNote } from '../../src/fhe/planner.js';
import { floatTensor, ModelError } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';
import { saveModel } from '../../src/onnx/proto.js';
import { expandPafs, replaceActivations } from '../../src/smartpaf/graph.js';
import { makePaf } from '../../src/smartpaf/paf.js';
import { rand, tinyCnn, tinyPafModels } from './fixtures.js';

const small = { polyModulusDegree: 8192, primeBits: [50, 30, 30, 30, 50], scaleBits: 30 };

function encryptVec(ctx: FheContext, pk: Parameters<typeof encryptInput>[1], v: Float64Array): Ciphertext {
  const enc = ctx.seal.Encryptor(ctx.context, pk);
  const pt = ctx.encode(v, ctx.scale);
  const ct = enc.encrypt(pt) as Ciphertext;
  pt.delete();
  enc.delete();
  return ct;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>, n = a.length) => {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

test('HE ops match plaintext (N=8192): round trip, rotation, mult, scalar, BSGS linear map, PAF ReLU; levels enforced', async () => {
  const ctx = await FheContext.create(small);
  const n = ctx.slots;
  // A random sparse map with diagonals spread over the slot range (exercises BSGS wrap-around).
  const ks = [0, 1, 5, 64, 65, n - 1, n - 3, 1000];
  const m: AffineMap = { inSize: n, outSize: n, rows: [], bias: new Float64Array(n) };
  const w = rand(ks.length * n, 11, 0.5);
  for (let o = 0; o < n; o++) m.rows.push({ idx: ks.map((k) => (o + k) % n), w: ks.map((_, j) => w[j * n + o]!) });
  const diags = new Map(ks.map((k, j) => [k, Float64Array.from({ length: n }, (_, o) => w[j * n + o]!)]));
  const b = bsgs(ks, n);
  const keys = generateKeys(ctx, [1, 3, ...b.babies, ...b.giants, b.horner ?? 0, 64, 65, 1000, n - 1, n - 3]);
  const { secretKey, ...server } = keys;
  const he = new HeEval(ctx, server.relinKeys, server.galois);
  try {
    const x = Float64Array.from(rand(n, 3, 1));
    const ct = encryptVec(ctx, keys.publicKey, x);
    assert.ok(maxDiff(decryptSlots(ctx, secretKey, ct), x) < 1e-4, 'round trip');
    const r = he.rotate(ct, 3);
    const rd = maxDiff(
      decryptSlots(ctx, secretKey, r),
      Float64Array.from(x, (_, i) => x[(i + 3) % n]!),
    );
    // 30-bit scale: key switching adds ~1e-4 absolute noise.
    assert.ok(rd < 2e-3, `rotation ${rd}`);
    const sq = he.mul(ct, r);
    assert.ok(
      maxDiff(
        decryptSlots(ctx, secretKey, sq),
        Float64Array.from(x, (v, i) => v * x[(i + 3) % n]!),
      ) < 5e-3,
      'mult',
    );
    const sc = he.mulScalar(ct, -0.7);
    assert.ok(
      maxDiff(
        decryptSlots(ctx, secretKey, sc),
        x.map((v) => -0.7 * v),
      ) < 5e-4,
      'scalar',
    );
    // Linear map through the same planner the model layers use.
    const babies = b.babies.filter((v) => v !== 0).map((s) => ({ step: s, from: 0, via: s }));
    const lin = he.linear(ct, { diags, bias: new Float64Array(n).fill(0.25), n1: b.n1, babies, giants: b.giants, horner: b.horner, reduce: [] }, 'test');
    const want = Float64Array.from({ length: n }, (_, o) => 0.25 + ks.reduce((s, k, j) => s + w[j * n + o]! * x[(o + k) % n]!, 0));
    assert.ok(maxDiff(decryptSlots(ctx, secretKey, lin), want) < 1e-2, 'BSGS linear');
    // PAF ReLU with one f1 stage (depth 3): u + u·f1(u).
    const relu = he.pafRelu(ct, [[1.5, -0.5]], 'test');
    assert.ok(
      maxDiff(
        decryptSlots(ctx, secretKey, relu),
        x.map((u) => u + u * (1.5 * u - 0.5 * u ** 3)),
      ) < 1e-2,
      'PAF',
    );
    assert.equal(ctx.level(relu), 0);
    assert.throws(() => he.mul(relu, relu), LevelsExhaustedError);
    // A level-0 ciphertext whose scale the remaining modulus cannot hold is refused, not decoded.
    relu.setScale(2 ** 48);
    assert.throws(() => decryptSlots(ctx, secretKey, relu), /refusing to decode/);
    for (const c of [ct, r, sq, sc, lin, relu]) c.delete();
  } finally {
    keys.dispose();
    ctx.dispose();
  }
});

test('compile: PafRelu and expanded forms give the same program; plain ReLU is refused with a reason', () => {
  const { nodes, expanded } = tinyPafModels();
  const a = compileModel(nodes, 'nodes');
  const b = compileModel(expanded, 'expanded');
  assert.equal(a.form, 'paf-nodes');
  assert.equal(b.form, 'expanded-metadata');
  assert.deepEqual(
    a.steps.map((s) => s.kind),
    ['linear', 'paf', 'sumpool', 'linear'],
  );
  const x = rand(64, 5);
  assert.ok(maxDiff(simulateProgram(a, x).at(-1)!, simulateProgram(b, x).at(-1)!) < 1e-9);
  assert.throws(
    () => compileModel(tinyCnn(), 'plain.onnx'),
    (e: Error) => e instanceof ModelError && /'relu' \(Relu\).*replace it with a PAF/.test(e.message),
  );
});

test('planner: levels missing reported, refresh points inserted when allowed', () => {
  const { expanded } = tinyPafModels();
  const p = compileModel(expanded, 'tiny');
  assert.throws(
    () => planFhe(p, { degrees: [8192], refresh: false }),
    /needs 8 levels, N=8192 holds 3 .*5 levels missing \(client-aided refresh would split it; it was disabled\)/,
  );
  assert.throws(() => planFhe(p, { degrees: [8192] }), /step 'relu' alone needs 6 levels/);
  assert.throws(() => planFhe(p, { degrees: [8192], refresh: true, maskBits: 10 }), /step 'relu' alone needs 6 levels/);
  const f1 = makePaf('f1', [[1.5, -0.5]]);
  const p1 = compileModel(expandPafs(replaceActivations(tinyCnn(), f1, { scaleMode: 'static', scales: { relu: 2 } })), 'tiny-f1');
  const plan = planFhe(p1, { degrees: [8192], refresh: true, maskBits: 10 });
  assert.ok(plan.refreshes === 2 && plan.levels <= 3, JSON.stringify({ r: plan.refreshes, l: plan.levels }));
  // Without the flag the planner still chooses refresh when it is the only way, and says so.
  const auto = planFhe(p1, { degrees: [8192], maskBits: 10 });
  assert.equal(auto.refreshes, 2);
  assert.match(auto.choice, /client-aided refresh is the only way: the model needs 5 levels/);
  // keygen says up front that the split flow's infer will stop for the client (twice per image here).
  assert.match(splitFlowNote(auto, 'tiny-f1')!, /^tiny-f1: client-aided refresh is the only way.*'fhe infer' stops 2 time\(s\) per image for 'fhe refresh'/);
  // Alternatives are listed cheapest first with predicted costs; the chosen one is among them.
  const alt = planFhe(p1, { degrees: [8192, 16384], refresh: true, maskBits: 10 });
  assert.ok(alt.candidates.length >= 2 && alt.candidates.includes(alt.chosen));
  assert.ok(alt.candidates.every((c, i) => i === 0 || c.predicted.totalSeconds >= alt.candidates[i - 1]!.predicted.totalSeconds));
  // With the model plaintexts cached only their encodes drop out: cheaper, but not free.
  assert.ok(
    alt.candidates.every((c) => c.predicted.cachedTotalSeconds < c.predicted.totalSeconds && c.predicted.cachedTotalSeconds > 0.2 * c.predicted.totalSeconds),
  );
  assert.ok(
    alt.candidates.some((c) => c.polyModulusDegree === 16384 && c.refreshes === 0) &&
      alt.candidates.some((c) => c.polyModulusDegree === 8192 && c.refreshes === 2),
  );
  assert.equal(alt.chosen, alt.candidates[0]);
  // Ranked by the cached (per-image after the first) time when asked.
  const warm = planFhe(p1, { degrees: [8192, 16384], refresh: true, maskBits: 10, cachedPlaintexts: true });
  assert.ok(warm.candidates.every((c, i) => i === 0 || c.predicted.cachedTotalSeconds >= warm.candidates[i - 1]!.predicted.cachedTotalSeconds));
  assert.equal(warm.chosen, warm.candidates[0]);
  // A 40-bit refresh mask needs room in the modulus: one level kept free before every refresh, so
  // at N=8192 the 3-level ReLU chain cannot end in a refresh (small masks above are for mechanics only).
  assert.equal(maskReserve(40, 40), 1);
  assert.equal(maskReserve(30, 10), 0);
  assert.throws(
    () => planFhe(p1, { degrees: [8192] }),
    /a chain of 3 levels before step 'pool' must end in a refresh, whose 40-bit mask needs 1 level\(s\) left free; N=8192 holds 3/,
  );
  const wide = planFhe(p1, { degrees: [16384], refresh: true });
  assert.ok(wide.lowered.steps.every((s) => s.kind !== 'refresh' || s.maskLog2 === 42));
  const ok = planFhe(p, { degrees: [8192, 16384] });
  assert.equal(ok.params.polyModulusDegree, 16384);
  assert.equal(ok.depth, 8);
  assert.equal(splitFlowNote(ok, 'tiny'), undefined);
});

test('tiny PAF CNN end to end under CKKS matches onnxruntime on the expanded model (N=16384)', async () => {
  const { expanded } = tinyPafModels();
  const prog = compileModel(expanded, 'tiny');
  const plan = planFhe(prog, { degrees: [16384] });
  const ctx = await FheContext.create(plan.params);
  const keys = generateKeys(ctx, plan.lowered.rotationSteps);
  const { secretKey, ...server } = keys;
  try {
    const x = rand(64, 9);
    const ort = await runOrt(expanded, { input: floatTensor([1, 1, 8, 8], x) });
    const want = ort['logits']!.data as Float32Array;
    const { ct } = encryptInput(ctx, keys.publicKey, plan.lowered.input, x);
    const res = await inferEncrypted(ctx, server, plan.lowered, ct, { onStep: precisionProbe(ctx, secretKey, prog, plan.lowered, x) });
    const y = decryptOutput(ctx, secretKey, res.ct, outputMeta(plan.lowered, 'tiny'));
    assert.ok(maxDiff(y, want) < 1e-3, `logits ${Array.from(y)} vs ${Array.from(want)}`);
    assert.ok(res.steps.every((s) => (s.maxAbsError ?? 0) < 1e-3));
    assert.ok(res.steps.at(-1)!.level >= 0 && res.stats.rotations === plan.lowered.rotations);
    ct.delete();
    res.ct.delete();
  } finally {
    keys.dispose();
    ctx.dispose();
  }
});

test('client-aided refresh: masked round trips give the same logits (N=8192)', async () => {
  const f1 = makePaf('f1', [[1.5, -0.5]]);
  const model = expandPafs(replaceActivations(tinyCnn(), f1, { scaleMode: 'static', scales: { relu: 2 } }));
  const prog = compileModel(model, 'tiny-f1');
  const plan = planFhe(prog, { degrees: [8192], refresh: true, maskBits: 10 });
  assert.equal(plan.refreshes, 2);
  const ctx = await FheContext.create(plan.params);
  const keys = generateKeys(ctx, plan.lowered.rotationSteps);
  const { secretKey, ...server } = keys;
  try {
    const x = rand(64, 4);
    const { ct } = encryptInput(ctx, keys.publicKey, plan.lowered.input, x);
    await assert.rejects(inferEncrypted(ctx, server, plan.lowered, ct), /client-aided refresh/);
    let trips = 0;
    const client = localRefresh(ctx, secretKey, keys.publicKey);
    // What the client sees: the mask spans its stated width (2^(10+2) here), far beyond the values.
    let seen = 0;
    const res = await inferEncrypted(ctx, server, plan.lowered, ct, {
      refresh: (m) => {
        trips++;
        seen = Math.max(seen, ...Array.from(decryptSlots(ctx, secretKey, m), Math.abs));
        return client(m);
      },
    });
    assert.equal(trips, 2);
    // The last chain needs one level (the gemm): its refresh resumes there, not at the top (3).
    assert.deepEqual(
      res.steps.filter((r) => r.kind === 'refresh').map((r) => r.level),
      [3, 1],
    );
    // Model plaintexts cached across two inferences: the second encodes nothing and agrees.
    const cache = new PlainCache();
    const r1 = await inferEncrypted(ctx, server, plan.lowered, ct, { refresh: client, cache });
    const misses = cache.misses;
    const r2 = await inferEncrypted(ctx, server, plan.lowered, ct, { refresh: client, cache });
    assert.ok(misses > 0 && cache.misses === misses && cache.hits >= misses, JSON.stringify({ misses, now: cache.misses, hits: cache.hits }));
    const y1 = decryptOutput(ctx, secretKey, r1.ct, outputMeta(plan.lowered, 'x'));
    const y2 = decryptOutput(ctx, secretKey, r2.ct, outputMeta(plan.lowered, 'x'));
    assert.ok(maxDiff(y1, y2) < 1e-2 && maxDiff(y2, simulateProgram(prog, x).at(-1)!) < 1e-2);
    for (const o of [r1.ct, r2.ct]) o.delete();
    cache.dispose();
    assert.ok(seen > 2 ** 11 && seen <= 2 ** 12 + 8, `masked values reach ${seen}`);
    const y = decryptOutput(ctx, secretKey, res.ct, outputMeta(plan.lowered, 'x'));
    assert.ok(maxDiff(y, simulateProgram(prog, x).at(-1)!) < 1e-2);
    ct.delete();
    res.ct.delete();
  } finally {
    keys.dispose();
    ctx.dispose();
  }
});

test('files: truncated/tampered/foreign ciphertexts and keys give clear errors; server refuses a secret key; CLI round trip', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-fhe-'));
  try {
    const ctx = await FheContext.create(small);
    const a = generateKeys(ctx, [1]);
    const b = generateKeys(ctx, [1]);
    saveKeys(ctx, a, join(dir, 'a'));
    const ct = encryptVec(ctx, a.publicKey, new Float64Array(4).fill(1));
    const bytes = encodeCiphertext(ctx, a.keyId, ct, { role: 'input' });
    assert.throws(() => decodeCiphertext(ctx, a.keyId, bytes.subarray(0, bytes.length - 10), 'x.ct'), /x.ct: truncated/);
    const t = Uint8Array.from(bytes);
    t[t.length - 100]! ^= 1;
    assert.throws(() => decodeCiphertext(ctx, a.keyId, t, 'x.ct'), /checksum mismatch/);
    assert.throws(() => decodeCiphertext(ctx, b.keyId, bytes, 'x.ct'), /another key pair/);
    assert.throws(() => decodeCiphertext(ctx, a.keyId, Buffer.from('hello world, not a file'), 'x.ct'), /bad magic/);
    const other = await FheContext.create({ ...small, primeBits: [50, 30, 30, 50] });
    assert.throws(() => decodeCiphertext(other, a.keyId, bytes, 'x.ct'), /other CKKS parameters/);
    other.dispose();
    // Truncated Galois key file.
    const gpath = join(dir, 'a', 'public', 'galois-1.key');
    writeFileSync(gpath, readFileSync(gpath).subarray(0, 1000));
    const sk = loadServerKeys(ctx, join(dir, 'a', 'public'));
    assert.throws(() => sk.galois.get(1), /galois-1.key: truncated/);
    sk.dispose();
    assert.throws(() => loadServerKeys(ctx, join(dir, 'a')), /holds a secret key/);
    const { secretKey: _s, ...server } = a;
    await assert.rejects(inferEncrypted(ctx, a, lowerProgram(compileModel(tinyPafModels().expanded), ctx.slots), ct), /must not hold the secret key/);
    void server;
    ct.delete();
    a.dispose();
    b.dispose();
    ctx.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: keygen → encrypt → infer (public keys only) → decrypt on the tiny PAF model', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-fhe-cli-'));
  const out: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  const run = async (...args: string[]) => {
    const p = new Command().exitOverride();
    registerFhe(p);
    // Only the CLI's text: the test runner's own (binary, serialized) reports go through untouched.
    (process.stdout as { write: unknown }).write = (s: string | Uint8Array, ...rest: unknown[]) =>
      typeof s === 'string' ? (out.push(s), true) : (orig as (...a: unknown[]) => boolean)(s, ...rest);
    try {
      await p.parseAsync(['node', 'privml', 'fhe', ...args]);
    } finally {
      (process.stdout as { write: unknown }).write = orig;
    }
    return out.splice(0).join('');
  };
  try {
    // f1 PAF (depth 3): the model needs 5 levels, so the planner picks N=16384 at a 40-bit scale.
    const pafModel = expandPafs(replaceActivations(tinyCnn(), makePaf('f1', [[1.5, -0.5]]), { scaleMode: 'static', scales: { relu: 2 } }));
    const model = join(dir, 'tiny.paf.onnx');
    saveModel(pafModel, model);
    const x = Array.from(rand(64, 21));
    writeFileSync(join(dir, 'x.json'), JSON.stringify(x));
    const plan = JSON.parse(await run('plan', model, '--json'));
    assert.equal(plan.polyModulusDegree, 16384);
    assert.equal(plan.depth, 5);
    const kg = JSON.parse(await run('keygen', '--model', model, '-o', join(dir, 'keys'), '--json'));
    // Secret key: mode 0600, never overwritten; server keys in SEAL's seeded form (about half size).
    assert.equal(statSync(join(dir, 'keys', 'secret.key')).mode & 0o777, 0o600);
    await assert.rejects(run('keygen', '--model', model, '-o', join(dir, 'keys')), /secret key already exists; refusing to overwrite/);
    const full = (kg.params.primeBits.length - 1) * 2 * kg.params.polyModulusDegree * kg.params.primeBits.length * 8;
    const g = statSync(join(dir, 'keys', 'public', `galois-${kg.galoisSteps[0]}.key`)).size;
    assert.ok(g < 0.6 * full, `seeded Galois key ${g} B vs ${full} B unseeded`);
    assert.ok(kg.serverBytes < kg.bytes);
    // Bad inputs: one-line errors naming the flag or file.
    writeFileSync(join(dir, 'short.json'), '[0.1, 0.2, 0.3]');
    writeFileSync(join(dir, 'inf.json'), JSON.stringify(x).replace(/^\[[^,]*/, '[1e999'));
    await assert.rejects(
      run('encrypt', join(dir, 'short.json'), '--dims', '1,8,8', '--keys', join(dir, 'keys'), '-o', join(dir, 'z.ct')),
      /short.json: 3 values, but --dims 1,8,8 needs 64/,
    );
    await assert.rejects(
      run('encrypt', join(dir, 'inf.json'), '--dims', '1,8,8', '--keys', join(dir, 'keys'), '-o', join(dir, 'z.ct')),
      /inf.json: value 0 is .*not a finite number/,
    );
    await assert.rejects(
      run('encrypt', '--dataset', 'fashion-mnist-sample', '--index', '-1', '--keys', join(dir, 'keys'), '-o', join(dir, 'z.ct')),
      /--index must be an integer ≥ 0, got '-1'/,
    );
    await assert.rejects(
      run('encrypt', '--dataset', 'fashion-mnist-sample', '--index', '1.5', '--keys', join(dir, 'keys'), '-o', join(dir, 'z.ct')),
      /--index must be an integer ≥ 0, got '1.5'/,
    );
    await assert.rejects(run('plan', model, '--min-scale-bits', '50', '--max-scale-bits', '20'), /--min-scale-bits 50 is larger than --max-scale-bits 20/);
    await run('encrypt', join(dir, 'x.json'), '--dims', '1,8,8', '--keys', join(dir, 'keys'), '-o', join(dir, 'x.ct'));
    await assert.rejects(run('infer', model, join(dir, 'x.ct'), '--public-keys', join(dir, 'keys'), '-o', join(dir, 'y.ct')), /holds a secret key/);
    await run('infer', model, join(dir, 'x.ct'), '--public-keys', join(dir, 'keys', 'public'), '-o', join(dir, 'y.ct'), '--json');
    const y = JSON.parse(await run('decrypt', join(dir, 'y.ct'), '--keys', join(dir, 'keys'), '--json'));
    const want = simulateProgram(compileModel(pafModel), x).at(-1)!;
    assert.ok(maxDiff(y.output, want) < 1e-3, `${y.output} vs ${Array.from(want)}`);
    // A key file modified with a consistent header (checksum recomputed) is refused by the key set's
    // manifest, in one line; so is a key file swapped in from another key set.
    const relin = join(dir, 'keys', 'public', 'relin.key');
    const good = readFileSync(relin);
    const { header, payload } = decodeFheFile(good, relin);
    const bad = Uint8Array.from(payload);
    bad[bad.length >> 1]! ^= 1;
    writeFileSync(relin, encodeFheFile(header, bad));
    const err = await run('infer', model, join(dir, 'x.ct'), '--public-keys', join(dir, 'keys', 'public'), '-o', join(dir, 'y2.ct')).then(
      () => assert.fail('tampered key accepted'),
      (e: Error) => e.message,
    );
    assert.match(err, /relin.key: does not match the SHA-256 listed in its key set's params.fhe/);
    assert.ok(!err.includes('\n'), err);
    writeFileSync(relin, good);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an FHE file whose header is valid JSON but not an object is refused in one line (fuzz regression)', () => {
  for (const json of ['null', '7', '[]']) {
    const body = Buffer.from(json);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(body.length);
    const file = Buffer.concat([Buffer.from('PRIVMLHE', 'ascii'), len, body, Buffer.alloc(32)]);
    assert.throws(() => decodeFheFile(file, 'x.ct'), /x.ct: corrupt header/);
  }
});
