/**
 * Word-wise WebSocket (un)masking for the `ws` package in Node, imported for its side effect before
 * `ws` itself (net/tcp.ts). Every frame a browser sends is masked (RFC 6455), and party 1 (and the
 * dealer) unmask the page's frames with `ws`. On Node 20, without the optional native `bufferutil`
 * and without `http.websocketUnmask` (newer Node), `ws` does it one byte at a time in JS: 0.13 ms
 * per 100 KB measured here, on the critical path of every protocol round with the page (fmnist-cnn:
 * ~330 KB per image). Four bytes at a time over a Uint32Array: 0.02 ms per 100 KB.
 *
 * `ws`'s receiver and sender take these functions from lib/buffer-util.js once, when they are
 * loaded, so this must run first; replacing the exports later would change nothing (no harm
 * either: `ws` keeps its own loop). Not part of the page bundle (the browser masks natively).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** XOR `n` bytes of `src` (from 0) with the 4-byte `mask` into `out` at `off` (src may be out). */
function xorMask(src: Uint8Array, mask: Uint8Array, out: Uint8Array, off: number, n: number): void {
  let i = 0;
  // Whole words where both views are 4-byte aligned (a Buffer from ws is usually aligned: its pool
  // hands out 8-byte aligned slices, and a large message has a buffer of its own).
  if (LITTLE_ENDIAN && n >= 16 && (src.byteOffset & 3) === 0 && ((out.byteOffset + off) & 3) === 0) {
    const words = n >>> 2;
    const m = mask[0]! | (mask[1]! << 8) | (mask[2]! << 16) | (mask[3]! << 24); // little-endian view of the mask bytes
    const s = new Int32Array(src.buffer, src.byteOffset, words);
    const o = new Int32Array(out.buffer, out.byteOffset + off, words);
    for (let k = 0; k < words; k++) o[k] = s[k]! ^ m;
    i = words << 2;
  }
  for (; i < n; i++) out[off + i] = src[i]! ^ mask[i & 3]!;
}

/** The exports of ws/lib/buffer-util.js we replace. */
interface BufferUtil {
  mask(source: Uint8Array, mask: Uint8Array, output: Uint8Array, offset: number, length: number): void;
  unmask(buffer: Uint8Array, mask: Uint8Array): void;
}

/** Whether ws now uses the word-wise functions (false: it had native ones, or could not be found). */
export let wordMasking = false;

try {
  const require = createRequire(import.meta.url);
  const http = require('node:http') as { websocketUnmask?: unknown };
  // ws prefers Node's own (native) functions, then bufferutil's: keep those.
  let native = typeof http.websocketUnmask === 'function';
  try {
    require.resolve('bufferutil');
    native = true;
  } catch {
    // not installed: ws falls back to its byte loop
  }
  if (!native) {
    const util = require(join(dirname(require.resolve('ws')), 'lib', 'buffer-util.js')) as BufferUtil;
    util.mask = (source, mask, output, offset, length) => xorMask(source, mask, output, offset, length);
    util.unmask = (buffer, mask) => xorMask(buffer, mask, buffer, 0, buffer.length);
    wordMasking = true;
  }
} catch {
  // ws not resolvable from here (a bundle): it keeps its own loop
}

export { xorMask };
