/**
 * `privml serve MODEL` (the API's serve): an HTTP server with the private-inference page. The page runs party 0 (the
 * data owner) in the browser; for every classification the server starts a fresh dealer and party
 * 1 as separate processes (`privml mpc dealer|party`, as `mpc infer` does). Both accept the page's
 * WebSocket themselves (party 1 `--peer-ws`, the dealer `--ws-listen`, on this server's address):
 * this server relays nothing in the MPC mode, so it never sees the page's protocol messages or
 * its dealer seed. The plain image never reaches the server.
 * With --fhe the page is a CKKS client instead: one `privml fhe session` process per page, frames
 * relayed over IPC (fheSessions below).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type WebSocket, WebSocketServer } from 'ws';
import { randomId } from '../crypto/random.js';
import { FileError, firstLine, ModelError, OptionError } from '../errors.js';
import type { ServedPlan } from '../fhe/wire.js';
import { stripWeights } from '../mpc/arch.js';
import type { BitRange, WeightMode } from '../mpc/executor.js';
import { forkRole, type RoleMessage } from '../mpc/launch.js';
import { planModel } from '../mpc/plan.js';
import { packageRoot } from '../nn/data/paths.js';
import { encodeModel } from '../onnx/proto.js';
// The page's wire contract (types only, erased at build: the API does not load the web layer).
import type { FheSessionInfo, Sample, ServerInfo, SessionInfo } from '../web/session.js';
import { loadDatasetSync } from './data.js';
import { resolveModel } from './model-ref.js';
import { ALLOC_ENV, readReluConfig } from './mpc-session.js';

/** Sessions (dealer + party 1 pairs) alive at once; more get a 503 with a one-line reason. */
const MAX_SESSIONS = 4;
/** A session whose page never connects, or that runs longer than this, is stopped. */
const SESSION_LIMIT_MS = 120_000;
/** Idle timeout of every MPC link (page ↔ party 1, page ↔ dealer). */
const IDLE_TIMEOUT_MS = 20_000;
/** FHE sessions (one `privml fhe session` process each, ~2 GB at N = 16384) alive at once. */
const MAX_FHE_SESSIONS = 2;
/** An FHE session whose page sends nothing for this long is stopped (key generation in the page comes first). */
const FHE_IDLE_MS = 600_000;
/** Committed samples shown in the page. */
const SAMPLES = 12;

/** Options of {@link serve} (the flags of `privml serve`). */
export interface ServeOptions {
  /** HTTP port (default 0: any free port). */
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** HummingBird bit ranges per ReLU node (as for mpc infer). */
  reluConfig?: string;
  /** 'signonly' (default), 'crypten', 'fss' or 'fss2'. */
  reluProtocol?: string;
  /** 'public' (default: the page receives the model) or 'secret' (only the architecture). */
  weights?: string;
  /**
   * MPC mode: each image's offline phase (the dealer material, the PRG expansion of party 0's
   * share of it, the input's mask) runs before the image is shared, as `mpc infer --preprocess`;
   * the page's reported time is then the online phase only.
   */
  preprocess?: boolean;
  /** CKKS mode: the page generates keys, encrypts and decrypts; this machine evaluates. */
  fhe?: boolean;
  /** With fhe: make a development PAF model from a ReLU model (e.g. 'f1g2'). */
  paf?: string;
  /** Server notices (a role that failed, …; default: none). */
  log?: (line: string) => void;
}

/** A running `privml serve` server. */
export interface ServerHandle {
  port: number;
  url: string;
  /** Stop every session, then the HTTP server. */
  close(): Promise<void>;
}

interface Session {
  id: string;
  children: ChildProcess[];
  timer: ReturnType<typeof setTimeout>;
}

