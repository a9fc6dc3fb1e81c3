/**
 * The `privml serve` page: a 28×28 drawing pad, uploads and committed samples; "Classify privately"
 * asks the server for a fresh session (dealer + party 1) and hands the image to party 0 in a Web
 * Worker (worker.ts). Every failure ends in a visible error line, never a spinner left running.
 */
import type {
  FheResult,
  FheSessionInfo,
  FheWorkerRequest,
  MpcResult,
  Sample,
  ServerInfo,
  SessionInfo,
  WorkerError,
  WorkerProgress,
  WorkerRequest,
} from './session.js';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const pad = $<HTMLCanvasElement>('pad');
const ctx = pad.getContext('2d', { willReadFrequently: true })!;
const statusEl = $('status');
const progress = $<HTMLProgressElement>('progress');
const resultEl = $('result');
const errorEl = $('error');
const classifyBtn = $<HTMLButtonElement>('classify');

const SIDE = 28;
const SCALE = pad.width / SIDE;
/** The image to classify, grey levels 0..255 (exact for samples and uploads; drawn images are averaged down). */
let pixels = new Uint8Array(SIDE * SIDE);
let info: ServerInfo | undefined;
let modelBytes: ArrayBuffer | undefined;
let busy = false;

function showError(msg: string): void {
  errorEl.textContent = msg;
  errorEl.style.display = 'block';
  statusEl.textContent = 'Failed.';
  progress.value = 0;
}

function clearError(): void {
  errorEl.textContent = '';
  errorEl.style.display = 'none';
}

/** Paint `pixels` on the pad, scaled up. */
function paint(): void {
  const img = ctx.createImageData(SIDE, SIDE);
  for (let i = 0; i < pixels.length; i++) img.data.set([pixels[i]!, pixels[i]!, pixels[i]!, 255], 4 * i);
  const small = document.createElement('canvas');
  small.width = small.height = SIDE;
  small.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, pad.width, pad.height);
}

/** Average the pad's 10×10 blocks back into `pixels` after drawing. */
function sampleDrawing(): void {
  const d = ctx.getImageData(0, 0, pad.width, pad.height).data;
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      let s = 0;
      for (let dy = 0; dy < SCALE; dy++) for (let dx = 0; dx < SCALE; dx++) s += d[4 * ((y * SCALE + dy) * pad.width + x * SCALE + dx)]!;
      pixels[y * SIDE + x] = Math.round(s / (SCALE * SCALE));
    }
  }
}

function selectSample(el: HTMLCanvasElement | null): void {
  document.querySelectorAll('#samples canvas').forEach((c) => c.classList.toggle('sel', c === el));
}

// Drawing: a thick white pen; the 28×28 image is resampled when the stroke ends.
let drawing = false;
pad.addEventListener('pointerdown', (e) => {
  drawing = true;
  selectSample(null);
  pad.setPointerCapture(e.pointerId);
  ctx.fillStyle = '#fff';
});
pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  const r = pad.getBoundingClientRect();
  ctx.beginPath();
  ctx.arc(((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height, 12, 0, 2 * Math.PI);
  ctx.fill();
});
const endStroke = () => {
  if (!drawing) return;
  drawing = false;
  sampleDrawing();
};
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointerleave', endStroke);

$('clear').addEventListener('click', () => {
  pixels = new Uint8Array(SIDE * SIDE);
  selectSample(null);
  paint();
});

$<HTMLInputElement>('upload').addEventListener('change', async (e) => {
  clearError();
  const file = (e.target as HTMLInputElement).files?.[0];
  if (!file) return;
  try {
    const bmp = await createImageBitmap(file);
    if (bmp.width !== SIDE || bmp.height !== SIDE) throw new Error(`${file.name} is ${bmp.width}×${bmp.height}; the model takes ${SIDE}×${SIDE} images`);
    const c = document.createElement('canvas');
    c.width = c.height = SIDE;
    const g = c.getContext('2d')!;
    g.drawImage(bmp, 0, 0);
    const d = g.getImageData(0, 0, SIDE, SIDE).data;
    // Grey level = mean of R, G, B (a grey image keeps its exact values).
    pixels = Uint8Array.from({ length: SIDE * SIDE }, (_, i) => Math.round((d[4 * i]! + d[4 * i + 1]! + d[4 * i + 2]!) / 3));
    selectSample(null);
    paint();
  } catch (err) {
    showError(`Upload refused: ${(err as Error).message.replace(/^The source image could not be decoded\.?/, 'not a readable image')}`);
  }
});

