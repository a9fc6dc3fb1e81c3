/**
 * AES-128-CTR for the page's `Prg`: synchronous like node:crypto's Cipher, fast like WebCrypto. The
 * keystream is a function of its byte position, so it may come from anywhere: WebCrypto (native,
 * asynchronous) fills chunks ahead of the reader, and whatever is not fetched yet when a draw comes
 * is computed on the spot by the JS implementation (aes.ts, ~20× slower), seeked to that position.
 * Both produce OpenSSL's stream (test/web/aes.test.ts), so the bytes never depend on the timing.
 *
 * "Asynchronous" is only the API: Chromium does the encryption inside the `encrypt` call, on the
 * calling thread (~2.2 ms per MB measured in a worker), so every byte fetched costs the reader's
 * thread about that much, when the fetch starts. Two ways to fetch ahead:
 * - blind (the default): after each draw, keep as much ahead as has been read so far (capped);
 * - `reserve(n)`: the reader announces its next draws; from then on only what it reserves is
 *   fetched (no blind fetch after a draw, which would cost the thread time for keystream nobody
 *   may read — at the end of the page's timed batch it took 3–4 ms).
 */
import { AesCtr, addBlocks } from './aes.js';

/**
 * How far ahead of the reader to fetch: as much as it has read so far, between FIRST_CHUNK and
 * MAX_CHUNK — a PRG that draws a few bytes costs one small chunk, a large one is soon a chunk ahead.
 */
const FIRST_CHUNK = 64 * 1024;
const MAX_CHUNK = 4 * 1024 * 1024;
const ahead = (pos: number): number => Math.min(MAX_CHUNK, Math.max(FIRST_CHUNK, Math.ceil(pos / 16) * 16));

/**
 * Largest single WebCrypto call. Chromium encrypts inside the call, and large calls cost more per
 * byte (a batch's 1.49 MB: 1.9–3.1 ms as one call, 0.9–1.3 ms as 128 KiB calls, medians of 9 in a
 * worker at load ~6), likely the input and output copies falling out of the CPU's cache.
 */
const FETCH_PIECE = 128 * 1024;

/** Zeros to encrypt (the keystream is the encryption of zeros); grown as needed, never written. */
let zeros = new Uint8Array(0);
const zeroBytes = (n: number): Uint8Array<ArrayBuffer> => (zeros.length < n ? (zeros = new Uint8Array(n)) : zeros).subarray(0, n);

interface Chunk {
  start: number;
  bytes: Uint8Array;
}

/** A keystream reader with background WebCrypto prefetch and a JS fallback. */
export class CtrStream {
  private pos = 0;
  private chunks: Chunk[] = [];
  private nextFetch = 0;
  private inflight = false;
  /** Set by the first `reserve`: fetch only what is reserved from then on. */
  private reserving = false;
  private key: Promise<CryptoKey | null> | null = null;
  private js: AesCtr | null = null;
  private readonly keyBytes: Uint8Array<ArrayBuffer>;
  private readonly iv: Uint8Array;

  /** Key and initial counter block (16 bytes each). */
  constructor(
    key: Uint8Array,
    iv: Uint8Array,
    private readonly subtle: SubtleCrypto | undefined = globalThis.crypto?.subtle,
  ) {
    if (key.length !== 16) throw new Error(`aes-128-ctr: key must be 16 bytes, got ${key.length}`);
    if (iv.length !== 16) throw new Error(`aes-128-ctr: iv must be 16 bytes, got ${iv.length}`);
    this.keyBytes = key.slice();
    this.iv = iv.slice();
    this.refill();
  }

  /** Blind fetch-ahead: start fetching the next chunk if none is in flight (no-op without WebCrypto). */
  private refill(): void {
    if (this.inflight || !this.subtle || this.reserving) return;
    this.inflight = true;
    // Never fetch what has already been read.
    const start = Math.max(this.nextFetch, Math.ceil(this.pos / 16) * 16);
    const size = ahead(this.pos);
    this.nextFetch = start + size;
    this.fetch(start, size).finally(() => {
      this.inflight = false;
      if (this.nextFetch - this.pos < ahead(this.pos)) this.refill();
    });
  }

