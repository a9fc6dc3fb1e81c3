// What one process spends per phase optimizing every member of a Proteus bundle with onnxruntime: ORT from
// the file path (the local command) with ORT's default intra-op pool or one thread, and ORT from a buffer
// after reading the member (a shared-storage worker), with no check, a GMAC or a SHA-256 of the bytes;
// `read-gmac` only reads and tags every member (what the submitter adds with --member-check mac).
// Each variant runs in its own process, alternating, so they see the same load; one JSON line each.
// Usage: node bench/proteus-phases.mjs BUNDLE [rounds=2] [variants=path,path-t1,buf-t1,buf-t1-gmac,buf-t1-sha]
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [bundle, roundsArg, variantsArg, child] = process.argv.slice(2);
if (!bundle) {
  process.stderr.write('Usage: node bench/proteus-phases.mjs BUNDLE [rounds=2] [variants]\n');
  process.exit(2);
}
const variants = (variantsArg ?? 'path,path-t1,buf-t1,buf-t1-gmac,buf-t1-sha').split(',');

if (child === undefined) {
  for (let r = 0; r < Number(roundsArg ?? 2); r++)
    for (const v of variants) {
      const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), bundle, '1', v, 'child'], { stdio: ['ignore', 'inherit', 'inherit'] });
      if (p.status !== 0) process.exit(1);
    }
} else {
  const ort = await import('onnxruntime-node');
  const variant = variants[0];
  const members = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')).members;
  const out = mkdtempSync(join(tmpdir(), 'privml-phases-'));
  // One buffer reused for every member (as the worker's pool does), grown when a member is larger.
  let buf = Buffer.allocUnsafeSlow(32 << 20);
  const key = randomBytes(32);
  let read = 0;
  let check = 0;
  let optimize = 0;
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (const [i, m] of members.entries()) {
    let src = join(bundle, m);
    if (variant.startsWith('buf') || variant === 'read-gmac') {
      let t = performance.now();
      const fd = openSync(src, 'r');
      const n = fstatSync(fd).size;
      if (n > buf.length) buf = Buffer.allocUnsafeSlow(n);
      for (let at = 0; at < n; ) at += readSync(fd, buf, at, n - at, null);
      closeSync(fd);
      src = buf.subarray(0, n);
      read += performance.now() - t;
      t = performance.now();
      if (variant.endsWith('-sha')) createHash('sha256').update(src).digest();
      if (variant.endsWith('-gmac')) {
        const iv = Buffer.alloc(12);
        iv.writeUInt32BE(i, 8);
        const c = createCipheriv('aes-256-gcm', key, iv);
        c.setAAD(src);
        c.final();
        c.getAuthTag();
      }
      check += performance.now() - t;
    }
    if (variant === 'read-gmac') continue;
    const options = { graphOptimizationLevel: 'extended', optimizedModelFilePath: join(out, m), logSeverityLevel: 3 };
    if (variant.includes('-t1')) Object.assign(options, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const t = performance.now();
    await (await ort.InferenceSession.create(src, options)).release();
    optimize += performance.now() - t;
  }
  const c = process.cpuUsage(c0);
  rmSync(out, { recursive: true, force: true });
  const s = (ms) => +(ms / 1000).toFixed(2);
  const load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  process.stdout.write(
    `${JSON.stringify({ variant, members: members.length, wallSeconds: s(performance.now() - w0), cpuSeconds: s((c.user + c.system) / 1000), readSeconds: s(read), checkSeconds: s(check), ortSeconds: s(optimize), load1 })}\n`,
  );
}
