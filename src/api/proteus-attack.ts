/**
 * How well Proteus hides a model, measured: `attack` trains an adversary to tell real subgraphs from
 * sentinels (leave one model family out) and turns its specificity into search-space sizes; `report`
 * draws the partition of each model into an HTML page. Both are `privml proteus attack|report`.
 */
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { FileError, firstLine, OptionError } from '../errors.js';
import type { Model } from '../onnx/ir.js';
import type { AttackReport } from '../proteus/index.js';
import { ensureWritable } from './files.js';
import { resolveModel } from './model-ref.js';

export type { AttackReport } from '../proteus/index.js';

/** Search space of one (full-size) model against the measured adversary. */
export interface SearchSpaceRow {
  model: string;
  options: Record<string, string>;
  nodes: number;
  size: number;
  subgraphs: number;
  /** Specificity used: the attack's for this model (same name), else the pooled one. */
  specificity: number;
  specificityFrom: 'model' | 'pooled';
  pooledSpecificity: number;
  log10SearchSpace: number;
  log10SearchSpacePooled: number;
  log10SearchSpaceNoAdversary: number;
}

/** A model reference for attack/report: zoo names use their fast corpus configuration (overridden by `opts`), or their full default size with `full`. */
async function namedModel(
  ref: string,
  opts: Record<string, string> = {},
  full = false,
): Promise<{ name: string; family: string; model: Model; rebuild?: (bundle: number) => Model }> {
  const { CORPUS_CONFIGS, familyOf } = await import('../proteus/index.js');
  const cfg = CORPUS_CONFIGS[ref];
  const base = cfg && !full ? Object.fromEntries(Object.entries(cfg).map(([k, v]) => [k, String(v)])) : {};
  const { model } = cfg ? resolveModel(ref, { ...base, ...opts }) : resolveModel(ref);
  const name = cfg ? ref : basename(ref);
  // A zoo architecture can be built again with other weights (its `seed` option plus the bundle index).
  const seed = Number(opts.seed ?? 0);
  const rebuild = cfg ? (b: number): Model => resolveModel(ref, { ...base, ...opts, seed: String(seed + b) }).model : undefined;
  return { name, family: familyOf(name), model, rebuild };
}

function checkCommon(o: { k?: number; size?: number; seed?: number }): { k: number; size: number; seed: number } {
  const r = { k: o.k ?? 20, size: o.size ?? 16, seed: o.seed ?? 1 };
  for (const [flag, v] of Object.entries(r)) if (!(Number.isInteger(v) && v >= 1)) throw new OptionError(`--${flag} must be a positive integer, got '${v}'`);
  return r;
}

/** Options of {@link attack} (the flags of `privml proteus attack`). */
export interface AttackOptions {
  /** Zoo names or .onnx files (default: the nine zoo families). */
  models?: string[];
  /** Sentinels per real subgraph (default 20). */
  k?: number;
  /** Target operators per subgraph (default 16). */
  size?: number;
  /** Reproducible stream for this measurement (default 1; obfuscate always draws a fresh secret one). */
  seed?: number;
  /** Zoo build options per model name, e.g. `{ 'bert-base': { layers: '12' } }`. */
  modelOptions?: Record<string, Record<string, string>>;
  /** Stronger adversary: also give it each member's deviation from its group. */
  groupAware?: boolean;
  /** onnxruntime load check of every member (default true; false is faster but cannot see invalid decoys). */
  load?: boolean;
  /** Attack zoo models at their full default size instead of the fast corpus configuration (slow). */
  full?: boolean;
  /** Obfuscate each model again until it has this many groups (default 20; 1 = one bundle per model). */
  minGroups?: number;
  /**
   * Zoo models: each bundle after the first is the architecture with fresh weights (zoo seed + bundle
   * index), so a one-piece model's groups hold different real members (default true; false keeps one
   * weight draw, whose per-model AUC is one member's quantile whatever the group count). Files are never rebuilt.
   */
  freshWeights?: boolean;
  /** Called after each bundle is generated and measured. */
  onBundle?: (model: string, bundle: number, bundles: number) => void;
  /** Also partition these models (full size) and report (1 + (1 − s)·K)^N with the measured specificity s. */
  searchSpace?: string[];
  /**
   * Also write the labelled examples here, for other classifiers: JSON lines, first
   * `{"features": [...names]}`, then one `{model, family, group, real, x}` per member.
   */
  examplesOut?: string;
}

