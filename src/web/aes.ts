/**
 * AES-128 in CTR mode in plain JavaScript (T-table implementation), for the page: WebCrypto's
 * AES-CTR is asynchronous, while the engine's `Prg` draws keystream synchronously. The stream is
 * exactly OpenSSL's `aes-128-ctr` (128-bit big-endian counter), which test/web/aes.test.ts checks
 * against node:crypto, so shares and dealer material expand identically in the page and in Node.
 * T-tables are not constant-time; the keys here are PRG seeds in the user's own page, and the
 * timing side channel needs code running in the same process (see the README threat model).
 */

const SBOX = new Uint8Array(256);
const T0 = new Int32Array(256);
const T1 = new Int32Array(256);
const T2 = new Int32Array(256);
const T3 = new Int32Array(256);

// Build the S-box from GF(2^8) inverses and the affine map (no 256-byte literal to mistype).
(() => {
  const exp = new Uint8Array(256);
  const log = new Uint8Array(256);
  let x = 1;
  for (let i = 0; i < 255; i++) {
    exp[i] = x;
    log[x] = i;
    x ^= (x << 1) ^ (x & 0x80 ? 0x1b : 0); // multiply by 3
    x &= 0xff;
  }
  for (let i = 0; i < 256; i++) {
    const inv = i === 0 ? 0 : exp[(255 - log[i]!) % 255]!;
    let s = inv;
    let r = inv;
    for (let k = 0; k < 4; k++) {
      r = ((r << 1) | (r >> 7)) & 0xff;
      s ^= r;
    }
    SBOX[i] = s ^ 0x63;
  }
  for (let i = 0; i < 256; i++) {
    const s = SBOX[i]!;
    const s2 = ((s << 1) ^ (s & 0x80 ? 0x1b : 0)) & 0xff;
    const s3 = s2 ^ s;
    const t = ((s2 << 24) | (s << 16) | (s << 8) | s3) >>> 0;
    T0[i] = t;
    T1[i] = ((t >>> 8) | (t << 24)) >>> 0;
    T2[i] = ((t >>> 16) | (t << 16)) >>> 0;
    T3[i] = ((t >>> 24) | (t << 8)) >>> 0;
  }
})();

/** The 44 round-key words of an AES-128 key. */
function expandKey(key: Uint8Array): Int32Array {
  if (key.length !== 16) throw new Error(`aes-128: key must be 16 bytes, got ${key.length}`);
  const w = new Uint32Array(44);
  for (let i = 0; i < 4; i++) w[i] = ((key[4 * i]! << 24) | (key[4 * i + 1]! << 16) | (key[4 * i + 2]! << 8) | key[4 * i + 3]!) >>> 0;
  let rcon = 1;
  for (let i = 4; i < 44; i++) {
    let t = w[i - 1]!;
    if (i % 4 === 0) {
      t = ((SBOX[(t >>> 16) & 255]! << 24) | (SBOX[(t >>> 8) & 255]! << 16) | (SBOX[t & 255]! << 8) | SBOX[t >>> 24]!) ^ (rcon << 24);
      rcon = ((rcon << 1) ^ (rcon & 0x80 ? 0x1b : 0)) & 0xff;
    }
    w[i] = (w[i - 4]! ^ t) >>> 0;
  }
  return new Int32Array(w.buffer);
}

