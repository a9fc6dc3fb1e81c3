/**
 * What the float runtime refuses up front (before anything runs), beyond unsupported ops: values
 * tfjs cannot hold exactly (float64, int64 past int32, float16, strings), random training-mode
 * ops and outputs no kernel computes. Refusing is the alternative to a silently wrong answer.
 */

import type { Problem } from '../onnx/canonical.js';
import type { Model, Node } from '../onnx/ir.js';

/** Why float64 is refused by the tfjs runtime (graphs nn/f64.ts can run are run there instead). */
export const F64 = 'float64 is not supported: the float runtime computes in float32 (refusing rather than rounding)';
/** Why training-mode Dropout with a non-zero ratio is refused (also raised by the kernel at run time). */
export const DROPOUT_RANDOM = 'training-mode Dropout is random; only inference Dropout (training_mode false or ratio 0) is supported';
const CAST_OK = new Set([1, 2, 3, 5, 6, 7, 9]);
const CAST_NAME: Record<number, string> = { 8: 'string', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 4: 'uint16', 16: 'bfloat16' };

/** Per-node refusals of the float runtime (passed to `canonicalize` as its `check`). */
export function floatNodeCheck(n: Node, m: Model): string[] | undefined {
  const out: string[] = [];
  const a = n.attrs;
  const intAttr = (k: string): number | undefined => (a[k]?.kind === 'int' ? (a[k].value as number) : undefined);
  switch (n.opType) {
    case 'Cast': {
      const to = intAttr('to') ?? 0;
      if (!CAST_OK.has(to)) out.push(to === 11 ? F64 : `Cast to ${CAST_NAME[to] ?? `type ${to}`} is not supported`);
      break;
    }
    case 'Dropout': {
      const tm = n.inputs[2];
      const c = tm ? m.graph.initializers.get(tm) : undefined;
      const ratio = n.inputs[1] ? m.graph.initializers.get(n.inputs[1]) : undefined;
      // Ratio 0 keeps everything (deterministic). Values fed at run time are checked by the kernel.
      const random = (ratio === undefined ? !n.inputs[1] : Number(ratio.data[0]) !== 0) && c !== undefined && Number(c.data[0]) !== 0;
      if (tm && random) out.push(DROPOUT_RANDOM);
      break;
    }
    case 'Pad': {
      const mode = a['mode']?.kind === 'string' ? a['mode'].value : 'constant';
      if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') out.push(`Pad mode '${mode}' is not supported`);
      break;
    }
    default:
      break;
  }
  return out.length ? out : undefined;
}

/** Graph-level refusals: float64 values, int64 constants beyond int32 where they would change results. */
export function floatGraphProblems(m: Model): Problem[] {
  const g = m.graph;
  const problems: Problem[] = [];
  for (const v of [...g.inputs, ...g.outputs]) if (v.dtype === 'float64') problems.push({ op: '', node: v.name, reason: F64 });
  const users = new Map<string, Node[]>();
  for (const n of g.nodes) for (const i of n.inputs) if (i) users.set(i, [...(users.get(i) ?? []), n]);
  for (const [name, t] of g.initializers) {
    const us = users.get(name) ?? [];
    if (t.dtype === 'float64') {
      problems.push({ op: us[0]?.opType ?? '', node: us[0]?.name ?? name, reason: `initializer '${name}': ${F64}` });
    } else if (t.dtype === 'int64') {
      // Slice bounds (INT64_MAX as "to the end") clamp to the dim anyway: clamping them is exact.
      const onlyBounds = us.every((u) => u.opType === 'Slice' && (u.inputs[1] === name || u.inputs[2] === name));
      if (onlyBounds) continue;
      for (const x of t.data as BigInt64Array) {
        if (x > 2147483647n || x < -2147483648n) {
          problems.push({
            op: us[0]?.opType ?? '',
            node: us[0]?.name ?? name,
            reason: `int64 initializer '${name}' holds ${x}, beyond the int32 range the float runtime computes in`,
          });
          break;
        }
      }
    }
  }
  return problems;
}
