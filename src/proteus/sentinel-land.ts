/** Landing on an exact shape: adapters (conv units, pools, Tile/Pad, transposes, reshapes, linear layers) from any value to a required output type. */

import type { Dim } from '../onnx/ir.js';
import { ModelError, sizeOf } from '../onnx/ir.js';
import type { Gen, Val } from './sentinel-gen.js';
import { Dead, num, same } from './sentinel-gen.js';

/** A value of exactly `target` computed from x (x itself if it already fits and may be reused). */
export function landOn(g: Gen, x: Val, target: Dim[], mustCompute: boolean, depth = 0): Val {
  if (depth > 6) throw new Dead();
  const conv = g.has('Conv') || g.has('MaxPool') || g.has('AveragePool');
  const ts = target.slice(1).map(num);
  if (ts.some((d) => d < 0)) throw new ModelError('sentinels need static shapes except the batch dimension');
  const xs = x.shape.slice(1).map(num);
  const b = x.shape[0]!;
  const again = (v: Val): Val => landOn(g, v, target, false, depth + 1);
  if (same(x.shape, target)) {
    if (!mustCompute) return x;
    if (target.length === 4 && conv) return g.act(g.convBlock(x, ts[0]!, 1, 1, 0));
    if (target.length === 2) return g.gemm(x, ts[0]!);
    return g.linear(x, ts[ts.length - 1]!);
  }
  if (xs.length === 3 && ts.length === 3 && conv) {
    const [c, h, w] = xs as [number, number, number];
    const [c2, h2, w2] = ts as [number, number, number];
    if (h < h2 || w < w2) {
      if (h2 % h === 0 && w2 % w === 0) return again(g.node('Tile', [x.name, g.ints([1, 1, h2 / h, w2 / w])], {}, [b, c, h2, w2]));
      const pads = [0, 0, 0, 0, 0, 0, Math.max(0, h2 - h), Math.max(0, w2 - w)];
      const padded = [b, c, Math.max(h, h2), Math.max(w, w2)];
      // Pad's pads became an input in opset 11.
      if (g.opset < 11) return again(g.node('Pad', [x.name], { pads: { kind: 'ints', value: pads } }, padded));
      return again(g.node('Pad', [x.name, g.ints(pads)], {}, padded));
    }
    if (h === h2 && w === w2) return g.convBlock(x, c2, 1, 1, 0);
    if (h % h2 === 0 && w % w2 === 0 && h / h2 === w / w2 && h / h2 <= 4) {
      const k = g.fits(9 * c * c2) && g.prof.kernels.includes(3) ? 3 : 1;
      return g.convBlock(x, c2, k, h / h2, k === 3 ? 1 : 0);
    }
    const sh = Math.floor(h / h2);
    const sw = Math.floor(w / w2);
    const k = [h - sh * (h2 - 1), w - sw * (w2 - 1)];
    const pool = g.node(
      g.has('AveragePool') ? 'AveragePool' : 'MaxPool',
      [x.name],
      { kernel_shape: { kind: 'ints', value: k }, pads: { kind: 'ints', value: [0, 0, 0, 0] }, strides: { kind: 'ints', value: [sh, sw] } },
      [b, c, h2, w2],
    );
    return again(pool);
  }
  if (xs.length === 3 && ts.length === 1 && conv) return again(g.gapFlatten(x));
  if (xs.length === 1 && ts.length === 1) return g.gemm(x, ts[0]!);
  if (xs.length === 1 && ts.length === 3 && conv) return again(g.reshape(g.gemm(x, ts[0]!), [ts[0]!, 1, 1]));
  const px = sizeOf(xs);
  const pt = sizeOf(ts);
  if (xs.length === ts.length && xs.length > 1 && same(xs.slice(0, -1), ts.slice(0, -1))) return g.linear(x, ts[ts.length - 1]!);
  if (px === pt && xs.length === ts.length) {
    const perm = permutationTo(xs, ts);
    if (perm) return g.transpose(x, [0, ...perm.map((p) => p + 1)]);
  }
  if (xs.length === 2 && ts.length === 3) {
    const [s, d] = xs as [number, number];
    const j = ts.indexOf(s);
    if (j >= 0) {
      const rest = ts.filter((_, i) => i !== j);
      const e = sizeOf(rest);
      const y = e === d ? x : g.linear(x, e);
      const split = g.reshape(y, [s, ...rest]);
      const order = [s, ...rest];
      const perm = permutationTo(order, ts, j);
      return perm && perm.some((p, i) => p !== i) ? g.transpose(split, [0, ...perm.map((p) => p + 1)]) : split;
    }
  }
  if (xs.length === 3 && ts.length === 2) {
    const [s2, d2] = ts as [number, number];
    const j = xs.indexOf(s2);
    if (j >= 0) {
      const others = [0, 1, 2].filter((i) => i !== j);
      const t = j === 0 ? x : g.transpose(x, [0, j + 1, ...others.map((i) => i + 1)]);
      const m = g.reshape(t, [s2, xs[others[0]!]! * xs[others[1]!]!]);
      return again(m);
    }
  }
  if (xs.length === 2 && ts.length === 1) {
    const first = g.node('Gather', [x.name, g.ints([0], [])], { axis: { kind: 'int', value: 1 } }, [b, xs[1]!]);
    return again(first);
  }
  if (px === pt) return g.reshape(x, ts);
  // General fallback: flatten, a fully connected layer, reshape.
  let flat = xs.length === 1 ? x : g.node('Flatten', [x.name], { axis: { kind: 'int', value: 1 } }, [b, px]);
  if (xs.length === 3 && conv && px * pt > 1 << 22) flat = g.gapFlatten(x);
  const fc = g.gemm(flat, pt);
  return ts.length === 1 ? fc : g.reshape(fc, ts);
}

/** Permutation p with xs[p[i]] = ts[i] (each index used once), preferring `pin` at its place; null if none. */
export function permutationTo(xs: readonly number[], ts: readonly number[], pin?: number): number[] | null {
  if (xs.length !== ts.length) return null;
  const used = new Array<boolean>(xs.length).fill(false);
  const p: number[] = new Array(ts.length);
  if (pin !== undefined) {
    p[pin] = 0;
    used[0] = true;
  }
  for (let i = 0; i < ts.length; i++) {
    if (i === pin) continue;
    const j = xs.findIndex((v, k) => !used[k] && v === ts[i]);
    if (j < 0) return null;
    used[j] = true;
    p[i] = j;
  }
  return p;
}
