/**
 * Page vs Node party 0, side by side: per-image latency of MPC private inference (fmnist-cnn, the
 * eco HummingBird config, loopback) with party 0 in Chromium (`privml serve`'s page) and with
 * party 0 as a Node process (`privml mpc party`), alternating on the same samples; both sessions
 * are identical otherwise (count 1, one untimed warm-up batch, the same party 1 and dealer code).
 *
 * Sides:
 * - `page`: Chromium as a user runs it, driven over a bare DevTools connection to the page target
 *   (test/helpers/cdp.ts: only Runtime.evaluate, no DevTools domain on in the page or its worker).
 * - `pagePlaywright`: the same page in a Chromium driven by playwright, which enables the Network
 *   domain in every worker, so Chromium hands each WebSocket frame, base64-encoded, to the driver
 *   (what the browser tests use; shown for comparison, skipped with --no-playwright).
 * - `pageSameSession` (--same-session): playwright's Chromium started as a plain child process, in
 *   the session (CPU group) of party 1 and the dealer, where `mpc infer` puts a Node party 0
 *   (the other browsers run in a session of their own, as playwright starts them).
 * - `node`: `privml mpc party` launched like `mpc infer`.
 * The sides take turns in a rotating order each round. Prints the medians, per layer the medians
 * of the engine's profile categories on every side (ring kernels, bit planes, AND gates, packing,
 * framing, waiting for the peer / dealer), and writes a screenshot of the page (playwright's) to
 * docs/serve-page.png unless --no-screenshot.
 *
 * With --fhe instead: `privml serve --fhe --paf f1g2`, two images in one page session (the first
 * with key generation and upload), and the page's reported times for each (no Node comparison).
 *
 * With --preprocess: `serve --preprocess` and `mpc party --preprocess`, both sides run each image's
 * offline phase (dealer material, party 0's PRG expansion, the input's mask) before the clock.
 *
 *   node --import tsx scripts/bench-web.ts [--rounds 5] [--no-screenshot] [--no-playwright] [--same-session] [--preprocess] [--fhe]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDatasetSync } from '../src/api/data.js';
import { ALLOC_ENV } from '../src/api/mpc-session.js';
import { launchSession } from '../src/mpc/launch.js';
import { launchPlainChromium, type PlainBrowser } from '../test/helpers/cdp.js';
import { type Browser, clickClassify, ECO, launchChromium, MODEL, ROOT, rendererPeakRssMb, startServe } from '../test/helpers/chromium.js';

const arg = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const rounds = Number(arg('--rounds') ?? 5) || 5;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const r1 = (x: number) => Math.round(x * 10) / 10;

const ALL_SIDES = ['page', 'pagePlaywright', 'pageSameSession', 'node'] as const;
type Side = (typeof ALL_SIDES)[number];
const SIDES = ALL_SIDES.filter(
  (s) => (s !== 'pageSameSession' || process.argv.includes('--same-session')) && (s !== 'pagePlaywright' || !process.argv.includes('--no-playwright')),
);
/** One timed image on one side: batch time, party 0's PRG expansion, per-layer time and profile. */
interface Run {
  side: Side;
  ms: number;
  /** Batch time outside the layers (input sharing, reveal, drawing the batch's dealer material). */
  outsideMs: number;
  layers: { name: string; ms: number; profile: Record<string, number> }[];
}
const runs: Run[] = [];

/** Median per layer and side of the time and of each profile category (ms). */
function layerMedians(): Record<string, Record<Side, Record<string, number>>> {
  const out: Record<string, Record<Side, Record<string, number>>> = {};
  for (const l of runs[0]?.layers ?? []) {
    const per = (side: Side) => {
      const mine = runs.filter((r) => r.side === side).map((r) => r.layers.find((x) => x.name === l.name)!);
      const o: Record<string, number> = { ms: r1(median(mine.map((x) => x.ms))) };
      for (const k of Object.keys(l.profile)) {
        const m = median(mine.map((x) => x.profile[k] ?? 0));
        if (m >= 0.05) o[k] = r1(m);
      }
      return o;
    };
    out[l.name] = Object.fromEntries(SIDES.map((sd) => [sd, per(sd)])) as Record<Side, Record<string, number>>;
  }
  return out;
}

