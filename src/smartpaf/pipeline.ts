/**
 * The SmartPAF accuracy-recovery pipeline: CT → PA → AT → Static Scale, any subset of them, on an
 * exact ReLU/MaxPool model; plus the deployment helpers (record static scales over training data,
 * evaluate with out-of-range statistics, expand to plain ONNX).
 */

import type { Dataset } from '../nn/data/dataset.js';
import { batches } from '../nn/data/dataset.js';
import { FloatModel } from '../nn/runtime.js';
import { tf } from '../nn/tf.js';
import { classifierIo, evaluate } from '../nn/train.js';
import { type Model, ModelError } from '../onnx/ir.js';
import { alternateTrain, type FineTuneOptions, type FineTuneResult, fineTuneAll } from './at.js';
import { type CtLayerResult, type CtOptions, ctCoefficients, tuneCoefficients } from './ct.js';
import { expandPafs, META_PAF, pafLayers, replaceActivations, withStaticScales } from './graph.js';
import { nonlinearLayers } from './layers.js';
import { PafScaleRecorder, type RangeStats } from './ops.js';
import { progressiveApproximation } from './pa.js';
import type { Paf } from './paf.js';

/** The techniques the pipeline combines. */
export const TECHNIQUES = ['ct', 'pa', 'at', 'ss'] as const;
/** One technique. */
export type Technique = (typeof TECHNIQUES)[number];

/** Parse a comma-separated technique list ('ct,pa,at,ss'; 'none' for plain replacement). */
export function parseTechniques(spec: string): Set<Technique> {
  const out = new Set<Technique>();
  for (const t of spec
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)) {
    if (t === 'none') continue;
    if (!(TECHNIQUES as readonly string[]).includes(t)) throw new Error(`unknown technique '${t}' (known: ${TECHNIQUES.join(', ')}, none)`);
    out.add(t as Technique);
  }
  return out;
}

/** Options of {@link runPipeline}. */
export interface PipelineOptions extends Omit<FineTuneOptions, 'maxGroups'> {
  paf: Paf;
  techniques: ReadonlySet<Technique>;
  /** Training examples used for profiling (CT) and static-scale recording. */
  calib: Dataset;
  /** Group budget per layer (AT / PA) — default 4. */
  maxGroups?: number;
  /** Fine-tune-all epochs when neither PA nor AT is on (0 = replace only; default 0). */
  fineTuneEpochs?: number;
  ct?: CtOptions & { samples?: number };
  maxPool?: boolean;
  source?: string;
  log?: (line: string) => void;
}

/** What {@link runPipeline} produced. */
export interface PipelineResult {
  paf: string;
  techniques: Technique[];
  /** PAF model, dynamic scale (what training used). */
  dynamicModel: Model;
  /** PAF model with static scales (only with 'ss'). */
  staticModel?: Model;
  scales?: Record<string, number>;
  ct?: CtLayerResult[];
  fineTune: FineTuneResult[];
  /** Fine-tuning epochs spent in total. */
  epochs: number;
  seconds: number;
}

