import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BASE_POLYS, getPaf, listPafs, MINIMAX27_EPS, makePaf, maxPoolCost, PAF_NAMES, withStages } from '../../src/smartpaf/paf.js';
import { pafSvg } from '../../src/smartpaf/plot.js';
import { evalOdd } from '../../src/smartpaf/poly.js';
import { measureSign } from '../../src/smartpaf/remez.js';

test('base polynomials carry the issue coefficients', () => {
  assert.deepEqual(BASE_POLYS.f1, [1.5, -0.5]);
  assert.deepEqual(BASE_POLYS.f2, [1.875, -1.25, 0.375]);
  // g1(1) = (2126 − 1359)/1024, g3 has four odd terms.
  assert.equal(evalOdd(BASE_POLYS.g1, 1), 767 / 1024);
  assert.equal(evalOdd(BASE_POLYS.g2, 1), (3334 - 6108 + 3796) / 1024);
  assert.equal(evalOdd(BASE_POLYS.g3, 1), (4589 - 16577 + 25614 - 12860) / 1024);
  assert.equal(BASE_POLYS.p1[3], -31.8755225906466);
  assert.equal(BASE_POLYS.p2[0], 2.40085652217597);
});

test('library: names, stage order, degrees, depths and multiplication counts', () => {
  assert.deepEqual(
    listPafs().map((p) => p.name),
    [...PAF_NAMES],
  );
  // name → [stage names, degree (sum), algebraic degree, depth, mults]
  const want: Record<string, [string[], number, number, number, number]> = {
    f1g2: [['f1', 'g2'], 8, 15, 5, 6],
    f2g2: [['f2', 'g2'], 10, 25, 6, 8],
    f2g3: [['f2', 'g3'], 12, 35, 6, 9],
    a7: [['p1', 'p2'], 14, 49, 6, 10],
    'f1sq-g1sq': [['f1', 'f1', 'g1', 'g1'], 12, 81, 8, 8],
    minimax27: [['m7a', 'm7b', 'm13'], 27, 637, 10, 19],
  };
  for (const [name, [stages, degree, alg, depth, mults]] of Object.entries(want)) {
    const p = getPaf(name);
    assert.deepEqual(p.stageNames, stages, name);
    assert.deepEqual([p.degree, p.algebraicDegree, p.cost.depth, p.cost.mults], [degree, alg, depth, mults], name);
    assert.deepEqual([p.reluCost.depth, p.reluCost.mults], [depth + 1, mults + 1], `${name} relu`);
  }
  // The first named stage runs first: f1g2(x) = g2(f1(x)), not f1(g2(x)).
  const p = getPaf('f1g2');
  assert.equal(p.sign(0.3), evalOdd(BASE_POLYS.g2, evalOdd(BASE_POLYS.f1, 0.3)));
  assert.notEqual(p.sign(0.3), evalOdd(BASE_POLYS.f1, evalOdd(BASE_POLYS.g2, 0.3)));
  assert.equal(getPaf('a7').sign(0.2), evalOdd(BASE_POLYS.p2, evalOdd(BASE_POLYS.p1, 0.2)));
});

test('sign approximation quality at sample points', () => {
  // Bounds measured on [−1,−eps] ∪ [eps,1]; the low-degree PAFs are loose near ±1 by design (g(1) ≈ 0.75).
  const bound: Record<string, [number, number]> = {
    a7: [0.1, 0.015],
    minimax27: [MINIMAX27_EPS, 2e-3],
    'f1sq-g1sq': [0.1, 0.26],
    f2g3: [0.1, 0.27],
    f2g2: [0.1, 0.44],
    f1g2: [0.1, 0.54],
  };
  for (const [name, [eps, tol]] of Object.entries(bound)) {
    const p = getPaf(name);
    for (const x of [eps, 0.25, 0.5, 0.75, 1]) {
      assert.ok(Math.abs(p.sign(x) - 1) <= tol, `${name} sign(${x}) = ${p.sign(x)}`);
      assert.equal(p.sign(-x), -p.sign(x), `${name} is odd`);
    }
    assert.ok(measureSign(p.stages, eps, 4000).signError <= tol, `${name} dense sign error`);
  }
  assert.equal(getPaf('f1g2').sign(0), 0);
});

test('relu and max use the scale and approximate the exact functions', () => {
  const p = getPaf('minimax27');
  for (const x of [-3, -0.5, 0.2, 2.5]) assert.ok(Math.abs(p.relu(x, 4) - Math.max(x, 0)) < 4 * 1e-3, `relu(${x})`);
  assert.ok(Math.abs(p.max(1.5, -2, 4) - 1.5) < 4e-3);
  assert.ok(Math.abs(p.max(-0.4, 0.9, 2) - 0.9) < 2e-3);
  assert.equal(p.max(0.7, 0.7, 1), 0.7);
  assert.deepEqual(maxPoolCost(p, 4), { depth: 2 * 11, mults: 3 * 20, scalarMults: 3 * p.cost.scalarMults, adds: 3 * (p.cost.adds + 3) });
  assert.equal(maxPoolCost(p, 9).depth, 4 * 11);
});

test('tuned coefficients keep the structure; bad names and shapes are clear errors', () => {
  const p = getPaf('f1g2');
  const t = withStages(p, [
    [1.4, -0.45],
    [3.2, -5.9, 3.7],
  ]);
  assert.deepEqual(t.cost, p.cost);
  assert.equal(t.sign(0.5), evalOdd([3.2, -5.9, 3.7], evalOdd([1.4, -0.45], 0.5)));
  assert.throws(() => withStages(p, [[1, 2, 3], [1]]), /expected stage lengths \[2,3\]/);
  assert.throws(() => getPaf('relu6'), /unknown PAF 'relu6' \(known: f1g2, f2g2, f2g3, a7, f1sq-g1sq, minimax27\)/);
  assert.throws(() => makePaf('x', [[NaN]]), /finite/);
});

test('SVG plot of every PAF is well-formed and shows both panels', () => {
  for (const p of listPafs()) {
    const svg = pafSvg(p);
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.equal((svg.match(/<path /g) ?? []).length, 4, `${p.name}: 2 curves × 2 panels`);
    assert.ok(svg.includes('sign(x)') && svg.includes('ReLU(x)'));
    assert.equal((svg.match(/<[a-zA-Z]/g) ?? []).length, (svg.match(/\/>|<\/[a-zA-Z]+>/g) ?? []).length, `${p.name}: balanced tags`);
    assert.ok(!/NaN|Infinity/.test(svg), `${p.name}: finite coordinates`);
  }
});