const record = (side: Side, ms: number, layers: Run['layers']): number => {
  runs.push({ side, ms, outsideMs: ms - layers.reduce((a, l) => a + l.ms, 0), layers });
  return ms;
};

/** FHE mode: the page's CKKS client on samples 3 then 0 (one session: keys once). */
async function benchFhe(): Promise<void> {
  const served = await startServe(['--fhe', '--paf', 'f1g2', '--json'], 'inherit');
  const browser = await launchChromium();
  try {
    const page = browser.page;
    await page.goto(served.url);
    await page.waitForSelector('#samples canvas');
    const images: unknown[] = [];
    for (const i of [3, 0]) {
      await page.click(`#samples canvas[data-index="${i}"]`);
      await clickClassify(page, 1_200_000, 1000);
      const err = await page.textContent('#error');
      if (err) throw new Error(`page: ${err}`);
      images.push({ sample: i, ...JSON.parse((await page.getAttribute('#result', 'data-fhe'))!) });
      process.stderr.write(`fhe image ${images.length} done\n`);
    }
    process.stdout.write(JSON.stringify({ model: 'fmnist-cnn', paf: 'f1g2', images, rendererPeakRssMb: rendererPeakRssMb(browser.profile) }, null, 2) + '\n');
  } finally {
    await browser.close();
    served.child.kill();
  }
}
if (process.argv.includes('--fhe')) {
  await benchFhe();
  process.exit(0);
}

