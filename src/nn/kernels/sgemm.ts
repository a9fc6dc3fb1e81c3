/**
 * Inference convolutions on our own float32 GEMM (assembly/sgemm.ts → build/sgemm.wasm and
 * build/sgemm-relaxed.wasm) instead of tfjs-wasm's XNNPACK build: with relaxed SIMD's fused
 * multiply-add ~1.3-1.4x faster in-model, plain SIMD only on par (see sgemmEnabled). Weights are
 * packed once per constant filter into the
 * module's memory; each call copies the NHWC input in, runs im2col (skipped for 1x1 stride-1
 * unpadded convolutions) and the GEMM with bias and a clamp (ReLU/Clip) fused, and copies the result
 * into a tfjs tensor. Inference only: the tfjs kernel registered here has no gradient, so callers
 * must use it only outside training (see plainInference in ops/conv.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

interface SgemmExports {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  free(ptr: number): void;
  gemm(a: number, lda: number, bp: number, c: number, ldc: number, m: number, n: number, k: number, bias: number, lo: number, hi: number): void;
  im2col(...args: number[]): void;
}

const WASM_DIR = new URL('../../../build/', import.meta.url);
const MR = 4;
const NR = 8;
/** tfjs kernel name: input {x} NHWC float32, attrs = ConvAttrs; output NHWC. */
export const SGEMM_CONV = 'PrivmlSgemmConv';

let mod: SgemmExports | null | undefined;
let variant: 'relaxed' | 'simd' | 'none' = 'none';

