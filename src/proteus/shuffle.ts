/**
 * Uniform in-place shuffles of float32 arrays from the secret stream: the order in which a
 * sentinel's resampled values sit carries nothing of their source.
 */
import { type Rng, words } from './rng.js';

/** Arrays up to this length are shuffled by one Fisher–Yates pass (they fit the CPU's L2 cache). */
const SHUFFLE_BLOCK = 1 << 17;

/**
 * Uniform shuffle in place from the secret stream. Past SHUFFLE_BLOCK values, Rao–Sandelius: each
 * value goes to one of 256 piles by an independent uniform label (sequential writes), then each
 * pile is shuffled by itself; i.i.d. uniform labels and uniform pile permutations make every
 * permutation of the whole equally likely, without the cache-missing random swaps of one big pass.
 */
export function shuffle(a: Float32Array, rng: Rng, block = SHUFFLE_BLOCK): Float32Array {
  const n = a.length;
  if (n <= block) return fisherYates(a, rng);
  const label = new Uint8Array(words(rng, Math.ceil(n / 4)).buffer, 0, n);
  const start = new Uint32Array(257);
  for (let i = 0; i < n; i++) start[label[i]! + 1]!++;
  for (let b = 0; b < 256; b++) start[b + 1]! += start[b]!;
  const at = start.slice(0, 256);
  const piles = new Float32Array(n);
  for (let i = 0; i < n; i++) piles[at[label[i]!]!++] = a[i]!;
  a.set(piles);
  for (let b = 0; b < 256; b++) shuffle(a.subarray(start[b]!, start[b + 1]!), rng, block);
  return a;
}

/**
 * Fisher–Yates in place, unbiased. Indices by Lemire's multiply-shift with rejection (exact in
 * doubles while x·m < 2^53, i.e. m ≤ 2^21): a modulo only in the rare rejection zone, where two
 * float modulos per element used to make the shuffle most of `obfuscate`'s time.
 */
function fisherYates(a: Float32Array, rng: Rng): Float32Array {
  const r = words(rng, a.length);
  let k = 0;
  for (let i = a.length - 1; i > 0; i--) {
    const m = i + 1;
    let j: number;
    if (m <= 2097152) {
      let l = (k < r.length ? r[k++]! : rng.nextU32()) * m;
      j = Math.floor(l / 4294967296);
      if (l - j * 4294967296 < m) {
        const t = (4294967296 - m) % m;
        while (l - j * 4294967296 < t) {
          l = (k < r.length ? r[k++]! : rng.nextU32()) * m;
          j = Math.floor(l / 4294967296);
        }
      }
    } else {
      const limit = 4294967296 - (4294967296 % m);
      let x = k < r.length ? r[k++]! : rng.nextU32();
      while (x >= limit) x = k < r.length ? r[k++]! : rng.nextU32();
      j = x % m;
    }
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}
