/**
 * Faults against real role processes: a quick subset of the fault matrix (faults-matrix.ts runs
 * all of it), stray clients against a listening dealer and party 1 (dropped and logged, RSS cost of
 * 8 unauthenticated connections), and impersonation under mutual TLS with role-bound certificates.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { caseName, type FaultCase, runCases } from './faults-matrix.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'privml.js');
const MODEL = join(ROOT, 'models', 'fmnist-cnn.onnx');

test('fault matrix (quick subset): survivors exit non-zero within budget, one line naming a peer, no process left', { timeout: 150_000 }, async () => {
  const cases: FaultCase[] = [
    { kind: 'role', role: 'party 0', signal: 'kill', phase: 'mid-layer' },
    { kind: 'role', role: 'party 1', signal: 'kill', phase: 'reveal' },
    { kind: 'role', role: 'dealer', signal: 'kill', phase: 'mid-layer' },
    { kind: 'role', role: 'party 0', signal: 'stop', phase: 'setup' },
    { kind: 'role', role: 'dealer', signal: 'stop', phase: 'mid-layer' },
    { kind: 'link', link: 'party 0–party 1', how: 'cut' },
  ];
  const results = await runCases(cases, 3);
  const bad = results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.problems.join('; ')}`);
  assert.deepEqual(bad, [], bad.join('\n'));
  assert.equal(results.length, cases.length);
  for (const r of results) assert.ok(r.survivors.length === (r.name.startsWith('link') ? 3 : 2), caseName(cases[results.indexOf(r)]!));
});

interface Proc {
  child: ChildProcess;
  stderr: string;
  exited: Promise<number | null>;
}

/** Party 0's command line on two sample images against party 1 and the dealer at these ports. */
function party0Args(pport: number, dport: number, extra: string[] = []): string[] {
  return [
    'mpc',
    'party',
    MODEL,
    '--dataset',
    'fashion-mnist-sample',
    '--limit',
    '2',
    '--id',
    '0',
    '--peer',
    `127.0.0.1:${pport}`,
    '--dealer',
    `127.0.0.1:${dport}`,
    ...extra,
  ];
}

function start(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const p: Proc = { child, stderr: '', exited: new Promise((r) => child.on('close', (c) => r(c))) }; // 'close': stderr fully read
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (p.stderr += d));
  return p;
}