function showSamples(list: Sample[]): void {
  const box = $('samples');
  for (const s of list) {
    const c = document.createElement('canvas');
    c.width = c.height = SIDE;
    const px = Uint8Array.from(atob(s.pixels), (ch) => ch.charCodeAt(0));
    const img = c.getContext('2d')!.createImageData(SIDE, SIDE);
    for (let i = 0; i < px.length; i++) img.data.set([px[i]!, px[i]!, px[i]!, 255], 4 * i);
    c.getContext('2d')!.putImageData(img, 0, 0);
    c.title = `sample ${s.index} (${info?.classes[s.label] ?? s.label})`;
    c.dataset.index = String(s.index);
    c.addEventListener('click', () => {
      pixels = px.slice();
      selectSample(c);
      paint();
    });
    box.appendChild(c);
  }
}

async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch {
    throw new Error('the server is unreachable (stopped?)');
  }
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `${url}: HTTP ${res.status}`);
  return body;
}

const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;

/**
 * Run one classification: `body` does the work while the button is disabled and the previous
 * result cleared; any failure becomes the visible error line (then `onError` runs).
 */
async function guarded(status: string, body: () => Promise<void>, onError?: () => void): Promise<void> {
  if (busy || !info) return;
  busy = true;
  classifyBtn.disabled = true;
  clearError();
  resultEl.textContent = '';
  resultEl.removeAttribute('data-prediction');
  progress.value = 0.02;
  statusEl.textContent = status;
  try {
    await body();
  } catch (e) {
    showError((e as Error).message);
    onError?.();
  } finally {
    busy = false;
    classifyBtn.disabled = false;
  }
}

/** Post `req` to `worker` and resolve with its result message (progress messages move the bar; an error message or a crash rejects). */
function askWorker<R extends { type: 'result' }>(worker: Worker, req: WorkerRequest | FheWorkerRequest, running: string, crashed: string): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    worker.onmessage = (ev: MessageEvent<WorkerProgress | WorkerError | R>) => {
      const m = ev.data;
      if (m.type === 'progress') {
        progress.value = Math.max(progress.value, m.fraction);
        statusEl.textContent = `${running}… (${m.phase})`;
      } else if (m.type === 'error') reject(new Error(m.message));
      else resolve(m);
    };
    worker.onerror = (ev) => reject(new Error(`${crashed} crashed: ${ev.message || 'worker error'}`));
    worker.postMessage(req);
  });
}

/** Show the predicted class and a table of `rows`; `data` goes to the result's data attributes (tests read them). */
function showResult(prediction: number, ms: number, data: Record<string, string>, rows: [string, string][]): void {
  progress.value = 1;
  statusEl.textContent = 'Done.';
  const name = info!.classes[prediction] ?? String(prediction);
  resultEl.dataset.prediction = String(prediction);
  resultEl.dataset.ms = ms.toFixed(1);
  Object.assign(resultEl.dataset, data);
  const table = [...rows, ['class index', String(prediction)]].map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('\n      ');
  resultEl.innerHTML = `<h2>${name}</h2><table>\n      ${table}</table>`;
}

/** One private classification of `pixels`; resolves when the page shows a result or an error. */
function classify(): Promise<void> {
  let worker: Worker | undefined;
  return guarded('Starting party 1 and the dealer…', async () => {
    worker = new Worker('worker.js', { type: 'module' });
    if (!modelBytes) {
      const res = await fetch('/api/model').catch(() => null);
      if (!res?.ok) throw new Error('could not download the model (server stopped?)');
      modelBytes = await res.arrayBuffer();
    }
    const session = await getJson<SessionInfo>('/api/session', { method: 'POST' });
    statusEl.textContent = 'Running the private inference…';
    const image = Float32Array.from(pixels, (v) => v / 255);
    const wsOrigin = location.origin.replace(/^http/, 'ws');
    const req: WorkerRequest = { type: 'classify', model: modelBytes.slice(0), session, wsOrigin, image };
    const msg = await askWorker<MpcResult>(worker, req, 'Running the private inference', "the page's party 0");
    showResult(msg.prediction, msg.ms, { run: JSON.stringify(msg) }, [
      ['private inference', `${msg.ms.toFixed(0)} ms (dealer wait ${msg.dealerWaitMs.toFixed(0)} ms)`],
      ['total, with session set-up', `${(msg.wallMs / 1000).toFixed(2)} s`],
      ['rounds', String(msg.rounds)],
      ['sent / received', `${kb(msg.bytesSent)} / ${kb(msg.bytesReceived)}`],
    ]);
  }).finally(() => worker?.terminate());
}

