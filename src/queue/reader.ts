/**
 * Read a shared-storage Proteus member into recycled buffers. A worker checks each member's MAC before
 * optimizing it; reading 2 GB of members into fresh buffers (fs.readFile, or a helper thread handing
 * ArrayBuffers back) costs page faults and zero-fills and makes V8 run a major GC every few members
 * (measured: 10–25 % of a worker's CPU). So: one read call on the thread pool into a buffer reused from
 * member to member; the caller checks the bytes in memory (GMAC, on the main thread — onnxruntime-node's
 * session creation holds the main thread anyway, so a check elsewhere would only overlap with it on a
 * machine with idle cores, and on a loaded one every worker is CPU-bound whatever thread checks).
 */
import { open } from 'node:fs/promises';

/** A member as read: its bytes, a view of a pooled buffer (give it back with {@link recycle}). */
export interface ReadMember {
  bytes: Buffer;
}

/** Buffers given back; two are in use at a time (the member being optimized and the next one). */
const pool: Buffer[] = [];

/** The bytes of `path`; rejects with the file system's error (code ENOENT, EACCES…). */
export async function readMember(path: string): Promise<ReadMember> {
  const fh = await open(path, 'r');
  let buf: Buffer | undefined;
  try {
    const st = await fh.stat();
    // Sized from stat, but read to the end whatever it said: a pipe or a file still growing reports less.
    const want = st.isFile() ? st.size : 1 << 20;
    // The smallest pooled buffer that fits (the pool is kept largest first).
    let i = pool.length - 1;
    while (i >= 0 && pool[i]!.length <= want) i--;
    // Not zero-filled (only read bytes are used), a quarter larger than needed so slightly larger members reuse it.
    buf = i >= 0 ? pool.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(Math.ceil(want * 1.25) + 4096);
    let at = 0;
    for (;;) {
      if (at === buf.length) {
        const bigger = Buffer.allocUnsafeSlow(buf.length * 2);
        buf.copy(bigger, 0, 0, at);
        buf = bigger;
      }
      const { bytesRead } = await fh.read(buf, at, buf.length - at, null);
      if (!bytesRead) break;
      at += bytesRead;
    }
    const bytes = buf.subarray(0, at);
    buf = undefined;
    return { bytes };
  } finally {
    if (buf) recycleBuffer(buf);
    await fh.close();
  }
}

/**
 * Keep the two largest buffers seen: members come in shuffled sizes (0.3–40 MB in a resnet50 bundle), and
 * keeping whichever came back first made most large members allocate (and page-fault) a fresh buffer —
 * measured on a 2.1 GB bundle, reading took 0.75–0.86 s of CPU that way against 0.40–0.43 s into one
 * reused buffer.
 */
function recycleBuffer(b: Buffer): void {
  pool.push(b);
  pool.sort((x, y) => y.length - x.length);
  pool.length = Math.min(pool.length, 2);
}

/** Size of the buffer {@link streamFile} reads through: small enough to stay in a core's L2 cache. */
const STREAM_CHUNK = 256 << 10;
const streamBuffers: Buffer[] = [];

/**
 * Pass the bytes of `path` to `onPiece` in order, read through one small reused buffer (a piece is only
 * valid during the call). For a reader that needs each byte once (the submitter's tags): unlike
 * {@link readMember} it never writes the member out to memory, so it takes less of the memory bandwidth
 * the workers' ORT passes share on the same machine.
 */
export async function streamFile(path: string, onPiece: (piece: Buffer) => void): Promise<void> {
  const fh = await open(path, 'r');
  const buf = streamBuffers.pop() ?? Buffer.allocUnsafeSlow(STREAM_CHUNK);
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (!bytesRead) break;
      onPiece(buf.subarray(0, bytesRead));
    }
  } finally {
    streamBuffers.push(buf);
    await fh.close();
  }
}

/** Give a read's buffer back for a later read; `r.bytes` must not be used afterwards. */
export function recycle(r: ReadMember): void {
  // allocUnsafeSlow buffers own their whole ArrayBuffer (offset 0).
  recycleBuffer(Buffer.from(r.bytes.buffer));
}
