import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { admitPeers } from '../../src/mpc/net/admit.js';
import { describeNet, emulateLink, NET_PRESETS, parseBandwidth, parseLatency, parseNetOptions } from '../../src/mpc/net/emulate.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder, PRE_AUTH_MAX_FRAME_BYTES } from '../../src/mpc/net/framing.js';
import { type Hello, handshake, sha256Hex } from '../../src/mpc/net/handshake.js';
import { memoryFramePair } from '../../src/mpc/net/memory.js';
import { diffStats, modeledSeconds, peerChannel, snapshotStats } from '../../src/mpc/net/peer.js';
import { connect, listen, type TcpFrameChannel } from '../../src/mpc/net/tcp.js';
import { seededUniform } from '../../src/seeded-rng.js';

const HOST = '127.0.0.1';
const FIXTURE = join(import.meta.dirname, 'fixtures', 'net-peer.ts');

/** Seeded PRNG for test data only. */
const rng = seededUniform;

function randomBytes(r: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((res) => s.listen(0, HOST, res));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

/** A connected TCP pair on loopback: [server side, client side]. */
async function tcpPair(extra: { idleTimeoutMs?: number } = {}): Promise<[TcpFrameChannel, TcpFrameChannel, () => void]> {
  const l = await listen({ host: HOST, port: 0, ...extra });
  const [a, b] = await Promise.all([l.accept(), connect({ host: HOST, port: l.port, label: 'server' })]);
  // These tests exercise the transport after a handshake: lift the 64 KiB pre-handshake cap.
  a.verified();
  b.verified();
  return [a, b, () => l.close()];
}

/** Milliseconds from calling `start` until it settles as a rejection, and the error. */
async function timeRejection(start: () => Promise<unknown>): Promise<{ ms: number; err: Error }> {
  // The clock starts before the call that arms the timer: on a loaded machine the gap between the
  // call and a later clock read can be tens of milliseconds, making a correct timeout look early.
  const t0 = performance.now();
  try {
    await start();
  } catch (err) {
    return { ms: performance.now() - t0, err: err as Error };
  }
  throw new Error('expected a rejection');
}

// ---------------------------------------------------------------- framing

test('framing: random chunking of concatenated frames reassembles every frame exactly', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 60; i++) {
      const kind = r();
      const n = kind < 0.1 ? 0 : kind < 0.5 ? (r() * 8) | 0 : kind < 0.95 ? (r() * 3000) | 0 : 50_000 + ((r() * 100_000) | 0);
      frames.push(randomBytes(r, n));
    }
    const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
    const out: Uint8Array[] = [];
    const d = new FrameDecoder((f) => out.push(f));
    let off = 0;
    while (off < stream.length) {
      const mode = r();
      const n = mode < 0.3 ? 1 + ((r() * 3) | 0) : mode < 0.8 ? 1 + ((r() * 5000) | 0) : 1 + ((r() * 200_000) | 0);
      d.push(stream.subarray(off, off + n));
      off += n;
    }
    assert.ok(d.idle, `seed ${seed}: decoder holds a partial frame at the end`);
    assert.equal(out.length, frames.length, `seed ${seed}`);
    for (let i = 0; i < frames.length; i++) {
      assert.deepEqual(out[i], frames[i], `seed ${seed} frame ${i}`);
      assert.equal(out[i]!.byteOffset, 0, 'frames own an aligned buffer');
      assert.equal(Object.getPrototypeOf(out[i]), Uint8Array.prototype, 'frames are plain Uint8Arrays');
    }
  }
});

test('framing: an oversized length header is rejected before any allocation', () => {
  const before = process.memoryUsage().arrayBuffers;
  const d = new FrameDecoder(() => assert.fail('no frame expected'));
  assert.throws(() => d.push(new Uint8Array([0xff, 0xff, 0xff, 0xfe])), {
    message: `frame of 4294967294 bytes exceeds the limit of ${DEFAULT_MAX_FRAME_BYTES} bytes`,
  });
  assert.ok(process.memoryUsage().arrayBuffers - before < 16 << 20, 'no large buffer was allocated');
  // Once broken, the stream stays broken.
  assert.throws(() => d.push(new Uint8Array([0, 0, 0, 0])), /exceeds the limit/);

  // A small limit, header split over chunks: rejected at the last header byte, no body needed.
  const small = new FrameDecoder(() => assert.fail('no frame expected'), 1024);
  small.push(new Uint8Array([0, 0]));
  small.push(new Uint8Array([0x04]));
  assert.throws(() => small.push(new Uint8Array([0x01])), { message: 'frame of 1025 bytes exceeds the limit of 1024 bytes' });
  const okd: Uint8Array[] = [];
  const exact = new FrameDecoder((f) => okd.push(f), 1024);
  exact.push(encodeFrame(new Uint8Array(1024)));
  assert.equal(okd.length, 1);
  assert.throws(() => encodeFrame(new Uint8Array(11), 10), { message: 'frame of 11 bytes exceeds the limit of 10 bytes' });
  assert.throws(() => new FrameDecoder(() => {}, 0), /invalid max frame size/);
});

