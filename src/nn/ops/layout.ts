/** Layout conversions between ONNX's logical NCHW and tfjs's NHWC for rank-4 activations. */
import { tf } from '../tf.js';
import type { RtValue } from './registry.js';

const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];

/** The value as a tensor in logical (ONNX) layout. */
export function logical(v: RtValue): tf.Tensor {
  return v.layout === 'nhwc' ? tf.transpose(v.t, TO_NCHW) : v.t;
}

/** The rank-4 value as an NHWC tensor. */
export function asNhwc(v: RtValue): tf.Tensor4D {
  if (v.layout === 'nhwc') return v.t as tf.Tensor4D;
  if (v.t.rank !== 4) throw new Error(`expected a rank-4 tensor, got shape [${v.t.shape}]`);
  return tf.transpose(v.t, TO_NHWC) as tf.Tensor4D;
}

/** Logical (ONNX) shape of a value. */
export function logicalShape(v: RtValue): number[] {
  const s = v.t.shape;
  return v.layout === 'nhwc' ? [s[0]!, s[3]!, s[1]!, s[2]!] : [...s];
}

/** Wrap a logical-layout tensor. */
export function plain(t: tf.Tensor): RtValue {
  return { t, layout: 'nchw' };
}

/** Wrap an NHWC tensor. */
export function nhwc(t: tf.Tensor): RtValue {
  return { t, layout: 'nhwc' };
}

/** Map a logical NCHW axis to its NHWC position. */
export function nhwcAxis(axis: number): number {
  return [0, 3, 1, 2][axis]!;
}

/**
 * Bring `other` (logical layout, any rank ≤ 4, broadcastable against a rank-4 NCHW value) into
 * NHWC so that numpy broadcasting still lines up with an NHWC partner.
 */
export function broadcastPartnerNhwc(other: RtValue): tf.Tensor {
  if (other.layout === 'nhwc') return other.t;
  const t = other.t;
  if (t.rank === 0) return t;
  if (t.rank > 4) throw new Error(`cannot broadcast shape [${t.shape}] against a rank-4 tensor`);
  const padded = t.rank < 4 ? tf.reshape(t, [...new Array(4 - t.rank).fill(1), ...t.shape]) : t;
  return tf.transpose(padded, TO_NHWC);
}
