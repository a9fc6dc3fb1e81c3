import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphBuilder } from '../../src/onnx/builder.js';
import type { Model } from '../../src/onnx/ir.js';
import { buildZoo } from '../../src/onnx/zoo/index.js';
import { duplicateCountAfter, duplicateIndices } from '../../src/proteus/duplicates.js';
import { corpusStats, duplicateCount, generateSentinels, learnStats, Prng, secretRng, valueStats } from '../../src/proteus/index.js';
import { compositionStats, memberEntropy, poissonWithin } from '../../src/proteus/rank.js';

/** Sorted-compare duplicate count, as the battery counts them. */
function sortedDups(d: Float32Array): number {
  const s = Float32Array.from(d).sort();
  let k = 0;
  for (let i = 1; i < s.length; i++) if (s[i] === s[i - 1]) k++;
  return k;
}

test('the battery radix duplicate count equals the sorted compare (−0 = +0, NaN equals nothing, empty and one-value tensors)', () => {
  const rng = new Prng(9);
  const cases = [
    new Float32Array(0),
    new Float32Array([1.5]),
    new Float32Array([0, -0, 0, Number.NaN, Number.NaN, 2, 2, -2, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]),
    weights(50_000, 0.05, 0.2, rng),
    Float32Array.from({ length: 70_000 }, () => Math.round((rng.next() - 0.5) * 4000) / 1000),
  ];
  for (const d of cases) assert.equal(duplicateCount(d), sortedDups(d), `n=${d.length}`);
  // A view into a larger buffer counts only its own values.
  const big = new Float32Array([7, 7, 7, 1, 2, 3]);
  assert.equal(duplicateCount(big.subarray(3)), 0);
});

/** Laplace-like weights with `share` of the values copies of others (a piece that repeats values more than chance). */
function weights(n: number, scale: number, share: number, rng: Prng): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = scale * Math.log(rng.next() + 1e-12) * (rng.next() < 0.5 ? -1 : 1);
  for (let k = 0; k < share * n; k++) w[Math.floor(rng.next() * n)] = w[Math.floor(rng.next() * n)]!;
  return w;
}