async function waitFor(p: Proc, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  const end = performance.now() + ms;
  for (;;) {
    const m = re.exec(p.stderr);
    if (m) return m;
    if (performance.now() > end || p.child.exitCode !== null) assert.fail(`no ${re} within ${ms} ms: ${p.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function killAll(ps: Proc[]): void {
  for (const p of ps) if (p.child.exitCode === null && p.child.signalCode === null) process.kill(-p.child.pid!, 'SIGKILL');
}

test('stray clients (HTTP, huge length headers, silent, port scan) are dropped and logged; 8 unauthenticated connections cost < 10 MB; the session still runs', {
  skip: process.platform !== 'linux',
  timeout: 120_000,
}, async () => {
  const dealer = start(['mpc', 'dealer', '--listen', '127.0.0.1:0']);
  const procs = [dealer];
  const socks: net.Socket[] = [];
  try {
    const dport = Number((await waitFor(dealer, /dealer listening on port (\d+)/, 60_000))[1]);
    const p1 = start(['mpc', 'party', MODEL, '--count', '2', '--id', '1', '--peer', '127.0.0.1:0', '--dealer', `127.0.0.1:${dport}`]);
    procs.push(p1);
    const pport = Number((await waitFor(p1, /party 1 listening on port (\d+)/, 60_000))[1]);
    await sleep(1500); // let the dealer settle (party 1 is connected) before measuring
    const rss0 = rssKb(dealer.child.pid!);
    const open = (port: number, bytes: Buffer | null) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.on('connect', () => (bytes === null ? s.destroy() : s.write(bytes)));
      socks.push(s);
    };
    // 8 connections announcing the largest pre-handshake frame (64 KiB) and sending most of it, never finishing.
    const header = Buffer.alloc(4);
    header.writeUInt32BE(64 * 1024);
    for (let i = 0; i < 8; i++) open(dport, Buffer.concat([header, Buffer.alloc(60_000, 0x41)]));
    // 8 more announcing 200 MiB frames and sending 2 MB each (before the cap, the dealer buffered all of it).
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(200 << 20);
    for (let i = 0; i < 8; i++) open(dport, Buffer.concat([huge, Buffer.alloc(2 << 20, 0x42)]));
    for (const port of [dport, pport]) {
      open(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      open(port, Buffer.from([0xff, 0xff, 0xff, 0xf0]));
      open(port, Buffer.from([0x00, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5])); // a valid frame that is not a hello
      open(port, null); // port scan
    }
    await sleep(1500);
    const rss1 = rssKb(dealer.child.pid!);
    const costMb = (rss1 - rss0) / 1024;
    process.stdout.write(
      `# dealer RSS ${(rss0 / 1024).toFixed(1)} MB -> ${(rss1 / 1024).toFixed(1)} MB with 8 unauthenticated connections (+${costMb.toFixed(2)} MB)\n`,
    );
    assert.ok(costMb < 10, `8 unauthenticated connections cost ${costMb.toFixed(1)} MB`);
    // Now the real party 0: the session completes despite everything above.
    const p0 = start(party0Args(pport, dport));
    procs.push(p0);
    const codes = await Promise.all(procs.map((p) => p.exited));
    assert.deepEqual(codes, [0, 0, 0], `exit codes ${codes}: ${procs.map((p) => p.stderr).join('\n---\n')}`);
    const drops = (s: string) => s.split('\n').filter((l) => /^privml: warning: .* dropped a connection from /.test(l));
    assert.ok(drops(dealer.stderr).length >= 3, dealer.stderr);
    assert.ok(drops(p1.stderr).length >= 3, p1.stderr);
    assert.ok(
      drops(dealer.stderr).some((l) => /exceeds the limit of 65536 bytes/.test(l)),
      dealer.stderr,
    );
  } finally {
    for (const s of socks) s.destroy();
    killAll(procs);
  }
});

const haveOpenssl = spawnSync('which', ['openssl']).status === 0;

