/**
 * IDX file format (LeCun's MNIST format, also used by Fashion-MNIST): 2 zero bytes, a dtype byte,
 * a rank byte, one big-endian uint32 per dimension, then the row-major data. Only dtype 0x08
 * (unsigned byte) is supported, which is all (Fashion-)MNIST uses. Files may be gzipped.
 */

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

/** Dimensions and raw bytes of an unsigned-byte IDX array. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** IDX dtype code of unsigned bytes, the only one supported. */
export const IDX_UBYTE = 0x08;

/** True when `bytes` starts with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Parse an (uncompressed) IDX buffer; `name` is used in error messages. */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  const fail = (problem: string): never => {
    throw new Error(`${name}: ${problem}`);
  };
  if (bytes.length < 4) fail(`truncated IDX file (header needs 4 bytes, got ${bytes.length})`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    fail(`not an IDX file (bad magic ${hex(bytes[0]!)} ${hex(bytes[1]!)}, expected 0x00 0x00)`);
  }
  const dtype = bytes[2]!;
  if (dtype !== IDX_UBYTE) fail(`unsupported IDX dtype ${hex(dtype)} (only 0x08 unsigned byte)`);
  const rank = bytes[3]!;
  if (rank === 0) fail('IDX file has rank 0');
  const headerLen = 4 + 4 * rank;
  if (bytes.length < headerLen) {
    fail(`truncated IDX file (header needs ${headerLen} bytes, got ${bytes.length})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = headerLen + count;
  if (bytes.length < expected) {
    fail(`truncated IDX file (expected ${expected} bytes, got ${bytes.length})`);
  }
  if (bytes.length > expected) {
    fail(`IDX file has trailing data (expected ${expected} bytes, got ${bytes.length})`);
  }
  // A plain copy: Buffer#slice would be a view pinning the whole (possibly gunzipped) buffer.
  return { dims, data: new Uint8Array(bytes.subarray(headerLen, expected)) };
}

/** Serialise dims + unsigned bytes as an (uncompressed) IDX buffer. */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  if (dims.length === 0 || dims.length > 255) {
    throw new Error(`encodeIdx: rank must be 1..255, got ${dims.length}`);
  }
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw new Error(`encodeIdx: bad dimension ${d} in [${dims.join(', ')}]`);
    }
  }
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new Error(`encodeIdx: dims [${dims.join(', ')}] need ${count} bytes, data has ${data.length}`);
  }
  const headerLen = 4 + 4 * dims.length;
  const out = new Uint8Array(headerLen + count);
  const view = new DataView(out.buffer);
  out[2] = IDX_UBYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, headerLen);
  return out;
}

/** Read an IDX file, gunzipping it first when it starts with the gzip magic number. */
export function readIdx(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read IDX file (${oneLine(e)})`);
  }
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new Error(`${path}: corrupt or truncated gzip data (${oneLine(e)})`);
    }
  }
  return parseIdx(bytes, path);
}

/** Options of {@link writeIdx}. */
export interface WriteIdxOptions {
  /** gzip the file (level 9); default false. */
  gzip?: boolean;
}

/** Write an IDX file atomically (temp file + rename), creating the parent directory. */
export function writeIdx(path: string, dims: readonly number[], data: Uint8Array, opts: WriteIdxOptions = {}): void {
  const raw = encodeIdx(dims, data);
  const bytes = opts.gzip ? gzipSync(raw, { level: 9 }) : raw;
  writeFileAtomic(path, bytes);
}

let tmpCounter = 0;

/**
 * Write `bytes` to `path` via a temp file in the same directory and a rename. The temp file is created
 * exclusively ('wx'), so a file or symlink already at that name is never written through; its name
 * (pid, time, counter) only needs to be unique, not secret.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp.${process.pid}.${Date.now().toString(36)}.${(tmpCounter++).toString(36)}`;
  try {
    writeFileSync(tmp, bytes, { flag: 'wx' });
    renameSync(tmp, path);
  } catch (e) {
    // EEXIST: the name was not ours, so it is not ours to remove either
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') rmSync(tmp, { force: true });
    throw e;
  }
}

function hex(b: number): string {
  return `0x${b.toString(16).padStart(2, '0')}`;
}

/** First line of an error's message, so our messages stay one line. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0] ?? msg;
}
