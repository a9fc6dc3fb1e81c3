/**
 * Start-up helpers shared by the browser tests (test/long/serve-*.test.ts) and the page benchmark
 * (scripts/bench-web.ts): `privml serve` as a child process, Debian's Chromium through
 * playwright-core with the project's flags and a throw-away profile, and waiting for the page's
 * result or error line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'privml.js');
export const MODEL = join(ROOT, 'models', 'fmnist-cnn.onnx');
export const ECO = join(ROOT, 'models', 'hummingbird', 'fmnist-cnn', 'eco.json');
export const CHROMIUM = process.env.PRIVML_CHROMIUM ?? '/usr/bin/chromium';

/** The browser flags the project uses everywhere (no network side traffic, no sandbox in CI containers). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why a browser test cannot run here (printed), or false when a Chromium is found. */
export function chromiumSkip(what: string): string | false {
  const reason = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (install Debian's chromium or set PRIVML_CHROMIUM)`;
  if (reason) console.log(`# skipping ${what}: ${reason}`);
  return reason;
}

/** A running `privml serve`. */
export interface Served {
  url: string;
  child: ChildProcess;
  /** Its stderr so far. */
  stderr: string[];
}

/** Start `privml serve MODEL --port 0 ...args` and resolve with its URL once it prints it (text or --json). */
export function startServe(args: string[], stderrTo: 'pipe' | 'inherit' = 'pipe'): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', MODEL, '--port', '0', ...args], { stdio: ['ignore', 'pipe', stderrTo] });
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const text = /serving (http:\/\/\S+)/.exec(out)?.[1];
      // Complete lines only: a JSON line may arrive in pieces.
      const json = out
        .split('\n')
        .slice(0, -1)
        .find((l) => l.startsWith('{'));
      const url = text ?? (json && (JSON.parse(json) as { url: string }).url);
      if (url) resolve({ url, child, stderr });
    });
    child.on('exit', (code) => reject(new Error(`privml serve exited (${code}): ${stderr.join('').trim()}`)));
  });
}

/** Chromium with a fresh profile directory, and its first page. */
export interface Browser {
  ctx: BrowserContext;
  page: Page;
  /** The profile directory (its renderer processes are found by it). */
  profile: string;
  /** Close the browser and delete the profile. */
  close(): Promise<void>;
}

/**
 * Launch headless Chromium with CHROMIUM_ARGS and a throw-away profile. playwright starts the browser
 * in a session of its own (setsid), so Linux's per-session CPU groups (autogroup) schedule it apart
 * from the processes this one starts; `sameSession` starts it as a plain child instead (over the
 * DevTools protocol), in the session and CPU group of `privml serve`'s roles, as a Node party 0
 * started by `mpc infer` is.
 */
export async function launchChromium(opts: { viewport?: { width: number; height: number }; sameSession?: boolean } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'privml-chromium-'));
  try {
    if (opts.sameSession) return await launchChild(profile, opts.viewport);
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      ...(opts.viewport ? { viewport: opts.viewport } : {}),
    });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    return {
      ctx,
      page,
      profile,
      close: async () => {
        await ctx.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
}

/** Chromium as a child of this process (no new session), driven over its DevTools endpoint. */
async function launchChild(profile: string, viewport?: { width: number; height: number }): Promise<Browser> {
  const child = spawn(CHROMIUM, [...CHROMIUM_ARGS, '--remote-debugging-port=0', `--user-data-dir=${profile}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`chromium did not print its DevTools endpoint: ${err.slice(-400)}`)), 30_000);
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
        if (m) clearTimeout(timer), resolve(m[1]!);
      });
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`chromium exited (${code}): ${err.slice(-400)}`))));
    });
    const browser = await chromium.connectOverCDP(endpoint);
    const ctx = browser.contexts()[0]!;
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    if (viewport) await page.setViewportSize(viewport);
    return {
      ctx,
      page,
      profile,
      close: async () => {
        await browser.close();
        child.kill();
        await exited;
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    child.kill();
    await exited;
    throw e;
  }
}

/** Click Classify and wait until the page shows a prediction or an error. */
export async function clickClassify(page: Page, timeoutMs: number, pollingMs?: number): Promise<void> {
  await page.click('#classify');
  await page.waitForFunction(
    () => document.querySelector<HTMLElement>('#result')!.dataset.prediction !== undefined || document.querySelector('#error')!.textContent !== '',
    null,
    { timeout: timeoutMs, ...(pollingMs ? { polling: pollingMs } : {}) },
  );
}

/**
 * Peak RSS (MB, /proc VmHWM) of the renderer processes of the Chromium using `profile`: the page and
 * its Web Workers live there. Linux only; null elsewhere.
 */
export function rendererPeakRssMb(profile: string): number | null {
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
