// The dealer's streamed bit-multiplication correction (correlations.ts) against the correction of
// the drawn parts: byte for byte, and the mirrors left at the positions draw leaves them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Prg, randomSeed } from '../../src/crypto/prg.js';
import { bitMulCorrectionStreamed, correction, draw } from '../../src/mpc/dealer/correlations.js';
import { type CorrelationRequest, sizesOf } from '../../src/mpc/dealer/wire.js';

test('the streamed bit-multiplication correction equals the correction of the drawn parts', () => {
  const [s0, s1] = [randomSeed(), randomSeed()];
  const [m0, m1, r0, r1] = [new Prg(s0), new Prg(s1), new Prg(s0), new Prg(s1)];
  // sizes around the 8192-element pieces, odd bit counts, and a mid-stream start off the block grid
  m0.bytes(5), m1.bytes(9), r0.bytes(5), r1.bytes(9);
  for (const n of [1, 7, 8, 13, 8191, 8192, 8193, 3 * 8192 + 5, 100_000]) {
    const req: CorrelationRequest = { kind: 'bitmul', n };
    const sz = sizesOf(req);
    const want = correction(req, draw(r0, 0, req, sz), draw(r1, 1, req, sz));
    const got = bitMulCorrectionStreamed(m0, m1, n);
    assert.ok(Buffer.from(got).equals(Buffer.from(want)), `correction for ${n} elements`);
    assert.deepEqual(m0.bytes(5), r0.bytes(5), 'mirror 0 position');
    assert.deepEqual(m1.bytes(3), r1.bytes(3), 'mirror 1 position');
  }
});
