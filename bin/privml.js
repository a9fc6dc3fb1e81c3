#!/usr/bin/env node
// Entry point. Runs the compiled CLI in dist/ (built by `npm run build`, which `prepare` runs). In a source
// checkout where some file in src/ is newer than the build, it loads the TypeScript through tsx instead, so a
// stale dist/ never runs edited code's old version (tests spawn this file for multi-process MPC runs).
import { existsSync, readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const built = new URL('dist/cli/main.js', root);
const src = new URL('src/', root);

/** True when any file under `dir` was modified after `since` (ms); stops at the first one. */
function newerThan(dir, since) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = new URL(e.name + (e.isDirectory() ? '/' : ''), dir);
    if (e.isDirectory() ? newerThan(p, since) : statSync(p).mtimeMs > since) return true;
  }
  return false;
}

const useBuild = existsSync(built) && !(existsSync(src) && newerThan(src, statSync(built).mtimeMs));
let main;
if (useBuild) {
  ({ main } = await import(built.href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(new URL('src/cli/main.ts', root).href));
}
process.exitCode = await main(process.argv);
