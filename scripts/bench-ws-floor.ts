/**
 * The transport floor under bench-web's page-vs-Node ratio: round trips with the message sizes of
 * fmnist-cnn's two eco ReLU layers (party 0's frames, traced from a real session: relu_1 47040,
 * 40768, 21952, 9408, 3136, 101920 bytes; relu_2 21952, 20384, 7840, 4704, 1568, 50960), with no
 * MPC compute at all. A server process started like party 1 (ROLE_EXEC_ARGV, allocator settings)
 * accepts on the project's own listeners (net/tcp.ts: TCP, and WebSocket as `mpc party --peer-ws`)
 * and answers every frame with a frame of the same size. Clients, taking turns each round:
 * - `page`: a Web Worker in Chromium (bare DevTools driver, no domain enabled, as bench-web's page
 *   side) over the browser's WebSocket, header and payload in one binary message as ws.ts sends;
 * - `nodeTcp`: a Node process started like party 0 (`mpc party`) over the project's TCP channel;
 * - `nodeWs`: the same Node process over the project's WebSocket channel (`ws` package client), to
 *   tell the WebSocket protocol's own cost (masking, parsing) from Chromium's.
 * Per side: median time of one ReLU layer's six round trips, and of each size.
 *
 *   node --import tsx scripts/bench-ws-floor.ts [--rounds 7] [--reps 30]
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { ALLOC_ENV } from '../src/api/mpc-session.js';
import { ROLE_EXEC_ARGV } from '../src/mpc/launch.js';
import { connect, listen, type TcpFrameChannel } from '../src/mpc/net/tcp.js';
import { connectWs, type WebSocketLike } from '../src/mpc/net/ws.js';
import { launchPlainChromium } from '../test/helpers/cdp.js';

const RELU_1 = [47040, 40768, 21952, 9408, 3136, 101920];
const RELU_2 = [21952, 20384, 7840, 4704, 1568, 50960];
const arg = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const r2 = (x: number) => Math.round(x * 100) / 100;

/** Per-size round-trip times and per-layer sequence times of one client run. */
interface Times {
  relu1: number[];
  relu2: number[];
  bySize: Record<string, number[]>;
}

/** The echo server (child): every frame answered by a frame of the same size, on TCP and on WebSocket. */
async function server(): Promise<void> {
  const opts = { host: '127.0.0.1', port: 0, preAuthLimit: false, acceptTimeoutMs: 600_000 };
  const tcp = await listen(opts);
  const ws = await listen({ ...opts, websocket: true });
  const serveAll = async (l: typeof tcp) => {
    for (;;) {
      const ch = await l.accept().catch(() => null);
      if (!ch) return;
      ch.verified(); // no handshake here: lift the pre-authentication frame cap at once
      (async () => {
        for (;;) {
          const f = await ch.recv().catch(() => null);
          if (!f) return;
          ch.send(new Uint8Array(f.length));
        }
      })();
    }
  };
  serveAll(tcp);
  serveAll(ws);
  process.send!({ tcp: tcp.port, ws: ws.port });
}

/** Run the two layers' round trips `reps` times over `ch` (after 5 untimed repetitions). */
async function exchanges(ch: TcpFrameChannel, reps: number): Promise<Times> {
  const t: Times = { relu1: [], relu2: [], bySize: {} };
  for (let i = 0; i < reps + 5; i++) {
    for (const [name, sizes] of [
      ['relu1', RELU_1],
      ['relu2', RELU_2],
    ] as const) {
      const l0 = performance.now();
      for (const n of sizes) {
        const t0 = performance.now();
        ch.send(new Uint8Array(n));
        const f = await ch.recv();
        if (f.length !== n) throw new Error(`echo of ${n} bytes came back as ${f.length}`);
        if (i >= 5) (t.bySize[n] ??= []).push(performance.now() - t0);
      }
      if (i >= 5) t[name].push(performance.now() - l0);
    }
  }
  return t;
}

/** The Node client (child, started like party 0): one run over TCP or WebSocket per request. */
async function nodeClient(ports: { tcp: number; ws: number }): Promise<void> {
  const { WebSocket } = await import('ws');
  process.on('message', async (m: { side: 'nodeTcp' | 'nodeWs'; reps: number }) => {
    const ch =
      m.side === 'nodeTcp'
        ? await connect({ host: '127.0.0.1', port: ports.tcp, preAuthLimit: false })
        : await connectWs({
            url: `ws://127.0.0.1:${ports.ws}/`,
            preAuthLimit: false,
            open: (u) => new WebSocket(u, { perMessageDeflate: false }) as unknown as WebSocketLike,
          });
    ch.verified();
    const t = await exchanges(ch, m.reps);
    ch.close();
    process.send!(t);
  });
  process.send!('ready');
}

