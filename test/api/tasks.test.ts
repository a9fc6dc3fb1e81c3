// The API entries behind info, zoo, train, eval, run, data, demo, serve, the HummingBird and SmartPAF
// reports, Proteus's attack and report, and the MPC roles and benches — called as a library user would
// (from src/index.ts), on small inputs, each with the typed error a bad input gives.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  DataError,
  demo,
  evaluate,
  exportZoo,
  FileError,
  formatConfusion,
  hummingbird,
  inspectModel,
  listZoo,
  ModelError,
  mpc,
  OptionError,
  problemsError,
  proteus,
  serve,
  smartpaf,
  train,
} from '../../src/index.js';
import { aucChanceP } from '../../src/proteus/index.js';
import { tinyCnn, writeFakeFashionMnist } from '../smartpaf/fixtures.js';
import { rejects } from './typed.js';

const root = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'privml-api-tasks-'));
const CNN = join(root, 'models', 'fmnist-cnn.onnx');
const A_FILE = join(tmp, 'a-file');
writeFileSync(A_FILE, 'x');

test('inspectModel, listZoo, exportZoo: what info and zoo print, typed errors on bad input', async () => {
  const r = await inspectModel('fmnist-cnn', { zoo: { pool: 'max' } });
  assert.equal(r.source, 'zoo:fmnist-cnn');
  assert.deepEqual(r.info.problems, []);
  assert.equal(r.info.opsHistogram['MaxPool'], 2);
  assert.match(
    (await problemsError({ ...r, info: { ...r.info, problems: [{ node: 'n', op: 'Foo', reason: 'unsupported op' }] } })).message,
    /node 'n' \(Foo\)/,
  );
  await rejects(inspectModel(join(tmp, 'nope.onnx')), ModelError, /nope\.onnx: no such model file/);
  const zoo = await listZoo();
  assert.ok(zoo.some((z) => z.name === 'resnet20' && z.options.length > 0));
  const out = join(tmp, 'zoo', 'lenet5.onnx');
  const ex = await exportZoo('lenet5', out);
  assert.ok(existsSync(out));
  assert.equal(ex.parameters, (await inspectModel(out)).info.parameters);
  await rejects(exportZoo('nope', join(tmp, 'n.onnx')), ModelError, /unknown zoo model 'nope'/);
  await rejects(exportZoo('lenet5', join(A_FILE, 'm.onnx')), FileError, /cannot create the folder/);
});

test('train and evaluate on a small data set; evaluate agrees between runtimes; typed option errors', async () => {
  const data = join(tmp, 'fmnist');
  writeFakeFashionMnist(data, 120, 40);
  const model = join(tmp, 'tiny.onnx');
  const { saveModel } = await import('../../src/index.js');
  await saveModel(tinyCnn(28), model);
  const out = join(tmp, 'trained.onnx');
  const lines: string[] = [];
  const r = await train(model, out, { dataDir: data, epochs: 1, batchSize: 32, log: (l) => lines.push(l) });
  assert.equal(r.trainExamples, 108);
  assert.equal(r.testExamples, 40);
  assert.equal(r.history.length, 1);
  assert.ok(existsSync(out));
  assert.match(lines[0]!, /training .* on 108 examples/);
  await rejects(train(model, out, { optimizer: 'lbfgs' }), OptionError, /--optimizer must be adam or sgd/);
  await rejects(train(model, join(A_FILE, 'x.onnx'), { dataDir: data }), FileError, /cannot create the folder/);

  const f = await evaluate(CNN, { dataset: 'fashion-mnist-sample', limit: 30 });
  const o = await evaluate(CNN, { dataset: 'fashion-mnist-sample', limit: 30, runtime: 'ort' });
  assert.equal(f.n, 30);
  assert.deepEqual(f.confusion, o.confusion);
  assert.equal(
    f.confusion.flat().reduce((a, b) => a + b, 0),
    30,
  );
  assert.match(formatConfusion(f.classes, f.confusion), /^confusion \(rows: true, columns: predicted\)/);
  await rejects(evaluate(CNN, { runtime: 'tf' }), OptionError, /--runtime must be float or ort, got 'tf'/);
  await rejects(evaluate(CNN, { dataset: 'mnist' }), OptionError, /unknown dataset 'mnist'/);
});

