// `npm test`: every suite under test/ except the long end-to-end ones in test/long/, which
// `npm run test:long` (`--long`) runs; .ci/run runs both. File arguments run just those files; --list prints them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const long = args.includes('--long');
const named = args.filter((a) => !a.startsWith('--'));

/** test/*.test.ts and test/<dir>/*.test.ts, as the glob of the former `npm test` matched. */
function suites() {
  const top = join(root, 'test');
  const out = [];
  for (const e of readdirSync(top, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isFile() && e.name.endsWith('.test.ts')) out.push(join('test', e.name));
    else if (e.isDirectory()) for (const f of readdirSync(join(top, e.name)).sort()) if (f.endsWith('.test.ts')) out.push(join('test', e.name, f));
  }
  return out;
}

const all = suites();
const isLong = (f) => relative(root, join(root, f)).startsWith(join('test', 'long'));
const files = named.length ? named.filter((f) => existsSync(join(root, f))) : all.filter((f) => isLong(f) === long);
if (args.includes('--list')) {
  process.stdout.write(files.join('\n') + '\n');
  process.exit(0);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], { cwd: root, stdio: 'inherit' });
if (!long && !named.length) {
  process.stdout.write(
    `\nlong end-to-end suites, not run here (npm run test:long; .ci/run runs them):\n${all
      .filter(isLong)
      .map((f) => `  ${f}`)
      .join('\n')}\n`,
  );
}
process.exit(r.status ?? 1);
