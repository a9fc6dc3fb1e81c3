/**
 * Fast training kernels for tfjs's wasm backend. `registerFastKernels()` installs them once:
 * - Conv2D and DepthwiseConv2dNative gradients (fast path on wasm, tfjs's own elsewhere);
 * - custom wasm kernels PrivmlIm2Col, PrivmlDilatePad, PrivmlDepthwiseFilterGrad;
 * - replacements for the wasm MaxPoolGrad (ties: first maximum, as tfjs's cpu backend) and
 *   AvgPoolGrad (divides by the in-bounds count, consistent with the forward AvgPool).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { fastConv2DGrad, fastDepthwiseGrad } from './conv_grad.js';
import { wasmKernelConfigs } from './wasm_kernels.js';

export type { WindowGeom } from './loops.js';
export { DEPTHWISE_FILTER_GRAD, DILATE_PAD, IM2COL } from './wasm_kernels.js';

let installed = false;

/** Install the fast kernels and gradients for the wasm backend (idempotent; safe before or after setBackend). */
export function registerFastKernels(): void {
  if (installed) return;
  for (const cfg of wasmKernelConfigs) {
    // The wasm package registers its own MaxPoolGrad/AvgPoolGrad on import; replace them.
    if (tf.getKernel(cfg.kernelName, cfg.backendName)) tf.unregisterKernel(cfg.kernelName, cfg.backendName);
    tf.registerKernel(cfg);
  }
  const conv = tf.getGradient('Conv2D');
  const depthwise = tf.getGradient('DepthwiseConv2dNative');
  if (!conv || !depthwise) throw new Error('registerFastKernels: tfjs gradients for Conv2D are not registered');
  tf.registerGradient(fastConv2DGrad(conv));
  tf.registerGradient(fastDepthwiseGrad(depthwise));
  installed = true;
}