/** Bytes of build/NAME, or undefined when absent (or no file system, as in the page bundle). */
function wasmBytes(name: string): Uint8Array<ArrayBuffer> | undefined {
  try {
    const path = fileURLToPath(new URL(name, WASM_DIR));
    return existsSync(path) ? new Uint8Array(readFileSync(path)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The float kernels, or null when build/sgemm.wasm is absent (then callers keep tfjs's kernels).
 * The relaxed-SIMD build (fused multiply-add, ~1.3x) is used when this engine validates it.
 */
export function sgemm(): SgemmExports | null {
  if (mod !== undefined) return mod;
  const relaxed = wasmBytes('sgemm-relaxed.wasm');
  const bytes = relaxed && WebAssembly.validate(relaxed) ? relaxed : wasmBytes('sgemm.wasm');
  variant = bytes === undefined ? 'none' : bytes === relaxed ? 'relaxed' : 'simd';
  mod = bytes ? (new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports as unknown as SgemmExports) : null;
  return mod;
}

/** Which kernels run inference convolutions: ours where relaxed SIMD validates ('auto'), ours always ('sgemm'), or tfjs-wasm's. */
export type ConvKernel = 'auto' | 'sgemm' | 'tfjs';

/** Names accepted for the float runtime's `convKernel` option. */
export const CONV_KERNELS: readonly ConvKernel[] = ['auto', 'sgemm', 'tfjs'];

/**
 * Whether inference convolutions use these kernels instead of tfjs-wasm's under `choice`. Measured
 * side by side in the torchvision models (docs/benchmarks.md, issue 12): the relaxed-SIMD build (FMA)
 * is ~1.3-1.4x faster than tfjs-wasm's XNNPACK convolutions, the plain-SIMD build only on par. So
 * 'auto' uses them where relaxed SIMD validates (Node >= 22, or 20 with --experimental-wasm-relaxed-simd);
 * 'sgemm' forces them (plain build on Node 20), 'tfjs' keeps tfjs's kernels.
 */
export function sgemmEnabled(choice: ConvKernel = 'auto'): boolean {
  if (choice === 'tfjs' || sgemm() === null) return false;
  return choice === 'sgemm' || variant === 'relaxed';
}

/** Which build of the kernels runs: relaxed SIMD (FMA), plain SIMD, or none (tfjs only). */
export function sgemmVariant(): 'relaxed' | 'simd' | 'none' {
  sgemm();
  return variant;
}

const f32 = (m: SgemmExports, ptr: number, n: number): Float32Array => new Float32Array(m.memory.buffer, ptr, n);

/** A convolution filter (and bias) packed into the module's memory; free() releases it. */
export class PackedFilter {
  private freed = false;
  constructor(
    readonly w: number,
    readonly bias: number,
    readonly co: number,
    readonly ci: number,
    readonly kh: number,
    readonly kw: number,
  ) {}
  /** GEMM depth: kh * kw * ci. */
  get k(): number {
    return this.kh * this.kw * this.ci;
  }
  /** Output channels rounded up to the micro-kernel's 8 columns. */
  get npad(): number {
    return Math.ceil(this.co / NR) * NR;
  }
  free(): void {
    if (this.freed) return;
    this.freed = true;
    const m = sgemm()!;
    m.free(this.w);
    if (this.bias) m.free(this.bias);
  }
}

/**
 * Pack an ONNX filter [CO, CI, KH, KW] (row-major) into panels of 8 output channels, each [K][8]
 * with K ordered (ky, kx, ci) as im2col writes its columns; channels past CO are zero.
 */
export function packFilter(w: Float32Array, co: number, ci: number, kh: number, kw: number, bias?: Float32Array): PackedFilter {
  const m = sgemm();
  if (!m) throw new Error('sgemm: build/sgemm.wasm is missing (run npm run build:wasm)');
  const k = kh * kw * ci;
  const npad = Math.ceil(co / NR) * NR;
  const wp = m.alloc(k * npad * 4);
  const bp = bias ? m.alloc(npad * 4) : 0;
  const dst = f32(m, wp, k * npad);
  dst.fill(0);
  for (let o = 0; o < co; o++) {
    const panel = Math.floor(o / NR) * k * NR + (o % NR);
    for (let c = 0; c < ci; c++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) dst[panel + ((y * kw + x) * ci + c) * NR] = w[((o * ci + c) * kh + y) * kw + x]!;
      }
    }
  }
  if (bias) {
    const b = f32(m, bp, npad);
    b.fill(0);
    b.set(bias.subarray(0, co));
  }
  return new PackedFilter(wp, bp, co, ci, kh, kw);
}

/** Geometry and activation of one convolution call (pads are the amounts added before/after). */
export interface ConvAttrs {
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pt: number;
  pb: number;
  pl: number;
  pr: number;
  /** Clamp applied after the bias: [0, Infinity] is ReLU, [-Infinity, Infinity] none. */
  lo: number;
  hi: number;
}

/** Scratch kept between calls (input copy, im2col rows, GEMM output), grown when too small. */
let scratch = { ptr: 0, bytes: 0 };
function scratchOf(m: SgemmExports, bytes: number): number {
  if (bytes > scratch.bytes) {
    if (scratch.ptr) m.free(scratch.ptr);
    const want = Math.ceil(bytes * 1.25);
    scratch = { ptr: m.alloc(want), bytes: want };
  }
  return scratch.ptr;
}

/** Output spatial size of one dimension. */
const outDim = (size: number, k: number, s: number, d: number, p0: number, p1: number): number => Math.floor((size + p0 + p1 - d * (k - 1) - 1) / s) + 1;

/**
 * Run the convolution of NHWC `x` (values in `xv`) with a packed filter, writing NHWC results into
 * `out` ([n, oh, ow, co]). Plain arrays in and out, so tests can call it without tfjs.
 */
export function convInto(xv: Float32Array, xshape: readonly number[], f: PackedFilter, a: ConvAttrs, out: Float32Array): void {
  const m = sgemm()!;
  const [n, h, w, ci] = xshape as [number, number, number, number];
  if (ci !== f.ci) throw new Error(`sgemm conv: input has ${ci} channels, filter expects ${f.ci}`);
  const oh = outDim(h, f.kh, a.sh, a.dh, a.pt, a.pb);
  const ow = outDim(w, f.kw, a.sw, a.dw, a.pl, a.pr);
  if (oh <= 0 || ow <= 0) throw new Error(`sgemm conv: empty output ${oh}x${ow}`);
  const rows = n * oh * ow;
  const mpad = Math.ceil(rows / MR) * MR;
  const k = f.k;
  const npad = f.npad;
  // A pointwise convolution reads the input itself as A (padded with zero rows to a multiple of 4).
  const direct = f.kh === 1 && f.kw === 1 && a.sh === 1 && a.sw === 1 && a.pt === 0 && a.pb === 0 && a.pl === 0 && a.pr === 0;
  const xFloats = direct ? mpad * ci : n * h * w * ci;
  const colFloats = direct ? 0 : mpad * k;
  const base = scratchOf(m, (xFloats + colFloats + mpad * npad) * 4 + 32);
  const xp = base;
  const col = xp + xFloats * 4;
  const cp = col + colFloats * 4;
  const xm = f32(m, xp, xFloats);
  xm.set(xv.subarray(0, n * h * w * ci));
  if (direct) xm.fill(0, n * h * w * ci);
  else m.im2col(xp, col, n, h, w, ci, f.kh, f.kw, a.sh, a.sw, a.dh, a.dw, a.pt, a.pl, oh, ow, mpad);
  m.gemm(direct ? xp : col, k, f.w, cp, npad, mpad, npad, k, f.bias, a.lo, a.hi);
  const co = f.co;
  if (npad === co) out.set(f32(m, cp, rows * co));
  else {
    const c = f32(m, cp, mpad * npad);
    for (let r = 0; r < rows; r++) out.set(c.subarray(r * npad, r * npad + co), r * co);
  }
}

/** Packed filters by id, for the tfjs kernel (attributes carry only numbers). */
const filters = new Map<number, PackedFilter>();
let nextId = 1;

/** Register a packed filter for the tfjs kernel; returns its id (release with forgetFilter). */
export function rememberFilter(f: PackedFilter): number {
  const id = nextId++;
  filters.set(id, f);
  return id;
}

/** Drop and free a filter registered with rememberFilter. */
export function forgetFilter(id: number): void {
  filters.get(id)?.free();
  filters.delete(id);
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}

function sgemmConvKernel(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs['x'];
  if (x?.dtype !== 'float32' || x.shape.length !== 4) throw new Error(`${SGEMM_CONV}: input x must be a float32 NHWC tensor`);
  const a = args.attrs as unknown as ConvAttrs & { filter: number };
  const f = filters.get(a.filter);
  if (!f) throw new Error(`${SGEMM_CONV}: unknown filter ${a.filter}`);
  const [n, h, w] = x.shape as [number, number, number, number];
  const oh = outDim(h, f.kh, a.sh, a.dh, a.pt, a.pb);
  const ow = outDim(w, f.kw, a.sw, a.dw, a.pl, a.pr);
  const be = args.backend as BackendWasm;
  // Allocate the output first: it may grow the tfjs heap, which detaches views taken earlier.
  const out = be.makeOutput([n, oh, ow, f.co], 'float32');
  convInto(be.typedArrayFromHeap(x) as Float32Array, x.shape, f, a, be.typedArrayFromHeap(out) as Float32Array);
  return out;
}

let registered = false;

/** Install the tfjs kernel on the wasm backend (idempotent). */
export function registerSgemmKernel(): void {
  if (registered) return;
  tf.registerKernel({ kernelName: SGEMM_CONV, backendName: 'wasm', kernelFunc: sgemmConvKernel as tf.KernelFunc });
  registered = true;
}

/** Convolution of an NHWC tensor with a remembered filter through the tfjs engine (wasm backend). */
export function sgemmConv(x: tf.Tensor4D, filterId: number, a: ConvAttrs): tf.Tensor4D {
  registerSgemmKernel();
  return tf.engine().runKernel(SGEMM_CONV, { x }, { ...a, filter: filterId } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
