/**
 * tfjs kernels for the `wasm` backend that run the loops of `loops.ts` directly on the wasm heap:
 * custom ones (im2col, dilate+pad, depthwise filter gradient) and replacements for the backend's
 * MaxPoolGrad / AvgPoolGrad.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { DilatePad, WindowGeom } from './loops.js';
import { avgPoolGrad, depthwiseFilterGrad, dilatePad, dilatePadShape, im2colT, maxPoolGrad } from './loops.js';

type TensorInfo = tf.TensorInfo;
type Shape4 = [number, number, number, number];

/** Kernel name of the transposed im2col: input {x}, attrs = WindowGeom, output [KH*KW*C, N*OH*OW]. */
export const IM2COL = 'PrivmlIm2Col';
/** Kernel name of zero-dilation + pad/crop: input {x}, attrs {sh, sw, top, bottom, left, right}. */
export const DILATE_PAD = 'PrivmlDilatePad';
/** Kernel name of the depthwise filter gradient: inputs {x, dy}, attrs = WindowGeom + {mult}. */
export const DEPTHWISE_FILTER_GRAD = 'PrivmlDepthwiseFilterGrad';

const BACKEND = 'wasm';

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}

/** Input tensor `name` of a kernel call, or a one-line error naming the kernel. */
function input(args: KernelArgs, kernel: string, name: string): TensorInfo {
  const t = args.inputs[name];
  if (!t) throw new Error(`${kernel}: missing input '${name}'`);
  if (t.dtype !== 'float32') throw new Error(`${kernel}: input '${name}' must be float32, got ${t.dtype}`);
  return t;
}

/** Numeric attribute `name` of a kernel call. */
function num(attrs: tf.NamedAttrMap | undefined, kernel: string, name: string): number {
  const v = attrs?.[name];
  if (typeof v !== 'number') throw new Error(`${kernel}: attribute '${name}' must be a number`);
  return v;
}

/** Window geometry from a kernel's attributes (as passed by the gradient functions). */
function geomAttrs(attrs: tf.NamedAttrMap | undefined, kernel: string): WindowGeom {
  const f = (k: string): number => num(attrs, kernel, k);
  return {
    n: f('n'),
    h: f('h'),
    w: f('w'),
    c: f('c'),
    kh: f('kh'),
    kw: f('kw'),
    sh: f('sh'),
    sw: f('sw'),
    pt: f('pt'),
    pl: f('pl'),
    oh: f('oh'),
    ow: f('ow'),
  };
}

/** Window geometry of a pooling kernel call, from tfjs's own attribute decoding. */
function poolGeom(x: TensorInfo, attrs: tf.NamedAttrMap | undefined): WindowGeom {
  const a = (attrs ?? {}) as unknown as tf.MaxPoolGradAttrs;
  return windowGeomOf(tf.backend_util.computePool2DInfo(x.shape as Shape4, a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode));
}

/** Our window geometry from tfjs's decoded convolution/pooling info (batch, sizes, kernel, stride, padding). */
export function windowGeomOf(info: tf.backend_util.Conv2DInfo): WindowGeom {
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    c: info.inChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    pt: info.padInfo.top,
    pl: info.padInfo.left,
    oh: info.outHeight,
    ow: info.outWidth,
  };
}

/**
 * Allocate the output first, then view the inputs: allocation may grow the wasm memory, which
 * detaches every view taken earlier.
 */
function run(backend: object, outShape: number[], inputs: TensorInfo[], body: (out: Float32Array, ...views: Float32Array[]) => void): TensorInfo {
  const be = backend as BackendWasm;
  const out = be.makeOutput(outShape, 'float32');
  const views = inputs.map((t) => be.typedArrayFromHeap(t) as Float32Array);
  body(be.typedArrayFromHeap(out) as Float32Array, ...views);
  return out;
}

function im2colKernel(args: KernelArgs): TensorInfo {
  const x = input(args, IM2COL, 'x');
  const g = geomAttrs(args.attrs, IM2COL);
  if (x.shape.join() !== [g.n, g.h, g.w, g.c].join()) throw new Error(`${IM2COL}: x shape ${x.shape} != geometry`);
  return run(args.backend, [g.kh * g.kw * g.c, g.n * g.oh * g.ow], [x], (out, xv) => im2colT(xv!, g, out));
}

function dilatePadKernel(args: KernelArgs): TensorInfo {
  const x = input(args, DILATE_PAD, 'x');
  if (x.shape.length !== 4) throw new Error(`${DILATE_PAD}: x must be rank 4, got shape ${x.shape}`);
  const [n, h, w, c] = x.shape as Shape4;
  const f = (k: string): number => num(args.attrs, DILATE_PAD, k);
  const sh = f('sh');
  const sw = f('sw');
  const pad: DilatePad = { top: f('top'), bottom: f('bottom'), left: f('left'), right: f('right') };
  const [oh, ow] = dilatePadShape(h, w, sh, sw, pad);
  if (oh <= 0 || ow <= 0) throw new Error(`${DILATE_PAD}: empty output ${oh}x${ow}`);
  return run(args.backend, [n, oh, ow, c], [x], (out, xv) => dilatePad(xv!, [n, h, w, c], sh, sw, pad, out));
}

function depthwiseFilterGradKernel(args: KernelArgs): TensorInfo {
  const x = input(args, DEPTHWISE_FILTER_GRAD, 'x');
  const dy = input(args, DEPTHWISE_FILTER_GRAD, 'dy');
  const g = geomAttrs(args.attrs, DEPTHWISE_FILTER_GRAD);
  const mult = num(args.attrs, DEPTHWISE_FILTER_GRAD, 'mult');
  return run(args.backend, [g.kh, g.kw, g.c, mult], [x, dy], (out, xv, dyv) => depthwiseFilterGrad(xv!, dyv!, g, mult, out));
}

function maxPoolGradKernel(args: KernelArgs): TensorInfo {
  const x = input(args, 'MaxPoolGrad', 'input');
  const dy = input(args, 'MaxPoolGrad', 'dy');
  const y = input(args, 'MaxPoolGrad', 'output');
  const g = poolGeom(x, args.attrs);
  return run(args.backend, x.shape, [x, y, dy], (out, xv, yv, dyv) => maxPoolGrad(xv!, yv!, dyv!, g, out));
}

function avgPoolGradKernel(args: KernelArgs): TensorInfo {
  const x = input(args, 'AvgPoolGrad', 'input');
  const dy = input(args, 'AvgPoolGrad', 'dy');
  const g = poolGeom(x, args.attrs);
  return run(args.backend, x.shape, [dy], (out, dyv) => avgPoolGrad(dyv!, g, out));
}

/** Kernel configs installed for the wasm backend (custom names and replaced pool gradients). */
export const wasmKernelConfigs: tf.KernelConfig[] = [
  { kernelName: IM2COL, backendName: BACKEND, kernelFunc: im2colKernel as tf.KernelFunc },
  { kernelName: DILATE_PAD, backendName: BACKEND, kernelFunc: dilatePadKernel as tf.KernelFunc },
  { kernelName: DEPTHWISE_FILTER_GRAD, backendName: BACKEND, kernelFunc: depthwiseFilterGradKernel as tf.KernelFunc },
  { kernelName: 'MaxPoolGrad', backendName: BACKEND, kernelFunc: maxPoolGradKernel as tf.KernelFunc },
  { kernelName: 'AvgPoolGrad', backendName: BACKEND, kernelFunc: avgPoolGradKernel as tf.KernelFunc },
];
