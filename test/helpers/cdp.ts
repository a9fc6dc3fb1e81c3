/**
 * Chromium as a user runs it, driven over a bare DevTools connection to its page target: the
 * driver only evaluates expressions in the page (Runtime.evaluate needs no domain enabled), so no
 * DevTools domain is on in the page or its Web Workers. playwright, by contrast, attaches to every
 * worker and enables the Network domain there: Chromium then reports every WebSocket frame to the
 * driver with its payload base64-encoded (`Network.webSocketFrameSent/Received`), which costs the
 * page's party 0 time in proportion to the bytes it sends and receives (measured in
 * docs/benchmarks.md, issue 16). Used for the page's timings (scripts/bench-web.ts); the browser
 * tests keep playwright (they check results and inspect the traffic).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';

/** Whether any process of group `pgid` is left (signal 0 probes without sending). */
function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A Chromium showing one page, and a DevTools connection to that page only. */
export interface PlainBrowser {
  /** Evaluate `expression` in the page (awaiting a promise it returns) and resolve with its JSON value. */
  evaluate<T>(expression: string): Promise<T>;
  /** The profile directory (its renderer processes are found by it). */
  profile: string;
  /** Close the browser and delete the profile. */
  close(): Promise<void>;
}

/**
 * Start headless Chromium (CHROMIUM_ARGS, a throw-away profile) on `url`, in a session of its own
 * as playwright starts it, and attach to the page target only.
 */
export async function launchPlainChromium(url: string, opts: { width?: number; height?: number } = {}): Promise<PlainBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'privml-chromium-'));
  const size = `--window-size=${opts.width ?? 1060},${opts.height ?? 640}`;
  const child = spawn(CHROMIUM, [...CHROMIUM_ARGS, '--remote-debugging-port=0', `--user-data-dir=${profile}`, size, url], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    // The whole process group (it is Chromium's own: detached): its helpers too, so that none still
    // writes into the profile while it is deleted.
    try {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
    await exited;
    for (let i = 0; i < 50 && processGroupAlive(child.pid!); i++) await new Promise((r) => setTimeout(r, 100));
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  };
  try {
    const browserWs = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`chromium did not print its DevTools endpoint: ${err.slice(-400)}`)), 30_000);
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
        if (m) clearTimeout(timer), resolve(m[1]!);
      });
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`chromium exited (${code}): ${err.slice(-400)}`))));
    });
    const http = new URL(browserWs.replace(/^ws/, 'http')).origin;
    let pageWs: string | undefined;
    for (let i = 0; i < 100 && !pageWs; i++) {
      const targets = (await (await fetch(`${http}/json/list`)).json()) as { type: string; url: string; webSocketDebuggerUrl: string }[];
      pageWs = targets.find((t) => t.type === 'page' && t.url.startsWith(url))?.webSocketDebuggerUrl;
      if (!pageWs) await new Promise((r) => setTimeout(r, 100));
    }
    if (!pageWs) throw new Error(`chromium shows no page at ${url}`);
    const ws = new WebSocket(pageWs, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    let nextId = 1;
    const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString('utf8')) as { id?: number; result?: unknown; error?: { message: string } };
      const p = m.id !== undefined ? pending.get(m.id) : undefined;
      if (!p) return; // an event: none is enabled, but ignore any
      pending.delete(m.id!);
      if (m.error) p.reject(new Error(`DevTools: ${m.error.message}`));
      else p.resolve(m.result);
    });
    ws.on('close', () => {
      for (const p of pending.values()) p.reject(new Error('DevTools connection closed'));
      pending.clear();
    });
    const send = (method: string, params: unknown) =>
      new Promise<unknown>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        ws.send(JSON.stringify({ id, method, params }));
      });
    return {
      profile,
      async evaluate<T>(expression: string): Promise<T> {
        const r = (await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true })) as {
          result: { value?: unknown };
          exceptionDetails?: { text: string; exception?: { description?: string } };
        };
        if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
        return r.result.value as T;
      },
      async close() {
        ws.close();
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
