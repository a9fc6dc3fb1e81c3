#!/usr/bin/env node
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
/**
 * Build the `privml serve` page into dist/page/: index.html, page.js (UI) and worker.js (party 0:
 * the MPC engine, ring kernels embedded). Node-only modules the engine imports are redirected to
 * browser shims in src/web/shims/; an import of any other Node module fails the build by name.
 * Run by `npm run build:web` (part of `prepare`), and by `privml serve` when dist/page is missing.
 */
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'src', 'web');
const out = join(root, 'dist', 'page');

const SHIMS = { crypto: 'node-crypto.ts', fs: 'node-fs.ts', url: 'node-url.ts' };

/** esbuild plugin: Node built-ins → shims (or a build error naming the importer); net/tcp.js → the WebSocket stand-in; threads/pool.js → single-threaded. */
const browserShims = {
  name: 'privml-browser-shims',
  setup(b) {
    b.onResolve({ filter: /^(node:)?(crypto|fs|url|net|tls|child_process|path|os|worker_threads|zlib)$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (SHIMS[name]) return { path: join(web, 'shims', SHIMS[name]) };
      return {
        errors: [{ text: `${args.importer} imports node:${name}, which the page cannot use (add a shim in src/web/shims or keep it out of the page)` }],
      };
    });
    b.onResolve({ filter: /\/net\/tcp\.js$/ }, (args) =>
      args.importer.includes(`${join('web', 'shims')}`) ? undefined : { path: join(web, 'shims', 'tcp.ts') },
    );
    b.onResolve({ filter: /\/threads\/pool\.js$/ }, (args) =>
      args.importer.includes(`${join('web', 'shims')}`) ? undefined : { path: join(web, 'shims', 'pool.ts') },
    );
  },
};

/** Build both bundles; resolves with the output directory. */
export async function buildWeb({ quiet = false } = {}) {
  mkdirSync(out, { recursive: true });
  const common = {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: quiet ? 'error' : 'warning',
    plugins: [browserShims],
    inject: [join(web, 'shims', 'buffer.ts')],
    loader: { '.wasm': 'binary' },
    define: { 'process.env.NODE_ENV': '"production"' },
  };
  await build({ ...common, entryPoints: [join(web, 'worker.ts')], outfile: join(out, 'worker.js') });
  await build({ ...common, entryPoints: [join(web, 'page.ts')], outfile: join(out, 'page.js') });
  copyFileSync(join(web, 'index.html'), join(out, 'index.html'));
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = await buildWeb();
  process.stdout.write(`page built in ${dir}\n`);
}
