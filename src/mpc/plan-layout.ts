/**
 * Data-movement ops of the MPC plan as public index maps (Transpose, Concat, Pad, Slice): each
 * output element is one input element or a public constant, so both parties apply the same map to
 * their shares locally. Also numpy-style broadcasting of a constant to one sample's shape.
 */

/** Row-major strides of `shape`. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

const prod = (v: readonly number[]): number => v.reduce((a, b) => a * b, 1);

/** Index map of Transpose(perm) on an input of shape `xs`: out[i] = in[idx[i]]. */
export function transposeIndex(xs: readonly number[], perm: readonly number[]): Int32Array {
  const os = perm.map((p) => xs[p]!);
  const is = stridesOf(xs);
  const n = prod(xs);
  const idx = new Int32Array(n);
  const coord = new Array<number>(os.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let d = 0; d < os.length; d++) src += coord[d]! * is[perm[d]!]!;
    idx[i] = src;
    for (let d = os.length - 1; d >= 0; d--) {
      if (++coord[d]! < os[d]!) break;
      coord[d] = 0;
    }
  }
  return idx;
}

/** Index map of Concat along `axis` of inputs with shapes `shapes` (indices into their concatenation). */
export function concatIndex(shapes: readonly (readonly number[])[], axis: number): Int32Array {
  const outer = prod(shapes[0]!.slice(0, axis));
  const inners = shapes.map((s) => prod(s.slice(axis)));
  const bases: number[] = [];
  let acc = 0;
  for (const s of shapes) bases.push(acc), (acc += prod(s));
  const idx = new Int32Array(acc);
  let o = 0;
  for (let r = 0; r < outer; r++) {
    for (let k = 0; k < shapes.length; k++) {
      const inner = inners[k]!;
      const base = bases[k]! + r * inner;
      for (let j = 0; j < inner; j++) idx[o++] = base + j;
    }
  }
  return idx;
}

/** Pad modes the plan maps to indices. */
export type PadMode = 'constant' | 'reflect' | 'edge';

/**
 * Index map of Pad on shape `xs` with ONNX pads [b0…, e0…] (negative pads crop); −1 marks an
 * element taking the constant value.
 */
export function padIndex(xs: readonly number[], pads: readonly number[], mode: PadMode): { index: Int32Array; shape: number[] } {
  const r = xs.length;
  const os = xs.map((d, i) => d + pads[i]! + pads[i + r]!);
  const is = stridesOf(xs);
  const n = prod(os);
  const idx = new Int32Array(n);
  const coord = new Array<number>(r).fill(0);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let d = 0; d < r; d++) {
      let c = coord[d]! - pads[d]!;
      const len = xs[d]!;
      if (c < 0 || c >= len) {
        if (mode === 'constant') {
          src = -1;
          break;
        }
        if (mode === 'edge') c = c < 0 ? 0 : len - 1;
        else {
          // reflect without repeating the edge; the period is 2(len − 1)
          const period = 2 * (len - 1);
          c = ((c % period) + period) % period;
          if (c >= len) c = period - c;
        }
      }
      src += c * is[d]!;
    }
    idx[i] = src;
    for (let d = r - 1; d >= 0; d--) {
      if (++coord[d]! < os[d]!) break;
      coord[d] = 0;
    }
  }
  return { index: idx, shape: os };
}

/** Index map of Slice with per-axis (start, end, step) already clamped as ONNX specifies. */
export function sliceIndex(xs: readonly number[], ranges: readonly { start: number; step: number; count: number }[]): { index: Int32Array; shape: number[] } {
  const os = ranges.map((r) => r.count);
  const is = stridesOf(xs);
  const n = prod(os);
  const idx = new Int32Array(n);
  const coord = new Array<number>(os.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let d = 0; d < os.length; d++) src += (ranges[d]!.start + coord[d]! * ranges[d]!.step) * is[d]!;
    idx[i] = src;
    for (let d = os.length - 1; d >= 0; d--) {
      if (++coord[d]! < os[d]!) break;
      coord[d] = 0;
    }
  }
  return { index: idx, shape: os };
}

/**
 * Broadcast a constant of shape `dims` against a value of shape `xs` (the value's shape must be the
 * result): returns the constant expanded to one sample (xs without the batch axis), or null when
 * the constant varies along the batch axis or would enlarge the value. Decided from shapes only.
 */
export function expandToSample(values: ArrayLike<number>, dims: readonly number[], xs: readonly number[]): Float32Array | null {
  if (dims.length > xs.length) return null;
  const d = [...new Array<number>(xs.length - dims.length).fill(1), ...dims];
  if (d[0] !== 1) return null;
  for (let i = 0; i < xs.length; i++) if (d[i] !== 1 && d[i] !== xs[i]) return null;
  const sample = xs.slice(1);
  const ds = stridesOf(d)
    .slice(1)
    .map((s, i) => (d[i + 1] === 1 ? 0 : s));
  const n = prod(sample);
  const out = new Float32Array(n);
  const coord = new Array<number>(sample.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let k = 0; k < sample.length; k++) src += coord[k]! * ds[k]!;
    out[i] = values[src]!;
    for (let k = sample.length - 1; k >= 0; k--) {
      if (++coord[k]! < sample[k]!) break;
      coord[k] = 0;
    }
  }
  return out;
}

/** True when a constant of shape `dims` broadcast against [N, C, …] varies only along axis 1. */
export function isPerChannel(dims: readonly number[], xs: readonly number[]): boolean {
  if (dims.length > xs.length || xs.length < 2) return false;
  const d = [...new Array<number>(xs.length - dims.length).fill(1), ...dims];
  return d.every((v, i) => v === 1 || (i === 1 && v === xs[1]));
}
