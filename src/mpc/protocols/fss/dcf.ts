/**
 * Distributed comparison function (DCF), Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar, Rathee,
 * "Function Secret Sharing for Mixed-Mode and Fixed-Point Secure Computation", EUROCRYPT 2021
 * (construction "DCF" with the correction words s_CW ‖ V_CW ‖ t_CW^L ‖ t_CW^R per level and a final
 * CW^(n+1)). Keys share f_{α,β}(x) = β if x < α else 0 over inputs x ∈ [0, 2^bits), 0 ≤ bits ≤ 63,
 * with β in the group Z_2^64 × Z_2^64 (two ring components per element): Eval(0, k0, x) +
 * Eval(1, k1, x) = f(x). Seeds are λ = 127 bits (bit 0 of a 16-byte seed is the control bit t).
 *
 * Everything is batched over many independent keys ("elements"): the dealer generates a whole
 * layer's keys level by level and a party evaluates them level by level, each level one AES call
 * over all elements' seeds (mmo.ts); a party hashes only the path it walks (2 blocks per level: the
 * child seed and value block in the input's direction), plus 1 leaf block for Convert(s^(n)).
 *
 * Correction words are identical in both keys, so they are stored once ("cw"), level-major so that
 * evaluation reads one contiguous slice per level:
 *   per level: s_CW (16·N bytes; bit 0 of each holds t_CW^L), V_CW (16·N), t_CW^R (packed bits,
 *   padded to whole 32-bit words)
 *   then CW^(n+1) (16·N bytes).
 * A party's key is its 16-byte seed per element plus these correction words.
 */
import { aesBlocks, mmoInPlace, runSteps, TWEAK } from './mmo.js';

/** Bytes of the shared correction words for `count` keys on a `bits`-bit domain. */
export function dcfCwBytes(count: number, bits: number): number {
  return bits * (32 * count + tBytes(count)) + 16 * count;
}

/** Bytes of one level's packed t_CW^R bits, padded to 4 so every level stays word-aligned. */
const tBytes = (count: number): number => 4 * ((count + 31) >>> 5);

/** Largest DCF domain (bits): inputs and α are read from 64-bit words, MSB first. */
export const DCF_MAX_BITS = 63;

function checkShape(what: string, count: number, bits: number): void {
  if (!Number.isInteger(count) || count < 0) throw new Error(`fss.dcf ${what}: bad element count ${count}`);
  if (!Number.isInteger(bits) || bits < 0 || bits > DCF_MAX_BITS) throw new Error(`fss.dcf ${what}: domain bits ${bits} not in [0, ${DCF_MAX_BITS}]`);
}

const u32 = (a: BigInt64Array | Uint8Array, words: number): Uint32Array => {
  if (a.byteOffset & 3) throw new Error('fss.dcf: buffer is not 4-byte aligned');
  return new Uint32Array(a.buffer, a.byteOffset, words);
};

/** Bit k (0 = least significant) of element e of a 64-bit word array. */
const bitOf = (w: Uint32Array, e: number, k: number): number => (k < 32 ? w[2 * e]! >>> k : w[2 * e + 1]! >>> (k - 32)) & 1;

// Two-component Z_2^64 arithmetic on 4 consecutive u32 words (lo, hi, lo, hi).
function add4(d: Uint32Array, di: number, a: Uint32Array, ai: number): void {
  for (let c = 0; c < 4; c += 2) {
    const lo = d[di + c]! + a[ai + c]!;
    d[di + c + 1] = d[di + c + 1]! + a[ai + c + 1]! + (lo > 0xffffffff ? 1 : 0);
    d[di + c] = lo;
  }
}
function sub4(d: Uint32Array, di: number, a: Uint32Array, ai: number): void {
  for (let c = 0; c < 4; c += 2) {
    const lo = d[di + c]! - a[ai + c]!;
    d[di + c + 1] = d[di + c + 1]! - a[ai + c + 1]! - (lo < 0 ? 1 : 0);
    d[di + c] = lo;
  }
}
function neg4(d: Uint32Array, di: number): void {
  for (let c = 0; c < 4; c += 2) {
    const lo = d[di + c]!;
    d[di + c + 1] = lo === 0 ? -d[di + c + 1]! : ~d[di + c + 1]!;
    d[di + c] = -lo;
  }
}

