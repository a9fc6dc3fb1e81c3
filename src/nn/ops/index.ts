/** The standard ONNX kernels of the float runtime, registered on first use. */
import { registerConvOps } from './conv.js';
import { registerMathOps } from './math.js';
import { registerExtraOps } from './extra.js';
import { registerResizeOps } from './resize.js';
import { registerTensorOps } from './tensor.js';

export { registerOp, getOp, listOps, opError } from './registry.js';
export type { OpContext, OpKernel, OpDef, RtValue, Layout } from './registry.js';
export { logical, logicalShape, asNhwc, plain, nhwc } from './layout.js';

let registered = false;

/** Register every standard kernel once (custom ops registered later are kept). */
export function registerStandardOps(): void {
  if (registered) return;
  registered = true;
  registerConvOps();
  registerMathOps();
  registerTensorOps();
  registerExtraOps();
  registerResizeOps();
}
