/** The shared-storage member reader: exact bytes whatever the buffer it reuses, pipes read to EOF. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readMember, recycle, streamFile } from '../../src/queue/reader.js';

const dir = mkdtempSync(join(tmpdir(), 'privml-reader-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('files of growing and shrinking sizes read into recycled buffers: exact bytes each time', async () => {
  // Sizes that make the pool reuse a larger buffer, outgrow it, and read an empty file.
  const sizes = [3_000_000, 10, 2_500_000, 0, 5_000_000, 4_999_999, 1, 6_250_000, 1 << 20];
  for (const [i, n] of sizes.entries()) {
    const bytes = randomBytes(n);
    const path = join(dir, `m${i}`);
    writeFileSync(path, bytes);
    const r = await readMember(path);
    assert.equal(r.bytes.length, n, `size of file ${i}`);
    assert.ok(r.bytes.equals(bytes), `bytes of file ${i}`);
    recycle(r);
  }
});

test('a FIFO is read to its end (stat says 0 bytes), beyond the first buffer', async (t) => {
  const path = join(dir, 'fifo');
  if (spawnSync('mkfifo', [path]).status !== 0) return t.skip('mkfifo is not available');
  const bytes = randomBytes(3 << 20);
  // The writer is another process, so this one's event loop stays free to read.
  const src = join(dir, 'src');
  writeFileSync(src, bytes);
  const cat = spawn('sh', ['-c', `cat '${src}' > '${path}'`], { stdio: 'ignore' });
  // Listened for before reading: the writer may be gone before the read returns.
  const exited = new Promise((res) => cat.once('exit', res));
  const r = await readMember(path);
  await exited;
  assert.equal(r.bytes.length, bytes.length);
  assert.ok(r.bytes.equals(bytes));
});

test('a missing file rejects with its errno code', async () => {
  await assert.rejects(readMember(join(dir, 'nope')), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
});

test('streamFile passes every byte once, in order, through its small buffer (empty, one piece, many pieces, a FIFO)', async (t) => {
  const collect = async (path: string) => {
    const pieces: Buffer[] = [];
    // A piece is only valid during the call: copy it.
    await streamFile(path, (p) => pieces.push(Buffer.from(p)));
    return Buffer.concat(pieces);
  };
  for (const n of [0, 1, 262_144, 262_145, 3_000_001]) {
    const bytes = randomBytes(n);
    const path = join(dir, `s${n}`);
    writeFileSync(path, bytes);
    assert.ok((await collect(path)).equals(bytes), `${n} bytes`);
  }
  await assert.rejects(
    streamFile(join(dir, 'nope'), () => {}),
    (e: NodeJS.ErrnoException) => e.code === 'ENOENT',
  );
  const fifo = join(dir, 'sfifo');
  if (spawnSync('mkfifo', [fifo]).status !== 0) return t.skip('mkfifo is not available');
  const bytes = randomBytes(1 << 20);
  const src = join(dir, 'ssrc');
  writeFileSync(src, bytes);
  const cat = spawn('sh', ['-c', `cat '${src}' > '${fifo}'`], { stdio: 'ignore' });
  const exited = new Promise((res) => cat.once('exit', res));
  const got = await collect(fifo);
  await exited;
  assert.ok(got.equals(bytes), 'FIFO bytes');
});
