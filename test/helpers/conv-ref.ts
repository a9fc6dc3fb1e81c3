import type { ConvGeom } from '../../src/mpc/ring.js';

/** Naive convolution in the 64-bit ring (NCHW × OIHW, groups, padding, strides): the reference for ring kernels. */
export function convRef(x: ArrayLike<bigint>, w: ArrayLike<bigint>, g: ConvGeom): bigint[] {
  const oh = Math.floor((g.h + g.padT + g.padB - g.kh) / g.strideH) + 1;
  const ow = Math.floor((g.w + g.padL + g.padR - g.kw) / g.strideW) + 1;
  const cg = g.c / g.group;
  const cog = g.co / g.group;
  const out: bigint[] = [];
  for (let b = 0; b < g.n; b++)
    for (let o = 0; o < g.co; o++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let s = 0n;
          const gi = Math.floor(o / cog);
          for (let ci = 0; ci < cg; ci++)
            for (let ky = 0; ky < g.kh; ky++)
              for (let kx = 0; kx < g.kw; kx++) {
                const iy = oy * g.strideH - g.padT + ky;
                const ix = ox * g.strideW - g.padL + kx;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                s += x[((b * g.c + gi * cg + ci) * g.h + iy) * g.w + ix]! * w[((o * cg + ci) * g.kh + ky) * g.kw + kx]!;
              }
          out.push(BigInt.asIntN(64, s));
        }
  return out;
}