/**
 * FHE mode: one worker and one server session for the page's lifetime (keys are generated and
 * uploaded on the first classification only); after any failure both are dropped and the next
 * classification starts afresh.
 */
let fheWorker: { worker: Worker; session: FheSessionInfo } | undefined;

function classifyFhe(): Promise<void> {
  const drop = () => {
    fheWorker?.worker.terminate();
    fheWorker = undefined;
  };
  return guarded(
    'Encrypted inference…',
    async () => {
      if (!fheWorker) {
        statusEl.textContent = 'Starting the encrypted-inference server session (planning the model)…';
        const session = await getJson<FheSessionInfo>('/api/fhe/session', { method: 'POST' });
        fheWorker = { worker: new Worker('fhe-worker.js', { type: 'module' }), session };
      }
      const { worker, session } = fheWorker;
      const image = Float32Array.from(pixels, (v) => v / 255);
      const req: FheWorkerRequest = { type: 'fhe-classify', plan: session.plan, wsUrl: location.origin.replace(/^http/, 'ws') + session.wsPath, image };
      const msg = await askWorker<FheResult>(worker, req, 'Encrypted inference', "the page's CKKS client");
      const p = session.plan.params;
      const keys: [string, string][] =
        msg.keyBytes > 0
          ? [
              ['key generation (this page)', `${(msg.keygenMs / 1000).toFixed(2)} s`],
              ['keys uploaded (once)', `${mb(msg.keyBytes)} in ${(msg.uploadMs / 1000).toFixed(2)} s`],
            ]
          : [];
      showResult(msg.prediction, msg.wallMs, { fhe: JSON.stringify(msg) }, [
        ['end to end', `${(msg.wallMs / 1000).toFixed(2)} s`],
        ...keys,
        ['encrypt / decrypt (this page)', `${msg.encryptMs.toFixed(0)} / ${msg.decryptMs.toFixed(0)} ms`],
        ['server evaluation', `${msg.serverSeconds.toFixed(2)} s (${msg.serverCpuSeconds.toFixed(2)} s CPU)`],
        ['refresh round trips', `${msg.refreshes} (${msg.refreshMs.toFixed(0)} ms in this page)`],
        ['sent / received', `${mb(msg.bytesSent)} / ${mb(msg.bytesReceived)}`],
        ['CKKS', `N = ${p.polyModulusDegree}, ${p.primeBits.length} primes, scale 2^${p.scaleBits}`],
      ]);
    },
    drop,
  );
}

classifyBtn.addEventListener('click', () => void (info?.mode === 'fhe' ? classifyFhe() : classify()));

(async () => {
  try {
    info = await getJson<ServerInfo>('/api/info');
    const shape = info.inputShape;
    if (shape.reduce((a, b) => a * b, 1) !== SIDE * SIDE)
      throw new Error(`the served model takes inputs of shape [${shape}]; this page handles ${SIDE}×${SIDE} single-channel images`);
    $('subtitle').textContent =
      info.mode === 'fhe'
        ? `${info.model}${info.paf ? ` (+${info.paf})` : ''} — FHE (CKKS): keys, encryption and decryption in this page`
        : `${info.model} — ${info.mode.toUpperCase()}, ${info.weights} weights${info.reluConfig ? `, ReLU config ${info.reluConfig}` : ''}`;
    if (info.mode === 'fhe')
      $('explain').textContent =
        'Your image is encrypted inside this page (CKKS, node-seal in a Web Worker) under a secret key generated here that never leaves it; ' +
        'the server computes on ciphertexts only and returns an encrypted result that only this page can decrypt.';
    showSamples(await getJson<Sample[]>('/api/samples'));
    paint();
    classifyBtn.disabled = false;
  } catch (e) {
    showError((e as Error).message);
  }
})();
