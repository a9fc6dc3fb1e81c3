import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultJobFlags, privateInference } from '../../src/cli/mpc.js';
import { float, GraphBuilder } from '../../src/onnx/builder.js';
import { loadModel, saveModel } from '../../src/onnx/proto.js';
import { lcg, randTensor } from './plan-helpers.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'privml.js');

test('processes: party 0 runs from `mpc export-architecture` output (weights zero-filled) and agrees with plaintext; another architecture is refused at the handshake', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-arch-'));
  try {
    const r = lcg(5);
    const b = new GraphBuilder('bn-bias');
    const x = b.input('x', 'float32', ['N', 6]);
    const bn = b.op(
      'BatchNormalization',
      [x, b.init('g', randTensor(r, [6], 0.5, 2)), b.init('be', randTensor(r, [6])), b.init('m', randTensor(r, [6])), b.init('v', randTensor(r, [6], 0.5, 2))],
      { epsilon: float(1e-5) },
    );
    const h = b.op('Relu', [b.op('Add', [b.op('MatMul', [bn, b.init('w', randTensor(r, [6, 8]))]), b.init('b', randTensor(r, [8]))])]);
    const y = b.op('Add', [b.op('MatMul', [h, b.init('w2', randTensor(r, [8, 3]))]), b.init('b2', randTensor(r, [3]))]);
    b.output(y, 'float32', ['N', 3]);
    const model = join(dir, 'model.onnx');
    saveModel(b.build(), model);
    const arch = join(dir, 'arch.onnx');
    const said = execFileSync(process.execPath, [BIN, 'mpc', 'export-architecture', model, '-o', arch], { encoding: 'utf8' });
    assert.match(said, /8 weight tensors zero-filled/);
    for (const t of loadModel(arch).graph.initializers.values()) assert.ok(Array.from(t.data as Float32Array).every((v) => v === 0));
    const input = join(dir, 'x.json');
    writeFileSync(input, JSON.stringify(Array.from({ length: 4 * 6 }, () => r(-2, 2))));
    const res = await privateInference(model, defaultJobFlags({ input, batch: 4, weights: 'secret', architecture: arch }));
    assert.equal(res.agreement, 1);
    assert.ok(res.maxLogitDiff < 1e-2, `max logit difference ${res.maxLogitDiff}`);
    // party 0 with another model's architecture: refused by the handshake, naming the difference
    const other = join(dir, 'other.onnx');
    const b2 = new GraphBuilder('other');
    const x2 = b2.input('x', 'float32', ['N', 6]);
    b2.output(b2.op('MatMul', [x2, b2.init('w', randTensor(r, [6, 3]))]), 'float32', ['N', 3]);
    saveModel(b2.build(), other);
    await assert.rejects(privateInference(model, defaultJobFlags({ input, batch: 4, weights: 'secret', architecture: other })), /different model/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