// ---------------------------------------------------------------- memory

test('memory pair: ordered delivery, copy on send, close makes the peer reject after buffered frames', async () => {
  const [a, b] = memoryFramePair({ labels: ['party 0', 'party 1'] });
  const buf = enc('one');
  a.send(buf);
  buf[0] = 0x58; // mutating after send must not change what was sent
  a.send(enc('two'));
  const pending = a.recv();
  b.send(enc('back'));
  assert.equal(dec(await pending), 'back');
  a.close();
  assert.equal(dec(await b.recv()), 'one');
  assert.equal(dec(await b.recv()), 'two');
  await assert.rejects(b.recv(), { message: 'peer party 0 closed the connection' });
  await assert.rejects(b.recv(), { message: 'peer party 0 closed the connection' });
  await assert.rejects(a.recv(), /closed locally/);
  assert.throws(() => b.send(enc('x')), /peer party 0 closed the connection/);
});

test('memory pair: pending recv rejects when the peer closes; idle timeout fails the link', async () => {
  const [a, b] = memoryFramePair();
  const p = b.recv();
  a.close();
  await assert.rejects(p, { message: 'peer A closed the connection' });

  const [c, d] = memoryFramePair({ idleTimeoutMs: 50 });
  const { ms, err } = await timeRejection(() => d.recv());
  assert.equal(err.message, 'no message from peer A within 0.05 s (idle timeout)');
  assert.ok(ms >= 45 && ms < 1000, `idle timeout fired after ${ms} ms`);
  await assert.rejects(c.recv(), { message: 'peer B closed the connection' });
});

// ---------------------------------------------------------------- TCP

test('tcp: round trip on loopback with an ephemeral port, small and large frames both ways', async () => {
  const l = await listen({ host: HOST, port: 0 });
  assert.ok(l.port > 0);
  const [srv, cli] = await Promise.all([l.accept(), connect({ host: HOST, port: l.port })]);
  assert.equal(cli.label, `${HOST}:${l.port}`);
  // Before a handshake is verified, frames are capped at 64 KiB both ways.
  assert.throws(() => cli.send(new Uint8Array(PRE_AUTH_MAX_FRAME_BYTES + 1)), /exceeds the limit of 65536 bytes/);
  srv.verified();
  cli.verified();
  const r = rng(7);
  const big = randomBytes(r, 8 << 20);
  const smalls = Array.from({ length: 200 }, (_, i) => randomBytes(r, i % 17));
  for (const s of smalls) cli.send(s);
  cli.send(big);
  srv.send(enc('hello client'));
  for (const s of smalls) assert.deepEqual(await srv.recv(), s);
  const got = await srv.recv();
  assert.equal(got.length, big.length);
  assert.ok(Buffer.from(got).equals(Buffer.from(big)), 'large frame intact');
  assert.equal(dec(await cli.recv()), 'hello client');
  // Echo the big frame back.
  srv.send(got);
  assert.ok(Buffer.from(await cli.recv()).equals(Buffer.from(big)));
  cli.close();
  await assert.rejects(srv.recv(), /^Error: peer 127\.0\.0\.1:\d+ closed the connection$/);
  srv.close();
  l.close();
  await assert.rejects(l.accept(), /is closed/);
});

