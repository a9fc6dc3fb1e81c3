/**
 * The DCF of dcf.ts with output group Z_2 and payload β = 1: XOR shares of [x < α]. The value
 * "Convert(v)" of a child is one bit of its own hashed seed block, so a party hashes ONE AES block
 * per level (dcf.ts: two), and each level's correction word is s_CW (16 bytes) carrying t_CW^L in
 * bit 0 and V_CW in bit 1, plus the packed t_CW^R bit: about 16.1 bytes per level (dcf.ts: 32.1).
 * Child block layout after hashing: bit 0 = t, bit 1 = v, bits 2..127 = the child seed (λ = 126).
 *
 * Early termination (Boyle, Gilboa, Ishai, CCS 2016, §3.2.1, applied to the DCF): the tree stops
 * ν = min(7, bits) levels above the leaves. A node at depth m = bits − ν is hashed once more (leaf
 * tweak) into 128 bits, read as a truth table over the ν low input bits; the final correction word
 * (16 bytes) makes the two parties' tables on α's path XOR to [x_low < α_low] ⊕ (the path's value
 * sum), off the path both tables are equal (same seed, same t) and cancel. So a 15-bit key is
 * 8 levels + 16 bytes (145 bytes, not 242) and a party hashes m + 1 blocks, not 15.
 * Layout of the shared correction words, level-major: per level s_CW (16·N), t_CW^R (packed,
 * padded to 32-bit words); then the leaf correction words (16·N).
 */
import { aesBlocks, mmoInPlace, runSteps, TWEAK } from './mmo.js';

const tBytes = (count: number): number => 4 * ((count + 31) >>> 5);

/** Levels folded into the leaf table (2^7 = 128 bits = one AES block). */
const ET = 7;
/** Tree depth (levels with correction words) of a `bits`-bit key. */
const depth = (bits: number): number => Math.max(0, bits - ET);

/** Bytes of the shared correction words for `count` bit-output keys on a `bits`-bit domain. */
export function dcfBitCwBytes(count: number, bits: number): number {
  return depth(bits) * (16 * count + tBytes(count)) + 16 * count;
}

function check(what: string, count: number, bits: number): void {
  if (!Number.isInteger(count) || count < 0) throw new Error(`fss.dcfbit ${what}: bad element count ${count}`);
  if (!Number.isInteger(bits) || bits < 0 || bits > 63) throw new Error(`fss.dcfbit ${what}: domain bits ${bits} not in [0, 63]`);
}

const SEED_MASK = ~3; // bits 0 (t) and 1 (v) of word 0 are not seed bits

/** The low `nu` bits of element e of a 64-bit word array (nu ≤ 7). */
const lowBits = (w: Uint32Array, e: number, nu: number): number => w[2 * e]! & ((1 << nu) - 1);

