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

/** Launch headless Chromium with CHROMIUM_ARGS and a throw-away profile. */
export async function launchChromium(viewport?: { width: number; height: number }): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'privml-chromium-'));
  try {
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      ...(viewport ? { viewport } : {}),
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