test('runFiles, data where, demo without private inference; typed errors', async () => {
  const { runFiles, whereDataset, downloadDataset, checkDemo } = await import('../../src/index.js');
  const x = join(tmp, 'x.json');
  writeFileSync(x, JSON.stringify([[Array.from({ length: 28 }, () => new Array(28).fill(0.5))]]));
  const r = await runFiles(CNN, [x], { compare: 'ort', output: join(tmp, 'y.npy') });
  const out = Object.values(r.outputs)[0]!;
  assert.deepEqual(out.shape, [1, 10]);
  assert.ok(Object.values(r.compare!)[0]!.maxRel < 1e-4);
  assert.ok(existsSync(join(tmp, 'y.npy')));
  await rejects(runFiles(CNN, [x, x]), OptionError, /the model has 1 input\(s\)/);
  writeFileSync(join(tmp, 'bad.json'), '[[1, 2], [3]]');
  await rejects(runFiles(CNN, [join(tmp, 'bad.json')]), DataError, /rectangular nested array/);
  assert.equal(whereDataset().dataset, 'fashion-mnist');
  await rejects(downloadDataset('cifar10'), OptionError, /cannot download 'cifar10'/);
  const d = await demo({ limit: 20, private: 0 });
  assert.equal(d.images, 20);
  assert.equal(d.onnxruntime.agreement, 1);
  checkDemo(d);
  assert.throws(() => checkDemo({ ...d, onnxruntime: { ...d.onnxruntime, agreement: 0.95 } }), /disagree on 1 of 20 images/);
  await rejects(demo({ model: join(tmp, 'missing.onnx') }), ModelError, /missing\.onnx: model not found/);
});

test('hummingbird.report from configs without MPC, and re-rendered from its JSON; typed errors', async () => {
  const html = join(tmp, 'hb', 'r.html');
  const { report, json } = await hummingbird.report({ configs: [join(root, 'models', 'hummingbird', 'fmnist-cnn', 'eco.json')], mpc: false, output: html });
  assert.equal(report.configs.length, 1);
  assert.equal(report.runs.length, 0);
  assert.ok(report.reluCost.configs[0]!.bitsPerElement < report.reluCost.signonly64);
  assert.ok(existsSync(html) && json && existsSync(json));
  const again = await hummingbird.report({ from: json, output: join(tmp, 'hb', 'r2.html') });
  assert.equal(again.report.modelHash, report.modelHash);
  await rejects(hummingbird.report({ output: html }), OptionError, /give --configs/);
  await rejects(hummingbird.report({ configs: ['x.json'], nets: ['lan', 'moon'], output: html }), OptionError, /--nets entries must be lan, wan or none/);
  await rejects(hummingbird.report({ from: CNN, output: html }), FileError, /cannot read report JSON/);
});

test('smartpaf.listPafs with plots, mergeReports and the runFile/table checks before any work', async () => {
  const svg = join(tmp, 'svg');
  const { pafs, svg: files } = await smartpaf.listPafs({ svgDir: svg });
  assert.equal(pafs.length, files.length);
  assert.equal(pafs.find((p) => p.name === 'f1g2')!.stages[0]!.coefficients[1], -0.5);
  assert.ok(readFileSync(files[0]!, 'utf8').startsWith('<svg'));
  const bad = join(tmp, 'bad-report.json');
  writeFileSync(bad, '{"columns": 1}');
  await rejects(smartpaf.mergeReports([bad], join(tmp, 'm.html')), DataError, /bad-report\.json: not a smartpaf report JSON/);
  await rejects(smartpaf.runFile(CNN, join(tmp, 'p.onnx'), { paf: 'f9g9' }), OptionError, /f9g9/);
  await rejects(smartpaf.runFile(CNN, join(tmp, 'p.onnx'), { paf: 'a7', techniques: 'ct,zz' }), OptionError, /--techniques: unknown technique 'zz'/);
  await rejects(smartpaf.table(CNN, join(tmp, 't.html'), { pafs: [] }), OptionError, /--pafs: no PAF named/);
  await rejects(smartpaf.table(CNN, join(A_FILE, 't.html')), FileError, /cannot create the folder/);
});