/** Dealer: correction words of `count` keys sharing [x < α] in XOR form (α read from `alpha`'s low `bits` bits). */
export function* dcfBitGenSteps(bits: number, alpha: BigInt64Array, seed0: Uint8Array, seed1: Uint8Array): Generator<void, Uint8Array> {
  const N = alpha.length;
  check('gen', N, bits);
  if (seed0.length !== 16 * N || seed1.length !== 16 * N) throw new Error(`fss.dcfbit gen: inconsistent sizes for ${N} keys`);
  const aw = new Uint32Array(alpha.buffer, alpha.byteOffset, 2 * N);
  const s0 = new Uint32Array(seed0.slice().buffer),
    s1 = new Uint32Array(seed1.slice().buffer);
  const t0 = new Uint8Array(N),
    t1 = new Uint8Array(N).fill(1),
    V = new Uint8Array(N);
  for (let e = 0; e < N; e++) (s0[4 * e] = s0[4 * e]! & SEED_MASK), (s1[4 * e] = s1[4 * e]! & SEED_MASK);
  const m = depth(bits),
    nu = bits - m;
  const tb = tBytes(N),
    levelBytes = 16 * N + tb;
  const cw = new Uint8Array(dcfBitCwBytes(N, bits));
  const buf = new Uint8Array(64 * N),
    w = new Uint32Array(buf.buffer);
  for (let i = 0; i < m; i++) {
    yield; // one tree level of every element per step: a caller may let its event loop run
    const k = bits - 1 - i,
      hiWord = k >= 32 ? 1 : 0,
      sh = k & 31;
    // both parties' two children per element, one cipher call for the whole level
    for (let e = 0; e < N; e++) {
      const o = 16 * e,
        s = 4 * e;
      const a0 = s0[s]!,
        a1 = s0[s + 1]!,
        a2 = s0[s + 2]!,
        a3 = s0[s + 3]!;
      const c0 = s1[s]!,
        c1 = s1[s + 1]!,
        c2 = s1[s + 2]!,
        c3 = s1[s + 3]!;
      w[o] = a0;
      w[o + 1] = a1;
      w[o + 2] = a2;
      w[o + 3] = a3; // tweak sL = 0
      w[o + 4] = a0;
      w[o + 5] = a1;
      w[o + 6] = a2;
      w[o + 7] = a3 ^ (2 << 24); // sR = 2 as in dcf.ts
      w[o + 8] = c0;
      w[o + 9] = c1;
      w[o + 10] = c2;
      w[o + 11] = c3;
      w[o + 12] = c0;
      w[o + 13] = c1;
      w[o + 14] = c2;
      w[o + 15] = c3 ^ (2 << 24);
    }
    mmoInPlace(buf);
    const scw = new Uint32Array(cw.buffer, i * levelBytes, 4 * N);
    const tR = cw.subarray(i * levelBytes + 16 * N, (i + 1) * levelBytes);
    for (let e = 0; e < N; e++) {
      const a = (aw[2 * e + hiWord]! >>> sh) & 1;
      const b0 = 16 * e,
        b1 = b0 + 8; // party p's L block at b_p, R block at b_p + 4
      const keep = a ? 4 : 0,
        lose = a ? 0 : 4;
      const tL0 = w[b0]! & 1,
        tR0 = w[b0 + 4]! & 1,
        tL1 = w[b1]! & 1,
        tR1 = w[b1 + 4]! & 1;
      const vLose0 = (w[b0 + lose]! >>> 1) & 1,
        vLose1 = (w[b1 + lose]! >>> 1) & 1;
      const vKeep0 = (w[b0 + keep]! >>> 1) & 1,
        vKeep1 = (w[b1 + keep]! >>> 1) & 1;
      const vcw = vLose0 ^ vLose1 ^ V[e]! ^ a; // β = 1 is added when the lost side is L (α_i = 1)
      V[e] = V[e]! ^ vKeep0 ^ vKeep1 ^ vcw;
      const tLcw = tL0 ^ tL1 ^ a ^ 1,
        tRcw = tR0 ^ tR1 ^ a;
      if (tRcw) tR[e >>> 3] = tR[e >>> 3]! | (1 << (e & 7));
      const tKeepCw = a ? tRcw : tLcw;
      const tk0 = a ? tR0 : tL0,
        tk1 = a ? tR1 : tL1;
      const m0 = t0[e] ? -1 : 0,
        m1 = t1[e] ? -1 : 0,
        s = 4 * e;
      const c0 = (w[b0 + lose]! ^ w[b1 + lose]!) & SEED_MASK;
      const c1 = w[b0 + lose + 1]! ^ w[b1 + lose + 1]!,
        c2 = w[b0 + lose + 2]! ^ w[b1 + lose + 2]!,
        c3 = w[b0 + lose + 3]! ^ w[b1 + lose + 3]!;
      scw[s] = c0 | tLcw | (vcw << 1);
      scw[s + 1] = c1;
      scw[s + 2] = c2;
      scw[s + 3] = c3;
      s0[s] = (w[b0 + keep]! ^ (c0 & m0)) & SEED_MASK;
      s0[s + 1] = w[b0 + keep + 1]! ^ (c1 & m0);
      s0[s + 2] = w[b0 + keep + 2]! ^ (c2 & m0);
      s0[s + 3] = w[b0 + keep + 3]! ^ (c3 & m0);
      s1[s] = (w[b1 + keep]! ^ (c0 & m1)) & SEED_MASK;
      s1[s + 1] = w[b1 + keep + 1]! ^ (c1 & m1);
      s1[s + 2] = w[b1 + keep + 2]! ^ (c2 & m1);
      s1[s + 3] = w[b1 + keep + 3]! ^ (c3 & m1);
      t0[e] = tk0 ^ (t0[e]! & tKeepCw);
      t1[e] = tk1 ^ (t1[e]! & tKeepCw);
    }
  }
  // Leaf: tables G(s_p) = MMO(s_p ⊕ leaf tweak); CW = G(s0) ⊕ G(s1) ⊕ (V broadcast) ⊕ [j < α_low]_j.
  const leaf = new Uint8Array(32 * N),
    lw = new Uint32Array(leaf.buffer);
  for (let e = 0; e < N; e++) {
    for (let q = 0; q < 4; q++) (lw[8 * e + q] = s0[4 * e + q]!), (lw[8 * e + 4 + q] = s1[4 * e + q]!);
    lw[8 * e + 3] = lw[8 * e + 3]! ^ (TWEAK.leaf << 24);
    lw[8 * e + 7] = lw[8 * e + 7]! ^ (TWEAK.leaf << 24);
  }
  mmoInPlace(leaf);
  const last = new Uint32Array(cw.buffer, m * levelBytes, 4 * N);
  for (let e = 0; e < N; e++) {
    const al = lowBits(aw, e, nu),
      vm = V[e] ? -1 : 0;
    for (let q = 0; q < 4; q++) {
      // bits j = 32q .. 32q+31 of the table [j < α_low] (α_low ≤ 127)
      const lo = 32 * q,
        lt = al <= lo ? 0 : al >= lo + 32 ? -1 : (1 << (al - lo)) - 1;
      last[4 * e + q] = lw[8 * e + q]! ^ lw[8 * e + 4 + q]! ^ vm ^ lt;
    }
  }
  leaf.fill(0);
  buf.fill(0);
  s0.fill(0);
  s1.fill(0);
  return cw;
}

