/**
 * Download Fashion-MNIST from Zalando's canonical locations, verify each file's checksum and
 * write it atomically, so an interrupted or corrupted download never leaves a file that loads.
 */

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FASHION_MNIST_FILES } from './fashion-mnist.js';
import { oneLine, writeFileAtomic } from './idx.js';

/** Mirrors tried in order: Zalando's S3 website, then the GitHub repository's data folder. */
export const FASHION_MNIST_BASE_URLS: readonly string[] = [
  'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
  'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/',
];

/** Official MD5s of the gzipped files, from the Fashion-MNIST README. */
export const FASHION_MNIST_MD5: Readonly<Record<string, string>> = {
  'train-images-idx3-ubyte.gz': '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
  'train-labels-idx1-ubyte.gz': '25c81989df183df01b3e8a0aad5dffbe',
  't10k-images-idx3-ubyte.gz': 'bef4ecab320f06d8554ea6380940ec79',
  't10k-labels-idx1-ubyte.gz': 'bb300cfdad3c16e7a12a480ee83cd310',
};

/** Progress of one file's download. */
export interface DownloadProgress {
  file: string;
  url: string;
  received: number;
  /** From Content-Length; undefined when the server does not send it. */
  total?: number;
}

/** Options of {@link downloadFashionMnist}. */
export interface DownloadOptions {
  /** fetch implementation (default: global `fetch`); tests inject one. */
  fetchImpl?: typeof fetch;
  /** Called as bytes arrive. */
  onProgress?: (p: DownloadProgress) => void;
  /** Mirrors to try, in order (default {@link FASHION_MNIST_BASE_URLS}). */
  baseUrls?: readonly string[];
  /** Expected checksum per file name, hex: 32 digits = MD5, 64 = SHA-256 (default: official MD5s). */
  checksums?: Readonly<Record<string, string>>;
  /** Re-download files already present with a correct checksum (default false). */
  force?: boolean;
  /** Abort the download. */
  signal?: AbortSignal;
}

/** Outcome of {@link downloadFashionMnist}: which files were fetched and which were already there. */
export interface DownloadResult {
  dir: string;
  downloaded: string[];
  skipped: string[];
}

/** Download the four Fashion-MNIST files into `destDir`, verifying checksums; skips valid existing files. */
export async function downloadFashionMnist(destDir: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const fetchImpl = opts.fetchImpl ?? globalThis.fetch;
  const baseUrls = opts.baseUrls ?? FASHION_MNIST_BASE_URLS;
  const checksums = { ...FASHION_MNIST_MD5, ...opts.checksums };
  const files = [FASHION_MNIST_FILES.train, FASHION_MNIST_FILES.test].flatMap((f) => [f.images, f.labels]);
  const result: DownloadResult = { dir: destDir, downloaded: [], skipped: [] };
  for (const file of files) {
    const expected = checksums[file];
    if (!expected) throw new Error(`${file}: no expected checksum given`);
    const dest = join(destDir, file);
    if (!opts.force && existsSync(dest) && checksumProblem(readFileSync(dest), expected) === undefined) {
      result.skipped.push(file);
      continue;
    }
    const failures: string[] = [];
    let bytes: Uint8Array | undefined;
    for (const base of baseUrls) {
      const url = new URL(file, base).href;
      try {
        const got = await fetchBytes(fetchImpl, url, file, opts);
        const problem = checksumProblem(got, expected);
        if (problem) throw new Error(problem);
        bytes = got;
        break;
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        failures.push(`${url}: ${oneLine(e)}`);
      }
    }
    if (!bytes) throw new Error(`${file}: download failed (${failures.join('; ')})`);
    writeFileAtomic(dest, bytes);
    result.downloaded.push(file);
  }
  return result;
}

/** undefined if `bytes` match the hex checksum (MD5 or SHA-256 by length), else a one-line problem. */
export function checksumProblem(bytes: Uint8Array, expected: string): string | undefined {
  const hexDigits = expected.toLowerCase();
  const algo = hexDigits.length === 32 ? 'md5' : hexDigits.length === 64 ? 'sha256' : undefined;
  if (!algo || !/^[0-9a-f]+$/.test(hexDigits)) return `bad expected checksum "${expected}" (need MD5 or SHA-256 hex)`;
  const actual = createHash(algo).update(bytes).digest('hex');
  return actual === hexDigits ? undefined : `${algo} checksum mismatch (expected ${hexDigits}, got ${actual})`;
}

/** GET `url` into memory, reporting progress; non-2xx statuses are errors. */
async function fetchBytes(fetchImpl: typeof fetch, url: string, file: string, opts: DownloadOptions): Promise<Uint8Array> {
  const res = await fetchImpl(url, { signal: opts.signal, redirect: 'follow' });
  if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
  const len = Number(res.headers.get('content-length'));
  const total = Number.isFinite(len) && len > 0 ? len : undefined;
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    opts.onProgress?.({ file, url, received: bytes.length, total });
    return bytes;
  }
  const chunks: Uint8Array[] = [];
  let received = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    opts.onProgress?.({ file, url, received, total });
  }
  // Content-Length counts encoded bytes, so compare only when no Content-Encoding was applied.
  if (total !== undefined && received !== total && !res.headers.get('content-encoding')) {
    throw new Error(`connection closed after ${received} of ${total} bytes`);
  }
  const out = new Uint8Array(received);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
