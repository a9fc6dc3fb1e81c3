/**
 * Shared by the Proteus measurement scripts: obfuscate a model `bundles` times into temporary
 * folders and hand each bundle (its folder and `obfuscate`'s result) to `visit`, as an attacker
 * would read it back from disk. A zoo model gets fresh weights per bundle (corpus configuration,
 * zoo seed `seedBase + b`); an .onnx file is the same model each time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveModel } from '../src/api/model-ref.js';
import { loadModel } from '../src/onnx/proto.js';
import type { OpStats } from '../src/proteus/index.js';
import { CORPUS_CONFIGS, obfuscate } from '../src/proteus/index.js';

/** Obfuscate `name` (zoo name or .onnx file) `bundles` times at K = `k`; `visit(dir, result)` reads each bundle. */
export async function forEachBundle(
  name: string,
  opts: { bundles: number; k: number; stats: OpStats; seedBase: number },
  visit: (dir: string, r: Awaited<ReturnType<typeof obfuscate>>) => void | Promise<void>,
): Promise<void> {
  for (let b = 0; b < opts.bundles; b++) {
    const cfg = Object.fromEntries(Object.entries(CORPUS_CONFIGS[name] ?? {}).map(([k, v]) => [k, String(v)]));
    const model = name.endsWith('.onnx') ? loadModel(name) : resolveModel(name, { ...cfg, seed: String(b + opts.seedBase) }).model;
    const dir = mkdtempSync(join(tmpdir(), 'privml-bundle-'));
    try {
      const r = await obfuscate(model, { k: opts.k, stats: opts.stats, outDir: join(dir, 'bundle'), reference: false });
      await visit(join(dir, 'bundle'), r);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
