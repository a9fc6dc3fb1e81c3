import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getPaf, MINIMAX27_DEGREES, MINIMAX27_EPS } from '../../src/smartpaf/paf.js';
import { evalOdd, evalStages } from '../../src/smartpaf/poly.js';
import { bestEpsForRelu, fitMinimaxComposite, remezOddSign } from '../../src/smartpaf/remez.js';

test('Remez equioscillates on (degree + 3)/2 alternation points', () => {
  for (const [degree, lo, hi] of [
    [3, 0.1, 1],
    [7, 0.05, 1],
    [13, 0.2, 1],
    [7, 0.8, 1.2],
  ] as const) {
    const r = remezOddSign({ degree, lo, hi });
    assert.ok(r.converged, `degree ${degree} on [${lo}, ${hi}] converged`);
    assert.equal(r.refPoints.length, (degree + 3) / 2);
    assert.equal(r.coeffs.length, (degree + 1) / 2);
    r.refErrors.forEach((e, i) => {
      assert.ok(Math.abs(Math.abs(e) - r.error) <= 1e-6 * r.error + 1e-13, `|e| at point ${i} = ${Math.abs(e)} vs ${r.error}`);
      if (i > 0) assert.equal(Math.sign(e), -Math.sign(r.refErrors[i - 1]!), 'alternating signs');
    });
    // The reported error is the true max on the interval (dense check).
    let worst = 0;
    for (let k = 0; k <= 20000; k++) worst = Math.max(worst, Math.abs(evalOdd(r.coeffs, lo + ((hi - lo) * k) / 20000) - 1));
    assert.ok(worst <= r.error * (1 + 1e-6) && worst >= r.error * 0.999, `dense max ${worst} vs ${r.error}`);
  }
});

test('Remez minimax errors are below stated bounds and beat a non-optimal polynomial', () => {
  // Degree-3 minimax on [0.1, 1] must beat f1 = (3x − x³)/2 (which is not minimax there).
  const r3 = remezOddSign({ degree: 3, lo: 0.1, hi: 1 });
  let f1Err = 0;
  for (let k = 0; k <= 2000; k++) {
    const x = 0.1 + (0.9 * k) / 2000;
    f1Err = Math.max(f1Err, Math.abs((3 * x - x ** 3) / 2 - 1));
  }
  assert.ok(r3.error < f1Err, `${r3.error} < ${f1Err}`);
  assert.ok(r3.error < 0.79);
  assert.ok(remezOddSign({ degree: 15, lo: 0.1, hi: 1 }).error < 0.13);
  // Near ±1 a degree-7 fit is very accurate and its range brackets 1.
  const narrow = remezOddSign({ degree: 7, lo: 0.9, hi: 1.1 });
  assert.ok(narrow.error < 1e-4, `narrow error ${narrow.error}`);
  assert.ok(narrow.range[0] < 1 && narrow.range[1] > 1);
  assert.throws(() => remezOddSign({ degree: 4, lo: 0.1, hi: 1 }), /odd positive/);
  assert.throws(() => remezOddSign({ degree: 5, lo: 0, hi: 1 }), /0 < lo < hi/);
});

test('minimax27 composite: degrees 7, 7, 13 approximate sign on [−1,−eps] ∪ [eps,1]', () => {
  const fit = fitMinimaxComposite(MINIMAX27_DEGREES, MINIMAX27_EPS);
  assert.ok(fit.components.every((c) => c.converged));
  // Each component is fitted on the previous component's output range.
  assert.equal(fit.components[1]!.refPoints[0], fit.components[0]!.range[0]);
  assert.ok(fit.signError < 2e-3, `sign error ${fit.signError}`);
  assert.ok(fit.reluError < 2 ** -10, `relu error ${fit.reluError}`);
  assert.ok(fit.supAbs < 1.01, 'bounded inside (−eps, eps)');
  for (const x of [MINIMAX27_EPS, 0.02, 0.1, 0.5, 1]) {
    assert.ok(Math.abs(evalStages(fit.stages, x) - 1) < 2e-3, `P(${x})`);
    assert.ok(Math.abs(evalStages(fit.stages, -x) + 1) < 2e-3, `P(${-x})`);
  }
  assert.deepEqual(getPaf('minimax27').stages, fit.stages);
  // Sign error shrinks stage by stage.
  assert.ok(fit.components[0]!.error > fit.components[1]!.error && fit.components[1]!.error > fit.components[2]!.error);
  assert.throws(() => fitMinimaxComposite([7], 0), /eps must be in \(0, 1\)/);
});

test('the chosen eps is the ReLU-optimal one for 7∘7∘13', () => {
  const best = bestEpsForRelu(MINIMAX27_DEGREES, 0.005, 0.05, 25);
  assert.ok(Math.abs(best.eps - MINIMAX27_EPS) < 5e-4, `optimal eps ${best.eps}`);
  assert.ok(fitMinimaxComposite(MINIMAX27_DEGREES, MINIMAX27_EPS).reluError <= best.reluError * 1.02);
});
