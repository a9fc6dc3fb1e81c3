/**
 * AES-128-CTR for the page's `Prg`: synchronous like node:crypto's Cipher, fast like WebCrypto. The
 * keystream is a function of its byte position, so it may come from anywhere: WebCrypto (native,
 * asynchronous) fills chunks ahead of the reader in the background — the protocol awaits the
 * network between draws, which lets those chunks land — and whatever is not fetched yet when a
 * draw comes is computed on the spot by the JS implementation (aes.ts), seeked to that position.
 * Both produce OpenSSL's stream (test/web/aes.test.ts), so the bytes never depend on the timing.
 */
import { AesCtr, addBlocks } from './aes.js';

/**
 * How far ahead of the reader to fetch: as much as it has read so far, between FIRST_CHUNK and
 * MAX_CHUNK — a PRG that draws a few bytes costs one small chunk, a large one is soon a chunk ahead.
 */
const FIRST_CHUNK = 64 * 1024;
const MAX_CHUNK = 4 * 1024 * 1024;
const ahead = (pos: number): number => Math.min(MAX_CHUNK, Math.max(FIRST_CHUNK, Math.ceil(pos / 16) * 16));

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

  /** Start fetching the next chunk if none is in flight (no-op without WebCrypto). */
  private refill(): void {
    if (this.inflight || !this.subtle) return;
    this.inflight = true;
    // Never fetch what has already been read.
    const start = Math.max(this.nextFetch, Math.ceil(this.pos / 16) * 16);
    const size = ahead(this.pos);
    this.nextFetch = start + size;
    const subtle = this.subtle;
    this.key ??= subtle.importKey('raw', this.keyBytes, { name: 'AES-CTR' }, false, ['encrypt']).catch(() => null);
    const counter = new Uint32Array(4);
    const dv = new DataView(this.iv.buffer, this.iv.byteOffset, 16);
    for (let i = 0; i < 4; i++) counter[i] = dv.getUint32(4 * i, false);
    addBlocks(counter, start / 16);
    const block = new Uint8Array(16);
    const bv = new DataView(block.buffer);
    for (let i = 0; i < 4; i++) bv.setUint32(4 * i, counter[i]!, false);
    this.key
      .then((k) => (k ? subtle.encrypt({ name: 'AES-CTR', counter: block, length: 128 }, k, new Uint8Array(size)) : null))
      .then((buf) => {
        this.inflight = false;
        if (!buf) return; // WebCrypto refused: the JS path serves everything.
        this.chunks.push({ start, bytes: new Uint8Array(buf) });
        if (this.nextFetch - this.pos < ahead(this.pos)) this.refill();
      })
      .catch(() => {
        this.inflight = false;
      });
  }

  /** The next `n` keystream bytes into `out` at `off`. */
  private fill(out: Uint8Array, off: number, n: number): void {
    const end = this.pos + n;
    while (this.pos < end) {
      // Drop chunks entirely behind the reader.
      while (this.chunks.length && this.chunks[0]!.start + this.chunks[0]!.bytes.length <= this.pos) this.chunks.shift();
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
    this.fill(out, 0, n);
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
