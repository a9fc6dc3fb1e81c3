import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphBuilder } from '../../src/onnx/builder.js';
import type { Model } from '../../src/onnx/ir.js';
import { nearTwinScores, Prng, secretRng, twinSketches, WeightPool, weightKey } from '../../src/proteus/index.js';

/** A piece of 6 zoo-like BatchNorms over 48 channels and one 3×3 conv: the kinds a CNN bundle holds. */
function piece(seed: number): Model {
  const r = new Prng(seed);
  const c = 48;
  const b = new GraphBuilder(`p${seed}`, 17);
  let y = b.input('x', 'float32', [1, c, 4, 4]);
  const vec = (name: string, f: () => number): string => b.init(name, { dtype: 'float32', dims: [c], data: Float32Array.from({ length: c }, f) });
  const w = Float32Array.from({ length: c * c * 9 }, () => r.normal() * Math.sqrt(2 / (c * 9)));
  y = b.op('Conv', [y, b.init('w', { dtype: 'float32', dims: [c, c, 3, 3], data: w })], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  for (let l = 0; l < 6; l++) {
    const inputs = [
      vec(`g${l}`, () => 1 + 0.05 * r.normal()),
      vec(`b${l}`, () => 0.05 * r.normal()),
      vec(`m${l}`, () => 0.1 * r.normal()),
      vec(`v${l}`, () => 0.9 + 0.2 * r.next()),
    ];
    y = b.op('BatchNormalization', [y, ...inputs], {});
  }
  b.output(y, 'float32', [1, c, 4, 4]);
  return b.build();
}

/** A member holding `tensors` as initializers (only its weights matter to the statistic). */
function member(tensors: { dims: number[]; data: Float32Array }[]): Model {
  const b = new GraphBuilder('m', 17);
  const x = b.input('x', 'float32', [1]);
  tensors.forEach((t, i) => b.init(`t${i}`, { dtype: 'float32', dims: t.dims, data: t.data }));
  b.output(b.op('Identity', [x]), 'float32', [1]);
  return b.build();
}

/** The real piece's weights with their kinds. */
function weights(m: Model): { key: string; op: string; slot: number; dims: number[]; data: Float32Array }[] {
  const out: { key: string; op: string; slot: number; dims: number[]; data: Float32Array }[] = [];
  for (const n of m.graph.nodes)
    n.inputs.forEach((t, slot) => {
      const w = m.graph.initializers.get(t);
      if (w) out.push({ key: weightKey(n.opType, slot, w.dims.length), op: n.opType, slot, dims: [...w.dims], data: w.data as Float32Array });
    });
  return out;
}

/** Share of the K sentinels whose near-twin score is larger than the real member's (0.5 for an indistinguishable one; 1 when the real member is always nearest). */
function realQuantile(real: Model, sentinels: Model[], stat: 'distance' | 'rank'): number {
  const s = nearTwinScores([real, ...sentinels].map(twinSketches)).map((t) => t[stat]);
  return s.slice(1).filter((x) => x > s[0]!).length / sentinels.length;
}

test('the near-twin statistic finds a real member whose sentinels are jittered copies of it, and not one whose sentinels WeightPool drew', () => {
  const rng = secretRng(8);
  const jitter = new Prng(9);
  const copies: number[] = [];
  const drawn: number[] = [];
  for (let rep = 0; rep < 16; rep++) {
    const real = piece(100 + rep);
    const ws = weights(real);
    const pool = new WeightPool([real], new Uint8Array(16).fill(rep));
    const drawnMembers: Model[] = [];
    const copyMembers: Model[] = [];
    for (let k = 0; k < 20; k++) {
      drawnMembers.push(member(ws.map((w) => ({ dims: w.dims, data: pool.sample(w.key, w.op, w.slot, w.dims, 0, rng)! }))));
      // The pre-fix sampler in effect: each value moved within a fraction of the gap to its neighbours.
      copyMembers.push(member(ws.map((w) => ({ dims: w.dims, data: w.data.map((v) => v * (1 + 0.002 * (jitter.next() - 0.5))) }))));
    }
    const realMember = member(ws.map((w) => ({ dims: w.dims, data: w.data })));
    copies.push(realQuantile(realMember, copyMembers, 'rank'));
    drawn.push(realQuantile(realMember, drawnMembers, 'distance'), realQuantile(realMember, drawnMembers, 'rank'));
  }
  const mean = (a: number[]): number => a.reduce((p, q) => p + q, 0) / a.length;
  // 16 groups, both statistics: a uniform quantile's mean would be 0.5 ± 0.05. The sentinel sampler
  // before hidden pools (subsets of one real tensor, jittered) gave 1.0 here; this one 0.64 over 48
  // groups: a sentinel tensor's nearest twin is still 1-2 % farther than a real one's, and a
  // member's mean over its 25 tensors adds that up.
  assert.ok(mean(copies) > 0.95, `jittered copies: the real member's mean quantile ${mean(copies)}`);
  assert.ok(mean(drawn) < 0.8, `WeightPool sentinels: the real member's mean quantile ${mean(drawn)} (0.5 = no signal)`);
});

test('nearTwinScores: NaN for a member without a comparable tensor; constants and short tensors are left out', () => {
  const a = member([{ dims: [16], data: Float32Array.from({ length: 16 }, (_, i) => i) }]);
  const b = member([{ dims: [16], data: Float32Array.from({ length: 16 }, (_, i) => 2 * i + 1) }]);
  const c = member([
    { dims: [16], data: new Float32Array(16).fill(1) },
    { dims: [4], data: Float32Array.from([1, 2, 3, 4]) },
  ]);
  assert.equal(twinSketches(c).length, 0);
  const s = nearTwinScores([a, b, c].map(twinSketches));
  // a and b have the same standardised shape (an affine image): distance 0, mid-rank of the two.
  assert.ok(s[0]!.distance < 1e-6 && s[1]!.distance < 1e-6, JSON.stringify(s));
  assert.equal(s[0]!.rank, 0.5);
  assert.ok(Number.isNaN(s[2]!.distance) && Number.isNaN(s[2]!.rank));
});