/** Fork one role with IPC; resolves with the ports it listens on. */
function startRole(name: string, args: string[], log: (l: string) => void): { child: ChildProcess; listening: Promise<{ port: number; wsPort?: number }> } {
  // Started as `mpc infer` starts its roles: its V8 flags and allocator settings.
  let last = '';
  const child = forkRole(args, ALLOC_ENV, (l) => (last = l));
  const listening = new Promise<{ port: number; wsPort?: number }>((resolve, reject) => {
    child.on('message', (m: RoleMessage) => m.type === 'listening' && resolve(m));
    child.on('exit', (code) => {
      if (code) log(`${name} exited with code ${code}${last ? `: ${last.replace(/^privml: error: /, '')}` : ''}`);
      reject(new Error(`${name} exited before listening`));
    });
  });
  listening.catch(() => {});
  return { child, listening };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** Newest modification time (ms) of the files under `dir`. */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * The built page (dist/page). In a development checkout (scripts/build-web.mjs and src/ present)
 * it is rebuilt with esbuild when missing or older than the sources, so edited code never runs stale.
 */
async function pageDir(log: (l: string) => void): Promise<string> {
  const root = packageRoot();
  const dir = join(root, 'dist', 'page');
  const worker = join(dir, 'worker.js');
  const built = existsSync(worker) && existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'page.js')) && existsSync(join(dir, 'fhe-worker.js'));
  const script = join(root, 'scripts', 'build-web.mjs');
  const dev = existsSync(script) && existsSync(join(root, 'src', 'web'));
  if (built && !(dev && newest(join(root, 'src')) > statSync(worker).mtimeMs)) return dir;
  if (!dev) throw new FileError(`the page is not built (${dir} is missing); reinstall privml`);
  log('building the page…');
  const mod = (await import(pathToFileURL(script).href)) as { buildWeb: (o: { quiet: boolean }) => Promise<string> };
  return mod.buildWeb({ quiet: true });
}

