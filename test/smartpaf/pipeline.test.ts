import assert from 'node:assert/strict';
import { test } from 'node:test';
import { split } from '../../src/nn/data/dataset.js';
import { FloatModel } from '../../src/nn/runtime.js';
import { train } from '../../src/nn/train.js';
import { alternateTrain, atGroups, type GroupResult } from '../../src/smartpaf/at.js';
import { profileLayers, tuneLayer } from '../../src/smartpaf/ct.js';
import { pafLayers, replaceActivations } from '../../src/smartpaf/graph.js';
import { linearGroup, nonlinearLayers } from '../../src/smartpaf/layers.js';
import { progressiveApproximation } from '../../src/smartpaf/pa.js';
import { getPaf } from '../../src/smartpaf/paf.js';
import { parseTechniques, recordScales, runPipeline } from '../../src/smartpaf/pipeline.js';
import { patternDataset, tinyCnn } from './fixtures.js';

const data = patternDataset(400, 12, 7);
const { a: val, b: tr } = split(data, 0.25, 0);

/** The tiny CNN, briefly trained so activations and accuracies are meaningful. */
async function trainedModel() {
  const fm = await FloatModel.create(tinyCnn(12));
  await train(fm, tr, { epochs: 3, lr: 0.01, batchSize: 32 });
  const m = fm.toModel();
  fm.dispose();
  return m;
}
const base = trainedModel();

test('nonlinear layers come in inference order; linear groups follow the previous nonlinearity', async () => {
  const m = await base;
  assert.deepEqual(
    nonlinearLayers(m).map((l) => `${l.node}:${l.kind}`),
    ['relu1:relu', 'pool1:maxpool', 'relu2:relu'],
  );
  const all = () => true;
  assert.deepEqual(linearGroup(m, 'relu1', all).sort(), ['conv1.b', 'conv1.w']);
  // MaxPool right after Relu: nearest linear layers before it.
  assert.deepEqual(linearGroup(m, 'pool1', all).sort(), ['conv1.b', 'conv1.w']);
  // Last nonlinearity: its conv plus the classifier head.
  assert.deepEqual(linearGroup(m, 'relu2', all).sort(), ['conv2.b', 'conv2.w', 'fc.b', 'fc.w']);
  assert.throws(
    () => nonlinearLayers({ ...m, graph: { ...m.graph, nodes: m.graph.nodes.filter((n) => n.opType !== 'Relu' && n.opType !== 'MaxPool') } }),
    /no Relu or MaxPool node/,
  );
});

test('CT lowers the MSE against the exact ReLU / MaxPool on the profiled inputs', async () => {
  const m = await base;
  const paf = getPaf('f1g2');
  const profiles = await profileLayers(m, tr, { samples: 32 });
  assert.deepEqual(
    profiles.map((p) => p.shape),
    [
      [32, 4, 12, 12],
      [32, 4, 12, 12],
      [32, 4, 6, 6],
    ],
  );
  for (const p of profiles) {
    const r = await tuneLayer(m, paf, p, { epochs: 15, batch: 8 });
    assert.ok(r.mseAfter < 0.8 * r.mseBefore, `${r.node}: MSE ${r.mseBefore} → ${r.mseAfter}`);
    assert.notDeepEqual(r.stages, paf.stages);
    assert.deepEqual(
      r.stages.map((s) => s.length),
      paf.stages.map((s) => s.length),
    );
  }
});

test('PA replaces one layer at a time in inference order, fine-tuning after each', async () => {
  const m = await base;
  const seen: string[][] = [];
  const res = await progressiveApproximation(m, getPaf('a7'), {
    train: tr,
    validation: val,
    epochsPerGroup: 1,
    maxGroups: 1,
    fineTune: 'all',
    onGroup: () => {},
    onReplace: () => {},
    onStep: (label, p) => {
      if (p.step === 1) seen.push([label]);
    },
  });
  assert.deepEqual(res.order, ['relu1', 'pool1', 'relu2']);
  assert.deepEqual(
    res.steps.map((s) => s.node),
    ['relu1', 'pool1', 'relu2'],
  );
  assert.deepEqual(
    seen.map((s) => s[0]),
    ['relu1 all', 'pool1 all', 'relu2 all'],
  );
  assert.deepEqual(
    pafLayers(res.model).map((l) => l.node),
    ['relu1', 'pool1', 'relu2'],
  );
});

test('AT trains only the PAF coefficients or only the linear layers, and switches when a group stops improving', async () => {
  const m = replaceActivations(await base, getPaf('f1g2'), { nodes: ['relu1'] });
  const fm = await FloatModel.create(m, { options: { batchNorm: 'frozen' } });
  const groups = atGroups(fm, 'relu1');
  assert.deepEqual(groups.paf, pafLayers(m)[0]!.coefficientNames);
  assert.deepEqual(groups.linear.sort(), ['conv1.b', 'conv1.w']);
  const values = () => new Map([...fm.params].map(([k, v]) => [k, Array.from(v.dataSync())]));
  let before = values();
  const changed: { g: GroupResult; names: string[] }[] = [];
  const res = await alternateTrain(fm, 'relu1', {
    train: tr,
    validation: val,
    epochsPerGroup: 1,
    maxGroups: 5,
    rates: { pafLr: 0.01, linearLr: 0.01 },
    onStep: (_label, p) => {
      if (p.epoch === 1 && p.step === 1) before = values(); // the (kept or restored) state this group starts from
    },
    onGroup: (g) => {
      const now = values();
      changed.push({
        g,
        names: [...now]
          .filter(([k, v]) => v.some((x, i) => x !== before.get(k)![i]))
          .map(([k]) => k)
          .sort(),
      });
    },
  });
  // values after a group: the group's own variables changed and nothing else.
  for (const { g, names } of changed) {
    assert.deepEqual(names, [...(g.group === 'paf' ? groups.paf : groups.linear)].sort(), `group ${g.group}`);
  }
  assert.ok(new Set(res.groups.map((g) => g.group)).size === 2, `both groups ran: ${res.groups.map((g) => g.group)}`);
  assert.equal(res.groups[0]!.group, 'paf');
  for (let i = 0; i + 1 < res.groups.length; i++) {
    const [a, b] = [res.groups[i]!, res.groups[i + 1]!];
    assert.equal(b.group === a.group, a.improved, `group ${i}: ${a.group} improved=${a.improved} then ${b.group}`);
  }
  assert.ok(res.bestValAccuracy >= res.startValAccuracy);
  fm.dispose();
});

test('pipeline: SS records positive scales; techniques parse; a replace-only run changes nothing but the activations', async () => {
  const m = await base;
  assert.deepEqual([...parseTechniques('ct,PA, at,ss')], ['ct', 'pa', 'at', 'ss']);
  assert.throws(() => parseTechniques('ct,xx'), /unknown technique 'xx'/);
  const r = await runPipeline(m, { paf: getPaf('f1g2'), techniques: new Set(['ss']), train: tr, validation: val, calib: tr, epochsPerGroup: 1 });
  assert.equal(r.epochs, 0);
  assert.deepEqual(Object.keys(r.scales!).sort(), ['pool1', 'relu1', 'relu2']);
  assert.ok(Object.values(r.scales!).every((s) => s > 0));
  assert.deepEqual(await recordScales(r.dynamicModel, tr), r.scales);
  assert.ok(pafLayers(r.staticModel!).every((l) => l.scaleMode === 'static'));
});
