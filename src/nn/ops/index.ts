/** The standard ONNX kernels of the float runtime, registered on first use. */
import { registerConvOps } from './conv.js';
import { registerExtraOps } from './extra.js';
import { registerMathOps } from './math.js';
import { registerResizeOps } from './resize.js';
import { registerTensorOps } from './tensor.js';

export { asNhwc, logical, logicalShape, nhwc, plain } from './layout.js';
export type { Layout, OpContext, OpDef, OpKernel, RtValue } from './registry.js';
export { getOp, listOps, opError, registerOp } from './registry.js';

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
