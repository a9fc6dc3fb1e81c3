/** The split flow with client-aided refresh: fhe infer stops for the client, fhe refresh answers, infer --resume runs on. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { decrypt, encrypt, infer, keygen, refresh } from '../../src/api/fhe.js';
import { registerFhe } from '../../src/cli/fhe.js';
import { compileModel, simulateProgram } from '../../src/fhe/compile.js';
import { decodeFheFile, readKeyParams } from '../../src/fhe/context.js';
import { saveModel } from '../../src/onnx/proto.js';
import { expandPafs, replaceActivations } from '../../src/smartpaf/graph.js';
import { makePaf } from '../../src/smartpaf/paf.js';
import { rand, tinyCnn } from './fixtures.js';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

test('split flow with refresh: infer stops at each refresh point, refresh + infer --resume reach the plaintext logits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-fhe-split-'));
  try {
    // f1 PAF (depth 3 each): with refresh allowed, a 10-bit mask and no per-refresh process overhead
    // charged, the planner splits the model at N=8192 (with the split flow's overhead it would not).
    const pafModel = expandPafs(replaceActivations(tinyCnn(), makePaf('f1', [[1.5, -0.5]]), { scaleMode: 'static', scales: { relu: 2 } }));
    const model = join(dir, 'tiny.paf.onnx');
    saveModel(pafModel, model);
    const notes: string[] = [];
    const k = await keygen(model, join(dir, 'keys'), { refresh: true, maskBits: 10, refreshOverheadSeconds: 0, onNote: (m) => notes.push(m) });
    const kp = readKeyParams(k.publicDir);
    assert.ok(kp.refresh && kp.refresh.before.length >= 1, JSON.stringify(kp.refresh));
    assert.match(notes.join('\n'), /'fhe infer' stops \d time\(s\) per image for 'fhe refresh'/);
    const x = rand(64, 21);
    await encrypt(join(dir, 'keys'), x, [1, 8, 8], join(dir, 'x.ct'));
    let input = join(dir, 'x.ct');
    let resume: string | undefined;
    let trips = 0;
    for (;;) {
      const out = join(dir, `y${trips}.ct`);
      const r = await infer(model, input, k.publicDir, out, { resume });
      if (resume) assert.ok(!existsSync(resume), 'the state file is removed once its masks are used');
      if (!r.refresh) break;
      trips++;
      // Server-only masks: mode 0600; the request is not an output the client could decrypt as one.
      assert.equal(statSync(r.refresh.state).mode & 0o777, 0o600);
      await assert.rejects(decrypt(out, join(dir, 'keys')), /not a model output ciphertext/);
      // Resuming with something else than the client's reply is refused in one line.
      await assert.rejects(infer(model, join(dir, 'x.ct'), k.publicDir, join(dir, 'bad.ct'), { resume: r.refresh.state }), /not the client's reply/);
      const reply = join(dir, `r${trips}.ct`);
      await refresh(out, join(dir, 'keys'), reply);
      // The reply is made at the level the server resumes at (no primes sent just to be dropped).
      const level = decodeFheFile(readFileSync(out), out).header.meta['resumeLevel'];
      assert.equal(typeof level, 'number');
      input = reply;
      resume = r.refresh.state;
    }
    assert.equal(trips, kp.refresh!.before.length);
    const y = await decrypt(join(dir, `y${trips}.ct`), join(dir, 'keys'));
    const want = simulateProgram(compileModel(pafModel), x).at(-1)!;
    assert.ok(maxDiff(y, want) < 1e-2, `${Array.from(y)} vs ${Array.from(want)}`);
    // A reply replayed against a state already used: the state is gone.
    await assert.rejects(infer(model, input, k.publicDir, join(dir, 'again.ct'), { resume }), /no such state file/);
    // The encoded-model file per segment: the first flow writes one per infer process as it encodes, the
    // second loads them (nothing encoded, nothing rewritten) and reaches the same logits.
    const flow = async (tag: string, plainCacheFile: string) => {
      let inp = join(dir, 'x.ct');
      let res: string | undefined;
      let i = 0;
      const files = [];
      for (;;) {
        const o = join(dir, `${tag}${i}.ct`);
        const r = await infer(model, inp, k.publicDir, o, { resume: res, plainCacheFile });
        files.push(r.plainFile);
        if (!r.refresh) break;
        i++;
        inp = join(dir, `${tag}r${i}.ct`);
        await refresh(o, join(dir, 'keys'), inp);
        res = r.refresh.state;
      }
      return { y: await decrypt(join(dir, `${tag}${i}.ct`), join(dir, 'keys')), files };
    };
    const pfile = join(dir, 'tiny.plain');
    const p1 = await flow('p', pfile);
    assert.ok(p1.files.length === trips + 1 && p1.files.every((f) => f && f.loaded === 0 && f.savedBytes > 0), JSON.stringify(p1.files));
    const p2 = await flow('q', pfile);
    assert.ok(
      p2.files.every((f) => f && f.loaded > 0 && f.savedBytes === 0),
      JSON.stringify(p2.files),
    );
    assert.ok(maxDiff(p1.y, want) < 1e-2 && maxDiff(p2.y, want) < 1e-2, `${Array.from(p2.y)} vs ${Array.from(want)}`);
    // The CLI: infer stops and prints both next commands; refresh answers; --resume finishes.
    const out: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    const run = async (...args: string[]) => {
      const p = new Command().exitOverride();
      registerFhe(p);
      (process.stdout as { write: unknown }).write = (s: string | Uint8Array, ...rest: unknown[]) =>
        typeof s === 'string' ? (out.push(s), true) : (orig as (...a: unknown[]) => boolean)(s, ...rest);
      try {
        await p.parseAsync(['node', 'privml', 'fhe', ...args]);
      } finally {
        (process.stdout as { write: unknown }).write = orig;
      }
      return out.splice(0).join('');
    };
    const text = await run('infer', model, join(dir, 'x.ct'), '--public-keys', k.publicDir, '-o', join(dir, 'c0.ct'));
    assert.match(text, /refresh request for the client at 'refresh before .*privml fhe refresh .*--resume /s);
    const rj = JSON.parse(await run('refresh', join(dir, 'c0.ct'), '--keys', join(dir, 'keys'), '-o', join(dir, 'c0.reply'), '--json'));
    assert.ok(rj.ciphertexts >= 1 && rj.bytes > 0);
    writeFileSync(join(dir, 'junk.reply'), 'not an FHE file');
    await assert.rejects(run('refresh', join(dir, 'junk.reply'), '--keys', join(dir, 'keys'), '-o', join(dir, 'j.ct')), /bad magic/);
    const ij = JSON.parse(
      await run(
        'infer',
        model,
        join(dir, 'c0.reply'),
        '--resume',
        `${join(dir, 'c0.ct')}.state`,
        '--public-keys',
        k.publicDir,
        '-o',
        join(dir, 'c1.ct'),
        '--json',
      ),
    );
    assert.ok(ij.steps.length > 0 && ij.steps[0].kind === 'refresh');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('client rotations: the first layer takes the client-encrypted input rotations, makes no rotation, needs fewer keys, same logits', async () => {
  const { FheContext, generateKeys } = await import('../../src/fhe/context.js');
  const { encryptInput, encryptInputRotations, inferEncrypted, decryptOutput, outputMeta } = await import('../../src/fhe/executor.js');
  const { planFhe } = await import('../../src/fhe/planner.js');
  const prog = compileModel(expandPafs(replaceActivations(tinyCnn(), makePaf('f1', [[1.5, -0.5]]), { scaleMode: 'static', scales: { relu: 2 } })), 'tiny');
  const base = planFhe(prog, { degrees: [16384] });
  const plan = planFhe(prog, { degrees: [16384], clientRotations: true });
  const first = plan.lowered.steps[0]!;
  assert.ok(first.kind === 'linear' && first.clientBabies && first.rotations === 0);
  assert.ok(plan.lowered.inputRotations!.length >= 2, JSON.stringify(plan.lowered.inputRotations));
  assert.ok(plan.lowered.rotations < base.lowered.rotations && plan.lowered.rotationSteps.length <= base.lowered.rotationSteps.length);
  const ctx = await FheContext.create(plan.params);
  const keys = generateKeys(ctx, plan.lowered.rotationSteps);
  const { secretKey, ...server } = keys;
  try {
    const x = rand(64, 5);
    const { ct } = encryptInput(ctx, keys.publicKey, plan.lowered.input, x);
    const rots = encryptInputRotations(ctx, keys.publicKey, plan.lowered, x);
    // Without the client's rotations the plan cannot run (and says why).
    await assert.rejects(inferEncrypted(ctx, server, plan.lowered, ct), /takes \d+ client rotations of the input, got 0/);
    const res = await inferEncrypted(ctx, server, plan.lowered, ct, { inputRotations: rots });
    assert.equal(res.steps[0]!.rotations, 0);
    const y = decryptOutput(ctx, secretKey, res.ct, outputMeta(plan.lowered, 'tiny'));
    assert.ok(maxDiff(y, simulateProgram(prog, x).at(-1)!) < 1e-3);
    for (const c of [ct, res.ct, ...rots]) c.delete();
  } finally {
    keys.dispose();
    ctx.dispose();
  }
});

test('plaintext file: a second fhe run loads the encoded model (no encode), agrees; another model’s file is not used', async () => {
  const { run } = await import('../../src/api/fhe.js');
  const dir = mkdtempSync(join(tmpdir(), 'privml-fhe-pf-'));
  try {
    const model = expandPafs(replaceActivations(tinyCnn(), makePaf('f1', [[1.5, -0.5]]), { scaleMode: 'static', scales: { relu: 2 } }));
    const data = {
      name: 'rand',
      images: rand(128, 9),
      labels: Uint8Array.from([0, 1]),
      n: 2,
      shape: [1, 8, 8] as [number, number, number],
      classes: ['a', 'b', 'c', 'd'],
    };
    const file = join(dir, 'tiny.plain');
    const a = await run(model, data, { source: 'tiny', limit: 1, plainCacheFile: file });
    assert.ok(existsSync(file) && a.plaintextCache.fromFile!.loaded === 0 && a.plaintextCache.fromFile!.savedBytes > 0);
    const b = await run(model, data, { source: 'tiny', limit: 1, plainCacheFile: file });
    assert.ok(b.plaintextCache.fromFile!.loaded > 0 && b.plaintextCache.misses === 0, JSON.stringify(b.plaintextCache));
    assert.equal(b.results[0]!.fheClass, a.results[0]!.fheClass);
    assert.ok(b.results[0]!.maxRelErrVsOrt < 1e-2 && b.agreementWithPlaintextPaf === 1);
    // Other weights: the digest differs, the file is not loaded (and is rewritten).
    const other = expandPafs(replaceActivations(tinyCnn(), makePaf('f1', [[1.5, -0.5]]), { scaleMode: 'static', scales: { relu: 3 } }));
    const c = await run(other, data, { source: 'tiny', limit: 1, plainCacheFile: file });
    assert.ok(c.plaintextCache.fromFile!.loaded === 0 && c.plaintextCache.misses > 0 && c.agreementWithPlaintextPaf === 1);
    // Default (no plainCacheFile, a model file given): MODEL.<digest>.fheplain beside it, made once, then loaded;
    // another model's plan gets its own file; false: no file.
    const mf = join(dir, 'tiny.onnx');
    const d1 = await run(model, data, { source: 'tiny', limit: 1, modelFile: mf });
    const f1 = d1.plaintextCache.fromFile!.file;
    assert.match(f1, /tiny\.onnx\.[0-9a-f]{16}\.fheplain$/);
    assert.ok(existsSync(f1) && d1.plaintextCache.fromFile!.loaded === 0);
    const d2 = await run(model, data, { source: 'tiny', limit: 1, modelFile: mf });
    assert.ok(d2.plaintextCache.fromFile!.file === f1 && d2.plaintextCache.fromFile!.loaded > 0 && d2.plaintextCache.misses === 0);
    assert.equal(d2.results[0]!.fheClass, d1.results[0]!.fheClass);
    // A damaged file (one payload byte flipped) is refused by name, not used.
    const bytes = readFileSync(f1);
    bytes[bytes.length - 100]! ^= 1;
    writeFileSync(f1, bytes);
    await assert.rejects(run(model, data, { source: 'tiny', limit: 1, modelFile: mf }), /checksum mismatch/);
    const d3 = await run(other, data, { source: 'tiny', limit: 1, modelFile: mf });
    assert.ok(d3.plaintextCache.fromFile!.file !== f1 && d3.plaintextCache.fromFile!.loaded === 0);
    const d4 = await run(model, data, { source: 'tiny', limit: 1, modelFile: mf, plainCacheFile: false });
    assert.equal(d4.plaintextCache.fromFile, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