/** dcfBitGenSteps run to completion (one synchronous call). */
export function dcfBitGen(bits: number, alpha: BigInt64Array, seed0: Uint8Array, seed1: Uint8Array): Uint8Array {
  return runSteps(dcfBitGenSteps(bits, alpha, seed0, seed1));
}

/** Party `party`: its XOR shares (packed bits) of [x < α] for every element's public input in `x`. */
export function dcfBitEval(party: 0 | 1, bits: number, seeds: Uint8Array, cw: Uint8Array, x: BigInt64Array): Uint8Array {
  const N = x.length;
  check('eval', N, bits);
  if (seeds.length !== 16 * N) throw new Error(`fss.dcfbit eval: ${seeds.length} seed bytes for ${N} keys`);
  if (cw.length !== dcfBitCwBytes(N, bits)) throw new Error(`fss.dcfbit eval: correction words have ${cw.length} bytes, expected ${dcfBitCwBytes(N, bits)}`);
  const c8 = cw.byteOffset & 3 ? cw.slice() : cw;
  const xw = new Uint32Array(x.buffer, x.byteOffset, 2 * N);
  const m = depth(bits),
    nu = bits - m;
  const T = new Uint8Array(N).fill(party),
    V = new Uint8Array(N);
  const tb = tBytes(N),
    levelBytes = 16 * N + tb;
  // the seeds live in the hash buffer itself: each level rewrites them in place
  const buf = new Uint8Array(16 * N),
    w = new Uint32Array(buf.buffer);
  buf.set(seeds);
  for (let e = 0; e < N; e++) w[4 * e] = w[4 * e]! & SEED_MASK;
  for (let i = 0; i < m; i++) {
    const k = bits - 1 - i,
      hiWord = k >= 32 ? 1 : 0,
      sh = k & 31;
    for (let e = 0; e < N; e++) w[4 * e + 3] = w[4 * e + 3]! ^ ((((xw[2 * e + hiWord]! >>> sh) & 1) * 2) << 24); // tweak sL/sR
    const h = aesBlocks(buf);
    const scw = new Uint32Array(c8.buffer, c8.byteOffset + i * levelBytes, 4 * N);
    const tR = c8.subarray(i * levelBytes + 16 * N, (i + 1) * levelBytes);
    for (let e = 0; e < N; e++) {
      const o = 4 * e;
      let n0 = h[o]! ^ w[o]!,
        n1 = h[o + 1]! ^ w[o + 1]!,
        n2 = h[o + 2]! ^ w[o + 2]!,
        n3 = h[o + 3]! ^ w[o + 3]!;
      let t = n0 & 1,
        v = (n0 >>> 1) & 1;
      if (T[e]) {
        const c0 = scw[o]!;
        n0 ^= c0;
        n1 ^= scw[o + 1]!;
        n2 ^= scw[o + 2]!;
        n3 ^= scw[o + 3]!;
        t ^= (xw[2 * e + hiWord]! >>> sh) & 1 ? (tR[e >>> 3]! >>> (e & 7)) & 1 : c0 & 1;
        v ^= (c0 >>> 1) & 1;
      }
      w[o] = n0 & SEED_MASK;
      w[o + 1] = n1;
      w[o + 2] = n2;
      w[o + 3] = n3;
      T[e] = t;
      V[e] = V[e]! ^ v;
    }
  }
  for (let e = 0; e < N; e++) w[4 * e + 3] = w[4 * e + 3]! ^ (TWEAK.leaf << 24);
  mmoInPlace(buf);
  const last = new Uint32Array(c8.buffer, c8.byteOffset + m * levelBytes, 4 * N);
  const out = new Uint8Array((N + 7) >>> 3);
  for (let e = 0; e < N; e++) {
    const j = lowBits(xw, e, nu),
      q = 4 * e + (j >>> 5),
      b = j & 31;
    const bit = V[e]! ^ (w[q]! >>> b) ^ (T[e]! & (last[q]! >>> b));
    if (bit & 1) out[e >>> 3] = out[e >>> 3]! | (1 << (e & 7));
  }
  buf.fill(0);
  return out;
}

/** AES blocks a party hashes per element for a `bits`-bit bit-output DCF (one per level above the leaf, one leaf). */
export const dcfBitEvalBlocks = (bits: number): number => depth(bits) + 1;