/** The page's worker: the same exchanges over the browser's WebSocket (header + payload in one message). */
const WORKER = `
const RELU_1 = ${JSON.stringify(RELU_1)}, RELU_2 = ${JSON.stringify(RELU_2)};
self.onmessage = (ev) => run(ev.data).catch((e) => self.postMessage({ error: String(e && e.stack || e) }));
async function run({ url, reps }) {
  const ws = new WebSocket(url); ws.binaryType = 'arraybuffer';
  await new Promise((ok, no) => { ws.onopen = ok; ws.onerror = () => no(new Error('ws error')); });
  let pending = [], want = 0, have = 0, wake = null;
  ws.onmessage = (e) => { pending.push(e.data); have += e.data.byteLength; if (wake && have >= want) { const w = wake; wake = null; w(); } };
  const recv = (n) => new Promise((ok) => { want = n + 4; if (have >= want) ok(); else wake = ok; }).then(() => {
    // one frame per reply: take exactly n + 4 bytes (the echo sends nothing else)
    const out = new Uint8Array(want); let off = 0;
    while (off < want) { const p = new Uint8Array(pending.shift()); out.set(p, off); off += p.length; }
    have -= want; return new DataView(out.buffer).getUint32(0);
  });
  const t = { relu1: [], relu2: [], bySize: {} };
  for (let i = 0; i < reps + 5; i++) {
    for (const [name, sizes] of [['relu1', RELU_1], ['relu2', RELU_2]]) {
      const l0 = performance.now();
      for (const n of sizes) {
        const t0 = performance.now();
        const m = new Uint8Array(4 + n); new DataView(m.buffer).setUint32(0, n);
        ws.send(m);
        const got = await recv(n);
        if (got !== n) throw new Error('bad echo');
        if (i >= 5) (t.bySize[n] ??= []).push(performance.now() - t0);
      }
      if (i >= 5) t[name].push(performance.now() - l0);
    }
  }
  ws.close();
  self.postMessage(t);
}`;

async function main(): Promise<void> {
  const rounds = Number(arg('--rounds') ?? 7) || 7;
  const reps = Number(arg('--reps') ?? 30) || 30;
  const self = fileURLToPath(import.meta.url);
  const child = (role: string, extra: string[] = []) =>
    fork(self, [role, ...extra], { execArgv: [...process.execArgv, ...ROLE_EXEC_ARGV], env: { ...process.env, ...ALLOC_ENV }, stdio: 'inherit' });
  const srv = child('--server');
  const ports = await new Promise<{ tcp: number; ws: number }>((ok) => srv.once('message', ok as never));
  const cli = child('--client', [JSON.stringify(ports)]);
  await new Promise((ok) => cli.once('message', ok));

  let onResult: (t: Times) => void = () => {};
  const page = http.createServer((req, res) => {
    if (req.url === '/w.js') return (res.writeHead(200, { 'content-type': 'text/javascript' }), res.end(WORKER));
    if (req.url === '/result') {
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => (res.end('ok'), onResult(JSON.parse(b))));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(
      `<html><body><script>window.run = (reps) => { const w = new Worker('/w.js'); w.onerror = (e) => fetch('/result', { method: 'POST', body: JSON.stringify({ error: e.message }) }); w.onmessage = (e) => fetch('/result', { method: 'POST', body: JSON.stringify(e.data) }); w.postMessage({ url: 'ws://127.0.0.1:${ports.ws}/', reps }); return true; };</script></body></html>`,
    );
  });
  await new Promise<void>((ok) => page.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(page.address() as { port: number }).port}/`;
  const browser = await launchPlainChromium(url);
  const SIDES = ['page', 'nodeTcp', 'nodeWs'] as const;
  const all: Record<string, Times[]> = { page: [], nodeTcp: [], nodeWs: [] };
  try {
    for (let tries = 0; ; tries++) {
      try {
        if ((await browser.evaluate<string>('typeof window.run')) === 'function') break;
        throw new Error('page not loaded yet');
      } catch (e) {
        if (tries >= 20) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < SIDES.length; k++) {
        const side = SIDES[(r + k) % SIDES.length]!;
        let t: Times;
        if (side === 'page') {
          const got = new Promise<Times>((ok) => (onResult = ok));
          await browser.evaluate(`window.run(${reps})`);
          t = await got;
          if ((t as { error?: string }).error) throw new Error(`page: ${(t as { error?: string }).error}`);
        } else {
          const got = new Promise<Times>((ok) => cli.once('message', ok as never));
          cli.send({ side, reps });
          t = await got;
        }
        all[side]!.push(t);
      }
      process.stderr.write(`round ${r + 1}/${rounds}: ${SIDES.map((s) => `${s} relu_1 ${median(all[s]!.at(-1)!.relu1).toFixed(2)} ms`).join(', ')}\n`);
    }
  } finally {
    await browser.close();
    page.close();
    srv.kill();
    cli.kill();
  }
  // Medians over all repetitions of all rounds.
  const summary = (s: string) => {
    const ts = all[s]!;
    const flat = (f: (t: Times) => number[]) => ts.flatMap(f);
    return {
      relu1Ms: r2(median(flat((t) => t.relu1))),
      relu2Ms: r2(median(flat((t) => t.relu2))),
      perRoundMs: r2(median(flat((t) => t.relu1.concat(t.relu2))) / 6),
      roundTripMsBySize: Object.fromEntries([...RELU_1, ...RELU_2].sort((a, b) => a - b).map((n) => [n, r2(median(flat((t) => t.bySize[n] ?? [])))])),
      relu1MsPerRound: ts.map((t) => r2(median(t.relu1))),
    };
  };
  const out = { rounds, reps, sides: Object.fromEntries(SIDES.map((s) => [s, summary(s)])) };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

if (process.argv[2] === '--server') await server();
else if (process.argv[2] === '--client') await nodeClient(JSON.parse(process.argv[3]!));
else {
  await main();
  process.exit(0);
}
