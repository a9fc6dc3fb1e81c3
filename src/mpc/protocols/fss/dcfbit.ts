/**
 * The DCF of dcf.ts with output group Z_2 and payload β = 1: XOR shares of [x < α]. The value
 * "Convert(v)" of a child is one bit of its own hashed seed block, so a party hashes ONE AES block
 * per level (dcf.ts: two), and each level's correction word is s_CW (16 bytes) carrying t_CW^L in
 * bit 0 and V_CW in bit 1, plus the packed t_CW^R bit: about 16.1 bytes per level (dcf.ts: 32.1).
 * Child block layout after hashing: bit 0 = t, bit 1 = v, bits 2..127 = the child seed (λ = 126).
 * The leaf conversion is bit 2 of the final seed (pseudorandom; equal on both keys off the path).
 * Layout of the shared correction words, level-major: per level s_CW (16·N), t_CW^R (packed,
 * padded to 32-bit words); then CW^(n+1) as packed bits (padded likewise).
 */
import { aesBlocks, mmoInPlace } from './mmo.js';

const tBytes = (count: number): number => 4 * ((count + 31) >>> 5);

/** Bytes of the shared correction words for `count` bit-output keys on a `bits`-bit domain. */
export function dcfBitCwBytes(count: number, bits: number): number {
  return bits * (16 * count + tBytes(count)) + tBytes(count);
}

function check(what: string, count: number, bits: number): void {
  if (!Number.isInteger(count) || count < 0) throw new Error(`fss.dcfbit ${what}: bad element count ${count}`);
  if (!Number.isInteger(bits) || bits < 0 || bits > 63) throw new Error(`fss.dcfbit ${what}: domain bits ${bits} not in [0, 63]`);
}

const bitOf = (w: Uint32Array, e: number, k: number): number => (k < 32 ? w[2 * e]! >>> k : w[2 * e + 1]! >>> (k - 32)) & 1;
const SEED_MASK = ~3; // bits 0 (t) and 1 (v) of word 0 are not seed bits

/** Dealer: correction words of `count` keys sharing [x < α] in XOR form (α read from `alpha`'s low `bits` bits). */
export function dcfBitGen(bits: number, alpha: BigInt64Array, seed0: Uint8Array, seed1: Uint8Array): Uint8Array {
  const N = alpha.length;
  check('gen', N, bits);
  if (seed0.length !== 16 * N || seed1.length !== 16 * N) throw new Error(`fss.dcfbit gen: inconsistent sizes for ${N} keys`);
  const aw = new Uint32Array(alpha.buffer, alpha.byteOffset, 2 * N);
  const s0 = new Uint32Array(seed0.slice().buffer), s1 = new Uint32Array(seed1.slice().buffer);
  const t0 = new Uint8Array(N), t1 = new Uint8Array(N).fill(1), V = new Uint8Array(N);
  for (let e = 0; e < N; e++) (s0[4 * e] = s0[4 * e]! & SEED_MASK, s1[4 * e] = s1[4 * e]! & SEED_MASK);
  const tb = tBytes(N), levelBytes = 16 * N + tb;
  const cw = new Uint8Array(dcfBitCwBytes(N, bits));
  const buf = new Uint8Array(64 * N), w = new Uint32Array(buf.buffer);
  for (let i = 0; i < bits; i++) {
    const k = bits - 1 - i;
    for (let e = 0; e < N; e++) {
      for (let p = 0; p < 2; p++) {
        const s = p === 0 ? s0 : s1;
        for (let j = 0; j < 2; j++) {
          const o = 16 * e + 8 * p + 4 * j;
          w[o] = s[4 * e]!;
          w[o + 1] = s[4 * e + 1]!;
          w[o + 2] = s[4 * e + 2]!;
          w[o + 3] = s[4 * e + 3]! ^ ((2 * j) << 24); // tweaks sL = 0, sR = 2 as in dcf.ts
        }
      }
    }
    mmoInPlace(buf);
    const scw = new Uint32Array(cw.buffer, i * levelBytes, 4 * N);
    const tR = cw.subarray(i * levelBytes + 16 * N, (i + 1) * levelBytes);
    for (let e = 0; e < N; e++) {
      const a = bitOf(aw, e, k);
      const b0 = 16 * e, b1 = b0 + 8; // party p's L block at b_p, R block at b_p + 4
      const keep = a ? 4 : 0, lose = a ? 0 : 4;
      const tL0 = w[b0]! & 1, tR0 = w[b0 + 4]! & 1, tL1 = w[b1]! & 1, tR1 = w[b1 + 4]! & 1;
      const vLose0 = (w[b0 + lose]! >>> 1) & 1, vLose1 = (w[b1 + lose]! >>> 1) & 1;
      const vKeep0 = (w[b0 + keep]! >>> 1) & 1, vKeep1 = (w[b1 + keep]! >>> 1) & 1;
      const vcw = vLose0 ^ vLose1 ^ V[e]! ^ a; // β = 1 is added when the lost side is L (α_i = 1)
      V[e] = V[e]! ^ vKeep0 ^ vKeep1 ^ vcw;
      const tLcw = tL0 ^ tL1 ^ a ^ 1, tRcw = tR0 ^ tR1 ^ a;
      if (tRcw) tR[e >>> 3] = tR[e >>> 3]! | (1 << (e & 7));
      const tKeepCw = a ? tRcw : tLcw;
      const tk0 = a ? tR0 : tL0, tk1 = a ? tR1 : tL1;
      for (let q = 0; q < 4; q++) {
        const c = (w[b0 + lose + q]! ^ w[b1 + lose + q]!) & (q === 0 ? SEED_MASK : -1);
        scw[4 * e + q] = c;
        s0[4 * e + q] = (w[b0 + keep + q]! ^ (t0[e] ? c : 0)) & (q === 0 ? SEED_MASK : -1);
        s1[4 * e + q] = (w[b1 + keep + q]! ^ (t1[e] ? c : 0)) & (q === 0 ? SEED_MASK : -1);
      }
      t0[e] = tk0 ^ (t0[e]! & tKeepCw);
      t1[e] = tk1 ^ (t1[e]! & tKeepCw);
      scw[4 * e] = scw[4 * e]! | tLcw | (vcw << 1);
    }
  }
  const last = cw.subarray(bits * levelBytes);
  for (let e = 0; e < N; e++) {
    const c = ((s0[4 * e]! >>> 2) & 1) ^ ((s1[4 * e]! >>> 2) & 1) ^ V[e]!;
    if (c) last[e >>> 3] = last[e >>> 3]! | (1 << (e & 7));
  }
  buf.fill(0);
  s0.fill(0);
  s1.fill(0);
  return cw;
}

