/** The `privml serve` server as an API entry, loaded on first use (it pulls in the MPC planner, ws and onnxruntime). */
import type { ServeOptions, ServerHandle } from './serve.js';

export type { ServeOptions, ServerHandle } from './serve.js';

/** Serve the private-inference web page for `model` (an .onnx path or zoo name); resolves once it listens, with its port, url and close(). */
export async function serve(model: string, opts: ServeOptions = {}): Promise<ServerHandle> {
  return (await import('./serve.js')).serve(model, opts);
}
