/**
 * The slice of Node's `Buffer` the engine uses (allocation, from, big-endian u32 write, hex), for the
 * page bundle: esbuild injects this wherever a module names the global `Buffer`. A Buffer here is a
 * plain Uint8Array subclass, so typed-array views over its memory behave as in Node.
 */
// @ts-expect-error Node's Buffer.from(string, encoding) is not Uint8Array.from's signature, by design.
export class Buffer extends Uint8Array {
  /** Zero-filled bytes. */
  static alloc(n: number): Buffer {
    return new Buffer(n);
  }
  /** In the page, unsafe allocation is zero-filled too (there is no pool to skip). */
  static allocUnsafe(n: number): Buffer {
    return new Buffer(n);
  }
  /** Same as allocUnsafe; byteOffset is 0, as Node's allocUnsafeSlow guarantees. */
  static allocUnsafeSlow(n: number): Buffer {
    return new Buffer(n);
  }
  /** A copy of bytes or an array, or the UTF-8 bytes of a string. */
  static override from(src: ArrayLike<number> | ArrayBuffer | string, enc?: string): Buffer {
    if (typeof src === 'string') {
      if (enc === 'hex') return new Buffer(Uint8Array.from(src.match(/../g) ?? [], (h) => parseInt(h, 16)));
      if (enc === 'base64') return new Buffer(Uint8Array.from(atob(src), (c) => c.charCodeAt(0)));
      return new Buffer(new TextEncoder().encode(src));
    }
    if (src instanceof ArrayBuffer) return new Buffer(new Uint8Array(src));
    return new Buffer(Uint8Array.from(src as ArrayLike<number>));
  }
  /** True for this class only. */
  static isBuffer(x: unknown): x is Buffer {
    return x instanceof Buffer;
  }
  /** Concatenate byte arrays. */
  static concat(list: Uint8Array[]): Buffer {
    const out = new Buffer(list.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of list) out.set(p, off), (off += p.length);
    return out;
  }
  /** Big-endian unsigned 32-bit write. */
  writeUInt32BE(v: number, off: number): number {
    new DataView(this.buffer, this.byteOffset, this.byteLength).setUint32(off, v, false);
    return off + 4;
  }
  /** Hex or UTF-8 text of the bytes. */
  override toString(enc?: string): string {
    if (enc === 'hex') return Array.from(this, (b) => b.toString(16).padStart(2, '0')).join('');
    return new TextDecoder().decode(this);
  }
}
