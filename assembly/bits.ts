// Packed bit-vector kernels for XOR-shared AND gates (exported through assembly/ring.ts). Every
// pointer is a byte offset into linear memory chosen by the JS arena (src/mpc/ring.ts); lengths
// are in bytes unless named nbits. Bulk work runs 16 bytes at a time in v128.

/** out = a ^ b over len bytes. */
export function xorBytes(a: usize, b: usize, out: usize, len: i32): void {
  const n = <usize>len;
  let i: usize = 0;
  for (; i + 16 <= n; i += 16) v128.store(out + i, v128.xor(v128.load(a + i), v128.load(b + i)));
  for (; i < n; i++) store<u8>(out + i, load<u8>(a + i) ^ load<u8>(b + i));
}

/** out = a & b over len bytes. */
export function andBytes(a: usize, b: usize, out: usize, len: i32): void {
  const n = <usize>len;
  let i: usize = 0;
  for (; i + 16 <= n; i += 16) v128.store(out + i, v128.and(v128.load(a + i), v128.load(b + i)));
  for (; i < n; i++) store<u8>(out + i, load<u8>(a + i) & load<u8>(b + i));
}

/**
 * Tighten `count` vectors of `nbits` bits, stored `vb` = ceil(nbits/8) bytes apart at src (unused
 * high bits zero), into count·nbits consecutive bits at out (ceil(count·nbits/8) bytes, all written).
 */
export function packTight(src: usize, count: i32, nbits: i32, out: usize): void {
  const vb = (nbits + 7) >> 3;
  const total = (<i64>count * <i64>nbits + 7) >> 3;
  if ((nbits & 7) == 0) {
    memory.copy(out, src, <usize>total);
    return;
  }
  memory.fill(out, 0, <usize>total);
  for (let i = 0; i < count; i++) {
    const off = <i64>i * <i64>nbits;
    const base = out + <usize>(off >> 3);
    const s = <u32>(off & 7);
    const v = src + <usize>i * <usize>vb;
    const last = out + <usize>total;
    for (let k = 0; k < vb; k++) {
      const x = <u32>load<u8>(v + <usize>k);
      const p = base + <usize>k;
      store<u8>(p, load<u8>(p) | <u8>(x << s));
      if (s != 0 && p + 1 < last) store<u8>(p + 1, load<u8>(p + 1) | <u8>(x >> (8 - s)));
    }
  }
}

/** Inverse of packTight: `count` vectors of `nbits` bits from tight bits at buf to vb-byte slots at out. */
export function unpackTight(buf: usize, count: i32, nbits: i32, out: usize): void {
  const vb = (nbits + 7) >> 3;
  if ((nbits & 7) == 0) {
    memory.copy(out, buf, <usize>count * <usize>vb);
    return;
  }
  const total = (<i64>count * <i64>nbits + 7) >> 3;
  const last = buf + <usize>total;
  const tm: i32 = (1 << (nbits & 7)) - 1;
  const tailMask = <u8>tm;
  for (let i = 0; i < count; i++) {
    const off = <i64>i * <i64>nbits;
    const base = buf + <usize>(off >> 3);
    const s = <u32>(off & 7);
    const v = out + <usize>i * <usize>vb;
    for (let k = 0; k < vb; k++) {
      const p = base + <usize>k;
      let x = <u32>load<u8>(p) >> s;
      if (s != 0 && p + 1 < last) x |= <u32>load<u8>(p + 1) << (8 - s);
      store<u8>(v + <usize>k, <u8>x);
    }
    store<u8>(v + <usize>(vb - 1), load<u8>(v + <usize>(vb - 1)) & tailMask);
  }
}

/**
 * AND-gate closing step on `len` bytes: d = own d ⊕ peer d, e = own e ⊕ peer e (the opened public
 * values), z = d&b ⊕ e&a ⊕ c, and party 0 also adds d&e. z may alias none of the inputs.
 */
export function andClose(d: usize, e: usize, pd: usize, pe: usize, a: usize, b: usize, c: usize, z: usize, len: i32, party0: i32): void {
  const n = <usize>len;
  const all = v128.splat<i32>(party0 != 0 ? -1 : 0);
  let i: usize = 0;
  for (; i + 16 <= n; i += 16) {
    const dv = v128.xor(v128.load(d + i), v128.load(pd + i));
    const ev = v128.xor(v128.load(e + i), v128.load(pe + i));
    let zv = v128.xor(v128.and(dv, v128.load(b + i)), v128.and(ev, v128.load(a + i)));
    zv = v128.xor(zv, v128.load(c + i));
    v128.store(z + i, v128.xor(zv, v128.and(v128.and(dv, ev), all)));
  }
  const m = <u8>(party0 != 0 ? 0xff : 0);
  for (; i < n; i++) {
    const dv = load<u8>(d + i) ^ load<u8>(pd + i), ev = load<u8>(e + i) ^ load<u8>(pe + i);
    store<u8>(z + i, (dv & load<u8>(b + i)) ^ (ev & load<u8>(a + i)) ^ load<u8>(c + i) ^ (dv & ev & m));
  }
}

/**
 * Closing step of the sign-only ReLU (compare.ts) for n elements, one pass: with the opened
 * D = d + pd (d = x − A), c_i the opened bit, r the dealer bit's arithmetic share ar and C its share tc:
 * xr = tc + D·ar; y = (x − xr) + c·(2·xr − x); mask = [party 0] − (ar + c·([party 0] − 2·ar)).
 */
export function reluTail(x: usize, d: usize, pd: usize, tc: usize, ar: usize, cbits: usize, n: i32, party0: i32, y: usize, mask: usize): void {
  const one: i64 = party0 != 0 ? 1 : 0;
  for (let i = 0; i < n; i++) {
    const o = (<usize>i) << 3;
    const xi = load<i64>(x + o), r = load<i64>(ar + o);
    const D = load<i64>(d + o) + load<i64>(pd + o);
    const xr = load<i64>(tc + o) + D * r;
    const c = <i64>((load<u8>(cbits + <usize>(i >> 3)) >> <u8>(i & 7)) & 1);
    store<i64>(y + o, xi - xr + c * (2 * xr - xi));
    store<i64>(mask + o, one - (r + c * (one - 2 * r)));
  }
}
