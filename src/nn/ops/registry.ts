/**
 * The float runtime's open op table. Every ONNX op is a kernel `(ctx) => outputs` over tfjs tensors;
 * later pillars register their own ops (a simulated reduced-ring ReLU, a trainable polynomial
 * activation) with `registerOp` without touching this package.
 */
import { type Tensor as IrTensor, ModelError, type Node } from '../../onnx/ir.js';
import type { tf } from '../tf.js';

/**
 * Physical layout of a runtime value. Logical shapes are always ONNX's (NCHW for images);
 * rank-4 activations may be held as NHWC because tfjs convolutions and pools run in NHWC.
 */
export type Layout = 'nchw' | 'nhwc';

/** A value flowing through the runtime: a tfjs tensor plus its physical layout. */
export interface RtValue {
  t: tf.Tensor;
  layout: Layout;
  /**
   * Set by a Conv that already applied the following Relu/Clip (its only consumer, see
   * fusedActivations in runtime.ts): that activation then passes the value on unchanged.
   */
  clamped?: [number, number];
}

/** Everything a kernel may use while executing one node. */
export interface OpContext {
  node: Node;
  /** Runtime inputs in node order; undefined for omitted optional inputs. */
  inputs: (RtValue | undefined)[];
  /** True while training (BatchNorm uses batch statistics, Dropout is active). */
  training: boolean;
  /** Constant (initializer / Constant-derived) value of input `i`, if it is known without running. */
  constInput(i: number): IrTensor | undefined;
  /** Per-node mutable state kept across runs (e.g. running statistics updates). */
  state: Map<string, unknown>;
  /** Options the caller passed to the runtime for custom ops (keyed by op author). */
  options: Record<string, unknown>;
  /** Where the model came from, for error messages. */
  source: string;
}

/** A kernel executing one ONNX node on tfjs tensors. */
export type OpKernel = (ctx: OpContext) => RtValue[];

/** A registered op. */
export interface OpDef {
  opType: string;
  /** '' = ONNX default domain. */
  domain: string;
  kernel: OpKernel;
}

const table = new Map<string, OpDef>();
const key = (domain: string, opType: string): string => `${domain === 'ai.onnx' ? '' : domain}::${opType}`;

/** Register (or replace) the kernel for `opType` in `domain` ('' = ONNX default). */
export function registerOp(opType: string, kernel: OpKernel, domain = ''): void {
  table.set(key(domain, opType), { opType, domain, kernel });
}

/** The kernel for an op, or undefined when unsupported. */
export function getOp(opType: string, domain = ''): OpDef | undefined {
  return table.get(key(domain, opType));
}

/** All registered ops, sorted by domain then name. */
export function listOps(): OpDef[] {
  return [...table.values()].sort((a, b) => (a.domain + a.opType).localeCompare(b.domain + b.opType));
}

/** Error raised by a kernel, naming the node, op and model file. */
export function opError(ctx: Pick<OpContext, 'node' | 'source'>, msg: string): Error {
  return new ModelError(`${ctx.source}: node '${ctx.node.name}' (${ctx.node.opType}): ${msg}`);
}
