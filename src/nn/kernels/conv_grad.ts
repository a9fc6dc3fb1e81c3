/**
 * Conv2D and DepthwiseConv2dNative gradients for the wasm backend built from fast pieces:
 * dx = forward conv (XNNPACK) of the zero-dilated, padded dy with the flipped filter;
 * dW = transposed im2col (wasm-heap loop) times dy in one matMul (Conv2D), or a direct loop
 * (depthwise). Anything else (other backends, NCHW, dilations > 1) goes to tfjs's own gradient.
 */
import * as tf from '@tensorflow/tfjs';
import type { WindowGeom } from './loops.js';
import { DEPTHWISE_FILTER_GRAD, DILATE_PAD, IM2COL, windowGeomOf } from './wasm_kernels.js';

type Shape4 = [number, number, number, number];
type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

/** What a conv gradient needs beyond its tensors: geometry and the dx convolution's padding. */
interface ConvPlan {
  g: WindowGeom;
  /** Padding of dy (after zero-dilation) so that a 'valid' conv with the flipped filter gives dx. */
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** Geometry of a conv call, or undefined when the fast path does not apply. */
function planConv(x: tf.Tensor, filter: tf.Tensor, attrs: tf.NamedAttrMap, depthwise: boolean): ConvPlan | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  if (x.rank !== 4 || filter.rank !== 4 || x.dtype !== 'float32' || filter.dtype !== 'float32') return undefined;
  const a = attrs as unknown as tf.Conv2DAttrs;
  if (a.dataFormat !== undefined && a.dataFormat !== 'NHWC') return undefined;
  const dil = a.dilations ?? 1;
  if (!(Array.isArray(dil) ? dil.every((d) => d === 1) : dil === 1)) return undefined;
  const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, filter.shape as Shape4, a.strides, 1, a.pad, a.dimRoundingMode, depthwise);
  const g = windowGeomOf(info);
  if (g.oh <= 0 || g.ow <= 0) return undefined;
  return {
    g,
    top: g.kh - 1 - g.pt,
    left: g.kw - 1 - g.pl,
    bottom: g.h + g.pt - (g.oh - 1) * g.sh - 1,
    right: g.w + g.pl - (g.ow - 1) * g.sw - 1,
  };
}

/** Input and padding of the dx convolution: dy itself (stride 1, pads >= 0) or dy zero-dilated and padded/cropped. */
function dxInput(dy: tf.Tensor4D, p: ConvPlan): { input: tf.Tensor4D; pad: Pad4 | 'valid' } {
  const { sh, sw } = p.g;
  if (sh === 1 && sw === 1 && p.top >= 0 && p.bottom >= 0 && p.left >= 0 && p.right >= 0) {
    return {
      input: dy,
      pad: [
        [0, 0],
        [p.top, p.bottom],
        [p.left, p.right],
        [0, 0],
      ],
    };
  }
  const attrs = { sh, sw, top: p.top, bottom: p.bottom, left: p.left, right: p.right };
  return { input: tf.engine().runKernel(DILATE_PAD, { x: dy }, attrs) as tf.Tensor4D, pad: 'valid' };
}

/** Geometry as kernel attributes. */
function geomAttrs(g: WindowGeom): tf.NamedAttrMap {
  return { ...g };
}

/** Gradient config for Conv2D that uses the fast path on wasm and `original` elsewhere. */
export function fastConv2DGrad(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const plan = planConv(x, filter, attrs, false);
      if (!plan) return original.gradFunc(dy, saved, attrs);
      const dy4 = dy as tf.Tensor4D;
      const { g } = plan;
      const co = filter.shape[3];
      return {
        x: () => {
          // Flipped filter with in/out channels swapped: [KH,KW,CO,CI].
          const wf = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
          const { input, pad } = dxInput(dy4, plan);
          return tf.conv2d(input, wf, 1, pad);
        },
        filter: () => {
          const cols = tf.engine().runKernel(IM2COL, { x }, geomAttrs(g)) as tf.Tensor2D;
          const d = tf.reshape(dy4, [g.n * g.oh * g.ow, co]) as tf.Tensor2D;
          return tf.reshape(tf.matMul(cols, d), filter.shape);
        },
      };
    },
  };
}

/** Gradient config for DepthwiseConv2dNative: fast path on wasm (which has no backprop kernels). */
export function fastDepthwiseGrad(original: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: 'DepthwiseConv2dNative',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const plan = planConv(x, filter, attrs, true);
      if (!plan) return original.gradFunc(dy, saved, attrs);
      const dy4 = dy as tf.Tensor4D;
      const { g } = plan;
      const [kh, kw, c, mult] = filter.shape;
      return {
        x: () => {
          // Each output channel c*mult+m is convolved back with its own flipped kernel, then the
          // mult outputs belonging to input channel c are summed.
          const wf = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, c * mult, 1]) as tf.Tensor4D;
          const { input, pad } = dxInput(dy4, plan);
          const z = tf.depthwiseConv2d(input, wf, 1, pad);
          return mult === 1 ? z : tf.sum(tf.reshape(z, [g.n, g.h, g.w, c, mult]), 4);
        },
        filter: () => tf.engine().runKernel(DEPTHWISE_FILTER_GRAD, { x, dy: dy4 }, { ...geomAttrs(g), mult }) as tf.Tensor,
      };
    },
  };
}