  /**
   * The reader will draw `n` more bytes next: fetch what of them is not fetched yet (one WebCrypto
   * call) and resolve once it has landed. From the first call on, nothing else is fetched ahead.
   */
  reserve(n: number): Promise<void> {
    this.reserving = true;
    const start = Math.max(this.nextFetch, Math.ceil(this.pos / 16) * 16);
    const end = this.pos + n;
    if (this.subtle && end > start) {
      const size = Math.ceil((end - start) / 16) * 16;
      this.nextFetch = start + size;
      this.fetch(start, size);
    }
    return this.lastFetch;
  }

  /** Every fetch started so far has landed (or failed). */
  private lastFetch: Promise<void> = Promise.resolve();

  /**
   * Fetch keystream [start, start + size) with WebCrypto into `chunks`, one `encrypt` call per
   * FETCH_PIECE bytes; a refusal leaves it to the JS path.
   */
  private fetch(start: number, size: number): Promise<void> {
    const subtle = this.subtle!;
    this.key ??= subtle.importKey('raw', this.keyBytes, { name: 'AES-CTR' }, false, ['encrypt']).catch(() => null);
    const pieces: Promise<void>[] = [];
    for (let at = start; at < start + size; at += FETCH_PIECE) {
      const len = Math.min(FETCH_PIECE, start + size - at);
      const counter = new Uint32Array(4);
      const dv = new DataView(this.iv.buffer, this.iv.byteOffset, 16);
      for (let i = 0; i < 4; i++) counter[i] = dv.getUint32(4 * i, false);
      addBlocks(counter, at / 16);
      const block = new Uint8Array(16);
      const bv = new DataView(block.buffer);
      for (let i = 0; i < 4; i++) bv.setUint32(4 * i, counter[i]!, false);
      pieces.push(
        this.key
          .then((k) => (k ? subtle.encrypt({ name: 'AES-CTR', counter: block, length: 128 }, k, zeroBytes(len)) : null))
          .then((buf) => {
            if (buf) this.chunks.push({ start: at, bytes: new Uint8Array(buf) }); // else WebCrypto refused: the JS path serves it
          })
          .catch(() => {}),
      );
    }
    const done = Promise.all(pieces).then(() => {});
    this.lastFetch = Promise.all([this.lastFetch, done]).then(() => {});
    return done;
  }

  /** The next `n` keystream bytes into `out` at `off` (what the Prg draws: no zeros to XOR, no copy). */
  keystream(out: Uint8Array, off: number, n: number): void {
    const end = this.pos + n;
    while (this.pos < end) {
      // Drop chunks entirely behind the reader (fetches may land in any order).
      if (this.chunks.some((ch) => ch.start + ch.bytes.length <= this.pos)) this.chunks = this.chunks.filter((ch) => ch.start + ch.bytes.length > this.pos);
      const c = this.chunks.find((ch) => ch.start <= this.pos && this.pos < ch.start + ch.bytes.length);
      let take: number;
      if (c) {
        take = Math.min(end - this.pos, c.start + c.bytes.length - this.pos);
        out.set(c.bytes.subarray(this.pos - c.start, this.pos - c.start + take), off);
      } else {
        // Up to the next chunk that has arrived (or the end), computed in JS.
        const ahead = this.chunks.filter((ch) => ch.start > this.pos).reduce((m, ch) => Math.min(m, ch.start), Infinity);
        take = Math.min(end - this.pos, ahead - this.pos);
        this.js ??= new AesCtr(this.keyBytes, this.iv);
        this.js.seek(this.iv, this.pos);
        out.set(this.js.update(new Uint8Array(take)), off);
      }
      this.pos += take;
      off += take;
    }
    if (this.nextFetch - this.pos < ahead(this.pos)) this.refill();
  }

  /** `data` XOR the next data.length keystream bytes (a new array), as Cipher.update. */
  update(data: Uint8Array): Uint8Array {
    const n = data.length;
    const out = new Uint8Array(n);
    this.keystream(out, 0, n);
    // XOR four bytes at a time where `data` is aligned (the Prg passes zeros: then only the test runs).
    const words = data.byteOffset % 4 === 0 ? n >> 2 : 0;
    if (words) {
      const d = new Uint32Array(data.buffer, data.byteOffset, words);
      const o = new Uint32Array(out.buffer, 0, words);
      for (let i = 0; i < words; i++) if (d[i]) o[i]! ^= d[i]!;
    }
    for (let i = 4 * words; i < n; i++) if (data[i]) out[i]! ^= data[i]!;
    return out;
  }
}