const ds = loadDatasetSync('fashion-mnist-sample', { split: 'test', limit: 12 });
// --preprocess: both sides run each image's offline phase (dealer material, PRG expansion, input mask) before the clock.
const PRE = process.argv.includes('--preprocess') ? ['--preprocess'] : [];
const served = await startServe(['--relu-config', ECO, ...PRE], 'inherit');
const tmp = mkdtempSync(join(tmpdir(), 'privml-bench-web-'));
const browsers: Partial<Record<Side, Browser>> = {};
let plain: PlainBrowser | undefined;
try {
  plain = await launchPlainChromium(served.url);
  // The page's own start-up (info, samples) done, as playwright's waitForSelector below.
  // (retried: the first evaluation can meet the document still being replaced by the navigation)
  for (let tries = 0; ; tries++) {
    try {
      await plain.evaluate(
        `new Promise((ok) => { const t = setInterval(() => document.querySelector('#samples canvas') && (clearInterval(t), ok(true)), 50); })`,
      );
      break;
    } catch (e) {
      if (tries >= 20 || !/context/i.test((e as Error).message)) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const shot = !process.argv.includes('--no-screenshot');
  if (SIDES.includes('pagePlaywright') || shot) browsers.pagePlaywright = await launchChromium({ viewport: { width: 1060, height: 640 } });
  if (SIDES.includes('pageSameSession')) browsers.pageSameSession = await launchChromium({ viewport: { width: 1060, height: 640 }, sameSession: true });
  for (const b of Object.values(browsers)) {
    await b.page.goto(served.url);
    await b.page.waitForSelector('#samples canvas');
  }
  const runPage = async (side: Side, i: number) => {
    let r: { run?: string; err: string | null };
    if (side === 'page') {
      // Select the sample, click Classify, wait for the result or the error line (as clickClassify).
      r = await plain!.evaluate(`(async () => {
        document.querySelector('#samples canvas[data-index="${i}"]').click();
        document.querySelector('#classify').click();
        const res = document.querySelector('#result'), err = document.querySelector('#error');
        const t0 = Date.now();
        await new Promise((ok) => { const t = setInterval(() => (res.dataset.prediction !== undefined || err.textContent !== '' || Date.now() - t0 > 120000) && (clearInterval(t), ok()), 20); });
        return { run: res.dataset.run, err: err.textContent || (res.dataset.run ? '' : 'no result within 120 s') };
      })()`);
    } else {
      const page = browsers[side]!.page;
      await page.click(`#samples canvas[data-index="${i}"]`);
      await clickClassify(page, 120_000);
      r = await page.evaluate(() => ({
        run: document.querySelector<HTMLElement>('#result')!.dataset.run,
        err: document.querySelector('#error')!.textContent,
      }));
    }
    if (r.err) throw new Error(`page: ${r.err}`);
    const m = JSON.parse(r.run!) as { ms: number; layers: Run['layers'] };
    return record(side, m.ms, m.layers);
  };
  // Under heavy machine load a role can miss the 30 s connect deadline: retry that session (and
  // keep the launcher's follow-up rejections from ending the run).
  process.on('unhandledRejection', (e) => process.stderr.write(`(ignored after a failed Node session: ${(e as Error).message})\n`));
  const runNodeOnce = async (i: number) => {
    const input = join(tmp, `x${i}.json`);
    writeFileSync(input, JSON.stringify(Array.from(ds.images.subarray(i * 784, (i + 1) * 784))));
    const job = ['--relu-config', ECO, '--warmup', ...PRE];
    const res = await launchSession({ dealer: [], party1: [MODEL, '--count', '1', ...job], party0: [MODEL, '--input', input, ...job], env: ALLOC_ENV });
    return record('node', res.party0.batches[0]!.ms, res.party0.layers);
  };
  const runNode = async (i: number): Promise<number> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await runNodeOnce(i);
      } catch (e) {
        if (attempt >= 3) throw e;
        process.stderr.write(`node session failed (${(e as Error).message}); retrying\n`);
      }
    }
  };
  const ms = Object.fromEntries(SIDES.map((sd) => [sd, [] as number[]])) as Record<Side, number[]>;
  for (let r = 0; r < rounds; r++) {
    const i = r % 12;
    // Rotate the order, so a drift in machine load hits every side alike.
    for (let k = 0; k < SIDES.length; k++) {
      const side = SIDES[(r + k) % SIDES.length]!;
      ms[side].push(side === 'node' ? await runNode(i) : await runPage(side, i));
    }
    process.stderr.write(`round ${r + 1}/${rounds}: ${SIDES.map((sd) => `${sd} ${ms[sd].at(-1)!.toFixed(1)} ms`).join(', ')}\n`);
  }
  if (shot) await browsers.pagePlaywright!.page.screenshot({ path: join(ROOT, 'docs', 'serve-page.png') });
  const med = (side: Side) => median(ms[side]);
  const ratio = (side: Side) => Math.round((med(side) / med('node')) * 100) / 100;
  const pairRatio = (side: Side) => Math.round(median(ms[side].map((p, i) => p / ms.node[i]!)) * 100) / 100;
  const outside = (side: Side) => r1(median(runs.filter((r) => r.side === side).map((r) => r.outsideMs)));
  const out = {
    model: 'fmnist-cnn',
    reluConfig: 'eco',
    preprocess: PRE.length > 0,
    rounds,
    ms: Object.fromEntries(SIDES.map((sd) => [sd, ms[sd].map(r1)])),
    medianMs: Object.fromEntries(SIDES.map((sd) => [sd, r1(med(sd))])),
    ratio: Object.fromEntries(SIDES.filter((sd) => sd !== 'node').map((sd) => [sd, ratio(sd)])),
    pairRatioMedian: Object.fromEntries(SIDES.filter((sd) => sd !== 'node').map((sd) => [sd, pairRatio(sd)])),
    outsideLayersMs: Object.fromEntries(SIDES.map((sd) => [sd, outside(sd)])),
    layerMedians: layerMedians(),
    rendererPeakRssMb: Object.fromEntries([
      ['page', rendererPeakRssMb(plain.profile)],
      ...Object.entries(browsers).map(([sd, b]) => [sd, rendererPeakRssMb(b.profile)]),
    ]),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
} finally {
  for (const b of Object.values(browsers)) await b.close();
  await plain?.close();
  served.child.kill();
  rmSync(tmp, { recursive: true, force: true });
}