test('proteus.attack and proteus.report on small zoo models; typed errors', async () => {
  const rep = await proteus.attack({ models: ['fmnist-cnn', 'lenet5', 'resnet20'], k: 3, load: false, searchSpace: ['lenet5'], minGroups: 4 });
  assert.equal(rep.k, 3);
  assert.ok(rep.models.every((m) => m.groups >= 4));
  // Zoo models get fresh weights per bundle: fmnist-cnn's one piece is another real member in every group.
  assert.equal(rep.models.find((m) => m.model === 'fmnist-cnn')!.reals, 4);
  const fixed = await proteus.attack({ models: ['fmnist-cnn', 'resnet20'], k: 3, load: false, minGroups: 4, freshWeights: false });
  const one = fixed.models.find((m) => m.model === 'fmnist-cnn')!;
  // One weight draw: one real member, and its chance p is that of one rank among 12 sentinels.
  assert.deepEqual([one.groups, one.reals], [4, 1]);
  assert.ok(Math.abs(one.aucChanceP - aucChanceP(one.auc, 1, 12)) < 1e-12);
  assert.ok(rep.auc >= 0 && rep.auc <= 1);
  assert.equal(rep.searchSpace![0]!.model, 'lenet5');
  const html = join(tmp, 'proteus', 'r.html');
  await proteus.report(html, { models: ['fmnist-cnn'], k: 3 });
  assert.match(readFileSync(html, 'utf8'), /Proteus partition report/);
  await rejects(proteus.attack({ k: 0 }), OptionError, /--k must be a positive integer/);
  await rejects(proteus.attack({ minGroups: 0 }), OptionError, /--min-groups must be an integer from 1 to 1000/);
  await rejects(proteus.report(html, { models: [join(tmp, 'nope.onnx')] }), ModelError, /no such model file/);
});

test('mpc: dealer and parties as processes with handles, the benches, architecture export; typed errors', async () => {
  const dealer = await mpc.startDealer();
  const p1 = await mpc.startParty(CNN, { id: 1, peer: '127.0.0.1:0', dealer: `127.0.0.1:${dealer.port}`, count: 2 });
  const p0 = await mpc.startParty(CNN, { id: 0, peer: `127.0.0.1:${p1.port}`, dealer: `127.0.0.1:${dealer.port}`, dataset: 'fashion-mnist-sample', limit: 2 });
  const [r0, r1, stats] = await Promise.all([p0.result, p1.result, dealer.result]);
  assert.equal(r0.batches.length, 2);
  assert.equal(r1.batches.length, 2);
  assert.ok(stats.requests > 0);
  await Promise.all([p0.close(), p1.close(), dealer.close()]);
  // A dealer nobody connects to is stopped by close(); its result then rejects with a ProtocolError.
  const idle = await mpc.startDealer();
  await idle.close();
  await assert.rejects(idle.result, (e: Error) => e.name === 'ProtocolError');
  await rejects(mpc.startParty(CNN, { id: 2 as 0, peer: '127.0.0.1:1', dealer: '127.0.0.1:1' }), OptionError, /--id must be 0 or 1/);
  await rejects(mpc.runDealer({ listen: 'nowhere' }), OptionError, /--listen must look like host:port/);
  await rejects(mpc.runParty(CNN, { id: 1, peer: '127.0.0.1:0', dealer: '127.0.0.1:1' }), OptionError, /party 1 needs --count/);

  const relu = await mpc.benchRelu({ n: 200, reps: 1 });
  assert.equal(relu.n, 200);
  assert.ok(relu.rounds > 0 && relu.bitsPerElemPerParty > 0);
  const model = await mpc.benchModel(CNN, { reps: 1, preprocess: true });
  assert.equal(model.msPerBatch, null);
  assert.ok(model.onlineMsPerBatch > 0 && model.roundsPerBatch > 0);
  await rejects(mpc.benchRelu({ reluProtocol: 'gc' }), OptionError, /--relu-protocol must be signonly, crypten, fss or fss2/);

  const arch = await mpc.exportArchitecture(CNN, join(tmp, 'arch.onnx'));
  assert.ok(arch.zeroed > 0 && arch.hash.length === 64);
  await rejects(mpc.makeCertificates(join(tmp, 'certs'), 0), OptionError, /--days must be an integer from 1 to 3650/);
});

test('serve: the page server answers /api/info and stops on close(); typed errors', async () => {
  const s = await serve('fmnist-cnn', { port: 0 });
  try {
    const info = (await (await fetch(`${s.url}api/info`)).json()) as { mode: string; inputShape: number[] };
    assert.equal(info.mode, 'mpc');
    assert.deepEqual(info.inputShape, [1, 28, 28]);
  } finally {
    await s.close();
  }
  await rejects(serve('fmnist-cnn', { paf: 'f1g2' }), OptionError, /--paf is for --fhe only/);
  await rejects(serve('fmnist-cnn', { port: 70000 }), OptionError, /--port must be 0\.\.65535/);
});