/** One AES-128 encryption of the counter words `c` into `b` (hot loop: locals only, no closures). */
function encryptBlock(rk: Int32Array, c: Uint32Array, b: Uint8Array): void {
  const t0 = T0,
    t1 = T1,
    t2 = T2,
    t3 = T3,
    sb = SBOX;
  let s0 = (c[0]! ^ rk[0]!) | 0;
  let s1 = (c[1]! ^ rk[1]!) | 0;
  let s2 = (c[2]! ^ rk[2]!) | 0;
  let s3 = (c[3]! ^ rk[3]!) | 0;
  for (let k = 4; k < 40; k += 4) {
    const a0 = t0[s0 >>> 24]! ^ t1[(s1 >>> 16) & 255]! ^ t2[(s2 >>> 8) & 255]! ^ t3[s3 & 255]! ^ rk[k]!;
    const a1 = t0[s1 >>> 24]! ^ t1[(s2 >>> 16) & 255]! ^ t2[(s3 >>> 8) & 255]! ^ t3[s0 & 255]! ^ rk[k + 1]!;
    const a2 = t0[s2 >>> 24]! ^ t1[(s3 >>> 16) & 255]! ^ t2[(s0 >>> 8) & 255]! ^ t3[s1 & 255]! ^ rk[k + 2]!;
    const a3 = t0[s3 >>> 24]! ^ t1[(s0 >>> 16) & 255]! ^ t2[(s1 >>> 8) & 255]! ^ t3[s2 & 255]! ^ rk[k + 3]!;
    s0 = a0;
    s1 = a1;
    s2 = a2;
    s3 = a3;
  }
  let k = rk[40]!;
  b[0] = sb[s0 >>> 24]! ^ (k >>> 24);
  b[1] = sb[(s1 >>> 16) & 255]! ^ ((k >>> 16) & 255);
  b[2] = sb[(s2 >>> 8) & 255]! ^ ((k >>> 8) & 255);
  b[3] = sb[s3 & 255]! ^ (k & 255);
  k = rk[41]!;
  b[4] = sb[s1 >>> 24]! ^ (k >>> 24);
  b[5] = sb[(s2 >>> 16) & 255]! ^ ((k >>> 16) & 255);
  b[6] = sb[(s3 >>> 8) & 255]! ^ ((k >>> 8) & 255);
  b[7] = sb[s0 & 255]! ^ (k & 255);
  k = rk[42]!;
  b[8] = sb[s2 >>> 24]! ^ (k >>> 24);
  b[9] = sb[(s3 >>> 16) & 255]! ^ ((k >>> 16) & 255);
  b[10] = sb[(s0 >>> 8) & 255]! ^ ((k >>> 8) & 255);
  b[11] = sb[s1 & 255]! ^ (k & 255);
  k = rk[43]!;
  b[12] = sb[s3 >>> 24]! ^ (k >>> 24);
  b[13] = sb[(s0 >>> 16) & 255]! ^ ((k >>> 16) & 255);
  b[14] = sb[(s1 >>> 8) & 255]! ^ ((k >>> 8) & 255);
  b[15] = sb[s2 & 255]! ^ (k & 255);
}

/** Add `n` (< 2^53) to a 128-bit big-endian counter held in four u32 words. */
export function addBlocks(c: Uint32Array, n: number): void {
  let carry = n;
  for (let i = 3; i >= 0 && carry > 0; i--) {
    const v = c[i]! + (carry % 0x100000000);
    carry = Math.floor(carry / 0x100000000) + (v >= 0x100000000 ? 1 : 0);
    c[i] = v >>> 0;
  }
}

/** AES-128-CTR keystream XOR, continuing across `update` calls like node:crypto's Cipher. */
export class AesCtr {
  private readonly rk: Int32Array;
  private readonly ctr = new Uint32Array(4);
  private readonly block = new Uint8Array(16);
  private used = 16;

  /** Key (16 bytes) and initial counter block (16 bytes). */
  constructor(key: Uint8Array, iv: Uint8Array) {
    if (iv.length !== 16) throw new Error(`aes-128-ctr: iv must be 16 bytes, got ${iv.length}`);
    this.rk = expandKey(key);
    for (let i = 0; i < 4; i++) this.ctr[i] = ((iv[4 * i]! << 24) | (iv[4 * i + 1]! << 16) | (iv[4 * i + 2]! << 8) | iv[4 * i + 3]!) >>> 0;
  }

  /** Jump to keystream byte `offset` from the initial counter block `iv` (CTR is seekable). */
  seek(iv: Uint8Array, offset: number): void {
    const c = this.ctr;
    for (let i = 0; i < 4; i++) c[i] = ((iv[4 * i]! << 24) | (iv[4 * i + 1]! << 16) | (iv[4 * i + 2]! << 8) | iv[4 * i + 3]!) >>> 0;
    addBlocks(c, Math.floor(offset / 16));
    this.used = 16;
    const skip = offset % 16;
    if (skip) {
      this.next();
      this.used = skip;
    }
  }

  /** Encrypt the counter into `this.block` and step the 128-bit big-endian counter. */
  private next(): void {
    encryptBlock(this.rk, this.ctr, this.block);
    const c = this.ctr;
    for (let i = 3; i >= 0; i--) {
      c[i] = (c[i]! + 1) >>> 0;
      if (c[i] !== 0) break;
    }
    this.used = 0;
  }

  /** `data` XOR the next data.length keystream bytes (a new array). */
  update(data: Uint8Array): Uint8Array {
    const n = data.length;
    const out = new Uint8Array(n);
    const b = this.block;
    let i = 0;
    while (i < n && this.used < 16) out[i] = data[i++]! ^ b[this.used++]!;
    while (n - i >= 16) {
      this.next();
      for (let j = 0; j < 16; j++) out[i + j] = data[i + j]! ^ b[j]!;
      i += 16;
      this.used = 16;
    }
    if (i < n) {
      this.next();
      while (i < n) out[i] = data[i++]! ^ b[this.used++]!;
    }
    return out;
  }
}