/** Train the adversary on sentinel bundles of `models` and report its AUC, specificity and the single-statistic battery. */
export async function attack(o: AttackOptions = {}): Promise<AttackReport & { searchSpace?: SearchSpaceRow[] }> {
  const { k, size, seed } = checkCommon(o);
  const minGroups = o.minGroups ?? 20;
  if (!(Number.isInteger(minGroups) && minGroups >= 1 && minGroups <= 1000))
    throw new OptionError(`--min-groups must be an integer from 1 to 1000, got '${minGroups}'`);
  if (o.examplesOut) ensureWritable(o.examplesOut);
  const { attack: run, buildExamples, CORPUS_CONFIGS, corpusStats, featureNames, log10SearchSpace, partitionModel } = await import('../proteus/index.js');
  const opts = o.modelOptions ?? {};
  const refs = o.models ?? ['fmnist-cnn', 'lenet5', 'resnet20', 'resnet18', 'resnet50', 'vgg16', 'mobilenetv2', 'bert-base', 'gpt2-small'];
  const models = [];
  for (const r of refs) {
    const m = await namedModel(r, opts[r], o.full);
    models.push(o.freshWeights === false ? { ...m, rebuild: undefined } : m);
  }
  const stats = corpusStats(models.filter((m) => !CORPUS_CONFIGS[m.name]).map((m) => m.model));
  const { examples, parts } = await buildExamples(models, { k, size, stats, seed, load: o.load ?? true, minGroups, onBundle: o.onBundle });
  if (o.examplesOut) {
    const lines = [JSON.stringify({ features: featureNames() })];
    for (const e of examples) lines.push(JSON.stringify({ model: e.model, family: e.family, group: e.group, real: e.real, x: e.x }));
    try {
      writeFileSync(o.examplesOut, `${lines.join('\n')}\n`);
    } catch (e) {
      throw new FileError(`${o.examplesOut}: ${firstLine(e)}`);
    }
  }
  const rep = run(examples, parts, k, size, { groupAware: o.groupAware });
  const spaces: SearchSpaceRow[] = [];
  for (const ref of o.searchSpace ?? []) {
    const { name, model } = await namedModel(ref, opts[ref], true);
    const n = partitionModel(model, { size, seed }).parts.length;
    const own = rep.models.find((m) => m.model === name && Number.isFinite(m.specificity));
    // The stronger of the two learned adversaries.
    const pooled = Math.max(rep.specificity, rep.boosted.specificity);
    const s = own ? Math.max(own.specificity, own.boosted.specificity) : pooled;
    const r1 = (x: number): number => Math.round(x * 10) / 10;
    spaces.push({
      model: name,
      options: opts[ref] ?? {},
      nodes: model.graph.nodes.length,
      size,
      subgraphs: n,
      specificity: s,
      specificityFrom: own ? 'model' : 'pooled',
      pooledSpecificity: pooled,
      log10SearchSpace: r1(log10SearchSpace(s, k, n)),
      log10SearchSpacePooled: r1(log10SearchSpace(pooled, k, n)),
      log10SearchSpaceNoAdversary: r1(log10SearchSpace(0, k, n)),
    });
  }
  return spaces.length ? { ...rep, searchSpace: spaces } : rep;
}

/** Options of {@link report}. */
export interface ReportOptions {
  /** Zoo names or .onnx files (default resnet18, mobilenetv2, bert-base). */
  models?: string[];
  k?: number;
  size?: number;
  seed?: number;
  /** Also run the adversary and show its numbers. */
  attack?: boolean;
}

/** Write the HTML partition report (a drawing and a table per model) to `output`; returns the adversary's report when run. */
export async function report(output: string, o: ReportOptions = {}): Promise<{ output: string; attack?: AttackReport }> {
  const { k, size, seed } = checkCommon(o);
  ensureWritable(output);
  const { attack: run, buildExamples, corpusStats, log10SearchSpace, partitionModel, proteusReportHtml } = await import('../proteus/index.js');
  const models = [];
  for (const r of o.models ?? ['resnet18', 'mobilenetv2', 'bert-base']) models.push(await namedModel(r));
  let rep: AttackReport | undefined;
  if (o.attack) {
    const stats = corpusStats();
    const { examples, parts } = await buildExamples(models, { k, size, stats, seed });
    rep = run(examples, parts, k, size);
  }
  const entries = models.map((m) => {
    const partition = partitionModel(m.model, { size, seed });
    const sizes = partition.parts.map((q) => q.length);
    const a = rep?.models.find((x) => x.model === m.name);
    const rows: [string, string | number][] = [
      ['nodes', m.model.graph.nodes.length],
      ['subgraphs', partition.parts.length],
      ['subgraph sizes', sizes.join(', ')],
      ['fusion atoms', partition.atoms.length],
      ['sentinels per subgraph (K)', k],
      ['search space without adversary', `10^${log10SearchSpace(0, k, partition.parts.length).toFixed(1)}`],
    ];
    if (a)
      rows.push(
        ['adversary AUC (logistic / boosted trees)', `${a.auc.toFixed(3)} / ${a.boosted.auc.toFixed(3)}`],
        ['P(AUC this high | indistinguishable)', `${a.aucChanceP.toFixed(2)} / ${a.boosted.aucChanceP.toFixed(2)}`],
        ['specificity at 99% sensitivity', `${a.specificity.toFixed(3)} / ${a.boosted.specificity.toFixed(3)}`],
        ['search space vs adversary', `10^${a.log10SearchSpace.toFixed(1)}`],
      );
    return { name: m.name, model: m.model, partition, rows };
  });
  const extra = rep
    ? `<p>Adversaries (leave one family out): ${rep.classifier}, AUC ${rep.auc.toFixed(3)}, specificity at 99% sensitivity ${rep.specificity.toFixed(3)}; ` +
      `${rep.boosted.classifier}, AUC ${rep.boosted.auc.toFixed(3)}, specificity ${rep.boosted.specificity.toFixed(3)}.</p>`
    : '';
  try {
    writeFileSync(output, proteusReportHtml('Proteus partition report', entries, extra));
  } catch (e) {
    throw new FileError(`${output}: ${firstLine(e)}`);
  }
  return { output, attack: rep };
}
