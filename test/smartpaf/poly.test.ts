import assert from 'node:assert/strict';
import { test } from 'node:test';
import { composeOdd, composeStages, evalOdd, evalOddPlanned, evalStages, oddDegree, planOdd, stagesCost } from '../../src/smartpaf/poly.js';

const close = (a: number, b: number, tol: number, msg?: string) => assert.ok(Math.abs(a - b) <= tol, `${msg ?? ''} ${a} vs ${b} (tol ${tol})`);

test('plan depth is ceil(log2(d+1)) and counts follow the documented strategy', () => {
  // degree → [depth, ct×ct mults (squarings included), scalar mults, adds]
  const want: Record<number, [number, number, number, number]> = {
    1: [1, 0, 1, 0],
    3: [2, 2, 2, 1], // x², (c3·x)·x², + c1·x
    5: [3, 4, 3, 2], // x², x⁴, (c3x)x², (c5x)x⁴
    7: [3, 5, 4, 3], // x², x⁴, (c3x)x², (c5x + (c7x)x²)·x⁴ → 2 + 1 + 1 + 1
    9: [4, 7, 5, 4], // x², x⁴, x⁸, low degree 7 (3), (c9x)·x⁸: a fixed rule, not the fewest mults for every degree
    13: [4, 9, 7, 6],
    15: [4, 10, 8, 7],
    27: [5, 17, 14, 13],
  };
  for (const [d, [depth, mults, scalar, adds]] of Object.entries(want)) {
    const p = planOdd((Number(d) + 1) / 2);
    assert.deepEqual([p.cost.depth, p.cost.mults, p.cost.scalarMults, p.cost.adds], [depth, mults, scalar, adds], `degree ${d}`);
    assert.equal(p.cost.depth, Math.ceil(Math.log2(Number(d) + 1)), `degree ${d} depth formula`);
  }
});

test('planned evaluation equals Horner evaluation for random odd polynomials', () => {
  let s = 7;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  for (let terms = 1; terms <= 14; terms++) {
    const c = Array.from({ length: terms }, rnd);
    for (const x of [-1, -0.37, 0, 0.5, 0.93]) close(evalOddPlanned(c, x), evalOdd(c, x), 1e-12, `terms ${terms} x ${x}`);
  }
});

test('composition: coefficients of second(first(x)) match stage-by-stage evaluation', () => {
  const f1 = [1.5, -0.5];
  const g2 = [3334 / 1024, -6108 / 1024, 3796 / 1024];
  const c = composeOdd(f1, g2);
  assert.equal(oddDegree(c), 15);
  // Leading coefficient: c5(g2) · (−1/2)^5.
  close(c[c.length - 1]!, (3796 / 1024) * (-0.5) ** 5, 1e-12);
  for (const x of [-0.9, -0.2, 0.1, 0.6, 1]) close(evalOdd(c, x), evalOdd(g2, evalOdd(f1, x)), 1e-12);
  const four = composeStages([f1, f1, [2126 / 1024, -1359 / 1024], [2126 / 1024, -1359 / 1024]]);
  assert.equal(oddDegree(four), 81);
  for (const x of [-0.7, 0.05, 0.3]) close(evalOdd(four, x), evalStages([f1, f1, [2126 / 1024, -1359 / 1024], [2126 / 1024, -1359 / 1024]], x), 1e-9);
});

test('stage costs add up', () => {
  const c = stagesCost([
    [1, 2],
    [1, 2, 3],
  ]);
  assert.deepEqual(c, { depth: 5, mults: 6, scalarMults: 5, adds: 3 });
  assert.throws(() => planOdd(0), /at least one coefficient/);
});
