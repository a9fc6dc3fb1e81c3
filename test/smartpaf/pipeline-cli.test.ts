import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerSmartpaf } from '../../src/cli/smartpaf.js';
import { FloatModel } from '../../src/nn/runtime.js';
import { runOrt } from '../../src/onnx/ort.js';
import { loadModel, saveModel } from '../../src/onnx/proto.js';
import { META_PAF, META_PAF_SCALES } from '../../src/smartpaf/graph.js';
import { patternBytes, tinyCnn, writeFakeFashionMnist } from './fixtures.js';

/** Run `privml smartpaf …` in-process, capturing stdout. */
async function run(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerSmartpaf(program);
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  // Capture text only: the test runner itself reports to the parent through stdout as binary frames.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    if (typeof chunk !== 'string') return write(chunk, ...rest);
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'privml', 'smartpaf', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'privml-smartpaf-'));
writeFakeFashionMnist(dir, 240, 64);
const modelFile = join(dir, 'tiny.onnx');
saveModel(tinyCnn(28), modelFile);
const small = ['--dataset', 'fashion-mnist', '--data-dir', dir, '--ct-epochs', '3', '--ct-samples', '16', '--max-groups', '2', '--batch-size', '32'];

test('smartpaf MODEL --techniques ct,pa,at,ss writes a plain ONNX model that onnxruntime runs like the float runtime', async () => {
  const out = join(dir, 'out', 'tiny.paf.onnx');
  const summary = JSON.parse(await run(modelFile, '--paf', 'f1sq-g1sq', '--techniques', 'ct,pa,at,ss', ...small, '-o', out, '--json'));
  assert.equal(summary.paf, 'f1sq-g1sq');
  assert.deepEqual(summary.techniques, ['ct', 'pa', 'at', 'ss']);
  assert.deepEqual(
    summary.ct.map((c: { node: string }) => c.node),
    ['relu1', 'pool1', 'relu2'],
  );
  assert.ok(summary.ct.every((c: { mseAfter: number; mseBefore: number }) => c.mseAfter <= c.mseBefore));
  assert.ok(existsSync(out));
  const m = loadModel(out);
  assert.ok(
    m.graph.nodes.every((n) => n.domain === '' || n.domain === 'ai.onnx'),
    'only standard ops',
  );
  assert.ok(!m.graph.nodes.some((n) => n.opType === 'Relu' || n.opType === 'MaxPool'));
  assert.equal(m.metadata[META_PAF], 'f1sq-g1sq');
  assert.deepEqual(Object.keys(JSON.parse(m.metadata[META_PAF_SCALES]!)).sort(), ['pool1', 'relu1', 'relu2']);
  const { pixels } = patternBytes(8, 28, 99);
  const x = { dtype: 'float32' as const, dims: [8, 1, 28, 28], data: Float32Array.from(pixels, (v) => v / 255) };
  const ort = (await runOrt(m, { x }))[m.graph.outputs[0]!.name]!.data as Float32Array;
  const fm = await FloatModel.create(m);
  const flt = fm.run({ x })[m.graph.outputs[0]!.name]!.data as Float32Array;
  fm.dispose();
  let d = 0;
  for (let i = 0; i < ort.length; i++) d = Math.max(d, Math.abs(ort[i]! - flt[i]!));
  assert.ok(d < 1e-3, `ORT vs float runtime: ${d}`);
  assert.ok(summary.ortMaxAbsDiff < 1e-3);
  assert.ok(summary.range.relu1.total > 0);
});

test('smartpaf: bad inputs give one-line errors', async () => {
  const out = join(dir, 'bad.onnx');
  await assert.rejects(
    run(modelFile, '--paf', 'f9g9', ...small, '-o', out),
    (e: Error) => /unknown PAF 'f9g9' \(known: f1g2/.test(e.message) && !e.message.includes('\n'),
  );
  await assert.rejects(run(modelFile, '--paf', 'a7', '--techniques', 'ct,zz', ...small, '-o', out), /unknown technique 'zz'/);
  const noRelu = tinyCnn(28);
  noRelu.graph.nodes = noRelu.graph.nodes.map((n) =>
    n.opType === 'Relu' ? { ...n, opType: 'Sigmoid' } : n.opType === 'MaxPool' ? { ...n, opType: 'AveragePool' } : n,
  );
  const noReluFile = join(dir, 'sigmoid.onnx');
  saveModel(noRelu, noReluFile);
  await assert.rejects(
    run(noReluFile, '--paf', 'a7', ...small, '-o', out),
    (e: Error) => /no Relu or MaxPool node to replace/.test(e.message) && !e.message.includes('\n'),
  );
  assert.ok(!existsSync(out));
  await assert.rejects(run(join(dir, 'missing.onnx'), '--paf', 'a7', ...small, '-o', out), /no such model file/);
});

test('smartpaf report writes the Table-3 HTML (with SVG) and JSON', async () => {
  const html = join(dir, 'rep', 'report.html');
  const text = await run('report', modelFile, '--pafs', 'f1g2', ...small, '--max-groups', '1', '-o', html);
  assert.match(text, /CT \+ PA \+ AT \+ SS \(SmartPAF\)/);
  const page = readFileSync(html, 'utf8');
  assert.match(page, /<svg [\s\S]*<\/svg>/);
  assert.match(page, /prior work: fine-tune all \(SS\)/);
  const json = JSON.parse(readFileSync(join(dir, 'rep', 'report.json'), 'utf8'));
  assert.deepEqual(Object.keys(json.columns[0].cells).sort(), ['ct', 'ftAllDs', 'ftAllSs', 'replace', 'smartDs', 'smartSs']);
  assert.ok(json.reluAccuracy >= 0 && json.reluAccuracy <= 1);
  const merged = join(dir, 'rep', 'merged.html');
  await run('report-merge', join(dir, 'rep', 'report.json'), join(dir, 'rep', 'report.json'), '-o', merged);
  assert.equal(JSON.parse(readFileSync(join(dir, 'rep', 'merged.json'), 'utf8')).columns.length, 2);
  assert.match(readFileSync(merged, 'utf8'), /SmartPAF \(SS\)/);
});
