/** Seeded test inputs: splitmix64 as signed 64-bit values. Reproducible, never used for anything cryptographic. */
export function rng(seed: number): () => bigint {
  let s = BigInt(seed) & 0xffffffffffffffffn;
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return BigInt.asIntN(64, z ^ (z >> 31n));
  };
}
