import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeSpeedups, type HbReport, type ReportRun, renderReport } from '../../src/hummingbird/report.js';

const run = (label: string, kind: ReportRun['kind'], net: string, batch: number, ms: number, bytes: number): ReportRun => ({
  label,
  kind,
  net,
  batch,
  msPerBatch: ms,
  bytesPerBatch: bytes,
  reluBytesPerBatch: bytes * 0.9,
  rounds: 10,
  modeledMs: ms / 2,
  agreement: 1,
});

test('speedups compare each config with the baselines of the same network and batch', () => {
  const runs = [
    run('sign-only 64-bit', 'signonly', 'wan', 64, 1000, 4e6),
    run('CrypTen 64-bit', 'crypten', 'wan', 64, 3000, 16e6),
    run('eco', 'config', 'wan', 64, 400, 1e6),
    run('eco', 'config', 'lan', 1, 50, 1e5),
  ];
  const s = computeSpeedups(runs);
  assert.equal(s.length, 2);
  assert.equal(s[0]!.vsSignonly, 2.5);
  assert.equal(s[0]!.vsCrypten, 7.5);
  assert.equal(s[0]!.commVsCrypten, 16);
  assert.equal(s[1]!.vsCrypten, undefined, 'no LAN baseline was measured');
});

test('the report page holds the SVG plots, the tables and escapes names', () => {
  const layers = [
    { node: 'relu_1', msb: 21, lsb: 9, bits: 12, elements: 100 },
    { node: 'relu_2', msb: 4, lsb: 4, bits: 0, elements: 50 },
  ];
  const r: HbReport = {
    model: 'm<1>.onnx',
    modelHash: 'ab'.repeat(32),
    generated: '2026-01-01T00:00:00Z',
    configs: [
      {
        name: 'eco',
        path: 'eco.json',
        model: 'm.onnx',
        mode: 'eco',
        budget: 18,
        bitsKept: 8,
        bitsDiscarded: 0.875,
        finetuned: false,
        layers,
        test: { dataset: 't', n: 10, accuracy64: 0.9, accuracy: 0.9, agreement: 1 },
      },
      {
        name: 'agg',
        path: 'agg.json',
        model: 'm.onnx',
        mode: 'aggressive',
        budget: 5,
        bitsKept: 5,
        bitsDiscarded: 1 - 5 / 64,
        finetuned: true,
        layers,
        test: { dataset: 't', n: 10, accuracy64: 0.9, accuracy: 0.89, agreement: 0.95 },
      },
    ],
    runs: [
      run('sign-only 64-bit', 'signonly', 'wan', 64, 1000, 4e6),
      run('CrypTen 64-bit', 'crypten', 'wan', 64, 3000, 16e6),
      run('eco', 'config', 'wan', 64, 400, 1e6),
    ],
    reluCost: { signonly64: 491, crypten: 1856, configs: [{ config: 'eco', bitsPerElement: 189 }] },
  };
  const html = renderReport(r);
  assert.equal((html.match(/<svg /g) ?? []).length, 4, 'Pareto, per-layer bits, time, communication');
  assert.ok(html.includes('m&lt;1&gt;.onnx') && !html.includes('m<1>.onnx'));
  assert.ok(html.includes('7.5×'), 'speedup vs CrypTen labelled on the time plot');
  assert.ok(html.includes('87.50 %'));
  assert.ok(html.includes('[9, 21) = 12 bits'));
  const noRuns = renderReport({ ...r, runs: [] });
  assert.equal((noRuns.match(/<svg /g) ?? []).length, 2);
  assert.ok(noRuns.includes('No private inference was measured'));
});
