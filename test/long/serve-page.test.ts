/**
 * `privml serve` in a real browser: Debian's Chromium (PRIVML_CHROMIUM or /usr/bin/chromium) driven
 * by playwright-core classifies committed samples through the page (party 0 in the page, party 1
 * and the dealer as processes), the predictions must equal the Node client's, the plain image must
 * not appear in any WebSocket frame or HTTP request, and bad input ends in a visible error while
 * the server keeps serving. Skipped, with the reason printed, when no Chromium is found.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { loadDatasetSync } from '../../src/api/data.js';
import { BIN, type Browser, chromiumSkip, clickClassify, ECO, launchChromium, MODEL, startServe } from '../helpers/chromium.js';

const SAMPLES = [0, 2];
const skip = chromiumSkip('the browser test');

/** Click Classify and wait until the page shows a prediction or an error; returns both. */
async function classify(page: Page): Promise<{ prediction?: number; error: string; ms?: number }> {
  await clickClassify(page, 90_000);
  return page.evaluate(() => {
    const r = document.querySelector<HTMLElement>('#result')!;
    return {
      prediction: r.dataset.prediction === undefined ? undefined : Number(r.dataset.prediction),
      ms: r.dataset.ms === undefined ? undefined : Number(r.dataset.ms),
      error: document.querySelector('#error')!.textContent ?? '',
    };
  });
}

/** Every way the image could travel in the clear: its grey levels (every 12-pixel run, at least half non-blank), float32 and fixed-point words. */
function needles(px: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i + 12 <= px.length; i += 3) {
    const run = px.subarray(i, i + 12);
    if (run.filter((v) => v !== 0).length < 6) continue;
    out.push(Buffer.from(run));
    const f = Float32Array.from(run, (v) => v / 255);
    out.push(Buffer.from(f.buffer).subarray(0, 32));
    const fx = BigInt64Array.from(run, (v) => BigInt(Math.round((v / 255) * 65536)));
    out.push(Buffer.from(fx.buffer).subarray(0, 48));
  }
  return out;
}

const found = (hay: Buffer, ns: Buffer[]): boolean => ns.some((n) => hay.indexOf(n) >= 0);

