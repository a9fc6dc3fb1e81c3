/** The WebSocket FrameChannel (src/mpc/net/ws.ts) over the real `ws` package: frames, limits, heartbeats, failures. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import type { TcpFrameChannel } from '../../src/mpc/net/tcp.js';
import { connectWs, type WebSocketLike, wsFrameChannel } from '../../src/mpc/net/ws.js';

/** A ws server on a free loopback port; `accepted` resolves with the server side's raw socket. */
async function server(): Promise<{ port: number; accepted: Promise<WebSocket>; close: () => void }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const accepted = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
  return { port: (wss.address() as { port: number }).port, accepted, close: () => wss.close() };
}

const open = (u: string): WebSocketLike => new WebSocket(u) as unknown as WebSocketLike;

async function pair(): Promise<{ a: TcpFrameChannel; b: TcpFrameChannel; raw: WebSocket; close: () => void }> {
  const s = await server();
  const a = await connectWs({ url: `ws://127.0.0.1:${s.port}/`, label: 'server', open });
  const raw = await s.accepted;
  const b = wsFrameChannel(raw as unknown as WebSocketLike, 'client');
  return { a, b, raw, close: s.close };
}

test('frames of every size arrive in order, byte for byte, both ways', async () => {
  const { a, b, close } = await pair();
  a.verified();
  b.verified();
  const sizes = [0, 1, 3, 4, 5, 4095, 4096, 70_000, 1_000_003];
  for (const n of sizes) a.send(Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 255));
  for (const n of sizes) {
    const f = await b.recv();
    assert.equal(f.length, n);
    for (let i = 0; i < n; i += 997) assert.equal(f[i], (i * 7 + n) & 255);
  }
  b.send(new Uint8Array([9, 8, 7]));
  assert.deepEqual([...(await a.recv())], [9, 8, 7]);
  a.close();
  await assert.rejects(b.recv(), /peer client closed the connection|closed the connection/);
  close();
});

test('before verified(), a frame above 64 KiB is refused on both ends', async () => {
  const { a, b, raw, close } = await pair();
  assert.throws(() => a.send(new Uint8Array(70_000)), /exceeds the limit of 65536 bytes/);
  // A peer that bypasses the sender's check: a large frame right after the hello waits for
  // verified() (it may come in the same read as the hello), but an unverified peer that keeps
  // sending fails the link with a one-line reason once two pre-auth frames' worth is held.
  const ws = (a as unknown as { ws: WebSocketLike }).ws;
  ws.send(new Uint8Array([0, 2, 0, 0]));
  ws.send(new Uint8Array(70_000));
  ws.send(new Uint8Array(70_000));
  await assert.rejects(b.recv(), /peer client sent a bad frame: frame of \d+ bytes exceeds the limit of 65536 bytes/);
  raw.close();
  close();
});

test('a text message, or a server that goes away mid-frame, fails recv with a clear error', async () => {
  const { a, raw, close } = await pair();
  raw.send('hello');
  await assert.rejects(a.recv(), /sent a text message where binary frames were expected/);
  const p = await pair();
  p.raw.send(new Uint8Array([0, 0, 0, 10, 1, 2]));
  await new Promise((r) => setTimeout(r, 50));
  p.raw.terminate();
  await assert.rejects(p.a.recv(), /closed the connection in the middle of a frame/);
  close();
  p.close();
});

test('heartbeats keep an idle verified link alive; a silent peer is detected', async () => {
  const { a, b, raw, close } = await pair();
  a.verified({ idleTimeoutMs: 400 });
  b.verified({ idleTimeoutMs: 400 });
  await new Promise((r) => setTimeout(r, 1000));
  a.send(new Uint8Array([1]));
  assert.deepEqual([...(await b.recv())], [1]);
  b.close();
  const q = await pair();
  q.a.verified({ idleTimeoutMs: 300 });
  // The raw server socket never sends anything (not even heartbeats).
  await assert.rejects(q.a.recv(), /sent nothing for 0.3 s \(idle timeout/);
  raw.close();
  q.raw.close();
  close();
  q.close();
});

test('connectWs to a closed port fails within its deadline with the URL in the message', async () => {
  const s = await server();
  s.close();
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(connectWs({ url: `ws://127.0.0.1:${s.port}/`, open, timeoutMs: 2000 }), /cannot connect to ws:\/\/127\.0\.0\.1:\d+\//);
});

test('a WebSocket listener (party 1 for the page): accepts WebSocket clients as frame channels, refuses plain HTTP and TLS', async () => {
  const { listen } = await import('../../src/mpc/net/tcp.js');
  const l = await listen({ host: '127.0.0.1', port: 0, websocket: true });
  try {
    const a = await connectWs({ url: `ws://127.0.0.1:${l.port}/`, label: 'party 1', open });
    const b = await l.accept();
    a.verified();
    b.verified();
    a.send(new Uint8Array([1, 2, 3]));
    assert.deepEqual([...(await b.recv())], [1, 2, 3]);
    b.send(new Uint8Array(70_000).fill(5));
    assert.equal((await a.recv()).length, 70_000);
    a.close();
    const res = await fetch(`http://127.0.0.1:${l.port}/`);
    assert.equal(res.status, 426);
  } finally {
    l.close();
  }
  await assert.rejects(listen({ host: '127.0.0.1', port: 0, websocket: true, tls: { cert: '', key: '' } }), /TLS and WebSocket together are not supported/);
});
