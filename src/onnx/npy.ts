/**
 * NumPy `.npy` files (format 1.0–3.0, little- or big-endian, C order) as IR tensors: what PyTorch
 * users have at hand for model inputs and reference outputs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type DType, ModelError, sizeOf, type Tensor, type TensorArray } from './ir.js';

const DESCR: Record<string, DType> = { f4: 'float32', f8: 'float64', i8: 'int64', i4: 'int32', i2: 'int16', i1: 'int8', u1: 'uint8', b1: 'bool' };
const WIDTH: Record<DType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 };

/** Parse `.npy` bytes; `source` names the file in errors. */
export function decodeNpy(buf: Uint8Array, source: string): Tensor {
  const bad = (why: string): never => {
    throw new ModelError(`${source}: not a readable .npy file (${why})`);
  };
  if (buf.length < 10 || buf[0] !== 0x93 || String.fromCharCode(...buf.subarray(1, 6)) !== 'NUMPY') bad('missing \\x93NUMPY magic');
  const major = buf[6]!;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const hstart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(buf.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([<>|=])([a-z]\d+)'/.exec(header) ?? bad(`unsupported dtype in header ${header.trim()}`);
  const dtype = DESCR[descr![2]!] ?? bad(`unsupported dtype '${descr![2]}' (float32/64, int8/16/32/64, uint8, bool are)`);
  if (/'fortran_order':\s*True/.test(header)) bad('Fortran order; save with np.ascontiguousarray');
  const shapeStr = (/'shape':\s*\(([^)]*)\)/.exec(header) ?? bad('no shape'))![1]!;
  const dims = shapeStr
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s)
    .map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) bad(`bad shape (${shapeStr})`);
  const n = sizeOf(dims);
  const w = WIDTH[dtype];
  const off = hstart + hlen;
  if (buf.length - off < n * w) bad(`${buf.length - off} data bytes, shape [${dims}] of ${dtype} needs ${n * w}`);
  const bytes = new Uint8Array(buf.subarray(off, off + n * w)); // a copy: Buffer.slice is a view into a pool
  if (descr![1] === '>' && w > 1) for (let i = 0; i < bytes.length; i += w) bytes.subarray(i, i + w).reverse();
  const ab = bytes.buffer;
  const data: TensorArray =
    dtype === 'float32'
      ? new Float32Array(ab)
      : dtype === 'float64'
        ? new Float64Array(ab)
        : dtype === 'int64'
          ? new BigInt64Array(ab)
          : dtype === 'int32'
            ? new Int32Array(ab)
            : dtype === 'int16'
              ? new Int16Array(ab)
              : dtype === 'int8'
                ? new Int8Array(ab)
                : new Uint8Array(ab);
  return { dtype: dtype!, dims, data };
}

/** Serialise a tensor as `.npy` version 1.0 bytes (little-endian, C order). */
export function encodeNpy(t: Tensor): Uint8Array {
  const code = Object.entries(DESCR).find(([, d]) => d === t.dtype)![0];
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let header = `{'descr': '${code === 'b1' || code === 'u1' || code === 'i1' ? '|' : '<'}${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad so the data starts at a multiple of 64 bytes, header ending in '\n' (the format's rule).
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + t.data.byteLength);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), total);
  return out;
}

/** Read a `.npy` file (a one-line ModelError when missing or malformed). */
export function loadNpy(path: string): Tensor {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch {
    throw new ModelError(`${path}: no such file`);
  }
  return decodeNpy(buf, path);
}

/** Write a tensor to a `.npy` file. */
export function saveNpy(path: string, t: Tensor): void {
  writeFileSync(path, encodeNpy(t));
}