/**
 * Dealer: the shared correction words of `count` DCF keys with thresholds `alpha` (count values in
 * [0, 2^bits), read as unsigned) and payloads `beta` (2·count ring elements, interleaved per key),
 * for root seeds `seed0`, `seed1` (16·count bytes each, the parties' key seeds; bit 0 is ignored).
 */
export function* dcfGenSteps(bits: number, alpha: BigInt64Array, beta: BigInt64Array, seed0: Uint8Array, seed1: Uint8Array): Generator<void, Uint8Array> {
  const N = alpha.length;
  checkShape('gen', N, bits);
  if (beta.length !== 2 * N || seed0.length !== 16 * N || seed1.length !== 16 * N) throw new Error(`fss.dcf gen: inconsistent sizes for ${N} keys`);
  const aw = u32(alpha, 2 * N),
    bw = u32(beta, 4 * N);
  const s0 = new Uint32Array(4 * N),
    s1 = new Uint32Array(4 * N);
  s0.set(new Uint32Array(seed0.slice().buffer));
  s1.set(new Uint32Array(seed1.slice().buffer));
  const t0 = new Uint8Array(N),
    t1 = new Uint8Array(N).fill(1);
  for (let e = 0; e < N; e++) (s0[4 * e] = s0[4 * e]! & ~1), (s1[4 * e] = s1[4 * e]! & ~1);
  const V = new Uint32Array(4 * N);
  const cw = new Uint8Array(dcfCwBytes(N, bits));
  const tb = tBytes(N),
    levelBytes = 32 * N + tb;
  const buf = new Uint8Array(128 * N),
    w = new Uint32Array(buf.buffer);
  const vcw = new Uint32Array(4);
  for (let i = 0; i < bits; i++) {
    yield; // one tree level of every element per step: a caller may let its event loop run
    const k = bits - 1 - i; // MSB first
    // both parties' four children per element: blocks (e, p, j) = s_p ⊕ tweak j
    for (let e = 0; e < N; e++) {
      for (let p = 0; p < 2; p++) {
        const s = p === 0 ? s0 : s1,
          o = 32 * e + 16 * p;
        const x0 = s[4 * e]!,
          x1 = s[4 * e + 1]!,
          x2 = s[4 * e + 2]!,
          x3 = s[4 * e + 3]!;
        for (let j = 0; j < 16; j += 4) {
          w[o + j] = x0;
          w[o + j + 1] = x1;
          w[o + j + 2] = x2;
          w[o + j + 3] = x3 ^ ((j >> 2) << 24); // tweak j/4: sL, vL, sR, vR
        }
      }
    }
    mmoInPlace(buf);
    const off = i * levelBytes;
    const scw = new Uint32Array(cw.buffer, off, 4 * N),
      vcwOut = new Uint32Array(cw.buffer, off + 16 * N, 4 * N);
    const tR = cw.subarray(off + 32 * N, off + 32 * N + tb);
    for (let e = 0; e < N; e++) {
      const a = bitOf(aw, e, k);
      const b0 = 32 * e,
        b1 = b0 + 16;
      const tL0 = w[b0]! & 1,
        tR0 = w[b0 + 8]! & 1,
        tL1 = w[b1]! & 1,
        tR1 = w[b1 + 8]! & 1;
      w[b0] = w[b0]! & ~1;
      w[b0 + 8] = w[b0 + 8]! & ~1;
      w[b1] = w[b1]! & ~1;
      w[b1 + 8] = w[b1 + 8]! & ~1;
      const keep = a ? 8 : 0,
        lose = a ? 0 : 8;
      for (let q = 0; q < 4; q++) scw[4 * e + q] = w[b0 + lose + q]! ^ w[b1 + lose + q]!;
      // V_CW = (−1)^t1 · [v1_lose − v0_lose − V_α (+ β if the lost side is L, i.e. α_i = 1)]
      for (let q = 0; q < 4; q++) vcw[q] = w[b1 + lose + 4 + q]!; // no subarray: a view per element costs an allocation
      sub4(vcw, 0, w, b0 + lose + 4);
      sub4(vcw, 0, V, 4 * e);
      if (a) add4(vcw, 0, bw, 4 * e);
      if (t1[e]) neg4(vcw, 0);
      for (let q = 0; q < 4; q++) vcwOut[4 * e + q] = vcw[q]!;
      // V_α += v0_keep − v1_keep + (−1)^t1 · V_CW
      add4(V, 4 * e, w, b0 + keep + 4);
      sub4(V, 4 * e, w, b1 + keep + 4);
      if (t1[e]) sub4(V, 4 * e, vcw, 0);
      else add4(V, 4 * e, vcw, 0);
      const tLcw = tL0 ^ tL1 ^ a ^ 1,
        tRcw = tR0 ^ tR1 ^ a;
      if (tRcw) tR[e >>> 3] = tR[e >>> 3]! | (1 << (e & 7));
      const tKeepCw = a ? tRcw : tLcw;
      const tk0 = a ? tR0 : tL0,
        tk1 = a ? tR1 : tL1;
      for (let q = 0; q < 4; q++) {
        const c = scw[4 * e + q]!;
        s0[4 * e + q] = w[b0 + keep + q]! ^ (t0[e] ? c : 0);
        s1[4 * e + q] = w[b1 + keep + q]! ^ (t1[e] ? c : 0);
      }
      t0[e] = tk0 ^ (t0[e]! & tKeepCw);
      t1[e] = tk1 ^ (t1[e]! & tKeepCw);
      scw[4 * e] = scw[4 * e]! | tLcw; // bit 0 of s_CW is free (seeds have it cleared): it carries t_CW^L
    }
  }
  // CW^(n+1) = (−1)^t1 · [Convert(s1) − Convert(s0) − V_α], Convert = the leaf hash
  const leaf = new Uint8Array(32 * N),
    lw = new Uint32Array(leaf.buffer);
  for (let e = 0; e < N; e++) {
    for (let q = 0; q < 4; q++) (lw[8 * e + q] = s0[4 * e + q]!), (lw[8 * e + 4 + q] = s1[4 * e + q]!);
    lw[8 * e + 3] = lw[8 * e + 3]! ^ (TWEAK.leaf << 24);
    lw[8 * e + 7] = lw[8 * e + 7]! ^ (TWEAK.leaf << 24);
  }
  mmoInPlace(leaf);
  const last = new Uint32Array(cw.buffer, bits * levelBytes, 4 * N);
  for (let e = 0; e < N; e++) {
    for (let q = 0; q < 4; q++) last[4 * e + q] = lw[8 * e + 4 + q]!;
    sub4(last, 4 * e, lw, 8 * e);
    sub4(last, 4 * e, V, 4 * e);
    if (t1[e]) neg4(last, 4 * e);
  }
  buf.fill(0);
  return cw;
}

