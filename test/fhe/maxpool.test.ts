/**
 * PAF MaxPool under CKKS, client-aided refresh inside a max tree, refusal to decode after the
 * levels (or their headroom) ran out, and flat memory across inferences. Small rings only.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileModel, simulateProgram } from '../../src/fhe/compile.js';
import { type Ciphertext, FheContext, galoisCacheSize, galoisKeyBytes, generateKeys } from '../../src/fhe/context.js';
import { decryptOutput, decryptSlots, encryptInput, inferEncrypted, localRefresh, outputMeta, precisionProbe } from '../../src/fhe/executor.js';
import { lowerProgram } from '../../src/fhe/lower.js';
import { HeEval, LevelsExhaustedError } from '../../src/fhe/ops.js';
import { chainFor, maskReserve, planFhe } from '../../src/fhe/planner.js';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, ModelError } from '../../src/onnx/ir.js';
import { runOrt } from '../../src/onnx/ort.js';
import { expandPafs, replaceActivations } from '../../src/smartpaf/graph.js';
import { makePaf } from '../../src/smartpaf/paf.js';
import { rand, tinyCnnMax, tinyMaxPafModels } from './fixtures.js';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>, n = a.length) => {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

function encryptVec(ctx: FheContext, pk: Parameters<typeof encryptInput>[1], v: ArrayLike<number>): Ciphertext {
  const enc = ctx.seal.Encryptor(ctx.context, pk);
  const pt = ctx.encode(v, ctx.scale);
  const ct = enc.encrypt(pt) as Ciphertext;
  pt.delete();
  enc.delete();
  return ct;
}

/** A conv → ReLU → MaxPool(window) → flatten → gemm model on 1×8×8 with PAFs, or the error compiling it. */
function windowModel(attrs: Record<string, number[] | number>) {
  const b = new GraphBuilder('win');
  const x = b.input('input', 'float32', ['batch', 1, 8, 8]);
  const c = b.op('Conv', [x, b.init('w', floatTensor([2, 1, 3, 3], rand(18, 1, 0.5)))], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv' });
  const r = b.op('Relu', [c], {}, { name: 'relu' });
  const p = b.op('MaxPool', [r], attrs, { name: 'pool' });
  const f = b.op('Flatten', [p], { axis: 1 }, { name: 'flatten' });
  const k = (2 * 8 * 8) / ((attrs['strides'] as number[])[0]! * (attrs['strides'] as number[])[1]!);
  const y = b.op(
    'Gemm',
    [f, b.init('fc', floatTensor([3, Math.floor(k)], rand(3 * Math.floor(k), 2, 0.3)))],
    { transB: 1, alpha: float(1) },
    { name: 'fc', output: 'logits' },
  );
  b.output(y, 'float32', ['batch', 3]);
  return replaceActivations(b.build(), makePaf('f1', [[1.5, -0.5]]), { scaleMode: 'static', scales: { relu: 2, pool: 1.5 } });
}

test('compile: PAF MaxPool in both forms (tree depth, float64 reference = onnxruntime); unsupported windows and plain MaxPool refused with reasons', async () => {
  const { nodes, expanded } = tinyMaxPafModels();
  const a = compileModel(nodes, 'nodes');
  const b = compileModel(expanded, 'expanded');
  assert.deepEqual(
    a.steps.map((s) => s.kind),
    ['linear', 'paf', 'maxpool', 'linear'],
  );
  assert.deepEqual(
    b.steps.map((s) => s.kind),
    ['linear', 'paf', 'maxpool', 'linear'],
  );
  const mp = b.steps[2]!;
  assert.ok(mp.kind === 'maxpool' && mp.kernel.join() === '2,2' && mp.outDims.join() === '2,4,4');
  // 2 tree levels × (f1 sign depth 2 + 1 for (a−b)·sign).
  const lw = lowerProgram(b, 4096);
  assert.deepEqual(lw.depths, [1, 3, 3, 3, 1]);
  assert.equal(lw.depth, 11);
  const xs = rand(4 * 64, 7);
  const ort = (await runOrt(expanded, { input: floatTensor([4, 1, 8, 8], xs) }))['logits']!.data as Float32Array;
  for (let i = 0; i < 4; i++) {
    const x = xs.subarray(i * 64, (i + 1) * 64);
    assert.ok(maxDiff(simulateProgram(a, x).at(-1)!, ort.subarray(i * 4, i * 4 + 4)) < 1e-5);
    assert.ok(maxDiff(simulateProgram(b, x).at(-1)!, ort.subarray(i * 4, i * 4 + 4)) < 1e-5);
  }
  assert.throws(
    () => compileModel(windowModel({ kernel_shape: [3, 3], strides: [2, 2] }), 'w.onnx'),
    (e: Error) =>
      e instanceof ModelError &&
      /PAF MaxPool not supported under FHE \(strides \[2,2\] differ from kernel \[3,3\], kernel \[3,3\] sides are not powers of two/.test(e.message),
  );
  assert.throws(
    () => compileModel(windowModel({ kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1] }), 'w.onnx'),
    /PAF MaxPool not supported under FHE \(padding/,
  );
  assert.ok(compileModel(windowModel({ kernel_shape: [4, 4], strides: [4, 4] })).steps.some((s) => s.kind === 'maxpool'));
  const plainPool = replaceActivations(tinyCnnMax(), makePaf('f1', [[1.5, -0.5]]), { scaleMode: 'static', scales: { relu: 2 }, maxPool: false });
  assert.throws(() => compileModel(plainPool, 'half.onnx'), /'pool' \(MaxPool\): not supported under FHE: .*PafMaxPool/);
});

test('planner: a MaxPool model that does not fit one chain fails with the missing levels, or gets refresh points (also between tree levels)', () => {
  const prog = compileModel(tinyMaxPafModels().expanded, 'tiny-max');
  assert.throws(
    () => planFhe(prog, { degrees: [8192], refresh: false }),
    /needs 11 levels, N=8192 holds 3 at 30-bit scale: 8 levels missing \(client-aided refresh would split it/,
  );
  assert.equal(planFhe(prog, { degrees: [8192], maskBits: 10 }).refreshes, 4);
  const plan = planFhe(prog, { degrees: [8192], refresh: true, maskBits: 10 });
  // Units 1 | 3 | 3 | 3 | 1 with at most 3 levels per chain: 4 round trips, one between the two tree levels.
  assert.equal(plan.refreshes, 4);
  assert.equal(plan.levels, 3);
  assert.deepEqual(
    plan.lowered.steps.map((s) => s.kind),
    ['linear', 'refresh', 'paf', 'refresh', 'maxlevel', 'refresh', 'maxlevel', 'refresh', 'linear'],
  );
  assert.ok(plan.steps.some((s) => s.kind === 'maxpool f1' && /rotate by 1, /.test(s.note)));
  // The MaxPool's rotations (1 and the lattice row, 8) are among the Galois keys.
  assert.ok(plan.lowered.rotationSteps.includes(1) && plan.lowered.rotationSteps.includes(8));
  const none = planFhe(prog, { degrees: [16384] });
  assert.equal(none.refreshes, 0);
  // With a 40-bit mask every refresh happens with the mask's room left in the chain (this once
  // failed: segments were checked against the cap, the chain was sized to the deepest segment).
  for (const [degrees, refresh] of [
    [[8192, 16384], true],
    [[16384], undefined],
  ] as const) {
    const p = planFhe(prog, { degrees: [...degrees], refresh, maxScaleBits: 50 });
    let level = p.levels;
    for (const [i, st] of p.lowered.steps.entries()) {
      if (st.kind === 'refresh') {
        assert.ok(level >= maskReserve(p.params.scaleBits, 40), `refresh at level ${level} of ${p.levels}`);
        level = p.levels;
      } else level -= p.lowered.depths[i]!;
      assert.ok(level >= 0);
    }
  }
});

test('PAF MaxPool CNN under CKKS with client-aided refresh (N=8192) matches onnxruntime on the same PAF ONNX, both forms', async () => {
  const { nodes, expanded } = tinyMaxPafModels();
  for (const model of [expanded, nodes]) {
    const prog = compileModel(model, 'tiny-max');
    const plan = planFhe(prog, { degrees: [8192], refresh: true, maskBits: 10 });
    const ctx = await FheContext.create(plan.params);
    const keys = generateKeys(ctx, plan.lowered.rotationSteps);
    const { secretKey, ...server } = keys;
    try {
      for (const seed of [9, 10]) {
        const x = rand(64, seed);
        const want = (await runOrt(expanded, { input: floatTensor([1, 1, 8, 8], x) }))['logits']!.data as Float32Array;
        const { ct } = encryptInput(ctx, keys.publicKey, plan.lowered.input, x);
        let trips = 0;
        const client = localRefresh(ctx, secretKey, keys.publicKey);
        const res = await inferEncrypted(ctx, server, plan.lowered, ct, {
          refresh: (m) => (trips++, client(m)),
          onStep: precisionProbe(ctx, secretKey, prog, plan.lowered, x),
        });
        const y = decryptOutput(ctx, secretKey, res.ct, outputMeta(plan.lowered, 'tiny-max'));
        assert.equal(trips, 4);
        assert.equal(res.refreshes, 4);
        assert.equal(res.stats.rotations, plan.lowered.rotations);
        assert.ok(maxDiff(y, want) < 1e-3, `logits ${Array.from(y)} vs ${Array.from(want)}`);
        const pool = res.steps.find((s) => s.name === 'pool[2/2]')!;
        assert.ok(pool.maxAbsError !== undefined && pool.maxAbsError < 1e-3, JSON.stringify(pool));
        ct.delete();
        res.ct.delete();
      }
    } finally {
      keys.dispose();
      ctx.dispose();
    }
  }
});

test('max tree level: the window mask keeps non-pair slots at sign = 0 (without it they leave the PAF range, blow up, and decoding is refused)', async () => {
  const stages = [
    [1.5, -0.5],
    [1.5, -0.5],
  ];
  const depth = 2 * 2 + 1;
  const ctx = await FheContext.create({ polyModulusDegree: 16384, primeBits: chainFor(depth, 40), scaleBits: 40 });
  const keys = generateKeys(ctx, [1]);
  const { secretKey, ...server } = keys;
  const he = new HeEval(ctx, server.relinKeys, server.galois);
  try {
    const n = ctx.slots;
    // Pairs (2i, 2i+1) differ by at most 1 (inside the PAF's range); across pairs (2i+1, 2i+2) by ±8.
    const x = Float64Array.from({ length: n }, (_, i) => (Math.floor(i / 2) % 2 === 0 ? 4 : -4) + (i % 2 === 0 ? 0.5 : -0.3) * Math.sin(i));
    const mask = Float64Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 1 : 0));
    const ct = encryptVec(ctx, keys.publicKey, x);
    const y = he.pafMaxLevel(ct, 1, stages, mask, 'test');
    const got = decryptSlots(ctx, secretKey, y);
    const sign = (u: number) => {
      for (const c of stages) u = c[0]! * u + c[1]! * u ** 3;
      return u;
    };
    let err = 0;
    for (let i = 0; i < n; i++) {
      const a = x[i]!;
      const b = x[(i + 1) % n]!;
      const want = i % 2 === 0 ? a + b + (a - b) * sign(a - b) : a + b;
      err = Math.max(err, Math.abs(got[i]! - want));
    }
    assert.ok(err < 1e-4, `masked max level error ${err}`);
    assert.equal(ctx.level(y), 0);
    const bad = he.pafMaxLevel(ct, 1, stages, new Float64Array(n).fill(1), 'unmasked');
    assert.throws(() => decryptSlots(ctx, secretKey, bad), /refusing to decode/);
    for (const c of [ct, y, bad]) c.delete();
  } finally {
    keys.dispose();
    ctx.dispose();
  }
});

test('decoding after the levels ran out is refused: no rescale left, scale past the modulus, headroom overflow, wrong key', async () => {
  const ctx = await FheContext.create({ polyModulusDegree: 8192, primeBits: [50, 30, 30, 30, 50], scaleBits: 30 });
  const n = ctx.slots;
  // A model deeper than the chain (11 levels, 3 available).
  const f1 = makePaf('f1', [[1.5, -0.5]]);
  const prog = compileModel(expandPafs(replaceActivations(tinyCnnMax(), f1, { scaleMode: 'static', scales: { relu: 2, pool: 1.5 } })), 'deep');
  const lowered = lowerProgram(prog, n);
  const keys = generateKeys(ctx, lowered.rotationSteps);
  const other = generateKeys(ctx, []);
  const he = new HeEval(ctx, keys.relinKeys, keys.galois);
  const made: Ciphertext[] = [];
  try {
    // The server stops with LevelsExhaustedError and never returns a ciphertext.
    const input = encryptInput(ctx, keys.publicKey, lowered.input, rand(64, 3)).ct;
    made.push(input);
    const { secretKey, ...server } = keys;
    await assert.rejects(
      inferEncrypted(ctx, server, lowered, input),
      (e: Error) => e instanceof LevelsExhaustedError && /CKKS levels exhausted: PAF 'relu/.test(e.message),
    );
    // Three multiplications use all three levels; no fourth product can be rescaled.
    const v = Float64Array.from({ length: n }, (_, i) => 1.1 * Math.sin(i));
    let c = encryptVec(ctx, keys.publicKey, v);
    made.push(c);
    const chain: Ciphertext[] = [c];
    for (let k = 0; k < 3; k++) made.push((c = he.mul(c, c))), chain.push(c);
    assert.equal(ctx.level(c), 0);
    assert.ok(
      maxDiff(
        decryptSlots(ctx, secretKey, c),
        v.map((t) => t ** 8),
      ) < 1e-2,
    );
    assert.throws(() => he.mul(c, c), LevelsExhaustedError);
    // A product left unrescaled (scale 2^60) cannot be pushed to the last level (SEAL refuses), and a
    // level-0 ciphertext whose scale the 50 bits left cannot hold is refused by privml's decoder.
    const raw = ctx.evaluator.multiply(chain[2]!, chain[2]!) as Ciphertext;
    made.push(raw);
    ctx.evaluator.relinearize(raw, keys.relinKeys, raw);
    assert.throws(() => ctx.evaluator.cipherModSwitchToNext(raw, raw), /scale out of bounds/);
    const over = c.clone();
    made.push(over);
    over.setScale(2 ** 60);
    assert.throws(() => decryptSlots(ctx, secretKey, over), /refusing to decode: ciphertext has 50 modulus bits left for a 60.0-bit scale/);
    // Values past the headroom of the last level (|v|·Δ ≥ q/2): the plaintext wrapped.
    let w = encryptVec(
      ctx,
      keys.publicKey,
      v.map((t) => 40 * t),
    );
    made.push(w);
    for (let k = 0; k < 3; k++) made.push((w = he.mul(w, w)));
    assert.throws(() => decryptSlots(ctx, secretKey, w), /refusing to decode: a slot holds .* past the .* remaining 50 modulus bits/);
    // Wrong secret key.
    assert.throws(() => decryptSlots(ctx, other.secretKey, input), /refusing to decode/);
  } finally {
    for (const c of made) c.delete();
    other.dispose();
    keys.dispose();
    ctx.dispose();
  }
});

test('memory stays flat across inferences (every SEAL object deleted): WASM heap and RSS after warm-up (N=8192, MaxPool model with refreshes)', async () => {
  const prog = compileModel(tinyMaxPafModels().expanded, 'tiny-max');
  const plan = planFhe(prog, { degrees: [8192], refresh: true, maskBits: 10 });
  const ctx = await FheContext.create(plan.params);
  const keys = generateKeys(ctx, plan.lowered.rotationSteps);
  const { secretKey, ...server } = keys;
  const wasm = () => {
    const u = process.memoryUsage();
    return (u.external - u.arrayBuffers) / 1e6;
  };
  const heap: number[] = [];
  try {
    for (let i = 0; i < 12; i++) {
      const x = rand(64, 100 + i);
      const { ct } = encryptInput(ctx, keys.publicKey, plan.lowered.input, x);
      const res = await inferEncrypted(ctx, server, plan.lowered, ct, {
        refresh: localRefresh(ctx, secretKey, keys.publicKey),
        onStep: precisionProbe(ctx, secretKey, prog, plan.lowered, x),
      });
      decryptOutput(ctx, secretKey, res.ct, outputMeta(plan.lowered, 'm'));
      ct.delete();
      res.ct.delete();
      heap.push(wasm());
    }
  } finally {
    keys.dispose();
    ctx.dispose();
  }
  // WASM memory only grows (in ≥ 20 % steps) when live objects need more room: any growth after warm-up means a leak.
  assert.ok(heap.at(-1)! - heap[1]! < 1, `WASM heap grew ${heap.map((h) => h.toFixed(1)).join(' → ')} MB`);
});

test('Galois key cache sized to the WASM budget', () => {
  const p = { polyModulusDegree: 32768, primeBits: chainFor(19, 40), scaleBits: 40 };
  assert.equal(galoisKeyBytes(p), 20 * 2 * 32768 * 21 * 8);
  assert.equal(galoisCacheSize(p), 8);
  assert.ok(galoisCacheSize({ polyModulusDegree: 8192, primeBits: [50, 30, 50], scaleBits: 30 }) > 100);
});