test('impersonation: under --tls-ca, a client with the wrong role certificate or none is refused by the dealer and party 1; the right certificates run the session', {
  skip: haveOpenssl ? false : 'openssl not found on PATH',
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'privml-certs-'));
  const procs: Proc[] = [];
  try {
    const made = spawnSync(process.execPath, [BIN, 'mpc', 'certs', '-o', dir], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    assert.equal(readFileSync(join(dir, 'party0-key.pem')) && (await import('node:fs')).statSync(join(dir, 'party0-key.pem')).mode & 0o777, 0o600);
    const f = (n: string) => join(dir, n);
    const tlsArgs = (stem: string) => ['--tls-cert', f(`${stem}.pem`), '--tls-key', f(`${stem}-key.pem`), '--tls-ca', f('ca.pem')];
    const dealer = start(['mpc', 'dealer', '--listen', '127.0.0.1:0', ...tlsArgs('dealer')]);
    procs.push(dealer);
    const dport = Number((await waitFor(dealer, /dealer listening on port (\d+)/, 60_000))[1]);
    const p1 = start(['mpc', 'party', MODEL, '--count', '2', '--id', '1', '--peer', '127.0.0.1:0', '--dealer', `127.0.0.1:${dport}`, ...tlsArgs('party1')]);
    procs.push(p1);
    const pport = Number((await waitFor(p1, /party 1 listening on port (\d+)/, 60_000))[1]);

    // Attackers speak the real protocol: a TLS client sending a party hello.
    const ca = readFileSync(f('ca.pem'));
    const attempt = (port: number, role: string, cert?: string): Promise<string> =>
      new Promise((resolve) => {
        const s = tls.connect({
          host: '127.0.0.1',
          port,
          ca,
          checkServerIdentity: () => undefined,
          ...(cert ? { cert: readFileSync(f(`${cert}.pem`)), key: readFileSync(f(`${cert}-key.pem`)) } : {}),
        });
        let got = '';
        s.on('secureConnect', () => {
          const hello = Buffer.from(JSON.stringify({ magic: 'privml-mpc-hello', role, version: 'privml-mpc/1' }));
          const h = Buffer.alloc(4);
          h.writeUInt32BE(hello.length);
          s.write(Buffer.concat([h, hello]));
        });
        s.on('data', (d: Buffer) => (got += d.toString('latin1')));
        s.on('error', (e) => resolve(`error: ${e.message}`));
        s.on('close', () => resolve(got.includes('privml-mpc-hello') ? 'answered' : 'closed'));
        setTimeout(() => s.destroy(), 3000);
      });
    // party 1's certificate claiming party 0, at the dealer and at party 1; no certificate at all.
    assert.equal(await attempt(dport, 'party 0', 'party1'), 'closed');
    assert.equal(await attempt(pport, 'party 0', 'party1'), 'closed');
    assert.equal(await attempt(pport, 'party 0', 'dealer'), 'closed');
    assert.match(await attempt(dport, 'party 0'), /^(closed|error: .*certificate)/);
    assert.match(await attempt(pport, 'party 0'), /^(closed|error: .*certificate)/);
    await sleep(300);
    assert.match(dealer.stderr, /dealer dropped a connection from .*: handshake failed: claims to be party 0 but its certificate names party 1, party1/);
    assert.match(p1.stderr, /party 1 dropped a connection from .*: handshake failed: claims to be party 0 but its certificate names (party 1|dealer)/);
    assert.match(dealer.stderr, /dealer dropped a connection from .*: TLS handshake failed: .*certificate/);

    // A party 0 holding party 1's certificate is refused outright (its session cannot start).
    // The real party 0: the session runs over mutual TLS.
    const p0 = start(party0Args(pport, dport, tlsArgs('party0')));
    procs.push(p0);
    const codes = await Promise.all(procs.map((p) => p.exited));
    assert.deepEqual(codes, [0, 0, 0], procs.map((p) => p.stderr).join('\n---\n'));
  } finally {
    killAll(procs);
    rmSync(dir, { recursive: true, force: true });
  }
});

// The other targets (onnx, fhe, proteus) belong to other pillars; `npm run fuzz` runs them all.
test('fuzz (a few seconds): frames against a listening dealer and party 1, relu-configs — no crash, hang or memory spike', { timeout: 60_000 }, async () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'scripts', 'fuzz.ts'), '--seconds', '5', '--seed', '7', '--targets', 'frames,relu', '--json'],
    { cwd: ROOT, encoding: 'utf8', timeout: 50_000 },
  );
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(r.stdout) as { results: Record<string, { inputs: number; crashes: number; hangs: number; spikes: number; cleanErrors: number }> };
  for (const [t, c] of Object.entries(j.results)) {
    assert.ok(c.inputs > 20, `${t}: only ${c.inputs} inputs`);
    assert.deepEqual([c.crashes, c.hangs, c.spikes], [0, 0, 0], `${t}: ${JSON.stringify(c)}`);
  }
  assert.ok(j.results.frames!.cleanErrors > 0.8 * j.results.frames!.inputs, 'the listeners dropped the stray frames and kept serving');
});

test('regression (fuzz): a relu-config of JSON null, a number or an array is refused with one line', async () => {
  const { readReluConfig } = await import('../../src/cli/mpc.js');
  const { loadModel } = await import('../../src/onnx/proto.js');
  const model = loadModel(MODEL);
  const dir = mkdtempSync(join(tmpdir(), 'privml-relucfg-'));
  try {
    for (const text of ['null', '3', '[1,2]', '"x"']) {
      const p = join(dir, 'c.json');
      writeFileSync(p, text);
      assert.throws(
        () => readReluConfig(p, model),
        (e: Error) => e.constructor.name === 'DataError' && /expected an object of per-node bit ranges/.test(e.message),
        text,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
