/**
 * The `privml serve` page: a 28×28 drawing pad, uploads and committed samples; "Classify privately"
 * asks the server for a fresh session (dealer + party 1) and hands the image to party 0 in a Web
 * Worker (worker.ts). Every failure ends in a visible error line, never a spinner left running.
 */
import type { Sample, ServerInfo, SessionInfo, WorkerMessage, WorkerRequest } from './session.js';

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

/** One private classification of `pixels`; resolves when the page shows a result or an error. */
async function classify(): Promise<void> {
  if (busy || !info) return;
  busy = true;
  classifyBtn.disabled = true;
  clearError();
  resultEl.textContent = '';
  resultEl.removeAttribute('data-prediction');
  progress.value = 0.02;
  statusEl.textContent = 'Starting party 1 and the dealer…';
  const worker = new Worker('worker.js', { type: 'module' });
  try {
    if (!modelBytes) {
      const res = await fetch('/api/model').catch(() => null);
      if (!res?.ok) throw new Error('could not download the model (server stopped?)');
      modelBytes = await res.arrayBuffer();
    }
    const session = await getJson<SessionInfo>('/api/session', { method: 'POST' });
    statusEl.textContent = 'Running the private inference…';
    const image = Float32Array.from(pixels, (v) => v / 255);
    const wsOrigin = location.origin.replace(/^http/, 'ws');
    const msg = await new Promise<Extract<WorkerMessage, { type: 'result' }>>((resolve, reject) => {
      worker.onmessage = (ev: MessageEvent<WorkerMessage>) => {
        const m = ev.data;
        if (m.type === 'progress') {
          progress.value = Math.max(progress.value, m.fraction);
          statusEl.textContent = `Running the private inference… (${m.phase})`;
        } else if (m.type === 'error') reject(new Error(m.message));
        else resolve(m);
      };
      worker.onerror = (ev) => reject(new Error(`the page's party 0 crashed: ${ev.message || 'worker error'}`));
      const req: WorkerRequest = { type: 'classify', model: modelBytes!.slice(0), session, wsOrigin, image };
      worker.postMessage(req);
    });
    progress.value = 1;
    statusEl.textContent = 'Done.';
    const name = info.classes[msg.prediction] ?? String(msg.prediction);
    resultEl.dataset.prediction = String(msg.prediction);
    resultEl.dataset.ms = msg.ms.toFixed(1);
    resultEl.dataset.layers = JSON.stringify(msg.layers);
    resultEl.innerHTML = `<h2>${name}</h2><table>
      <tr><td>private inference</td><td>${msg.ms.toFixed(0)} ms (dealer wait ${msg.dealerWaitMs.toFixed(0)} ms)</td></tr>
      <tr><td>total, with session set-up</td><td>${(msg.wallMs / 1000).toFixed(2)} s</td></tr>
      <tr><td>rounds</td><td>${msg.rounds}</td></tr>
      <tr><td>sent / received</td><td>${kb(msg.bytesSent)} / ${kb(msg.bytesReceived)}</td></tr>
      <tr><td>class index</td><td>${msg.prediction}</td></tr></table>`;
  } catch (e) {
    showError((e as Error).message);
  } finally {
    worker.terminate();
    busy = false;
    classifyBtn.disabled = false;
  }
}

classifyBtn.addEventListener('click', () => void classify());

(async () => {
  try {
    info = await getJson<ServerInfo>('/api/info');
    const shape = info.inputShape;
    if (shape.reduce((a, b) => a * b, 1) !== SIDE * SIDE)
      throw new Error(`the served model takes inputs of shape [${shape}]; this page handles ${SIDE}×${SIDE} single-channel images`);
    $('subtitle').textContent =
      `${info.model} — ${info.mode.toUpperCase()}, ${info.weights} weights${info.reluConfig ? `, ReLU config ${info.reluConfig}` : ''}`;
    showSamples(await getJson<Sample[]>('/api/samples'));
    paint();
    classifyBtn.disabled = false;
  } catch (e) {
    showError((e as Error).message);
  }
})();