test('tcp: handed-off frames (written without a copy) arrive intact and in order among copied ones; the limit still holds', async () => {
  const l = await listen({ host: HOST, port: 0 });
  const [srv, cli] = await Promise.all([l.accept(), connect({ host: HOST, port: l.port })]);
  // before the handshake the 64 KiB cap applies to handed-off frames too
  assert.throws(() => cli.send(new Uint8Array(PRE_AUTH_MAX_FRAME_BYTES + 1), true), /exceeds the limit of 65536 bytes/);
  srv.verified();
  cli.verified();
  const r = rng(11);
  // several frames larger than the socket buffers, queued at once (the writes complete later), with
  // small and copied ones between them: the receiver must see exactly this sequence
  const frames = [randomBytes(r, 3 << 20), randomBytes(r, 5), randomBytes(r, 64 * 1024), randomBytes(r, 6 << 20), randomBytes(r, 100_000)];
  const want = frames.map((f) => Buffer.from(f));
  frames.forEach((f, i) => cli.send(f, i !== 1));
  for (const w of want) assert.ok(Buffer.from(await srv.recv()).equals(w), `frame of ${w.length} bytes intact`);
  cli.close();
  srv.close();
  l.close();
});

test('tcp: connect retries until the listener comes up (parties start in any order)', async () => {
  const port = await freePort();
  const t0 = performance.now();
  const cp = connect({ host: HOST, port, timeoutMs: 5000, retryMs: 25 });
  await new Promise((res) => setTimeout(res, 300));
  const l = await listen({ host: HOST, port, acceptTimeoutMs: 5000 });
  const [srv, cli] = await Promise.all([l.accept(), cp]);
  assert.ok(performance.now() - t0 >= 290);
  cli.send(enc('late'));
  assert.equal(dec(await srv.recv()), 'late');
  cli.close();
  srv.close();
  l.close();
});

test('tcp: port in use gives a one-line error', async () => {
  const l = await listen({ host: HOST, port: 0 });
  await assert.rejects(listen({ host: HOST, port: l.port }), {
    message: `cannot listen on ${HOST}:${l.port}: address already in use`,
  });
  l.close();
});

test('tcp: connection refused is reported within the timeout', async () => {
  const port = await freePort();
  const { ms, err } = await timeRejection(() => connect({ host: HOST, port, timeoutMs: 300, retryMs: 50 }));
  // The refusal window equals the timeout here: a retry timer that fires a little before the
  // deadline (a loaded host) makes one more refused attempt past the window, and the refusal
  // message reports it instead (seen once in CI: "refused for 0.301 s"). Both name the refusal.
  const refused = new RegExp(
    `^cannot connect to ${HOST.replace(/\./g, '\\.')}:${port}(?: within 0\\.3 s: ECONNREFUSED|: connection refused for 0\\.3\\d* s \\(not running, or it died\\))$`,
  );
  assert.match(err.message, refused);
  assert.ok(ms >= 250 && ms < 1500, `gave up after ${ms} ms`);
});

test('tcp: accept times out with a clear message', async () => {
  const l = await listen({ host: HOST, port: 0, acceptTimeoutMs: 100 });
  await assert.rejects(l.accept(), { message: `no peer connected to ${HOST}:${l.port} within 0.1 s` });
  l.close();
});

test('tcp: graceful close delivers sent frames, then pending and later recv reject', async () => {
  const [srv, cli, stop] = await tcpPair();
  const pending = cli.recv();
  const pending2 = cli.recv();
  srv.send(enc('last words'));
  srv.close();
  assert.equal(dec(await pending), 'last words');
  await assert.rejects(pending2, { message: 'peer server closed the connection' });
  await assert.rejects(cli.recv(), { message: 'peer server closed the connection' });
  assert.throws(() => cli.send(enc('x')), /peer server closed the connection/);
  cli.close();
  stop();
});

for (const mode of ['exit', 'idle'] as const) {
  test(`tcp: peer process ${mode === 'exit' ? 'calling process.exit' : 'killed with SIGKILL'} mid-recv → rejection within 1 s`, async () => {
    const l = await listen({ host: HOST, port: 0, acceptTimeoutMs: 15_000 });
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, String(l.port), mode], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((res) => child.once('exit', () => res(performance.now())));
    try {
      const ch = await l.accept();
      assert.equal(dec(await ch.recv()), 'ready', stderr);
      const p = ch.recv(); // pending when the peer dies
      if (mode === 'idle') child.kill('SIGKILL');
      const { err } = await timeRejection(() => p);
      const rejectedAt = performance.now();
      const diedAt = await exited;
      assert.match(err.message, /^peer 127\.0\.0\.1:\d+ closed the connection/);
      assert.ok(rejectedAt - diedAt < 1000, `rejected ${rejectedAt - diedAt} ms after the peer died`);
      await assert.rejects(ch.recv(), /closed the connection/);
      ch.close();
    } finally {
      child.kill('SIGKILL');
      l.close();
    }
  });
}

