// Runs every ```js block of docs/api.md against the current sources (long: MPC processes, FHE, SmartPAF).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'api.md'), 'utf8');
const blocks = [...doc.matchAll(/^### (.+)\n[\s\S]*?```js\n([\s\S]*?)```/gm)].map((m) => ({ title: m[1]!, code: m[2]! }));
const index = pathToFileURL(join(root, 'src', 'index.ts')).href;

test('docs/api.md has one example per pillar and per group of task entries', () => {
  assert.deepEqual(
    blocks.map((b) => b.title.split(':')[0]),
    [
      'Plaintext sessions',
      'MPC',
      'HummingBird',
      'SmartPAF',
      'FHE',
      'Proteus',
      'Model tasks',
      'MPC roles and benches',
      'HummingBird report',
      'SmartPAF plots, Table 3 and merge',
      'Proteus attack and report',
      'serve',
    ],
  );
});

for (const b of blocks) {
  test(`docs/api.md example runs: ${b.title}`, () => {
    const tmp = mkdtempSync(join(tmpdir(), 'privml-doc-'));
    try {
      const code = b.code.replaceAll("from 'privml'", `from '${index}'`).replaceAll("'out/", `'${tmp}/out/`);
      const file = join(tmp, 'example.mjs');
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 2_400_000 });
      assert.equal(r.status, 0, `${b.title}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      assert.ok(r.stdout.trim().length > 0, 'the example prints its result');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}