/** Party `party`: its XOR shares (packed bits) of [x < α] for every element's public input in `x`. */
export function dcfBitEval(party: 0 | 1, bits: number, seeds: Uint8Array, cw: Uint8Array, x: BigInt64Array): Uint8Array {
  const N = x.length;
  check('eval', N, bits);
  if (seeds.length !== 16 * N) throw new Error(`fss.dcfbit eval: ${seeds.length} seed bytes for ${N} keys`);
  if (cw.length !== dcfBitCwBytes(N, bits)) throw new Error(`fss.dcfbit eval: correction words have ${cw.length} bytes, expected ${dcfBitCwBytes(N, bits)}`);
  const c8 = cw.byteOffset & 3 ? cw.slice() : cw;
  const xw = new Uint32Array(x.buffer, x.byteOffset, 2 * N);
  const S = new Uint32Array(seeds.slice().buffer);
  const T = new Uint8Array(N).fill(party), V = new Uint8Array(N), dir = new Uint8Array(N);
  const tb = tBytes(N), levelBytes = 16 * N + tb;
  const buf = new Uint8Array(16 * N), w = new Uint32Array(buf.buffer);
  for (let e = 0; e < N; e++) S[4 * e] = S[4 * e]! & SEED_MASK;
  for (let i = 0; i < bits; i++) {
    const k = bits - 1 - i, hiWord = k >= 32 ? 1 : 0, sh = k & 31;
    for (let e = 0; e < N; e++) {
      const d = (xw[2 * e + hiWord]! >>> sh) & 1, o = 4 * e;
      dir[e] = d;
      w[o] = S[o]!;
      w[o + 1] = S[o + 1]!;
      w[o + 2] = S[o + 2]!;
      w[o + 3] = S[o + 3]! ^ ((2 * d) << 24);
    }
    const h = aesBlocks(buf);
    const scw = new Uint32Array(c8.buffer, c8.byteOffset + i * levelBytes, 4 * N);
    const tR = c8.subarray(i * levelBytes + 16 * N, (i + 1) * levelBytes);
    for (let e = 0; e < N; e++) {
      const o = 4 * e;
      let n0 = h[o]! ^ w[o]!, n1 = h[o + 1]! ^ w[o + 1]!, n2 = h[o + 2]! ^ w[o + 2]!, n3 = h[o + 3]! ^ w[o + 3]!;
      let t = n0 & 1, v = (n0 >>> 1) & 1;
      if (T[e]) {
        const c0 = scw[o]!;
        n0 ^= c0;
        n1 ^= scw[o + 1]!;
        n2 ^= scw[o + 2]!;
        n3 ^= scw[o + 3]!;
        t ^= dir[e] ? (tR[e >>> 3]! >>> (e & 7)) & 1 : c0 & 1;
        v ^= (c0 >>> 1) & 1;
      }
      S[o] = n0 & SEED_MASK;
      S[o + 1] = n1;
      S[o + 2] = n2;
      S[o + 3] = n3;
      T[e] = t;
      V[e] = V[e]! ^ v;
    }
  }
  const last = c8.subarray(bits * levelBytes);
  const out = new Uint8Array((N + 7) >>> 3);
  for (let e = 0; e < N; e++) {
    const bit = V[e]! ^ ((S[4 * e]! >>> 2) & 1) ^ (T[e]! & (last[e >>> 3]! >>> (e & 7)));
    if (bit & 1) out[e >>> 3] = out[e >>> 3]! | (1 << (e & 7));
  }
  S.fill(0);
  buf.fill(0);
  return out;
}

/** AES blocks a party hashes per element for a `bits`-bit bit-output DCF (one per level). */
export const dcfBitEvalBlocks = (bits: number): number => bits;
