/**
 * The server session of `privml serve --fhe` (src/api/fhe-session.ts) driven by a Node client that
 * speaks the page's frames (src/fhe/wire.ts): keys once, an encrypted image with client-aided
 * refresh round trips, the decrypted logits equal the plain program; a secret key, a malformed frame,
 * an image before the keys and a wrong-shape image are refused with an error frame.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FheServerSession } from '../../src/api/fhe-session.js';
import { compileModel, simulateProgram } from '../../src/fhe/compile.js';
import {
  decodeCiphertext,
  encodeCiphertext,
  encodeCiphertextPayload,
  encodeFheFile,
  FheContext,
  type FheFileKind,
  FILE_VERSION,
  generateKeys,
} from '../../src/fhe/context.js';
import { decryptOutput, encryptInputSeeded, localRefresh, type OutputMeta } from '../../src/fhe/executor.js';
import { decodeWire, encodeWire, type WireHeader } from '../../src/fhe/wire.js';
import { expandPafs, replaceActivations } from '../../src/smartpaf/graph.js';
import { makePaf } from '../../src/smartpaf/paf.js';
import { rand, tinyCnn } from './fixtures.js';

test('fhe session: keys once, refresh round trips, logits equal the plain program; bad frames refused', { timeout: 300_000 }, async () => {
  const model = expandPafs(replaceActivations(tinyCnn(), makePaf('f1', [[1.5, -0.5]]), { scaleMode: 'static', scales: { relu: 2 } }));
  const inbox: { h: WireHeader; payload: Uint8Array }[] = [];
  let wake: (() => void) | undefined;
  const session = await FheServerSession.create(model, { degrees: [8192], refresh: true, maskBits: 10, source: 'tiny-f1' }, (f) => {
    inbox.push(decodeWire(f));
    wake?.();
  });
  const next = async () => {
    while (!inbox.length) await new Promise<void>((r) => (wake = r));
    return inbox.shift()!;
  };
  const plan = session.plan;
  assert.equal(plan.refreshes, 2);
  const ctx = await FheContext.create(plan.params);
  const keys = generateKeys(ctx, plan.galoisSteps, 1);
  try {
    const head = (kind: FheFileKind, meta: Record<string, unknown> = {}) => ({ version: FILE_VERSION, kind, paramsHash: ctx.hash, keyId: keys.keyId, meta });
    const L = { dims: plan.input.dims, slotOf: Int32Array.from(plan.input.slotOf), period: plan.input.period, copies: plan.input.copies };
    const x = rand(64, 5);
    const image = () => {
      const { payload, meta } = encryptInputSeeded(ctx, keys.publicKey, keys.secretKey, L, x);
      return encodeCiphertextPayload(ctx, keys.keyId, payload, meta);
    };
    // Before the keys: refused. A malformed frame: refused. The secret key: refused by kind.
    session.handle(encodeWire({ t: 'infer', id: 1 }, image()));
    assert.match(String((await next()).h['message']), /before all keys arrived/);
    session.handle(new Uint8Array([255, 255, 0, 0, 1]));
    assert.match(String((await next()).h['message']), /malformed frame/);
    session.handle(encodeWire({ t: 'key', kind: 'secret' }, encodeFheFile(head('secret'), keys.secretKey.saveArray(ctx.seal.ComprModeType.zstd))));
    assert.match(String((await next()).h['message']), /kind 'secret' refused/);

    session.handle(encodeWire({ t: 'key', kind: 'public' }, encodeFheFile(head('public'), keys.seeded!.publicKey())));
    session.handle(encodeWire({ t: 'key', kind: 'relin' }, encodeFheFile(head('relin'), keys.seeded!.relinKeys())));
    for (const s of keys.galois.steps)
      session.handle(encodeWire({ t: 'key', kind: 'galois', step: s }, encodeFheFile(head('galois', { step: s }), keys.seeded!.galois(s))));
    assert.equal((await next()).h.t, 'ready');

    const refresh = localRefresh(ctx, keys.secretKey, keys.publicKey);
    const run = async () => {
      session.handle(encodeWire({ t: 'infer', id: 7 }, image()));
      let refreshes = 0;
      for (;;) {
        const m = await next();
        if (m.h.t === 'refresh') {
          const { ct } = decodeCiphertext(ctx, keys.keyId, m.payload, 'masked');
          const fresh = await refresh(ct);
          ct.delete();
          session.handle(encodeWire({ t: 'fresh', id: m.h['id'] }, encodeCiphertext(ctx, keys.keyId, fresh, { role: 'refresh' })));
          fresh.delete();
          refreshes++;
          continue;
        }
        assert.equal(m.h.t, 'result', JSON.stringify(m.h));
        const { ct, meta } = decodeCiphertext(ctx, keys.keyId, m.payload, 'result');
        const y = decryptOutput(ctx, keys.secretKey, ct, meta as OutputMeta);
        ct.delete();
        return { y, refreshes };
      }
    };
    const want = simulateProgram(compileModel(model, 'tiny-f1'), x).at(-1)!;
    for (let k = 0; k < 2; k++) {
      const { y, refreshes } = await run();
      assert.equal(refreshes, 2);
      for (let j = 0; j < want.length; j++) assert.ok(Math.abs(y[j]! - want[j]!) < 1e-2 * Math.max(1, Math.abs(want[j]!)), `logit ${j}: ${y[j]} vs ${want[j]}`);
    }
    // An image of the wrong shape: refused, the session still answers.
    const { payload, meta } = encryptInputSeeded(ctx, keys.publicKey, keys.secretKey, { ...L, dims: [1, 4, 16] }, x);
    session.handle(encodeWire({ t: 'infer', id: 9 }, encodeCiphertextPayload(ctx, keys.keyId, payload, meta)));
    assert.match(String((await next()).h['message']), /shape \[1,4,16\], the model expects \[1,8,8\]/);
  } finally {
    keys.dispose();
    ctx.dispose();
    session.dispose();
  }
});