/** Serve the private-inference page for `ref` (`privml serve`); resolves once it listens, with its port and close(). */
export async function serve(ref: string, opts: ServeOptions = {}): Promise<ServerHandle> {
  const o = { port: 0, host: '127.0.0.1', reluProtocol: 'signonly', weights: 'public', ...opts };
  const log = opts.log ?? (() => {});
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new OptionError(`--port must be 0..65535, got ${o.port}`);
  if (o.paf && !o.fhe) throw new OptionError('--paf is for --fhe only');
  if (o.preprocess && o.fhe) throw new OptionError('--preprocess is for the MPC mode (not --fhe)');
  if (o.weights !== 'public' && o.weights !== 'secret') throw new OptionError(`--weights must be public or secret, got '${o.weights}'`);
  if (o.reluProtocol !== 'signonly' && o.reluProtocol !== 'crypten' && o.reluProtocol !== 'fss' && o.reluProtocol !== 'fss2') {
    throw new OptionError(`--relu-protocol must be signonly, crypten, fss or fss2, got '${o.reluProtocol}'`);
  }
  const weights = o.weights as WeightMode;
  const { model, source } = resolveModel(ref);
  let inputShape: number[];
  try {
    inputShape = planModel(model, 1, source).inputShape.slice(1);
  } catch (e) {
    throw new ModelError(firstLine(e));
  }
  if (o.paf) {
    const { getPaf } = await import('../smartpaf/paf.js');
    try {
      getPaf(o.paf);
    } catch (e) {
      throw new OptionError(`--paf: ${firstLine(e)}`);
    }
  }
  if (o.fhe && !o.paf) {
    // Refuse a model the FHE session could not run now, not at the page's first classification.
    const { compileModel } = await import('../fhe/compile.js');
    try {
      compileModel(model, source);
    } catch (e) {
      throw new OptionError(`${firstLine(e)} (or pass --paf NAME, e.g. --paf f1g2, to make a development PAF model)`);
    }
  }
  const reluConfig: Record<string, BitRange> | undefined = o.reluConfig ? readReluConfig(o.reluConfig, model) : undefined;
  // Public weights: the page gets the model; secret: only the architecture (weights zero-filled).
  const modelBytes = encodeModel(weights === 'public' ? model : stripWeights(model));
  const ds = loadDatasetSync('fashion-mnist-sample', { limit: SAMPLES });
  const per = inputShape.reduce((a, b) => a * b, 1);
  const samples: Sample[] =
    ds.images.length / ds.n === per
      ? Array.from({ length: ds.n }, (_, i) => ({
          index: i,
          label: ds.labels[i]!,
          pixels: Buffer.from(Uint8Array.from(ds.images.subarray(i * per, (i + 1) * per), (v) => Math.round(v * 255))).toString('base64'),
        }))
      : [];
  // File names only: the page (and its screenshots) need not learn the server's directory layout.
  const info: ServerInfo = {
    model: basename(source),
    mode: o.fhe ? 'fhe' : 'mpc',
    paf: o.paf ?? null,
    inputShape,
    classes: ds.classes,
    weights,
    reluConfig: o.reluConfig ? basename(o.reluConfig) : null,
  };
  const dir = await pageDir(log);
  const files: Record<string, [string, string]> = {
    '/': ['index.html', 'text/html; charset=utf-8'],
    '/index.html': ['index.html', 'text/html; charset=utf-8'],
    '/page.js': ['page.js', 'text/javascript'],
    '/worker.js': ['worker.js', 'text/javascript'],
    '/fhe-worker.js': ['fhe-worker.js', 'text/javascript'],
  };
  const fhe = o.fhe ? fheSessions(ref, o.paf, log) : undefined;

  const sessions = new Map<string, Session>();
  const endSession = (s: Session) => {
    if (!sessions.delete(s.id)) return;
    clearTimeout(s.timer);
    // Roles end by themselves after a normal job; a stuck or abandoned one is stopped.
    setTimeout(() => s.children.forEach((c) => c.exitCode === null && c.kill('SIGKILL')), 5000).unref();
  };

  const newSession = async (): Promise<SessionInfo> => {
    const id = randomId(12);
    const common = ['--timeout', String(IDLE_TIMEOUT_MS / 1000)];
    // The dealer takes party 1 over TCP on loopback and the page's party 0 over WebSocket on the server's address.
    const dealer = startRole('dealer', ['mpc', 'dealer', '--listen', '127.0.0.1:0', '--ws-listen', `${o.host}:0`, '--ipc', ...common], log);
    const children = [dealer.child];
    const s: Session = { id, children, timer: setTimeout(() => endSession(s), SESSION_LIMIT_MS) };
    sessions.set(id, s);
    let peerPort: number;
    let dealerPort: number;
    try {
      const d = await dealer.listening;
      dealerPort = d.wsPort!;
      const jobArgs = [
        '--weights',
        weights,
        '--relu-protocol',
        o.reluProtocol,
        '--count',
        '1',
        '--warmup',
        ...(o.preprocess ? ['--preprocess'] : []),
        ...(o.reluConfig ? ['--relu-config', o.reluConfig] : []),
      ];
      // Party 1 accepts the page's WebSocket itself, on the server's address.
      const p1 = startRole(
        'party 1',
        ['mpc', 'party', ref, '--id', '1', '--peer-ws', '--peer', `${o.host}:0`, '--dealer', `127.0.0.1:${d.port}`, '--ipc', ...jobArgs, ...common],
        log,
      );
      children.push(p1.child);
      peerPort = (await p1.listening).port;
      // Both roles done (or failed): the session is over.
      let left = 2;
      for (const c of children) c.on('exit', () => --left === 0 && endSession(s));
    } catch (e) {
      endSession(s);
      throw e;
    }
    return {
      id,
      peerPort,
      dealerPort,
      job: {
        weights,
        reluProtocol: o.reluProtocol as SessionInfo['job']['reluProtocol'],
        reluConfig,
        fracBits: 16,
        warmup: true,
        preprocess: !!o.preprocess,
        idleTimeoutMs: IDLE_TIMEOUT_MS,
      },
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'GET' && files[path]) {
      const [file, type] = files[path]!;
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
      return res.end(readFileSync(join(dir, file)));
    }
    if (req.method === 'GET' && path === '/api/info') return sendJson(res, 200, info);
    if (req.method === 'GET' && path === '/api/samples') return sendJson(res, 200, samples);
    if (req.method === 'GET' && path === '/api/model') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-cache' });
      return res.end(modelBytes);
    }
    if (req.method === 'POST' && path === '/api/fhe/session') {
      if (!fhe) return sendJson(res, 404, { error: 'this server runs the MPC mode (start it with --fhe for CKKS)' });
      try {
        return sendJson(res, 200, await fhe.create());
      } catch (e) {
        return sendJson(res, (e as { status?: number }).status ?? 500, { error: (e as Error).message });
      }
    }
    if (req.method === 'POST' && path === '/api/session') {
      if (fhe) return sendJson(res, 404, { error: 'this server runs the FHE mode (POST /api/fhe/session)' });
      if (sessions.size >= MAX_SESSIONS) return sendJson(res, 503, { error: `the server is busy (${MAX_SESSIONS} inferences running); try again in a moment` });
      try {
        return sendJson(res, 200, await newSession());
      } catch (e) {
        return sendJson(res, 500, { error: `could not start party 1 and the dealer: ${(e as Error).message}` });
      }
    }
    sendJson(res, 404, { error: `no such page: ${req.method} ${path.slice(0, 80)}` });
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => sendJson(res, 500, { error: (e as Error).message }));
  });
  http.on('upgrade', (req, socket, head) => {
    const f = /^\/ws\/([0-9a-f]+)\/fhe$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (f && fhe?.has(f[1]!)) return fhe.wss.handleUpgrade(req, socket, head, (ws) => fhe.attach(f[1]!, ws));
    socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', (e) => reject(new FileError(`cannot listen on ${o.host}:${o.port}: ${(e as Error).message}`)));
    http.listen(o.port, o.host, () => resolve());
  });
  const port = (http.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}/`,
    close: async () => {
      for (const s of [...sessions.values()]) endSession(s);
      fhe?.close();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

/**
 * FHE mode: one `privml fhe session` process per page (it plans the model, holds the page's public
 * keys and evaluates); this server relays the page's WebSocket frames to it over IPC, unchanged.
 */
function fheSessions(ref: string, paf: string | undefined, log: (l: string) => void) {
  const live = new Map<string, { child: ChildProcess; ws?: WebSocket; timer: ReturnType<typeof setTimeout> }>();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
  const end = (id: string) => {
    const s = live.get(id);
    if (!s) return;
    live.delete(id);
    clearTimeout(s.timer);
    s.ws?.close(1001, 'session ended');
    if (s.child.connected) s.child.disconnect();
    setTimeout(() => s.child.exitCode === null && s.child.kill('SIGKILL'), 5000).unref();
  };
  const touch = (id: string) => {
    const s = live.get(id);
    if (!s) return;
    clearTimeout(s.timer);
    s.timer = setTimeout(() => end(id), FHE_IDLE_MS);
  };
  return {
    wss,
    has: (id: string) => live.has(id) && !live.get(id)!.ws,
    async create(): Promise<FheSessionInfo> {
      if (live.size >= MAX_FHE_SESSIONS)
        throw Object.assign(new Error(`the server is busy (${MAX_FHE_SESSIONS} encrypted sessions open); try again later`), { status: 503 });
      const id = randomId(12);
      let last = '';
      const child = forkRole(['fhe', 'session', ref, '--ipc', ...(paf ? ['--paf', paf] : [])], {}, (l) => (last = l));
      live.set(id, { child, timer: setTimeout(() => end(id), FHE_IDLE_MS) });
      const plan = await new Promise<ServedPlan>((resolve, reject) => {
        child.on('message', (m: { type: string; plan?: ServedPlan; data?: Uint8Array }) => {
          if (m.type === 'plan') resolve(m.plan!);
          else if (m.type === 'frame') {
            touch(id);
            const ws = live.get(id)?.ws;
            if (ws?.readyState === ws?.OPEN) ws!.send(m.data!);
          }
        });
        child.on('exit', (code) => {
          const why = last.replace(/^privml: error: /, '');
          if (code) log(`fhe session exited with code ${code}${why ? `: ${why}` : ''}`);
          reject(new Error(`the encrypted-inference server stopped${why ? `: ${why}` : ''}`));
          live.get(id)?.ws?.close(1011, `server session stopped${why ? `: ${why.slice(0, 80)}` : ''}`);
          end(id);
        });
      });
      return { id, wsPath: `/ws/${id}/fhe`, plan };
    },
    /** One WebSocket per session: binary frames to the session process, its frames back. */
    attach(id: string, ws: WebSocket) {
      const s = live.get(id)!;
      s.ws = ws;
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) return ws.close(1003, 'binary frames only');
        touch(id);
        if (s.child.connected) s.child.send({ type: 'frame', data: new Uint8Array(data) });
      });
      ws.on('close', () => end(id));
      ws.on('error', () => end(id));
    },
    close() {
      for (const id of [...live.keys()]) end(id);
      wss.close();
    },
  };
}
