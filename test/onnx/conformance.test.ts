/** ONNX backend node cases (test/fixtures/onnx-backend): nothing silently wrong, listed ops pass. */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CaseResult, listCases, runCase } from '../../scripts/conformance-lib.js';

const dir = join(import.meta.dirname, '..', 'fixtures', 'onnx-backend', 'node');

/**
 * Listed-op cases the float runtime refuses on purpose, each with the reason: float64 outside the
 * ops nn/f64.ts runs in double precision (tfjs has no float64; refusing beats rounding), random training-mode Dropout, crop-and-resize, 3-D ConvTranspose.
 * MaxPool's Indices output, ratio-0 training Dropout and training-mode BatchNormalization are computed.
 */
const KNOWN_REFUSED: Record<string, RegExp> = {
  float64: /float64 is not supported/,
  training: /training-mode Dropout is random/,
  crop: /tf_crop_and_resize/,
  convT3d: /only 1-D and 2-D ConvTranspose/,
};

test('backend node cases: 0 wrong, 0 crash; every listed case passes or is a known, clear refusal', async () => {
  const names = listCases(dir);
  assert.ok(names.length > 600, `fixtures missing (${names.length} cases)`);
  const results: CaseResult[] = [];
  for (const n of names) results.push(await runCase(join(dir, n), n));
  const bad = results.filter((r) => r.status === 'wrong' || r.status === 'crash');
  assert.deepEqual(
    bad.map((r) => `${r.name}: ${r.status} ${r.detail}`),
    [],
  );
  const listed = results.filter((r) => r.listed);
  const unexplained = listed.filter((r) => r.status !== 'pass' && !Object.values(KNOWN_REFUSED).some((re) => re.test(r.detail ?? '')));
  assert.deepEqual(
    unexplained.map((r) => `${r.name}: ${r.detail}`),
    [],
  );
  const rate = listed.filter((r) => r.status === 'pass').length / listed.length;
  assert.ok(rate >= 0.98, `listed pass rate ${rate}`);
  for (const n of [
    'test_maxpool_with_argmax_2d_precomputed_strides',
    'test_batchnorm_example_training_mode',
    'test_training_dropout_zero_ratio_mask',
    'test_cumsum_2d_axis_1',
    'test_mod_mixed_sign_float64',
    'test_reduce_log_sum_exp_keepdims_random',
    'test_cast_FLOAT_to_DOUBLE',
  ]) {
    assert.equal(results.find((r) => r.name === n)?.status, 'pass', n);
  }
  // Every refusal is one line naming the model (a ModelError), never a stack trace.
  for (const r of results.filter((x) => x.status === 'refused'))
    assert.match(r.detail ?? '', new RegExp(`^(${r.name}|${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')})`));
});