/** Run the chosen techniques on the exact `model`. */
export async function runPipeline(model: Model, o: PipelineOptions): Promise<PipelineResult> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  const layers = nonlinearLayers(model, { maxPool: o.maxPool, source: o.source });
  if (layers.some((l) => l.replaced))
    throw new ModelError(`${o.source ?? model.graph.name}: the input model already has PAF layers; start from the ReLU model`);
  const t = o.techniques;
  let ct: CtLayerResult[] | undefined;
  if (t.has('ct')) {
    log(`CT: profiling ${Math.min(o.ct?.samples ?? 256, o.calib.n)} training examples, fitting ${layers.length} layers`);
    ct = await tuneCoefficients(model, o.paf, o.calib, { ...o.ct, maxPool: o.maxPool });
    for (const r of ct) log(`  ${r.node} (${r.kind}): MSE ${r.mseBefore.toExponential(3)} → ${r.mseAfter.toExponential(3)} (${r.seconds.toFixed(1)} s)`);
  }
  const coefficients = ct ? ctCoefficients(ct) : undefined;
  const ft: FineTuneOptions = { ...o, maxGroups: o.maxGroups ?? 4 };
  let dynamicModel: Model;
  let fineTune: FineTuneResult[] = [];
  if (t.has('pa')) {
    const pa = await progressiveApproximation(model, o.paf, {
      ...ft,
      coefficients,
      fineTune: t.has('at') ? 'at' : 'all',
      maxPool: o.maxPool,
      source: o.source,
      onReplace: (node, i, n) => log(`PA: replacing ${node} (${i + 1}/${n})`),
    });
    dynamicModel = pa.model;
    fineTune = pa.steps;
  } else {
    dynamicModel = replaceActivations(model, o.paf, { maxPool: o.maxPool, coefficients, source: o.source });
    const epochs = t.has('at') ? 0 : (o.fineTuneEpochs ?? 0);
    if (t.has('at') || epochs > 0) {
      const fm = await FloatModel.create(dynamicModel, { source: o.source, options: { batchNorm: 'frozen' } });
      try {
        if (t.has('at')) for (const l of layers) fineTune.push(await alternateTrain(fm, l.node, ft));
        else fineTune.push(await fineTuneAll(fm, 'all', { ...ft, epochsPerGroup: 1, maxGroups: epochs }));
        dynamicModel = fm.toModel();
      } finally {
        fm.dispose();
      }
    }
  }
  for (const f of fineTune)
    log(
      `  ${f.node}: val ${(100 * f.startValAccuracy).toFixed(2)}% → ${(100 * f.bestValAccuracy).toFixed(2)}% ` +
        `(${f.groups.map((g) => `${g.group}${g.improved ? '+' : '-'}`).join(' ')})`,
    );
  const res: PipelineResult = {
    paf: o.paf.name,
    techniques: TECHNIQUES.filter((x) => t.has(x)),
    dynamicModel,
    ct,
    fineTune,
    epochs: fineTune.reduce((a, f) => a + f.epochs, 0),
    seconds: 0,
  };
  if (t.has('ss')) {
    res.scales = await recordScales(dynamicModel, o.calib, o.source);
    res.staticModel = withStaticScales(dynamicModel, res.scales, o.source);
    log(
      `SS: static scales ${Object.entries(res.scales)
        .map(([k, v]) => `${k}=${v.toPrecision(4)}`)
        .join(', ')}`,
    );
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}

/** Run a dynamic-scale PAF model over `ds` (inference) and return each layer's running max scale. */
export async function recordScales(model: Model, ds: Dataset, source?: string): Promise<Record<string, number>> {
  const recorder = new PafScaleRecorder();
  const fm = await FloatModel.create(model, { source, options: { smartpaf: { recorder, recordInInference: true } } });
  try {
    const { input, output } = classifierIo(fm, ds);
    const [c, h, w] = ds.shape;
    for (const b of batches(ds, 256)) tf.tidy(() => void fm.forward({ [input]: tf.tensor4d(b.x, [b.n, c, h, w]) }, { outputs: [output] }));
  } finally {
    fm.dispose();
  }
  const scales = recorder.scales();
  for (const l of pafLayers(model)) if (!(scales[l.node]! > 0)) scales[l.node] = 1; // never-active layer: any scale is exact
  return scales;
}

/** Accuracy of a model, plus (static scale) how often PAF inputs left [−s, s] per layer. */
export interface PafEvaluation {
  accuracy: number;
  n: number;
  range?: Record<string, RangeStats & { fraction: number }>;
}

/** Evaluate `model` on `ds`; static-scale PAF layers also report out-of-range statistics. */
export async function evaluatePaf(model: Model, ds: Dataset, source?: string): Promise<PafEvaluation> {
  const recorder = new PafScaleRecorder();
  const fm = await FloatModel.create(model, { source, options: { smartpaf: { recorder } } });
  try {
    const r = evaluate(fm, ds);
    const out: PafEvaluation = { accuracy: r.accuracy, n: r.n };
    if (recorder.range.size) out.range = Object.fromEntries([...recorder.range].map(([k, v]) => [k, { ...v, fraction: v.total ? v.outside / v.total : 0 }]));
    return out;
  } finally {
    fm.dispose();
  }
}

/** One-line summary of out-of-range statistics ('' when everything stayed inside). */
export function rangeSummary(range: PafEvaluation['range']): string {
  if (!range) return '';
  const bad = Object.entries(range).filter(([, r]) => r.outside > 0);
  if (bad.length === 0) return 'all PAF inputs stayed within the static scale';
  return bad.map(([k, r]) => `${k}: ${r.outside} of ${r.total} inputs outside [−s, s], max |x|/s = ${r.maxRatio.toPrecision(3)}`).join('; ');
}

/** The deployable model: static scales baked in, PAFs expanded to plain ONNX ops, metadata added. */
export function deployModel(staticModel: Model, extraMeta: Record<string, string> = {}, source?: string): Model {
  const m = expandPafs(staticModel, { source });
  m.metadata = { ...m.metadata, ...extraMeta };
  if (!m.metadata[META_PAF]) throw new ModelError(`${source}: expanded model lacks ${META_PAF} metadata`);
  return m;
}
