/**
 * The one seeded, NON-secret pseudo-random generator of privml: zoo weights, test inputs, data
 * shuffles, HummingBird's carry simulation. Its output reveals its seed, so anything secret (shares,
 * masks, keys, Proteus sentinels and member order) draws from `src/crypto` instead.
 */

/** sfc32 seeded through splitmix32, with Box–Muller normals; fast enough for VGG-16's ~138M normals. */
export class SeededRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = 0;
  private hasSpare = false;

  constructor(seed: number) {
    // splitmix32 spreads small seeds (0, 1, 2, …) over the whole state.
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** Next uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform integer in [0, n) for n ≤ 2^32 (floor of a uniform; bias ≤ n/2^32, fine for non-secret use). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.u32() / 4294967296;
  }

  /** Standard normal N(0, 1). */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    // 1 - u keeps the log argument in (0, 1].
    const r = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const th = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(th);
    this.hasSpare = true;
    return r * Math.cos(th);
  }

  /** Fill `out` with mean + std · N(0, 1) and return it. */
  fillNormal(out: Float32Array, std: number, mean = 0): Float32Array {
    let i = 0;
    if (this.hasSpare && out.length > 0) out[i++] = mean + std * this.normal();
    // Inlined pair loop: the VGG-16/GPT-2 zoo builds draw >100M normals.
    const n2 = out.length - ((out.length - i) & 1);
    const twoPi = 2 * Math.PI;
    for (; i < n2; i += 2) {
      const r = std * Math.sqrt(-2 * Math.log(1 - this.u32() / 4294967296));
      const th = twoPi * (this.u32() / 4294967296);
      out[i] = mean + r * Math.cos(th);
      out[i + 1] = mean + r * Math.sin(th);
    }
    if (i < out.length) out[i] = mean + std * this.normal();
    return out;
  }

  /** Fill `out` with uniform values in [lo, hi) and return it. */
  fillUniform(out: Float32Array, lo: number, hi: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * this.uniform();
    return out;
  }
}

/** A function returning the uniforms of a fresh `SeededRng(seed)`: the shape test and shuffle code wants. */
export function seededUniform(seed: number): () => number {
  const rng = new SeededRng(seed);
  return () => rng.uniform();
}
