/**
 * Repeated float32 values in a tensor, as a numeric sort compares them (−0 equals +0, NaN equals
 * nothing): the battery's duplicate count and the indices the sentinel generator moves. Hashes of
 * the bit patterns, linear time; past DIRECT_MAX values the tensor is first split into 256 piles by
 * the top byte of the hash (stable, sequential writes) and each pile is hashed in its own small
 * table. One table of 2n slots missed the cache on every value (~125 ns a value on a 2.4 M-value
 * conv, a fifth of `obfuscate`); an 11-bit LSD radix sort took ~55 ns a value, piles ~35 ns.
 */

/** Tensors up to this many values are hashed in one table (it fits the CPU's L2 cache). */
const DIRECT_MAX = 1 << 15;

/** Fibonacci hashing multiplier (2^32 / golden ratio): the product's high bits are well mixed. */
const MIX = 0x9e3779b1;

/** How many values of `d` equal an earlier one (n − distinct). */
export function duplicateCount(d: Float32Array): number {
  return duplicates(d, false).length;
}

/** Indices of the values of `d` equal to an earlier one, ascending (as many as `duplicateCount`). */
export function duplicateIndices(d: Float32Array): number[] {
  return duplicates(d, true);
}

/** Bit pattern compared: −0 folded onto +0; every NaN (exponent all ones, nonzero mantissa) is 0xffffffff, skipped. */
function keyOf(bits: number): number {
  if (bits === 0x80000000) return 0;
  return (bits & 0x7fffffff) > 0x7f800000 ? NAN : bits;
}
const NAN = 0xffffffff;

/** Duplicate positions in order (`indices`), or an array whose length is their count (`!indices`; entries meaningless). */
function duplicates(d: Float32Array, indices: boolean): number[] {
  const n = d.length;
  const bits = new Uint32Array(d.buffer, d.byteOffset, n);
  if (n <= DIRECT_MAX) {
    const keys = new Uint32Array(n);
    for (let i = 0; i < n; i++) keys[i] = keyOf(bits[i]!);
    return duplicatesIn(keys, null, 0, n, new Table(n), []);
  }
  const start = new Uint32Array(257);
  for (let i = 0; i < n; i++) start[(Math.imul(keyOf(bits[i]!), MIX) >>> 24) + 1]!++;
  let most = 0;
  for (let b = 0; b < 256; b++) {
    most = Math.max(most, start[b + 1]!);
    start[b + 1]! += start[b]!;
  }
  const at = start.slice(0, 256);
  const keys = new Uint32Array(n);
  // (A count needs no positions: the piles then carry the keys alone.)
  const index = indices ? new Uint32Array(n) : null;
  for (let i = 0; i < n; i++) {
    const k = keyOf(bits[i]!);
    const j = at[Math.imul(k, MIX) >>> 24]!++;
    keys[j] = k;
    if (index) index[j] = i;
  }
  const table = new Table(most);
  const out: number[] = [];
  for (let b = 0; b < 256; b++) duplicatesIn(keys, index, start[b]!, start[b + 1]!, table, out);
  return indices && out.length ? Array.from(Uint32Array.from(out).sort()) : out;
}

/** An open-addressing table of bit patterns for at least `n` values, reused pile after pile (an empty slot holds NAN, a key never stored). */
class Table {
  readonly keys: Uint32Array;
  readonly shift: number;
  constructor(n: number) {
    let size = 2;
    while (size < 2 * n) size <<= 1;
    this.keys = new Uint32Array(size);
    this.shift = 32 - Math.log2(size);
  }
}

/** Append to `out` the positions (or `index` entries) in [from, to) whose key equals an earlier one there, in order. */
function duplicatesIn(keys: Uint32Array, index: Uint32Array | null, from: number, to: number, t: Table, out: number[]): number[] {
  const slots = t.keys.fill(NAN);
  const mask = slots.length - 1;
  for (let j = from; j < to; j++) {
    const k = keys[j]!;
    if (k === NAN) continue;
    // Within a pile the hash's top byte is shared: the slot comes from the bits below it.
    let h = (Math.imul(k, MIX) << 8) >>> t.shift;
    for (;;) {
      const at = slots[h]!;
      if (at === NAN) {
        slots[h] = k;
        break;
      }
      if (at === k) {
        out.push(index ? index[j]! : j);
        break;
      }
      h = (h + 1) & mask;
    }
  }
  return out;
}

/**
 * `duplicateCount(d)` after single values of `d` were overwritten in place, from the count before
 * (`before`) and the overwritten and written bit patterns (`removed`, `added`, any order): only the
 * multiplicities of those few patterns change, so one pass looking them up in a small table replaces
 * the full count (the duplicate steering recounted every tensor it touched: ~3x the cost on a
 * 2.4 M-value tensor, measured in CPU time).
 */
export function duplicateCountAfter(d: Float32Array, before: number, removed: readonly number[], added: readonly number[]): number {
  // Net change of each key's multiplicity.
  const net = new Map<number, number>();
  const step = (b: number, by: number): void => {
    const k = keyOf(b >>> 0);
    net.set(k, (net.get(k) ?? 0) + by);
  };
  for (const b of removed) step(b, -1);
  for (const b of added) step(b, 1);
  net.delete(NAN); // NaN never counts
  for (const [k, c] of net) if (c === 0) net.delete(k);
  if (!net.size) return before;
  // A change touching many keys is no cheaper than the full count.
  if (net.size * 16 > d.length) return duplicateCount(d);
  const t = new Table(2 * net.size);
  const slots = t.keys.fill(NAN);
  const mask = slots.length - 1;
  const seen = new Uint32Array(slots.length);
  for (const k of net.keys()) {
    let h = (Math.imul(k, MIX) << 8) >>> t.shift;
    while (slots[h] !== NAN) h = (h + 1) & mask;
    slots[h] = k;
  }
  const bits = new Uint32Array(d.buffer, d.byteOffset, d.length);
  for (let i = 0; i < bits.length; i++) {
    const k = keyOf(bits[i]!);
    if (k === NAN) continue;
    let h = (Math.imul(k, MIX) << 8) >>> t.shift;
    for (;;) {
      const at = slots[h]!;
      if (at === k) {
        seen[h]!++;
        break;
      }
      if (at === NAN) break;
      h = (h + 1) & mask;
    }
  }
  // A key held c times adds c − 1 duplicates (none when absent).
  let count = before;
  for (let h = 0; h < slots.length; h++) {
    if (slots[h] === NAN) continue;
    const now = seen[h]!;
    const was = now - net.get(slots[h]!)!;
    count += Math.max(0, now - 1) - Math.max(0, was - 1);
  }
  return count;
}
