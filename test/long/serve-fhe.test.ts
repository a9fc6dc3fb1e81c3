/**
 * `privml serve --fhe` in a real browser: Debian's Chromium (PRIVML_CHROMIUM or /usr/bin/chromium)
 * driven by playwright-core generates CKKS keys in the page (node-seal's browser build in a Web
 * Worker), uploads the server keys, encrypts a committed sample, answers the refresh round trip and
 * decrypts; the prediction must equal `privml fhe run` on the same sample. Every frame the page
 * sends must be a server key (public/relin/galois) or a ciphertext, and neither the secret key
 * (read from the worker) nor the image may appear in any frame or request. Skipped, with the
 * reason printed, when no Chromium is found. Slow: N = 16384 on both sides (minutes under load).
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { loadDatasetSync } from '../../src/api/data.js';
import { decodeFheFile } from '../../src/fhe/context.js';
import { decodeWire } from '../../src/fhe/wire.js';
import { BIN, type Browser, chromiumSkip, clickClassify, launchChromium, MODEL, startServe } from '../helpers/chromium.js';

const SAMPLE = 3;
const skip = chromiumSkip('the browser FHE test');

test('privml serve --fhe: the page classifies like fhe run, and neither the secret key nor the image leaves it', { skip, timeout: 1_500_000 }, async () => {
  const exec = promisify(execFile);
  const t0 = performance.now();
  const lap = (what: string) => console.log(`# ${what} at ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // The Node client on the same sample, same model and PAF, in parallel.
  const node = exec(process.execPath, [BIN, 'fhe', 'run', MODEL, '--paf', 'f1g2', '--start', String(SAMPLE), '--limit', '1', '--json'], { maxBuffer: 1 << 26 });
  const server = await startServe(['--fhe', '--paf', 'f1g2', '--json']);
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const page = browser.page;
    const sent: Buffer[] = [];
    const received: Buffer[] = [];
    const requests: Buffer[] = [];
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => sent.push(Buffer.from(f.payload)));
      ws.on('framereceived', (f) => received.push(Buffer.from(f.payload)));
    });
    page.on('request', (r) => requests.push(Buffer.concat([Buffer.from(r.url()), r.postDataBuffer() ?? Buffer.alloc(0)])));
    await page.goto(server.url);
    await page.waitForSelector('#samples canvas');
    assert.match((await page.textContent('#subtitle')) ?? '', /FHE/);
    await page.click(`#samples canvas[data-index="${SAMPLE}"]`);
    await clickClassify(page, 1_200_000, 1000);
    lap('page classified');
    assert.equal(await page.textContent('#error'), '');
    const r = JSON.parse((await page.getAttribute('#result', 'data-fhe'))!) as {
      prediction: number;
      keygenMs: number;
      keyBytes: number;
      wallMs: number;
      encryptMs: number;
      decryptMs: number;
      serverSeconds: number;
      refreshes: number;
    };
    console.log(`# page: ${JSON.stringify(r)}`);

    // The secret key, read from the page's worker (test hook), must be in no frame or request.
    const worker = page.workers().find((w) => w.url().endsWith('fhe-worker.js'));
    assert.ok(worker, 'the CKKS client runs in a Web Worker');
    const sk = (await worker.evaluate('self.privmlSecretKeyForTest()')) as number[][] | null;
    assert.ok(sk && sk[0]!.length > 100_000, 'the worker holds a secret key');

    const nodeOut = JSON.parse((await node).stdout) as { results: { fheClass: number; ortClass: number }[] };
    lap('fhe run done');
    assert.equal(r.prediction, nodeOut.results[0]!.fheClass, 'page prediction equals privml fhe run');

    // Every frame the page sent: a server key or a ciphertext (all bytes accounted for), never a secret key.
    const kinds = new Set<string>();
    for (const f of sent) {
      const { h, payload } = decodeWire(f);
      assert.ok(['key', 'infer', 'fresh'].includes(h.t), `page sent a '${h.t}' frame`);
      const file = decodeFheFile(payload, 'frame');
      assert.ok(['public', 'relin', 'galois', 'ciphertext'].includes(file.header.kind), `page sent a ${file.header.kind} file`);
      kinds.add(file.header.kind);
    }
    assert.deepEqual([...kinds].sort(), ['ciphertext', 'galois', 'public', 'relin']);
    const all = [...sent, ...received, ...requests];
    for (const form of sk!) {
      const bytes = Buffer.from(form);
      // 64-byte windows from the body of the serialization (past SEAL's header).
      for (let off = 64; off + 64 <= bytes.length; off += Math.floor(bytes.length / 24)) {
        const w = bytes.subarray(off, off + 64);
        assert.ok(!all.some((f) => f.includes(w)), `secret key bytes (offset ${off}) in the traffic`);
      }
    }
    const ds = loadDatasetSync('fashion-mnist-sample', { split: 'test', limit: SAMPLE + 1 });
    const px = Uint8Array.from(ds.images.subarray(SAMPLE * 784, (SAMPLE + 1) * 784), (v) => Math.round(v * 255));
    for (let i = 0; i + 16 <= px.length; i += 8) {
      const run = px.subarray(i, i + 16);
      if (run.filter((v) => v !== 0).length < 8) continue;
      const f64 = Buffer.from(Float64Array.from(run, (v) => v / 255).buffer);
      const f32 = Buffer.from(Float32Array.from(run, (v) => v / 255).buffer);
      assert.ok(!all.some((f) => f.includes(Buffer.from(run)) || f.includes(f64) || f.includes(f32)), `image bytes at ${i} in the traffic`);
    }

    // A second image reuses the session: no keys generated or uploaded again.
    await page.click(`#samples canvas[data-index="0"]`);
    await page.click('#classify');
    await page.waitForFunction(() => document.querySelector('#status')!.textContent === 'Done.' || document.querySelector('#error')!.textContent !== '', null, {
      timeout: 900_000,
      polling: 1000,
    });
    assert.equal(await page.textContent('#error'), '');
    const r2 = JSON.parse((await page.getAttribute('#result', 'data-fhe'))!) as { keyBytes: number; wallMs: number };
    assert.equal(r2.keyBytes, 0, 'keys are uploaded once per session');
    lap(`second image in ${(r2.wallMs / 1000).toFixed(1)} s`);
  } finally {
    await browser?.close();
    server.child.kill('SIGKILL');
  }
});
