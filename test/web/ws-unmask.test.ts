/** Word-wise WebSocket (un)masking in `ws` (src/mpc/net/ws-unmask.ts): same bytes as RFC 6455's byte loop, and in effect. */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { wordMasking, xorMask } from '../../src/mpc/net/ws-unmask.js';

/** RFC 6455 §5.3: octet i of the result is octet i of the data XOR octet (i mod 4) of the mask. */
const reference = (data: Uint8Array, mask: Uint8Array) => data.map((b, i) => b ^ mask[i & 3]!);

test('xorMask equals the byte loop at every alignment and length, in place and into an offset', () => {
  const mask = Uint8Array.from([0x12, 0x9a, 0xff, 0x01]);
  const pool = randomBytes(5000);
  for (const n of [0, 1, 3, 15, 16, 17, 64, 1023, 4096]) {
    for (const at of [0, 1, 2, 3, 4, 8]) {
      const data = new Uint8Array(pool.buffer, pool.byteOffset + at, n).slice(); // own buffer, offset 0
      const view = new Uint8Array(new ArrayBuffer(n + at), at, n);
      view.set(data);
      xorMask(view, mask, view, 0, n); // unmask in place at this alignment
      assert.deepEqual(view, reference(data, mask), `in place, n=${n} at=${at}`);
      const out = new Uint8Array(n + 14);
      xorMask(data, mask, out, at, n); // mask into a frame after its header
      assert.deepEqual(out.subarray(at, at + n), reference(data, mask), `into offset ${at}, n=${n}`);
    }
  }
});

test('ws carries masked frames byte for byte with the word-wise functions in effect', async () => {
  // ws only now (after the module above replaced its functions), as net/tcp.ts loads it.
  const { WebSocket, WebSocketServer } = await import('ws');
  // In effect unless ws has native functions (newer Node's http.websocketUnmask, or bufferutil installed).
  const http = (await import('node:http')).default as unknown as { websocketUnmask?: unknown };
  const bufferutil = await import('bufferutil' as string).then(
    () => true,
    () => false,
  );
  assert.equal(wordMasking, typeof http.websocketUnmask !== 'function' && !bufferutil);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const got: Buffer[] = [];
  const all = new Promise<void>((r) =>
    wss.once('connection', (s) =>
      s.on('message', (d: Buffer) => {
        got.push(Buffer.from(d));
        if (got.length === 6) r();
      }),
    ),
  );
  const c = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, { perMessageDeflate: false });
  await new Promise((r) => c.once('open', r));
  const sent = [1, 23, 24, 125, 70_001, 300_000].map((n) => randomBytes(n));
  for (const m of sent) c.send(m); // client frames are masked (a fresh random mask each)
  await all;
  sent.forEach((m, i) => assert.ok(got[i]!.equals(m), `message ${i} of ${m.length} bytes`));
  c.close();
  wss.close();
});
