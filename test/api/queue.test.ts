import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { OptionError, PrivmlError, queue } from '../../src/index.js';

test('queue API: URLs are checked, an unreachable Redis is a one-line typed error and nothing is left running', async () => {
  const t = await queue.target('redis://127.0.0.1:6390/2');
  assert.equal(t.options.host, '127.0.0.1');
  assert.equal(t.options.port, 6390);
  assert.equal(t.options.db, 2);
  await assert.rejects(queue.target('http://127.0.0.1:6379'), OptionError);
  const dir = mkdtempSync(join(tmpdir(), 'privml-queue-api-'));
  try {
    // Port 1 on loopback refuses connections: every entry must fail fast with one line, typed.
    for (const call of [
      () => queue.optimizeBundle('redis://127.0.0.1:1', join(dir, 'bundle'), join(dir, 'out')),
      () => queue.worker('redis://127.0.0.1:1', { kinds: ['proteus'] }),
    ]) {
      await assert.rejects(call(), (e: Error) => {
        assert.ok(e instanceof PrivmlError, `${e.constructor.name}: ${e.message}`);
        assert.ok(!e.message.includes('\n'), e.message);
        return true;
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
