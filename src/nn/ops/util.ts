/** Small helpers shared by the standard kernels. */
import { attrInts, attrString, tensorToNumbers } from '../../onnx/ir.js';
import { tf } from '../tf.js';
import { logical } from './layout.js';
import { type OpContext, opError, type RtValue } from './registry.js';

/** Input `i`, which must be present. */
export function need(ctx: OpContext, i: number): RtValue {
  const v = ctx.inputs[i];
  if (!v) throw opError(ctx, `missing required input #${i}`);
  return v;
}

/** Integer values of input `i`, from its constant if known, else read back from the tensor. */
export function intsOf(ctx: OpContext, i: number): number[] | undefined {
  const c = ctx.constInput(i);
  if (c) return tensorToNumbers(c);
  const v = ctx.inputs[i];
  if (!v) return undefined;
  return Array.from(logical(v).dataSync(), Number);
}

/** Float scalar of optional input `i` (e.g. Clip's min), or undefined when omitted. */
export function scalarOf(ctx: OpContext, i: number): number | undefined {
  const c = ctx.constInput(i);
  if (c) return Number(c.data[0]);
  const v = ctx.inputs[i];
  if (!v) return undefined;
  return v.t.dataSync()[0]!;
}

/** Normalise a possibly negative axis for a given rank. */
export function normAxis(ctx: OpContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw opError(ctx, `axis ${axis} out of range for rank ${rank}`);
  return a;
}

/** Spatial padding [top, bottom, left, right] of a 2-D window op from pads/auto_pad. */
export function spatialPads(
  ctx: OpContext,
  inHW: [number, number],
  kernel: [number, number],
  strides: [number, number],
  dilations: [number, number],
): [number, number, number, number] {
  const autoPad = attrString(ctx.node, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const out: number[] = [];
    for (let d = 0; d < 2; d++) {
      const outSize = Math.ceil(inHW[d]! / strides[d]!);
      const total = Math.max((outSize - 1) * strides[d]! + (kernel[d]! - 1) * dilations[d]! + 1 - inHW[d]!, 0);
      const small = Math.floor(total / 2);
      out.push(autoPad === 'SAME_UPPER' ? small : total - small, autoPad === 'SAME_UPPER' ? total - small : small);
    }
    return [out[0]!, out[1]!, out[2]!, out[3]!];
  }
  if (autoPad !== 'NOTSET') throw opError(ctx, `unsupported auto_pad '${autoPad}'`);
  const pads = attrInts(ctx.node, 'pads', [0, 0, 0, 0]);
  if (pads.length !== 4) throw opError(ctx, `only 2-D spatial windows are supported (pads has ${pads.length} entries)`);
  return [pads[0]!, pads[2]!, pads[1]!, pads[3]!];
}

/** Pair from an ints attribute of length 2 (or a default). */
export function pair(ctx: OpContext, name: string, dflt: number): [number, number] {
  const v = attrInts(ctx.node, name, [dflt, dflt]);
  if (v.length !== 2) throw opError(ctx, `attribute '${name}' must have 2 entries for a 2-D op, has ${v.length}`);
  return [v[0]!, v[1]!];
}