test('tcp: an oversized frame header from the peer fails the link without allocating it', async () => {
  const l = await listen({ host: HOST, port: 0, maxFrameBytes: 1 << 20 });
  const raw = net.connect({ host: HOST, port: l.port });
  const ch = await l.accept();
  ch.verified();
  raw.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]));
  await assert.rejects(ch.recv(), {
    message: /^peer 127\.0\.0\.1:\d+ sent a bad frame: frame of 2147483647 bytes exceeds the limit of 1048576 bytes$/,
  });
  await new Promise<void>((res) => raw.once('close', () => res()));
  ch.close();
  l.close();
});

test('tcp: idle timeout on recv rejects with a clear message and fails the link', async () => {
  const [srv, cli, stop] = await tcpPair({ idleTimeoutMs: 80 });
  const { ms, err } = await timeRejection(() => srv.recv());
  assert.match(err.message, /^no message from peer 127\.0\.0\.1:\d+ within 0\.08 s \(idle timeout\)$/);
  assert.ok(ms >= 70 && ms < 1000);
  await assert.rejects(cli.recv(), /peer server closed the connection/);
  cli.close();
  srv.close();
  stop();
});

// ---------------------------------------------------------------- TLS

const haveOpenssl = spawnSync('which', ['openssl']).status === 0;

/** A self-signed certificate for 127.0.0.1 / localhost, made with the openssl CLI. */
function makeCert(dir: string, name: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
}

