/**
 * Resident bit vectors: buffers in a second instance of build/ring.wasm whose memory, unlike the
 * per-call arena of ring-wasm.ts (reset by every kernel call), keeps them across calls and awaits.
 * The sign-only carry tree (protocols/sign-tree.ts) keeps its bit planes, dealer masks, openings and
 * gate outputs here from level to level, so an AND level copies in only what arrives from outside
 * (the dealer's masks, the peer's message) and copies out only what leaves (its own message):
 * before, every level copied its operands, masks and both messages into the arena and its outputs
 * back out (~11 copies of the level's bytes), and allocated fresh JS buffers for them.
 *
 * Memory is managed by a first-fit free list over the instance's memory; growing the memory detaches
 * every view of it, so views are made at the point of use and never kept across an allocation.
 * Buffers are owned by a `Region` (one per protocol call, lanes have their own), which frees what
 * is left when it closes, so a failed call leaks nothing.
 */

import type { Ring } from './ring.js';
import { instantiate, type Kernels, uninit } from './ring-wasm.js';

/** A buffer in resident memory: byte offset and length. */
export interface Buf {
  readonly p: number;
  readonly len: number;
}

/** First byte the heap hands out: above anything the AssemblyScript module places in low memory. */
const BASE = 65536;
const PAGE = 65536;
/** Allocation granule: keeps every buffer 64-byte aligned (v128 loads, cache lines). */
const GRAIN = 64;

/** The resident instance and its free list (sorted by address, adjacent blocks merged). */
class Heap {
  readonly kk: Kernels = instantiate();
  /** Free blocks as [start, length] pairs, by address. */
  private readonly free: [number, number][] = [];

  constructor() {
    const end = this.kk.memory.buffer.byteLength;
    if (end > BASE) this.free.push([BASE, end - BASE]);
  }

  alloc(bytes: number): number {
    const len = Math.max(GRAIN, Math.ceil(bytes / GRAIN) * GRAIN);
    for (let i = 0; i < this.free.length; i++) {
      const blk = this.free[i]!;
      if (blk[1] < len) continue;
      const p = blk[0];
      if (blk[1] === len) this.free.splice(i, 1);
      else (blk[0] += len), (blk[1] -= len);
      return p;
    }
    // no block fits: grow, extending the last block when it ends at the memory's end
    const mem = this.kk.memory;
    const end = mem.buffer.byteLength;
    const last = this.free[this.free.length - 1];
    const tail = last && last[0] + last[1] === end ? last[1] : 0;
    const need = len - tail;
    if (end + need > 0xffff0000) throw new Error(`resident: ${end + need} bytes needed, above the 4 GiB wasm limit`);
    const pages = Math.ceil(need / PAGE);
    mem.grow(pages);
    if (tail) last![1] += pages * PAGE;
    else this.free.push([end, pages * PAGE]);
    return this.alloc(bytes);
  }

  release(p: number, bytes: number): void {
    const len = Math.max(GRAIN, Math.ceil(bytes / GRAIN) * GRAIN);
    const f = this.free;
    let i = 0;
    while (i < f.length && f[i]![0] < p) i++;
    const prev = f[i - 1],
      next = f[i];
    if ((prev && prev[0] + prev[1] > p) || (next && p + len > next[0])) throw new Error(`resident: double free at ${p}`);
    if (prev && prev[0] + prev[1] === p) {
      prev[1] += len;
      if (next && prev[0] + prev[1] === next[0]) (prev[1] += next[1]), f.splice(i, 1);
    } else if (next && p + len === next[0]) (next[0] = p), (next[1] += len);
    else f.splice(i, 0, [p, len]);
  }

  /** A fresh byte view of the whole memory (valid until the next allocation). */
  u8(): Uint8Array {
    return new Uint8Array(this.kk.memory.buffer);
  }
}

let heap: Heap | null = null;

/** Buffers of one protocol call; `close` frees whatever is still live. */
export class Region {
  readonly h: Heap;
  private readonly live = new Set<Buf>();

  constructor() {
    heap ??= new Heap();
    this.h = heap;
  }

  /** The kernels operating on resident memory. */
  get kk(): Kernels {
    return this.h.kk;
  }

  /** `bytes` uninitialised bytes. */
  alloc(bytes: number): Buf {
    const b = { p: this.h.alloc(bytes), len: bytes };
    this.live.add(b);
    return b;
  }

  /** `bytes` zero bytes. */
  zeros(bytes: number): Buf {
    const b = this.alloc(bytes);
    this.h.u8().fill(0, b.p, b.p + bytes);
    return b;
  }

  free(b: Buf): void {
    if (!this.live.delete(b)) throw new Error('resident: buffer is not live in this region');
    this.h.release(b.p, b.len);
  }

  /** A resident copy of the first `len` bytes of `src`. */
  copyIn(src: Uint8Array, len = src.length): Buf {
    if (src.length < len) throw new Error(`resident: ${src.length} bytes, need ${len}`);
    const b = this.alloc(len);
    this.h.u8().set(len === src.length ? src : src.subarray(0, len), b.p);
    return b;
  }

  /** A JS copy of `len` bytes at resident offset `p`. */
  copyOut(p: number, len: number): Uint8Array {
    // unzeroed: every byte is overwritten (zeroing and page-faulting a fresh calloc'd buffer cost ~0.3 ms per 6 MB)
    const out = new Uint8Array(uninit(len), 0, len);
    out.set(this.h.u8().subarray(p, p + len));
    return out;
  }

  /** One JS array of `la` bytes at `a` followed by `lb` bytes at `b` (a message of two parts). */
  copyOut2(a: number, la: number, b: number, lb: number): Uint8Array {
    const out = new Uint8Array(uninit(la + lb), 0, la + lb);
    const u8 = this.h.u8();
    out.set(u8.subarray(a, a + la), 0);
    out.set(u8.subarray(b, b + lb), la);
    return out;
  }

  /** A resident copy of ring elements `x`. */
  ring(x: Ring): Buf {
    const b = this.alloc(8 * x.length);
    new BigInt64Array(this.kk.memory.buffer, b.p, x.length).set(x);
    return b;
  }

  /** A JS copy of `n` ring elements at resident offset `p`, into `out` (n elements) when given. */
  takeRing(p: number, n: number, out?: Ring): Ring {
    if (!out) return new BigInt64Array(this.copyOut(p, 8 * n).buffer, 0, n);
    if (out.length !== n) throw new Error(`resident: out has ${out.length} elements, expected ${n}`);
    out.set(new BigInt64Array(this.kk.memory.buffer, p, n));
    return out;
  }

  /** Copy `len` bytes within resident memory (regions may not overlap). */
  move(dst: number, src: number, len: number): void {
    this.h.u8().copyWithin(dst, src, src + len);
  }

  /** Bit planes lsb … lsb + nbits − 1 of the n ring elements at `px` (ring.ts toBitPlanes), each ceil(n/8) bytes. */
  planes(px: number, n: number, lsb: number, nbits: number): Buf {
    const stride = (n + 7) >>> 3;
    const scratch = this.alloc(this.kk.bitPlanesScratch()),
      out = this.alloc(stride * nbits);
    this.kk.toBitPlanes(px, n, lsb, nbits, out.p, stride, scratch.p);
    this.free(scratch);
    return out;
  }

  /** Free everything still live. */
  close(): void {
    for (const b of this.live) this.h.release(b.p, b.len);
    this.live.clear();
  }
}
