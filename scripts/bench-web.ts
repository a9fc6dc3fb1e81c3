/**
 * Page vs Node party 0, side by side: per-image latency of MPC private inference (fmnist-cnn, the
 * eco HummingBird config, loopback) with party 0 in Chromium (`privml serve`'s page) and with
 * party 0 as a Node process (`privml mpc party`), alternating pairs on the same samples; both
 * sessions are identical otherwise (count 1, one untimed warm-up batch, the same party 1 and
 * dealer processes). Prints the medians and writes a screenshot of the page to docs/serve-page.png.
 *
 *   node --import tsx scripts/bench-web.ts [--rounds 5] [--no-screenshot]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { loadDatasetSync } from '../src/api/data.js';
import { launchSession } from '../src/mpc/launch.js';

const ROOT = join(import.meta.dirname, '..');
const MODEL = join(ROOT, 'models', 'fmnist-cnn.onnx');
const ECO = join(ROOT, 'models', 'hummingbird', 'fmnist-cnn', 'eco.json');
const CHROMIUM = process.env.PRIVML_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1] ?? 5) || 5;
/**
 * Peak RSS (MB, /proc VmHWM) of the renderer processes of the Chromium using `profile`: the page and
 * its Web Worker (party 0) live there. Linux only; null elsewhere.
 */
function rendererPeakRssMb(profile: string): number | null {
  if (!existsSync('/proc')) return null;
  const procs = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((pid) => {
      try {
        // Chromium rewrites its command line into one space-separated string: match substrings.
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        const st = readFileSync(`/proc/${pid}/status`, 'utf8');
        return { hwmKb: Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0), args };
      } catch {
        return undefined; // the process ended meanwhile
      }
    })
    .filter((p) => p !== undefined);
  const renderers = procs.filter((p) => p.args.includes(`--user-data-dir=${profile} `) && p.args.includes('--type=renderer '));
  return renderers.length ? Math.max(...renderers.map((p) => p.hwmKb)) / 1024 : null;
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

const ds = loadDatasetSync('fashion-mnist-sample', { split: 'test', limit: 12 });
const serveProc = spawn(process.execPath, [join(ROOT, 'bin', 'privml.js'), 'serve', MODEL, '--port', '0', '--relu-config', ECO], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise<string>((resolve, reject) => {
  let out = '';
  serveProc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    const m = /serving (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]!);
  });
  serveProc.on('exit', (c) => reject(new Error(`serve exited ${c}`)));
});
const profile = mkdtempSync(join(tmpdir(), 'privml-bench-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1060, height: 640 } });
const tmp = mkdtempSync(join(tmpdir(), 'privml-bench-web-'));
const page = ctx.pages()[0] ?? (await ctx.newPage());
const pageMs: number[] = [];
const nodeMs: number[] = [];
/** Per-layer times of every run (0-round layers are pure local compute: page vs Node engine speed). */
const layerLog: { side: 'page' | 'node'; layers: { name: string; ms: number }[] }[] = [];
/** Median ms per layer and side. */
function layerMedians(): Record<string, { page: number; node: number }> {
  const out: Record<string, { page: number; node: number }> = {};
  const names = layerLog[0]?.layers.map((l) => l.name) ?? [];
  for (const n of names) {
    const pick = (side: string) => median(layerLog.filter((r) => r.side === side).map((r) => r.layers.find((l) => l.name === n)?.ms ?? NaN));
    out[n] = { page: pick('page'), node: pick('node') };
  }
  return out;
}
try {
  await page.goto(url);
  await page.waitForSelector('#samples canvas');
  const runPage = async (i: number) => {
    await page.click(`#samples canvas[data-index="${i}"]`);
    await page.click('#classify');
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>('#result')!.dataset.prediction !== undefined || document.querySelector('#error')!.textContent !== '',
      null,
      { timeout: 120_000 },
    );
    const r = await page.evaluate(() => ({
      ms: document.querySelector<HTMLElement>('#result')!.dataset.ms,
      layers: document.querySelector<HTMLElement>('#result')!.dataset.layers,
      err: document.querySelector('#error')!.textContent,
    }));
    if (r.err) throw new Error(`page: ${r.err}`);
    layerLog.push({ side: 'page', layers: JSON.parse(r.layers!) as { name: string; ms: number }[] });
    return Number(r.ms);
  };
  // Under heavy machine load a role can miss the 30 s connect deadline: retry that session (and
  // keep the launcher's follow-up rejections from ending the run).
  process.on('unhandledRejection', (e) => process.stderr.write(`(ignored after a failed Node session: ${(e as Error).message})\n`));
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
  const runNodeOnce = async (i: number) => {
    const input = join(tmp, `x${i}.json`);
    writeFileSync(input, JSON.stringify(Array.from(ds.images.subarray(i * 784, (i + 1) * 784))));
    const job = ['--relu-config', ECO, '--warmup'];
    const res = await launchSession({ dealer: [], party1: [MODEL, '--count', '1', ...job], party0: [MODEL, '--input', input, ...job] });
    layerLog.push({ side: 'node', layers: res.party0.layers.map((l) => ({ name: l.name, ms: l.ms })) });
    return res.party0.batches[0]!.ms;
  };
  for (let r = 0; r < rounds; r++) {
    const i = r % 12;
    // Alternate which side goes first, so a drift in machine load hits both alike.
    if (r % 2 === 0) {
      pageMs.push(await runPage(i));
      nodeMs.push(await runNode(i));
    } else {
      nodeMs.push(await runNode(i));
      pageMs.push(await runPage(i));
    }
    process.stderr.write(`round ${r + 1}/${rounds}: page ${pageMs.at(-1)!.toFixed(1)} ms, node ${nodeMs.at(-1)!.toFixed(1)} ms\n`);
  }
  if (!process.argv.includes('--no-screenshot')) await page.screenshot({ path: join(ROOT, 'docs', 'serve-page.png') });
  const out = {
    model: 'fmnist-cnn',
    reluConfig: 'eco',
    rounds,
    pageMs,
    nodeMs,
    pageMedianMs: median(pageMs),
    nodeMedianMs: median(nodeMs),
    ratio: median(pageMs) / median(nodeMs),
    layerMedians: layerMedians(),
    rendererPeakRssMb: rendererPeakRssMb(profile),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
} finally {
  await ctx.close();
  serveProc.kill();
  rmSync(profile, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
}