test('privml serve: the page classifies like the Node client, and the image never leaves it', { skip, timeout: 240_000 }, async () => {
  const exec = promisify(execFile);
  // The Node client on the same samples (its own dealer and party 1 processes), in parallel with the browser.
  const node = exec(
    process.execPath,
    [BIN, 'mpc', 'infer', MODEL, '--relu-config', ECO, '--dataset', 'fashion-mnist-sample', '--limit', String(Math.max(...SAMPLES) + 1), '--json'],
    { maxBuffer: 1 << 24 },
  );
  const t0 = performance.now();
  const lap = (what: string) => console.log(`# ${what} at ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const server = await startServe(['--relu-config', ECO]);
  lap('serve up');
  let browser: Browser | undefined;
  try {
    browser = await launchChromium();
    const page = browser.page;
    const frames: Buffer[] = [];
    const requests: Buffer[] = [];
    const responses: Buffer[] = [];
    const wsUrls: string[] = [];
    page.on('websocket', (ws) => {
      wsUrls.push(ws.url());
      ws.on('framesent', (f) => frames.push(Buffer.from(f.payload)));
      ws.on('framereceived', (f) => frames.push(Buffer.from(f.payload)));
    });
    page.on('request', (r) => requests.push(Buffer.concat([Buffer.from(r.url()), r.postDataBuffer() ?? Buffer.alloc(0)])));
    page.on(
      'response',
      (r) =>
        void r.body().then(
          (b) => responses.push(b),
          () => {},
        ),
    );
    lap('chromium up');
    await page.goto(server.url);
    await page.waitForSelector('#samples canvas');
    lap('page loaded');
    // A malformed frame on one session's relay fails that session only: the page's inferences below still work.
    const sres = await fetch(new URL('/api/session', server.url), { method: 'POST' });
    const sess = (await sres.json()) as { peerPort: number };
    const bad = new WebSocket(((u) => ((u.port = String(sess.peerPort)), u.href))(new URL(server.url.replace(/^http/, 'ws'))));
    await new Promise((r, j) => (bad.once('open', r), bad.once('error', j)));
    bad.send(Buffer.from([0xff, 0xff, 0xff, 0x00, 1, 2, 3]));
    await new Promise((r) => bad.once('close', r));

    lap('malformed frame sent');

    const preds: number[] = [];
    for (const i of SAMPLES) {
      await page.click(`#samples canvas[data-index="${i}"]`);
      const r = await classify(page);
      assert.equal(r.error, '', `sample ${i}: ${r.error}`);
      preds.push(r.prediction!);
      console.log(`# page: sample ${i} → class ${r.prediction} in ${r.ms} ms`);
    }
    lap('page classified');
    const nodeOut = JSON.parse((await node).stdout) as { predictions: number[] };
    lap('node client done');
    assert.deepEqual(
      preds,
      SAMPLES.map((i) => nodeOut.predictions[i]),
      'page predictions equal the Node client (mpc infer)',
    );

    // serve --preprocess (the offline phase, input mask included, before the image is shared): the
    // same prediction; its frames join the traffic checks below.
    const pre = await startServe(['--relu-config', ECO, '--preprocess']);
    try {
      await page.goto(pre.url);
      await page.waitForSelector('#samples canvas');
      await page.click(`#samples canvas[data-index="${SAMPLES[0]}"]`);
      const r = await classify(page);
      assert.equal(r.error, '', `--preprocess: ${r.error}`);
      assert.equal(r.prediction, nodeOut.predictions[SAMPLES[0]!], '--preprocess: the page predicts as the Node client');
      console.log(`# page --preprocess: sample ${SAMPLES[0]} → class ${r.prediction} in ${r.ms} ms (online)`);
    } finally {
      pre.child.kill('SIGKILL');
    }
    await page.goto(server.url);
    await page.waitForSelector('#samples canvas');
    lap('page classified with --preprocess');

    // Traffic: the detector finds the samples where they legitimately travel (server → page in
    // /api/samples, as base64), and finds nothing of any classified image in frames or requests.
    assert.ok(frames.length > 50, `saw ${frames.length} WebSocket frames`);
    // Party 1 and the dealer take the page's WebSockets themselves (two ports per session); the server relays nothing.
    const wsPorts = new Set(wsUrls.map((u) => new URL(u).port));
    assert.equal(wsPorts.size, 2 * (SAMPLES.length + 1), `one party 1 and one dealer port per classification: ${wsUrls.join(', ')}`);
    assert.ok(!wsPorts.has(new URL(server.url).port), 'no WebSocket goes through the HTTP server');
    const ds = loadDatasetSync('fashion-mnist-sample', { split: 'test', limit: Math.max(...SAMPLES) + 1 });
    const per = 784;
    const samplesBody = Buffer.concat(responses);
    for (const i of SAMPLES) {
      const px = Uint8Array.from(ds.images.subarray(i * per, (i + 1) * per), (v) => Math.round(v * 255));
      const ns = needles(px);
      assert.ok(ns.length > 10);
      assert.ok(samplesBody.includes(Buffer.from(px).toString('base64').slice(0, 200)), 'control: the detector sees the served sample');
      assert.ok(found(Buffer.concat([Buffer.alloc(5), Buffer.from(px), Buffer.alloc(5)]), ns), 'control: the detector sees raw pixels');
      assert.ok(!frames.some((f) => found(f, ns)), `sample ${i}: image bytes in a WebSocket frame`);
      assert.ok(!requests.some((r) => found(r, ns) || r.includes(Buffer.from(px).toString('base64').slice(0, 40))), `sample ${i}: image in an HTTP request`);
    }

    // An upload of the wrong size: a visible error naming both sizes.
    const png = await page.evaluate(() => {
      const c = document.createElement('canvas');
      c.width = c.height = 32;
      return c.toDataURL('image/png').split(',')[1]!;
    });
    await page.setInputFiles('#upload', { name: 'big.png', mimeType: 'image/png', buffer: Buffer.from(png, 'base64') });
    await page.waitForFunction(() => document.querySelector('#error')!.textContent !== '');
    assert.match((await page.textContent('#error')) ?? '', /big\.png is 32×32; the model takes 28×28 images/);
    assert.ok(await page.isVisible('#error'));

    // The server goes away mid-inference: a visible error, the button usable again (no frozen spinner).
    await page.click(`#samples canvas[data-index="${SAMPLES[1]}"]`);
    await page.click('#classify');
    await page.waitForFunction(() => /private inference/.test(document.querySelector('#status')!.textContent ?? ''), null, { timeout: 60_000 });
    server.child.kill('SIGKILL');
    await page.waitForFunction(() => document.querySelector('#error')!.textContent !== '', null, { timeout: 60_000 });
    assert.match((await page.textContent('#error')) ?? '', /closed the connection|unreachable|cannot connect/);
    assert.equal(await page.isDisabled('#classify'), false);
  } finally {
    await browser?.close();
    server.child.kill('SIGKILL');
  }
});