/** Two convolutions, the first one's weights repeating 3 % of their values. */
function piece(): Model {
  const rng = new Prng(4);
  const b = new GraphBuilder('piece', 17);
  const x = b.input('x', 'float32', [1, 8, 8, 8]);
  const w1 = b.init('w1', { dtype: 'float32', dims: [16, 8, 3, 3], data: weights(1152, 0.1, 0.03, rng) });
  const w2 = b.init('w2', { dtype: 'float32', dims: [8, 16, 3, 3], data: weights(1152, 0.08, 0, rng) });
  const h = b.op('Relu', [b.op('Conv', [x, w1], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]);
  b.output(b.op('Conv', [h, w2], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), 'float32', [1, 8, 8, 8]);
  return b.build();
}

test('composition statistics are the battery duplicate fraction and exponent entropy, hashed instead of sorted', () => {
  const rng = new Prng(1);
  const d = weights(5000, 0.05, 0.01, rng);
  d[10] = 0;
  d[11] = -0; // equal as numbers: one duplicate, as the sorted compare counts it
  assert.equal(duplicateIndices(d).length, sortedDups(d));
  const m = piece();
  const v = valueStats(m, 0, true);
  const [dup, ent] = compositionStats(m);
  assert.ok(Math.abs(dup - v[0]!) < 1e-12, `duplicate fraction ${dup} vs battery ${v[0]}`);
  assert.ok(Math.abs(ent - v[9]!) < 1e-9 && Math.abs(memberEntropy(m) - v[9]!) < 1e-9, `exponent entropy ${ent} vs battery ${v[9]}`);
});

test('the real piece sits at its secret duplicate-fraction rank: sentinels land on the side their draws say', () => {
  const real = piece();
  const stats = learnStats([real]);
  const realDup = valueStats(real, 0, true)[0]!;
  assert.ok(realDup > 0.01, `the real piece repeats values (${realDup})`);
  // A place far below every draw: all sentinels above the real value (fresh draws alone repeat ~0.01 %, far below it).
  const above = generateSentinels(real, 8, { stats, seed: 3, mix: [-9, 0] });
  for (const f of above) assert.ok(valueStats(f, 0, true)[0]! >= realDup, `sentinel duplicate fraction ${valueStats(f, 0, true)[0]} below the real ${realDup}`);
  // Far above every draw: all at or below it.
  const below = generateSentinels(real, 8, { stats, seed: 4, mix: [9, 0] });
  for (const f of below) assert.ok(valueStats(f, 0, true)[0]! <= realDup);
  // A place at the median: both sides occur.
  const mid = generateSentinels(real, 16, { stats, seed: 5, mix: [0, 0] }).map((f) => valueStats(f, 0, true)[0]!);
  const up = mid.filter((x) => x > realDup).length;
  assert.ok(up > 0 && up < 16, `${up} of 16 sentinels above the real duplicate fraction`);
});

test('restricted Poisson draws stay in range, also far from λ and for large counts', () => {
  const rng = secretRng(2);
  for (const [lam, lo, hi] of [
    [3, 50, Infinity],
    [200000, 0, 10],
    [200000, 0, 150000],
    [1, 0, 0],
    [5, 2, 8],
  ] as const) {
    const k = poissonWithin(lam, lo, hi, rng);
    assert.ok(k >= lo && k <= hi, `Poisson(${lam}) within [${lo}, ${hi}]: ${k}`);
  }
  assert.equal(poissonWithin(4, 5, 4, rng), -1);
  // Unrestricted in effect: the mean stays λ.
  let s = 0;
  for (let i = 0; i < 2000; i++) s += poissonWithin(6, 0, Infinity, rng);
  assert.ok(Math.abs(s / 2000 - 6) < 0.3, `mean ${s / 2000}`);
});

test('one draw places a sentinel on one side of the real piece in weight count and node count (LeNet-5: deeper sentinels exist)', () => {
  // The whole LeNet-5 is one piece at the deepest conv stack its input allows: before, no sentinel
  // had more nodes than it (only structural copies tied), and the learned adversary ranked it first.
  const real = buildZoo('lenet5', {});
  const stats = corpusStats();
  const n = real.graph.nodes.length;
  const params = (m: Model): number => [...m.graph.initializers.values()].reduce((s, t) => s + t.dims.reduce((a, b) => a * b, 1), 0);
  const p = params(real);
  // A place far below every draw: most sentinels at or above the real piece in both, half strictly
  // deeper; far above: at or below it in both. Over 4 streams: one stream's 10 sentinels put 0–4 on
  // the wrong side of a place far below (attempts cannot always build a deeper LeNet-5 that is not
  // also lighter), 19–24 % in all over 12 streams.
  const shown = (fs: Model[]): string => fs.map((f) => `${f.graph.nodes.length}/${params(f)}`).join(' ');
  const up = [1, 2, 3, 4].flatMap((seed) => generateSentinels(real, 10, { stats, seed, position: -9 }));
  assert.ok(up.filter((f) => f.graph.nodes.length < n || params(f) < p).length <= 12, `below the real ${n}/${p}: ${shown(up)}`);
  assert.ok(up.filter((f) => f.graph.nodes.length > n).length >= 20, `deeper than the real ${n}: ${shown(up)}`);
  const down = [5, 6].flatMap((seed) => generateSentinels(real, 10, { stats, seed, position: 9 }));
  assert.ok(down.filter((f) => f.graph.nodes.length > n || params(f) > p).length <= 1, `above the real ${n}/${p}: ${shown(down)}`);
});

test('duplicate indices past one hash table: the later copies, ascending, as a naive first-seen scan finds them', () => {
  const rng = new Prng(12);
  const d = weights(200_000, 0.05, 0.02, rng);
  for (let i = 0; i < 300; i++) d[Math.floor(rng.next() * d.length)] = i % 2 ? 0 : -0;
  const seen = new Set<number>();
  const naive: number[] = [];
  d.forEach((v, i) => (seen.has(v) ? naive.push(i) : seen.add(v)));
  assert.deepEqual(duplicateIndices(d), naive);
  assert.equal(naive.length, sortedDups(d));
});

test('the duplicate count after in-place overwrites, from the overwritten and written patterns, equals a full recount (±0, NaN, Inf, many edits)', () => {
  const rng = new Prng(41);
  const u32 = new Uint32Array(1);
  const f32 = new Float32Array(u32.buffer);
  const bits = (v: number): number => {
    f32[0] = v;
    return u32[0]!;
  };
  for (const n of [1, 7, 1000, 70000]) {
    // A small value set, so writes land on, and leave, existing duplicates.
    const levels = [0, -0, Number.NaN, Number.POSITIVE_INFINITY, ...Array.from({ length: 40 }, () => rng.normal())];
    const d = Float32Array.from({ length: n }, () => (rng.next() < 0.5 ? levels[rng.int(levels.length)]! : rng.normal()));
    for (const edits of [0, 1, 5, n]) {
      const before = duplicateCount(d);
      const removed: number[] = [];
      const added: number[] = [];
      for (let e = 0; e < edits; e++) {
        const j = rng.int(n);
        removed.push(bits(d[j]!));
        d[j] = rng.next() < 0.7 ? d[rng.int(n)]! : levels[rng.int(levels.length)]!;
        added.push(bits(d[j]!));
      }
      assert.equal(duplicateCountAfter(d, before, removed, added), duplicateCount(d), `n ${n}, ${edits} edits`);
    }
  }
});
