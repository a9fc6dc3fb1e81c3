/**
 * The one place tfjs is imported and its backend chosen. `@tensorflow/tfjs` (not tfjs-core) is used
 * because its bundle registers every gradient; the wasm backend runs XNNPACK kernels.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerFastKernels } from './kernels/index.js';

export { tf };

/** Backends the float runtime can run on. */
export type TfBackendName = 'wasm' | 'cpu';

let ready: Promise<void> | undefined;
let readyName: TfBackendName | undefined;
const setupHooks: Array<(backend: TfBackendName) => void> = [];

/** Register a hook run once when the backend is first initialised (e.g. fast training kernels). */
export function onBackendReady(hook: (backend: TfBackendName) => void): void {
  setupHooks.push(hook);
  if (readyName) hook(readyName);
}

/** Initialise tfjs on `backend` (idempotent; the first call decides the backend for the process). */
export function initTf(backend: TfBackendName = 'wasm'): Promise<void> {
  if (!ready) {
    readyName = undefined;
    ready = (async () => {
      // tfjs prints a hint about tfjs-node on first use; it cannot install here, so silence it.
      tf.env().set('IS_NODE', true);
      tf.env().set('PROD', true);
      // The wasm backend's Emscripten glue installs process handlers that rethrow every uncaught
      // error and print its whole minified source; privml handles its own errors, so drop them.
      const before = new Set<unknown>([...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')]);
      // Conv/pool gradients tfjs-wasm lacks or runs slowly (see src/nn/kernels).
      registerFastKernels();
      const ok = await tf.setBackend(backend);
      if (!ok) throw new Error(`tfjs backend '${backend}' failed to initialise`);
      await tf.ready();
      for (const l of process.listeners('uncaughtException')) if (!before.has(l)) process.removeListener('uncaughtException', l);
      for (const l of process.listeners('unhandledRejection')) if (!before.has(l)) process.removeListener('unhandledRejection', l);
      readyName = backend;
      for (const h of setupHooks) h(backend);
    })();
  }
  return ready;
}

/** Name of the active backend, once initialised. */
export function activeBackend(): TfBackendName | undefined {
  return readyName;
}
