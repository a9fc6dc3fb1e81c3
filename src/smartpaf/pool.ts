/**
 * MaxPool window geometry shared by the PafMaxPool kernel and its ONNX expansion. A PAF max tree
 * cannot take MaxPool's −∞ padding, so padded cells replicate the nearest border cell ("edge"
 * padding): every window overlapping a pad also contains that border cell, so the exact max is
 * unchanged, and a PAF max of two equal values is exact ((2a + 0·sign(0))/2 = a).
 */
import { attrInt, attrInts, attrString, ModelError, type Node } from '../onnx/ir.js';

/** Resolved 2-D window geometry of a MaxPool-like node on an [N, C, H, W] input. */
export interface PoolGeometry {
  kernel: [number, number];
  strides: [number, number];
  /** [top, bottom, left, right], ceil_mode's extra bottom/right cells included. */
  pads: [number, number, number, number];
  inHW: [number, number];
  outHW: [number, number];
}

/** Window geometry from MaxPool attributes (kernel_shape, strides, pads, auto_pad, ceil_mode). */
export function poolGeometry(node: Node, inHW: [number, number], source: string): PoolGeometry {
  const fail = (msg: string) => new ModelError(`${source}: node '${node.name}' (${node.opType}): ${msg}`);
  const k = attrInts(node, 'kernel_shape');
  if (k.length !== 2) throw fail(`kernel_shape must have 2 entries, has ${k.length}`);
  const kernel: [number, number] = [k[0]!, k[1]!];
  const s = attrInts(node, 'strides', [1, 1]);
  if (s.length !== 2) throw fail(`strides must have 2 entries, has ${s.length}`);
  const strides: [number, number] = [s[0]!, s[1]!];
  const dil = attrInts(node, 'dilations', [1, 1]);
  if (dil.some((d) => d !== 1)) throw fail('pooling with dilations > 1 is not supported');
  if (attrInt(node, 'storage_order', 0) !== 0) throw fail('storage_order 1 is not supported');
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads: [number, number, number, number];
  if (autoPad === 'VALID') pads = [0, 0, 0, 0];
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const p: number[] = [];
    for (let d = 0; d < 2; d++) {
      const out = Math.ceil(inHW[d]! / strides[d]!);
      const total = Math.max((out - 1) * strides[d]! + kernel[d]! - inHW[d]!, 0);
      const small = Math.floor(total / 2);
      p.push(autoPad === 'SAME_UPPER' ? small : total - small, autoPad === 'SAME_UPPER' ? total - small : small);
    }
    pads = [p[0]!, p[1]!, p[2]!, p[3]!];
  } else if (autoPad === 'NOTSET') {
    const a = attrInts(node, 'pads', [0, 0, 0, 0]);
    if (a.length !== 4) throw fail(`only 2-D windows are supported (pads has ${a.length} entries)`);
    pads = [a[0]!, a[2]!, a[1]!, a[3]!];
  } else throw fail(`unsupported auto_pad '${autoPad}'`);
  for (let d = 0; d < 2; d++) {
    if (pads[2 * d]! >= kernel[d]! || pads[2 * d + 1]! >= kernel[d]!) throw fail(`pads ${pads} must be smaller than the kernel ${kernel}`);
  }
  if (attrInt(node, 'ceil_mode', 0) === 1) {
    // Extend bottom/right padding so the last partial window exists (it must start inside the input or the top/left pad).
    for (let d = 0; d < 2; d++) {
      const inP = inHW[d]! + pads[2 * d]! + pads[2 * d + 1]!;
      const floorOut = Math.floor((inP - kernel[d]!) / strides[d]!) + 1;
      let ceilOut = Math.ceil((inP - kernel[d]!) / strides[d]!) + 1;
      if ((ceilOut - 1) * strides[d]! >= inHW[d]! + pads[2 * d]!) ceilOut--;
      pads[2 * d + 1]! += (ceilOut - floorOut) * strides[d]!;
    }
  }
  const outHW: [number, number] = [0, 1].map((d) => Math.floor((inHW[d]! + pads[2 * d]! + pads[2 * d + 1]! - kernel[d]!) / strides[d]!) + 1) as [
    number,
    number,
  ];
  if (outHW[0] < 1 || outHW[1] < 1) throw fail(`window ${kernel} does not fit the ${inHW[0]}×${inHW[1]} input`);
  return { kernel, strides, pads, inHW, outHW };
}

/** Window offsets (row, col) in the order the max tree consumes them (row-major). */
export function windowOffsets(g: PoolGeometry): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < g.kernel[0]; i++) for (let j = 0; j < g.kernel[1]; j++) out.push([i, j]);
  return out;
}

/**
 * Pairwise max tree, level by level: [v0, v1, v2, …] → [max(v0, v1), max(v2, v3), …], an odd last
 * element carried up; ⌈log2 n⌉ levels, n − 1 max operations. `level` lets callers act per level.
 */
export function maxTree<T>(values: T[], maxLevel: (pairs: [T, T][], level: number) => T[]): T {
  let cur = values;
  for (let level = 0; cur.length > 1; level++) {
    const pairs: [T, T][] = [];
    for (let i = 0; i + 1 < cur.length; i += 2) pairs.push([cur[i]!, cur[i + 1]!]);
    const merged = maxLevel(pairs, level);
    cur = cur.length % 2 === 1 ? [...merged, cur[cur.length - 1]!] : merged;
  }
  return cur[0]!;
}
