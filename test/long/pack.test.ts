// The package as a user gets it: `npm pack` (which runs `prepare`: wasm + tsc), an offline install of the
// tarball into an empty project, `npx privml demo` there, and the API imported from a plain .mjs file.

import assert from 'node:assert/strict';
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');
// onnxruntime-node's postinstall would fetch CUDA libraries from NuGet on linux/x64 with an npm that runs it.
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_update_notifier: 'false' };

function run(cmd: string, args: string[], opts: SpawnSyncOptions): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 600_000, ...opts });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${String(r.stdout).slice(-3000)}\n${String(r.stderr).slice(-3000)}`);
  return String(r.stdout) + String(r.stderr);
}

test('npm pack → offline install → npx privml demo → import from .mjs', { timeout: 1_500_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'privml-pack-'));
  try {
    run('npm', ['pack', '--pack-destination', tmp], { cwd: root });
    const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'))!;
    assert.ok(tgz, 'npm pack wrote a tarball');
    const size = statSync(join(tmp, tgz)).size;
    assert.ok(size <= 10e6, `tarball is ${(size / 1e6).toFixed(1)} MB (> 10 MB)`);
    const files = run('tar', ['tzf', join(tmp, tgz)], {}).split('\n');
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'build/ring.wasm',
      'bin/privml.js',
      'models/fmnist-cnn.onnx',
      'data/fashion-mnist-sample/t10k-images-idx3-ubyte.gz',
    ]) {
      assert.ok(files.includes(`package/${f}`), `tarball lacks ${f}`);
    }
    assert.ok(!files.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/')), 'tarball holds sources or tests');

    // The consumer's lock: privml from the tarball plus privml's own locked runtime dependencies, so
    // `npm ci --offline` needs only tarballs already in the npm cache (no registry metadata).
    const proj = join(tmp, 'proj');
    mkdirSync(proj);
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    const spec = `file:../${tgz}`;
    const integrity =
      'sha512-' +
      createHash('sha512')
        .update(readFileSync(join(tmp, tgz)))
        .digest('base64');
    const packages: Record<string, unknown> = {
      '': { name: 'consumer', dependencies: { privml: spec } },
      'node_modules/privml': {
        version: pkg['version'],
        resolved: spec,
        integrity,
        dependencies: pkg['dependencies'],
        bin: pkg['bin'],
        engines: pkg['engines'],
      },
    };
    for (const [k, v] of Object.entries(lock.packages)) if (k !== '' && !v.dev) packages[k] = v;
    writeFileSync(join(proj, 'package-lock.json'), JSON.stringify({ name: 'consumer', lockfileVersion: 3, requires: true, packages }));
    writeFileSync(
      join(proj, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { privml: spec }, allowScripts: pkg['allowScripts'] }),
    );
    run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: proj });

    assert.match(run('npx', ['--offline', 'privml', '--version'], { cwd: proj }), new RegExp(String(pkg['version'])));
    const demo = run('npx', ['--offline', 'privml', 'demo', '--limit', '30', '--private', '2'], { cwd: proj });
    assert.match(demo, /predictions agree with the float runtime on 30\/30/);
    assert.match(demo, /2 images, agreement with plaintext 100\.0%/);

    writeFileSync(
      join(proj, 'use.mjs'),
      `import { loadModel, FloatSession, loadDataset, tensor, ModelError } from 'privml';
const model = await loadModel('node_modules/privml/models/fmnist-cnn.onnx');
const ds = loadDataset('fashion-mnist-sample', { limit: 2 });
const s = await FloatSession.create(model);
const y = await s.run({ [s.inputNames[0]]: tensor([2, ...ds.shape], ds.images.subarray(0, 2 * 784)) });
console.log('dims', y[s.outputNames[0]].dims.join('x'));
await s.release();
try { await loadModel('nope.onnx'); } catch (e) { console.log('typed', e instanceof ModelError); }
`,
    );
    const out = run(process.execPath, ['use.mjs'], { cwd: proj });
    assert.match(out, /dims 2x10/);
    assert.match(out, /typed true/);
    // The .d.ts resolve through "exports": a TypeScript consumer gets types.
    assert.ok(statSync(join(proj, 'node_modules', 'privml', 'dist', 'index.d.ts')).size > 0);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