test('tls: round trip with a self-signed certificate, and a client that does not trust it is refused', {
  skip: haveOpenssl ? false : 'openssl not found on PATH',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-tls-'));
  try {
    const server = makeCert(dir, 'server');
    const other = makeCert(dir, 'other');
    const l = await listen({ host: HOST, port: 0, tls: server });
    const [srv, cli] = await Promise.all([l.accept(), connect({ host: HOST, port: l.port, tls: { ca: server.cert } })]);
    srv.verified();
    cli.verified();
    const payload = randomBytes(rng(3), 300_000);
    cli.send(payload);
    assert.ok(Buffer.from(await srv.recv()).equals(Buffer.from(payload)));
    srv.send(enc('secure'));
    assert.equal(dec(await cli.recv()), 'secure');
    cli.close();
    await assert.rejects(srv.recv(), /closed the connection/);
    srv.close();

    // Trusting a different certificate: the handshake fails, with no retry loop until the timeout.
    const t0 = performance.now();
    await assert.rejects(connect({ host: HOST, port: l.port, timeoutMs: 5000, tls: { ca: other.cert } }), {
      message: new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${l.port} failed: self-signed certificate`),
    });
    // The system trust store does not know our certificate either.
    await assert.rejects(connect({ host: HOST, port: l.port, timeoutMs: 5000, tls: {} }), /^Error: TLS handshake with .* failed: /);
    // A plain-TCP listener answering a TLS client.
    const plain = await listen({ host: HOST, port: 0 });
    const acc = plain.accept();
    await assert.rejects(connect({ host: HOST, port: plain.port, timeoutMs: 3000, tls: { ca: server.cert } }), /^Error: TLS handshake with .* failed: /);
    (await acc).close();
    plain.close();
    assert.ok(performance.now() - t0 < 4000);
    l.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- emulation

test('emulation: parse --net/--bandwidth/--latency values', () => {
  assert.equal(parseBandwidth('1gbit'), 1e9);
  assert.equal(parseBandwidth('100mbit'), 1e8);
  assert.equal(parseBandwidth('2.5Gbps'), 2.5e9);
  assert.equal(parseBandwidth('800kbit/s'), 8e5);
  assert.equal(parseBandwidth('unlimited'), Infinity);
  assert.throws(() => parseBandwidth('fast'), { message: "cannot parse bandwidth 'fast' (expected e.g. 1gbit, 100mbit, 500kbit or unlimited)" });
  assert.throws(() => parseBandwidth('0mbit'), /cannot parse bandwidth/);
  assert.equal(parseLatency('0.25ms'), 0.25);
  assert.equal(parseLatency('20ms'), 20);
  assert.equal(parseLatency('250us'), 0.25);
  assert.equal(parseLatency('1s'), 1000);
  assert.equal(parseLatency('0'), 0);
  assert.throws(() => parseLatency('-1ms'), /cannot parse latency '-1ms'/);
  assert.deepEqual(parseNetOptions({ net: 'lan' }), NET_PRESETS.lan);
  assert.deepEqual(parseNetOptions({ net: 'wan' }), { bandwidthBitsPerSec: 1e8, latencyMs: 20 });
  assert.deepEqual(parseNetOptions({}), NET_PRESETS.none);
  assert.deepEqual(parseNetOptions({ net: 'wan', latency: '5ms' }), { bandwidthBitsPerSec: 1e8, latencyMs: 5 });
  assert.deepEqual(parseNetOptions({ bandwidth: '10mbit' }), { bandwidthBitsPerSec: 1e7, latencyMs: 0 });
  assert.throws(() => parseNetOptions({ net: 'moon' }), { message: "unknown --net value 'moon' (expected none, lan, wan)" });
  assert.equal(describeNet(NET_PRESETS.wan), '100 Mbit/s, 20 ms one way');
  assert.equal(describeNet(NET_PRESETS.lan), '1 Gbit/s, 0.25 ms one way');
  const [a] = memoryFramePair();
  assert.equal(emulateLink(a, NET_PRESETS.none), a, 'none adds no wrapper');
});

test('emulation: 1 MB over 100 Mbit/s + 20 ms arrives no earlier than 100 ms; serialisation queues', async (t) => {
  const [a0, b] = memoryFramePair();
  const a = emulateLink(a0, NET_PRESETS.wan);
  const t0 = performance.now();
  a.send(new Uint8Array(1_000_000));
  await b.recv();
  const one = performance.now() - t0;
  t.diagnostic(`1 MB frame over wan: ${one.toFixed(2)} ms (model 100 ms)`);
  // Lower bounds are the model; upper bounds only catch a runaway (timers fire late on a loaded machine).
  assert.ok(one >= 100 && one < 1000, `arrived after ${one} ms`);

  // Two 500 kB frames back to back: the second waits for the first's serialisation (40 + 40 + 20 ms).
  const t1 = performance.now();
  a.send(new Uint8Array(500_000));
  a.send(new Uint8Array(500_000));
  await b.recv();
  const first = performance.now() - t1;
  await b.recv();
  const second = performance.now() - t1;
  t.diagnostic(`2 × 500 kB: first ${first.toFixed(2)} ms (model 60), second ${second.toFixed(2)} ms (model 100)`);
  assert.ok(first >= 60 && first < 1000, `first after ${first} ms`);
  // Without queueing the second frame would also arrive at 60 ms; its 100 ms lower bound is the queue.
  assert.ok(second >= 100 && second < 1000, `second after ${second} ms: serialisation did not queue`);
  a.close();
});

test('emulation: sub-millisecond LAN latency is honoured (ping-pong accuracy)', async (t) => {
  const [x, y] = memoryFramePair();
  const a = emulateLink(x, NET_PRESETS.lan);
  const b = emulateLink(y, NET_PRESETS.lan);
  const rtts: number[] = [];
  for (let i = 0; i < 60; i++) {
    const t0 = performance.now();
    a.send(new Uint8Array(16));
    b.send(await b.recv());
    await a.recv();
    rtts.push(performance.now() - t0);
  }
  rtts.sort((p, q) => p - q);
  const median = rtts[30]!;
  const mean = rtts.reduce((s, v) => s + v, 0) / rtts.length;
  t.diagnostic(`LAN round trip: min ${rtts[0]!.toFixed(3)}, median ${median.toFixed(3)}, mean ${mean.toFixed(3)} ms vs 0.500 ms modeled`);
  assert.ok(rtts[0]! >= 0.5, `a round trip took ${rtts[0]} ms, less than 2 × 0.25 ms`);
  // The median shows the emulator's own delay (a 1 ms timer would put it at ≥ 1 ms); the mean is
  // only reported, since scheduler stalls on a loaded machine inflate it without any emulator fault.
  assert.ok(median < 1, `median round trip ${median} ms is far above the model`);
  a.close();
  b.close();
});

test('emulation: close delivers held frames before closing; recv after close rejects', async () => {
  const [x, b] = memoryFramePair();
  const a = emulateLink(x, { bandwidthBitsPerSec: 1e9, latencyMs: 30 });
  const pendingLocal = a.recv();
  // The clock starts at the send: a loaded machine may stall between the statements below, and
  // the held frame's 30 ms count from the send, not from whenever the test resumes.
  const t0 = performance.now();
  a.send(enc('in flight'));
  a.close();
  await assert.rejects(pendingLocal, /closed locally/);
  await assert.rejects(a.recv(), /closed locally/);
  assert.throws(() => a.send(enc('x')), /closed/);
  assert.equal(dec(await b.recv()), 'in flight');
  assert.ok(performance.now() - t0 >= 25);
  await assert.rejects(b.recv(), /peer A closed the connection/);
});

test('emulation over TCP: a stream of 3000 frames arrives complete and in order', async () => {
  const [srv, cli, stop] = await tcpPair();
  const a = emulateLink(cli, { bandwidthBitsPerSec: 10e9, latencyMs: 0.05 });
  const n = 3000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const f = new Uint8Array(4 + (i % 50));
    new DataView(f.buffer).setUint32(0, i);
    a.send(f);
  }
  for (let i = 0; i < n; i++) {
    const f = await srv.recv();
    assert.equal(new DataView(f.buffer, f.byteOffset).getUint32(0), i);
    assert.equal(f.length, 4 + (i % 50));
  }
  assert.ok(performance.now() - t0 < 5000);
  a.close();
  await assert.rejects(srv.recv(), /closed the connection/);
  srv.close();
  stop();
});

// ---------------------------------------------------------------- handshake

const P0: Hello = { role: 'party 0', version: 'mpc/1', modelHash: sha256Hex('model A'), configHash: sha256Hex('{}'), extra: { fracBits: '16' } };
const P1: Hello = { ...P0, role: 'party 1' };

test('handshake: matching ends succeed and learn each other', async () => {
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256Hex(enc('abc')), sha256Hex('abc'));
  const [a, b] = memoryFramePair();
  const [ra, rb] = await Promise.all([handshake(a, P0, 'party 1', 1000), handshake(b, P1, 'party 0', 1000)]);
  assert.equal(ra.role, 'party 1');
  assert.equal(rb.role, 'party 0');
  assert.equal(rb.modelHash, P0.modelHash);
  // The channel carries protocol traffic afterwards.
  a.send(enc('go'));
  assert.equal(dec(await b.recv()), 'go');
  a.close();
});

test('handshake: mismatches are refused with one-line reasons on both ends', async () => {
  const run = async (mine: Hello, expect: string, theirs: Hello, theirExpect: string) => {
    const [a, b] = memoryFramePair();
    const r = await Promise.allSettled([handshake(a, mine, expect, 1000), handshake(b, theirs, theirExpect, 1000)]);
    a.close();
    b.close();
    return r.map((x) => (x.status === 'rejected' ? (x.reason as Error).message : 'ok'));
  };
  const other = sha256Hex('model B');
  let [m0, m1] = await run(P0, 'party 1', { ...P1, modelHash: other }, 'party 0');
  assert.equal(m0, `handshake failed: party 1 loaded a different model (sha256 ${other.slice(0, 12)}… vs ${P0.modelHash!.slice(0, 12)}… here)`);
  assert.equal(m1, `handshake failed: party 0 loaded a different model (sha256 ${P0.modelHash!.slice(0, 12)}… vs ${other.slice(0, 12)}… here)`);

  [m0] = await run(P0, 'party 1', { ...P1, configHash: sha256Hex('{"x":1}') }, 'party 0');
  assert.match(m0!, /^handshake failed: party 1 uses a different configuration \(sha256 [0-9a-f]{12}… vs [0-9a-f]{12}… here\)$/);

  [m0] = await run(P0, 'party 1', { role: 'dealer', version: 'mpc/1' }, 'party 0');
  assert.equal(m0, 'handshake failed: peer is a dealer, expected party 1');

  [m0, m1] = await run(P0, 'party 1', { ...P1, version: 'mpc/2' }, 'party 0');
  assert.equal(m0, 'handshake failed: protocol version mismatch: peer speaks mpc/2, this end mpc/1');
  assert.equal(m1, 'handshake failed: protocol version mismatch: peer speaks mpc/1, this end mpc/2');

  [m0] = await run(P0, 'party 1', { ...P1, extra: { fracBits: '12' } }, 'party 0');
  assert.equal(m0, 'handshake failed: party 1 has a different fracBits (12 vs 16 here)');

  // The dealer sets no model hash, so it does not check one; the parties' own check still runs.
  const dealer: Hello = { role: 'dealer', version: 'mpc/1' };
  [m0, m1] = await run(P0, 'dealer', dealer, 'party 0');
  assert.equal(m0, 'handshake failed: dealer did not say which model it loaded');
  assert.equal(m1, 'ok');
});

test('handshake: garbage instead of a hello, and silence, give clear errors', async () => {
  const [a, b] = memoryFramePair();
  b.send(randomBytes(rng(9), 37));
  await assert.rejects(handshake(a, P0, 'party 1', 1000), {
    message: 'handshake failed: the peer sent 37 bytes that are not a privml hello (wrong program or port?)',
  });
  const [c, d] = memoryFramePair();
  d.send(enc(JSON.stringify({ role: 'party 1', version: 'mpc/1' }))); // JSON but no magic
  await assert.rejects(handshake(c, P0, 'party 1', 1000), /not a privml hello/);
  const [e, f] = memoryFramePair();
  const { ms, err } = await timeRejection(() => handshake(e, P0, 'party 1', 100));
  assert.equal(err.message, 'handshake failed: no handshake from the peer within 0.1 s (expected party 1)');
  assert.ok(ms < 1000);
  const [g, h] = memoryFramePair({ labels: ['P0', 'P1'] });
  const hs = handshake(g, P0, 'party 1', 1000);
  h.close();
  await assert.rejects(hs, { message: 'handshake failed: peer P1 closed the connection before saying hello (is TLS enabled on one side only?)' });
  for (const ch of [a, b, c, d, e, f, g]) ch.close();
});

// ---------------------------------------------------------------- PeerChannel

test('peerChannel: exact byte and round accounting; modeled time', async () => {
  const [x, y] = memoryFramePair();
  const traced: string[] = [];
  const p0 = peerChannel(x, { trace: (d, n) => traced.push(`${d}:${n}`) });
  const p1 = peerChannel(y);
  const [r0, r1] = await Promise.all([p0.exchange(new Uint8Array(100)), p1.exchange(new Uint8Array(7))]);
  assert.equal(r0.length, 7);
  assert.equal(r1.length, 100);
  const before = snapshotStats(p0.stats);
  p0.send(new Uint8Array(33));
  assert.equal((await p1.recv()).length, 33);
  p1.send(new Uint8Array(0));
  assert.equal((await p0.recv()).length, 0);
  // Concurrent exchanges pair up in order.
  const [q0, q1] = await Promise.all([
    Promise.all([p0.exchange(enc('a')), p0.exchange(enc('bb'))]),
    Promise.all([p1.exchange(enc('ccc')), p1.exchange(enc('dddd'))]),
  ]);
  assert.deepEqual(q0.map(dec), ['ccc', 'dddd']);
  assert.deepEqual(q1.map(dec), ['a', 'bb']);
  assert.deepEqual(p0.stats, { bytesSent: 100 + 33 + 1 + 2, bytesReceived: 7 + 0 + 3 + 4, rounds: 4 });
  assert.deepEqual(p1.stats, { bytesSent: 7 + 0 + 3 + 4, bytesReceived: 100 + 33 + 1 + 2, rounds: 4 });
  assert.deepEqual(diffStats(p0.stats, before), { bytesSent: 36, bytesReceived: 7, rounds: 3 });
  assert.deepEqual(traced, ['sent:100', 'received:7', 'sent:33', 'received:0', 'sent:1', 'sent:2', 'received:3', 'received:4']);

  assert.equal(modeledSeconds({ bytesSent: 1_000_000, bytesReceived: 0, rounds: 10 }, NET_PRESETS.wan), 0.08 + 10 * 0.04);
  assert.equal(modeledSeconds({ bytesSent: 125_000_000, bytesReceived: 0, rounds: 2 }, NET_PRESETS.lan), 1 + 2 * 0.0005);
  assert.equal(modeledSeconds({ bytesSent: 5, bytesReceived: 5, rounds: 5 }, NET_PRESETS.none), 0);

  x.close();
  await assert.rejects(p1.recv(), /closed the connection/);
  await assert.rejects(p1.exchange(enc('z')), /closed the connection/);
});

// ---------------------------------------------------------------- liveness and admission

test('liveness: heartbeats keep a quiet link up past its idle timeout; a silent peer is declared dead within it', async () => {
  const [srv, cli, stop] = await tcpPair();
  srv.verified({ idleTimeoutMs: 300 });
  cli.verified({ idleTimeoutMs: 300 });
  await new Promise((r) => setTimeout(r, 1000)); // > 3 timeouts without a frame
  cli.send(enc('still here'));
  assert.equal(dec(await srv.recv()), 'still here');
  cli.close();
  srv.close();
  stop();

  // A raw TCP peer that says nothing after the "handshake" (a stopped process keeps its socket open).
  const l = await listen({ host: HOST, port: 0 });
  const raw = net.connect({ host: HOST, port: l.port });
  const ch = await l.accept();
  ch.verified({ idleTimeoutMs: 300 });
  const { ms, err } = await timeRejection(() => ch.recv());
  assert.match(err.message, /^peer 127\.0\.0\.1:\d+ sent nothing for 0\.3 s \(idle timeout; stopped or unreachable\?\)$/);
  assert.ok(ms >= 250 && ms < 1500, `declared dead after ${ms} ms`);
  raw.destroy();
  l.close();
});

test('admission: HTTP text, an oversized header, a port scan and a silent client are dropped and logged; the real peer is admitted', async () => {
  const l = await listen({ host: HOST, port: 0 });
  const drops: string[] = [];
  let admitted: TcpFrameChannel | undefined;
  const admission = admitPeers(l, {
    where: 'test',
    timeoutMs: 10_000,
    awaiting: () => 'party 0',
    onDrop: (peer, why) => drops.push(`${peer}: ${why}`),
    admit: async (ch) => {
      await handshake(ch, { role: 'party 1', version: 'v1' }, 'party 0', 400, true, { replyAfter: true });
      admitted = ch;
      return true;
    },
  });
  const stray = (bytes: Buffer | null) => {
    const s = net.connect({ host: HOST, port: l.port });
    s.on('error', () => {});
    s.on('connect', () => (bytes === null ? s.destroy() : s.write(bytes)));
    return s;
  };
  const received: Buffer[] = [];
  const http = stray(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  http.on('data', (d: Buffer) => received.push(d));
  const huge = stray(Buffer.from([0x7f, 0xff, 0xff, 0xf0, 1, 2, 3]));
  const silent = stray(Buffer.alloc(0));
  stray(null); // connect and close at once, as a port scanner does
  await new Promise((r) => setTimeout(r, 700)); // the silent client's handshake times out
  const good = await connect({ host: HOST, port: l.port, label: 'party 1' });
  const hello = handshake(good, { role: 'party 0', version: 'v1' }, 'party 1', 2000);
  await admission;
  assert.equal((await hello).role, 'party 1');
  assert.ok(admitted, 'the real peer was admitted');
  assert.equal(drops.length, 4, drops.join('\n'));
  assert.ok(
    drops.some((d) => /not a privml hello|exceeds the limit/.test(d)),
    `HTTP text: ${drops.join(' / ')}`,
  );
  assert.ok(
    drops.some((d) => /exceeds the limit of 65536 bytes/.test(d)),
    'oversized header hits the pre-handshake cap',
  );
  assert.ok(
    drops.some((d) => /no handshake from the peer within 0\.4 s/.test(d)),
    'silent client',
  );
  assert.ok(
    drops.some((d) => /closed the connection/.test(d)),
    'port scan',
  );
  assert.equal(received.length, 0, 'a stray client learns nothing (the listener answers only a valid hello)');
  for (const s of [http, huge, silent]) s.destroy();
  good.close();
  admitted!.close();
  l.close();
});

test('a frame over the pre-authentication cap right after the hello waits for the raised limit; an unverified flood still fails', () => {
  const got: number[] = [];
  const d = new FrameDecoder((f) => got.push(f.length), 1024, undefined, 1 << 20);
  // hello (10 bytes) and the start of a 5,000-byte frame in one read, before this end verified the peer
  const big = encodeFrame(new Uint8Array(5000), 1 << 20);
  d.push(Uint8Array.from([...encodeFrame(new Uint8Array(10), 1024), ...big.subarray(0, 1500)]));
  assert.deepEqual(got, [10]);
  assert.equal(d.idle, false);
  d.setMaxFrameBytes(1 << 20);
  d.push(big.subarray(1500));
  assert.deepEqual(got, [10, 5000]);
  assert.equal(d.idle, true);
  // never verified: bytes past two frames at the pre-authentication cap fail the link
  const e = new FrameDecoder(() => {}, 1024, undefined, 1 << 20);
  e.push(encodeFrame(new Uint8Array(5000), 1 << 20).subarray(0, 1500));
  assert.throws(() => e.push(new Uint8Array(1000)), /exceeds the limit of 1024 bytes/);
  // over the deferral bound: fails at once, as before
  const f = new FrameDecoder(() => {}, 1024, undefined, 4096);
  assert.throws(() => f.push(encodeFrame(new Uint8Array(5000), 1 << 20)), /exceeds the limit of 1024 bytes/);
});
