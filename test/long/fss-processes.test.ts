/**
 * FSS over real processes (dealer and both parties): `mpc infer --relu-protocol fss|fss2` with the
 * HummingBird eco config predicts exactly as signonly eco (the same mask bit for bit), and the
 * offline phase (--preprocess) moves the dealer material and the input's mask before the input:
 * the online bytes then hold only the ReLU openings and the output reveal.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultJobFlags, privateInference } from '../../src/cli/mpc.js';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'models', 'fmnist-cnn.onnx');
const ECO = join(ROOT, 'models', 'hummingbird', 'fmnist-cnn', 'eco.json');
// eco windows of fmnist-cnn: relu_1 [5, 21) on 12,544 elements, relu_2 [6, 21) on 6,272 (per image)
const RELUS = [
  { elems: 12544, b: 16 },
  { elems: 6272, b: 15 },
];
const flags = (over: Parameters<typeof defaultJobFlags>[0]) =>
  defaultJobFlags({ dataset: 'fashion-mnist-sample', limit: 8, batch: 4, reluConfig: ECO, connectTimeout: '120', ...over });

test('mpc infer fss / fss2 eco with an offline phase: predictions identical to signonly eco; offline and online bytes apart', {
  timeout: 240_000,
}, async () => {
  const ref = await privateInference(MODEL, flags({ reluProtocol: 'signonly' }));
  assert.equal(ref.offlineMsPerBatch, 0, 'dealer online: no offline phase');
  assert.ok(ref.dealerBytesPerBatch[1]! > 0, 'signonly: party 1 receives corrections during the batch');
  for (const [proto, bits, rounds] of [
    ['fss', (b: number) => b + 64, 1],
    ['fss2', (b: number) => b + 65, 2],
  ] as const) {
    const r = await privateInference(MODEL, flags({ reluProtocol: proto, preprocess: true }));
    assert.deepEqual(r.predictions, ref.predictions, `${proto} eco predicts as signonly eco`);
    assert.ok(r.offlineMsPerBatch > 0, `${proto}: offline phase timed`);
    // the input's mask went offline (party 0, 8 bytes per input value); the output reveal stays online
    assert.deepEqual(r.offlinePeerBytesPerBatch, [8 * 784 * 4, 0]);
    const relus = r.layers.filter((l) => l.op === 'Relu');
    let online = 0;
    relus.forEach((l, i) => {
      const want = (bits(RELUS[i]!.b) * RELUS[i]!.elems * 4) / 8;
      assert.deepEqual(l.bytesSent, [want, want], `${proto} ${l.name}: online bytes`);
      assert.equal(l.rounds, rounds, `${proto} ${l.name}: rounds`);
      online += want;
    });
    assert.deepEqual(r.bytesSentPerBatch, [online, online + 8 * 10 * 4], `${proto}: online bytes = ReLU openings (+ party 1's output reveal)`);
    // the FSS keys are dealt before the input: both parties receive correction words offline
    for (const p of [0, 1]) assert.ok(r.dealerBytesPerBatch[p]! > 100 * 18816 * 4, `${proto}: party ${p} received its keys offline`);
  }
});