/** dcfGenSteps run to completion (one synchronous call). */
export function dcfGen(bits: number, alpha: BigInt64Array, beta: BigInt64Array, seed0: Uint8Array, seed1: Uint8Array): Uint8Array {
  return runSteps(dcfGenSteps(bits, alpha, beta, seed0, seed1));
}

/**
 * Party `party`: its shares of f(x) for every element (2·count ring elements, interleaved per
 * element) from its root seeds (16·count bytes) and the shared correction words; `x` holds the
 * count public inputs in [0, 2^bits) (higher bits are ignored).
 */
export function dcfEval(party: 0 | 1, bits: number, seeds: Uint8Array, cw: Uint8Array, x: BigInt64Array): BigInt64Array {
  const N = x.length;
  checkShape('eval', N, bits);
  if (seeds.length !== 16 * N) throw new Error(`fss.dcf eval: ${seeds.length} seed bytes for ${N} keys`);
  if (cw.length !== dcfCwBytes(N, bits))
    throw new Error(`fss.dcf eval: correction words have ${cw.length} bytes, expected ${dcfCwBytes(N, bits)} for ${N} keys of ${bits} bits`);
  const cwAligned = cw.byteOffset & 3 ? cw.slice() : cw;
  const xw = u32(x, 2 * N);
  const S = new Uint32Array(4 * N);
  S.set(new Uint32Array(seeds.slice().buffer));
  const T = new Uint8Array(N).fill(party);
  const dir = new Uint8Array(N);
  // Value shares accumulate as separate sums of 32-bit halves (exact in doubles for < 2^21 terms),
  // carried into 64-bit words once at the end: no carry logic in the hot loop.
  const acc = new Float64Array(4 * N);
  const tb = tBytes(N),
    levelBytes = 32 * N + tb;
  const buf = new Uint8Array(32 * N),
    w = new Uint32Array(buf.buffer);
  for (let e = 0; e < N; e++) S[4 * e] = S[4 * e]! & ~1;
  for (let i = 0; i < bits; i++) {
    const k = bits - 1 - i,
      hiWord = k >= 32 ? 1 : 0,
      sh = k & 31;
    for (let e = 0; e < N; e++) {
      const d = (xw[2 * e + hiWord]! >>> sh) & 1,
        o = 8 * e,
        s = 4 * e;
      dir[e] = d;
      const w0 = S[s]!,
        w1 = S[s + 1]!,
        w2 = S[s + 2]!,
        w3 = S[s + 3]! ^ ((2 * d) << 24); // seed tweak sL/sR
      w[o] = w0;
      w[o + 1] = w1;
      w[o + 2] = w2;
      w[o + 3] = w3;
      w[o + 4] = w0;
      w[o + 5] = w1;
      w[o + 6] = w2;
      w[o + 7] = w3 ^ (1 << 24); // the value block's tweak is one more
    }
    const h = aesBlocks(buf);
    const base = cwAligned.byteOffset + i * levelBytes;
    const scw = new Uint32Array(cwAligned.buffer, base, 4 * N),
      vcw = new Uint32Array(cwAligned.buffer, base + 16 * N, 4 * N);
    const tR = cwAligned.subarray(i * levelBytes + 32 * N, i * levelBytes + 32 * N + tb);
    for (let e = 0; e < N; e++) {
      const o = 8 * e,
        s = 4 * e;
      // MMO feed-forward folded in: H(x) = AES(x) ⊕ x with x still in buf
      let n0 = h[o]! ^ w[o]!,
        n1 = h[o + 1]! ^ w[o + 1]!,
        n2 = h[o + 2]! ^ w[o + 2]!,
        n3 = h[o + 3]! ^ w[o + 3]!;
      let t = n0 & 1;
      acc[s] = acc[s]! + ((h[o + 4]! ^ w[o + 4]!) >>> 0);
      acc[s + 1] = acc[s + 1]! + ((h[o + 5]! ^ w[o + 5]!) >>> 0);
      acc[s + 2] = acc[s + 2]! + ((h[o + 6]! ^ w[o + 6]!) >>> 0);
      acc[s + 3] = acc[s + 3]! + ((h[o + 7]! ^ w[o + 7]!) >>> 0);
      if (T[e]) {
        const c0 = scw[s]!;
        n0 ^= c0;
        n1 ^= scw[s + 1]!;
        n2 ^= scw[s + 2]!;
        n3 ^= scw[s + 3]!;
        t ^= dir[e] ? (tR[e >>> 3]! >>> (e & 7)) & 1 : c0 & 1;
        acc[s] = acc[s]! + vcw[s]!;
        acc[s + 1] = acc[s + 1]! + vcw[s + 1]!;
        acc[s + 2] = acc[s + 2]! + vcw[s + 2]!;
        acc[s + 3] = acc[s + 3]! + vcw[s + 3]!;
      }
      S[s] = n0 & ~1;
      S[s + 1] = n1;
      S[s + 2] = n2;
      S[s + 3] = n3;
      T[e] = t;
    }
  }
  const leaf = new Uint8Array(16 * N),
    lw = new Uint32Array(leaf.buffer);
  lw.set(S);
  for (let e = 0; e < N; e++) lw[4 * e + 3] = lw[4 * e + 3]! ^ (TWEAK.leaf << 24);
  mmoInPlace(leaf);
  const last = new Uint32Array(cwAligned.buffer, cwAligned.byteOffset + bits * levelBytes, 4 * N);
  const out = new BigInt64Array(2 * N),
    V = new Uint32Array(out.buffer);
  for (let e = 0; e < N; e++) {
    const s = 4 * e;
    for (let c = 0; c < 4; c += 2) {
      let lo = acc[s + c]! + lw[s + c]!,
        hi = acc[s + c + 1]! + lw[s + c + 1]!;
      if (T[e]) (lo += last[s + c]!), (hi += last[s + c + 1]!);
      const carry = Math.floor(lo / 4294967296);
      V[s + c] = lo - carry * 4294967296;
      V[s + c + 1] = (hi + carry) % 4294967296;
    }
    if (party === 1) neg4(V, s);
  }
  S.fill(0);
  buf.fill(0);
  return out;
}

/** AES blocks a party hashes per element to evaluate a `bits`-bit DCF (2 per level + 1 leaf). */
export const dcfEvalBlocks = (bits: number): number => 2 * bits + 1;
/** AES blocks the dealer hashes per element to generate a `bits`-bit DCF key pair (8 per level + 2 leaves). */
export const dcfGenBlocks = (bits: number): number => 8 * bits + 2;
