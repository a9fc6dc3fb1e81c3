/** `privml proteus obfuscate|optimize|recover|attack|report`: graph optimization without revealing the architecture. */
import { existsSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { canonicalize } from '../onnx/canonical.js';
import type { Model } from '../onnx/ir.js';
import { saveModel } from '../onnx/proto.js';
import type { AttackReport, OptLevel } from '../proteus/index.js';
import {
  attack,
  buildExamples,
  CORPUS_CONFIGS,
  compareLatency,
  corpusStats,
  familyOf,
  log10SearchSpace,
  MAX_K,
  obfuscate,
  optimizeBundle,
  partitionModel,
  proteusReportHtml,
  readKey,
  recover,
  writeKey,
} from '../proteus/index.js';
import { CliError, Progress, posInt, printJson, resolveModel } from './common.js';

/** Load --corpus model files (extra statistics for the sentinel generator). */
function corpusModels(list: string | undefined): Model[] {
  return (list ?? '')
    .split(',')
    .filter((s) => s)
    .map((p) => resolveModel(p).model);
}

/** Parse repeated `--opt MODEL:key=value[,key=value]` into build options per zoo model. */
function modelOpts(specs: readonly string[] | undefined): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const spec of specs ?? []) {
    const i = spec.indexOf(':');
    if (i <= 0) throw new CliError(`--opt expects MODEL:key=value[,key=value] (got '${spec}')`, 2);
    const row = (out[spec.slice(0, i)] ??= {});
    for (const kv of spec
      .slice(i + 1)
      .split(',')
      .filter((x) => x)) {
      const j = kv.indexOf('=');
      if (j <= 0) throw new CliError(`--opt expects MODEL:key=value[,key=value] (got '${spec}')`, 2);
      row[kv.slice(0, j)] = kv.slice(j + 1);
    }
  }
  return out;
}

/** A model reference for attack/report: zoo names use their fast corpus configuration (overridden by `opts`), or their full default size with `full`. */
function namedModel(ref: string, opts: Record<string, string> = {}, full = false): { name: string; family: string; model: Model } {
  const cfg = CORPUS_CONFIGS[ref];
  const base = cfg && !full ? Object.fromEntries(Object.entries(cfg).map(([k, v]) => [k, String(v)])) : {};
  const { model } = cfg ? resolveModel(ref, { ...base, ...opts }) : resolveModel(ref);
  const name = cfg ? ref : basename(ref);
  return { name, family: familyOf(name), model };
}

/** Set `NAME=AxBxC` static shapes on graph inputs; refuse symbolic dims past the batch dimension that remain. */
function withInputShapes(model: Model, specs: readonly string[], source: string, check = true): Model {
  for (const spec of specs) {
    const m = /^([^=]+)=(\d+(?:x\d+)*)$/.exec(spec);
    if (!m) throw new CliError(`--input-shape expects NAME=1x3x224x224 (got '${spec}')`, 2);
    const v = model.graph.inputs.find((i) => i.name === m[1]);
    if (!v) throw new CliError(`--input-shape: ${source} has no input '${m[1]}' (inputs: ${model.graph.inputs.map((i) => i.name).join(', ')})`, 2);
    const dims = m[2]!.split('x').map(Number);
    if (v.shape && v.shape.length !== dims.length)
      throw new CliError(`--input-shape: input '${v.name}' of ${source} has rank ${v.shape.length}, got ${dims.length} dims`, 2);
    v.shape?.forEach((d, i) => {
      if (typeof d === 'number' && d !== dims[i])
        throw new CliError(`--input-shape: input '${v.name}' of ${source} has static dim ${i} = ${d}, got ${dims[i]}`, 2);
    });
    v.shape = dims;
  }
  for (const v of check ? model.graph.inputs : []) {
    const sym = (v.shape ?? []).slice(1).filter((d) => typeof d !== 'number');
    if (sym.length)
      throw new CliError(
        `${source}: input '${v.name}' has symbolic dims ${sym.join(', ')}: sentinels need static shapes; pass --input-shape ${v.name}=${(v.shape ?? []).map((d) => (typeof d === 'number' ? d : 'N')).join('x')}`,
        2,
      );
  }
  return model;
}

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

/** Register `proteus`. */
export function registerProteus(program: Command): void {
  const p = program.command('proteus').description('have a third party optimize a model graph without revealing its architecture (Proteus)');

  p.command('obfuscate')
    .description('cut MODEL into subgraphs, hide each among K sentinels, write the shuffled bundle and the owner key')
    .argument('<model>', '.onnx file or zoo model name')
    .option('-k, --k <n>', 'sentinels per real subgraph', posInt('--k'), 20)
    .option('--size <n>', 'target operators per subgraph', posInt('--size'), 16)
    .requiredOption('-o, --output <dir>', 'bundle directory to write')
    .requiredOption('--key <file>', 'owner key file to write (keep it private)')
    .option('--corpus <files>', 'comma-separated extra .onnx models to learn sentinel statistics from')
    .option('--force', 'replace an existing key file and the bundle files in a non-empty output folder')
    .option('--input-shape <spec...>', 'static shape for a graph input with symbolic dims, NAME=1x3x224x224 (repeatable)')
    .option('--json', 'machine-readable output')
    .action(
      async (
        ref: string,
        o: { k: number; size: number; output: string; key: string; corpus?: string; force?: boolean; inputShape?: string[]; json?: boolean },
      ) => {
        if (o.k > MAX_K)
          throw new CliError(
            `-k ${o.k}: at most ${MAX_K} sentinels per subgraph (time, memory and disk grow linearly with K; the search space only by log10(K) per piece)`,
            2,
          );
        if (existsSync(o.key) && !o.force)
          throw new CliError(`${o.key}: key file exists (its bundle could no longer be recovered); pass --force to replace it`, 2);
        const resolved = resolveModel(ref);
        const source = resolved.source;
        // Third-party graphs: the canonical form (Constant-node weights folded, one opset), static input shapes.
        // (shapes first, so the canonical pass folds Shape arithmetic on them into constants).
        const model = withInputShapes(canonicalize(withInputShapes(resolved.model, o.inputShape ?? [], source, false), { source }).model, [], source);
        const t0 = performance.now();
        const stats = corpusStats(corpusModels(o.corpus));
        const bar = new Progress(!o.json);
        let started = false;
        const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
        const symbolic = resolved.model.graph.inputs.filter((v) => (v.shape ?? []).some((d) => typeof d !== 'number'));
        const hint = (e: unknown): never => {
          const msg = (e as Error).message;
          throw symbolic.length && !o.inputShape
            ? new CliError(
                `${msg}; symbolic input dims keep shape arithmetic in the graph: try --input-shape ${symbolic[0]!.name}=${symbolic[0]!.shape!.map((d) => (typeof d === 'number' ? d : 1)).join('x')}`,
              )
            : e;
        };
        const res = await obfuscate(model, {
          k: o.k,
          size: o.size,
          stats,
          outDir: o.output,
          force: o.force,
          onEstimate: (bytes, free) => {
            if (!o.json) process.stderr.write(`bundle estimate ${mib(bytes)} (free ${mib(free)})\n`);
          },
          onProgress: (d, t) => {
            if (!started) bar.start('sentinels', t);
            started = true;
            bar.update(d);
          },
        }).catch(hint);
        bar.stop();
        writeKey(res.key, o.key, o.force);
        const n = res.key.groups.length;
        const log10Space = log10SearchSpace(0, o.k, n);
        const summary = {
          model: source,
          subgraphs: n,
          k: o.k,
          members: res.manifest.members.length,
          bundle: o.output,
          key: o.key,
          bytes: res.bytes,
          regeneratedInvalidDecoys: res.regenerated,
          sizeExtremeGroups: res.sizeExtremes,
          sentinelSeconds: Math.round(res.sentinelSeconds * 100) / 100,
          totalSeconds: Math.round((performance.now() - t0) / 10) / 100,
          log10SearchSpaceNoAdversary: Math.round(log10Space * 10) / 10,
        };
        // Few pieces hide little: say so with what was measured on this bundle.
        const weak = log10Space < 6 || res.sizeExtremes > n / 4;
        if (weak) {
          process.stderr.write(
            `warning: ${source} has only ${n} subgraph(s): a uniform guess finds the real model with probability 10^-${log10Space.toFixed(1)}, ` +
              `and the real member is the unique largest or smallest file in ${res.sizeExtremes} of ${n} group(s); use a smaller --size or a larger -k\n`,
          );
        }
        if (o.json) return printJson({ ...summary, warning: weak });
        process.stdout.write(
          `${source}: ${n} subgraphs × (1 + ${o.k} sentinels) = ${summary.members} members, ${mib(res.bytes)} in ${o.output} (${summary.totalSeconds} s, sentinels ${summary.sentinelSeconds} s; ${res.regenerated} invalid decoys regenerated)\n` +
            `key written to ${o.key} (owner only); search space without an adversary 10^${summary.log10SearchSpaceNoAdversary}\n`,
        );
      },
    );

  p.command('optimize')
    .description('(optimizer party) optimize every member of a bundle with onnxruntime; needs no key')
    .argument('<bundle>', 'bundle directory')
    .requiredOption('-o, --output <dir>', 'directory for the optimized members')
    .option('--level <level>', 'basic | extended | all', 'extended')
    .option('--json', 'machine-readable output')
    .option('--queue <url>', 'split the members into jobs for `privml worker`s on this Redis (redis://[:PASSWORD@]HOST:PORT)')
    .option('--shared-dir <dir>', 'with --queue: bundle and output are inside DIR, storage every worker mounts; members move by path, not through Redis')
    .option('--per-job <n>', 'with --queue: members per job (default: 1)', posInt('--per-job'))
    .action(async (dir: string, o: { output: string; level: string; json?: boolean; queue?: string; sharedDir?: string; perJob?: number }) => {
      if (!['basic', 'extended', 'all'].includes(o.level)) throw new CliError(`--level must be basic, extended or all (got '${o.level}')`, 2);
      if ((o.sharedDir || o.perJob) && !o.queue) throw new CliError('--shared-dir and --per-job go with --queue', 2);
      if (o.queue) return (await import('./queue-hooks.js')).proteusOptimizeQueued(dir, { ...o, queue: o.queue });
      const bar = new Progress(!o.json);
      let started = false;
      const r = await optimizeBundle(dir, o.output, {
        level: o.level as OptLevel,
        onProgress: (d, t) => {
          if (!started) bar.start('optimizing', t);
          started = true;
          bar.update(d);
        },
      });
      bar.stop();
      const summary = { bundle: dir, output: o.output, level: o.level, members: r.members, seconds: Math.round(r.seconds * 100) / 100 };
      if (o.json) return printJson(summary);
      process.stdout.write(`optimized ${r.members} members (level ${o.level}) into ${o.output} in ${summary.seconds} s\n`);
    });

  p.command('recover')
    .description('(owner) pick the real optimized subgraphs, stitch them back, verify, report latency')
    .argument('<optimized>', 'optimized bundle directory')
    .requiredOption('--key <file>', 'owner key file')
    .requiredOption('-o, --output <file>', 'recovered optimized .onnx')
    .option('--original <model>', 'original model: verify against it and measure its latency')
    .option('--bundle <dir>', 'the unoptimized bundle: check every member hash against the key')
    .option('--runs <n>', 'timed runs per model', posInt('--runs'), 10)
    .option('--json', 'machine-readable output')
    .action(async (dir: string, o: { key: string; output: string; original?: string; bundle?: string; runs: number; json?: boolean }) => {
      const key = readKey(o.key);
      const original = o.original ? resolveModel(o.original).model : undefined;
      const r = await recover(dir, key, { original, bundleDir: o.bundle });
      saveModel(r.model, o.output);
      const latency = original ? await compareLatency(original, r.model, { runs: o.runs }) : undefined;
      const round = (x: number): number => Math.round(x * 1000) / 1000;
      const summary = {
        output: o.output,
        subgraphs: key.groups.length,
        relError: r.relError,
        hashesChecked: r.hashesChecked,
        latency: latency && Object.fromEntries(Object.entries(latency).map(([k, v]) => [k, round(v)])),
      };
      if (o.json) return printJson(summary);
      process.stdout.write(`recovered ${key.groups.length} subgraphs into ${o.output}; max relative output error ${r.relError.toExponential(2)}\n`);
      if (latency) {
        process.stdout.write(
          `latency (median, 1 thread): original ${round(latency.msUnoptimized)} ms, ORT whole-graph optimized ${round(latency.msWholeOptimized)} ms, recovered ${round(latency.msRecovered)} ms (ratio ${round(latency.ratioRecoveredToWhole)})\n`,
        );
      } else process.stdout.write('pass --original MODEL to compare latencies\n');
    });

  p.command('attack')
    .description('train an adversary to tell real subgraphs from sentinels (leave one model family out)')
    .option(
      '--models <list>',
      'comma-separated zoo names or .onnx files',
      'fmnist-cnn,lenet5,resnet20,resnet18,resnet50,vgg16,mobilenetv2,bert-base,gpt2-small',
    )
    .option('-k, --k <n>', 'sentinels per real subgraph', posInt('--k'), 20)
    .option('--size <n>', 'target operators per subgraph', posInt('--size'), 16)
    .option(
      '--seed <n>',
      'reproducible stream for this measurement (guessable: obfuscate has no seed and always draws a fresh secret one)',
      posInt('--seed'),
      1,
    )
    .option('--opt <spec...>', 'zoo build options of an attacked or --search-space model, MODEL:key=value[,key=value] (repeatable), e.g. bert-base:layers=12')
    .option('--group-aware', "stronger adversary: also give it each member's deviation from its group (members of a group share an interface)")
    .option('--no-load', 'skip the onnxruntime load check of every member (faster; the battery then cannot see invalid decoys)')
    .option('--full', 'attack the zoo models at their full default size instead of the fast corpus configuration (slow)')
    .option(
      '--search-space <list>',
      'also partition these models (zoo names at their full default size plus --opt, or .onnx files) at --size and report (1 + (1 − s)·K)^N with the measured specificity s',
    )
    .option('--json', 'machine-readable output')
    .action(
      async (o: {
        models: string;
        k: number;
        size: number;
        seed: number;
        opt?: string[];
        groupAware?: boolean;
        full?: boolean;
        load: boolean;
        searchSpace?: string;
        json?: boolean;
      }) => {
        const opts = modelOpts(o.opt);
        const models = o.models
          .split(',')
          .filter((s) => s)
          .map((r) => namedModel(r, opts[r], o.full));
        const stats = corpusStats(models.filter((m) => !CORPUS_CONFIGS[m.name]).map((m) => m.model));
        const { examples, parts } = await buildExamples(models, { k: o.k, size: o.size, stats, seed: o.seed, load: o.load });
        const rep = attack(examples, parts, o.k, o.size, { groupAware: o.groupAware });
        const spaces: SearchSpaceRow[] = (o.searchSpace ?? '')
          .split(',')
          .filter((s) => s)
          .map((ref) => {
            const { name, model } = namedModel(ref, opts[ref], true);
            const n = partitionModel(model, { size: o.size, seed: o.seed }).parts.length;
            const own = rep.models.find((m) => m.model === name && Number.isFinite(m.specificity));
            const s = own ? own.specificity : rep.specificity;
            const r1 = (x: number): number => Math.round(x * 10) / 10;
            return {
              model: name,
              options: opts[ref] ?? {},
              nodes: model.graph.nodes.length,
              size: o.size,
              subgraphs: n,
              specificity: s,
              specificityFrom: own ? 'model' : 'pooled',
              pooledSpecificity: rep.specificity,
              log10SearchSpace: r1(log10SearchSpace(s, o.k, n)),
              log10SearchSpacePooled: r1(log10SearchSpace(rep.specificity, o.k, n)),
              log10SearchSpaceNoAdversary: r1(log10SearchSpace(0, o.k, n)),
            };
          });
        if (o.json) return printJson(spaces.length ? { ...rep, searchSpace: spaces } : rep);
        process.stdout.write(
          `adversary: ${rep.classifier}\nAUC ${rep.auc.toFixed(3)}, specificity at 99% sensitivity ${rep.specificity.toFixed(3)}; best single-feature heuristic '${rep.bestHeuristic.feature}' AUC ${rep.bestHeuristic.auc.toFixed(3)}\n`,
        );
        for (const m of rep.models) {
          process.stdout.write(
            `  ${m.model.padEnd(14)} ${String(m.subgraphs).padStart(3)} subgraphs  AUC ${m.auc.toFixed(3)}  s ${m.specificity.toFixed(3)}  search space 10^${m.log10SearchSpace.toFixed(1)}\n`,
          );
        }
        const pct = (x: number): string => `${(100 * x).toFixed(1)}%`.padStart(6);
        process.stdout.write(
          `single statistics: real member ranked first (direction from the other families / best direction); chance ${pct(1 / (o.k + 1))}\n`,
        );
        process.stdout.write(`  ${'statistic'.padEnd(28)} ${'all'.padStart(13)} ${rep.models.map((m) => m.model.slice(0, 13).padStart(13)).join(' ')}\n`);
        rep.battery.forEach((b, j) => {
          const cell = (x: { firstRate: number; oracleFirstRate: number }): string => `${pct(x.firstRate)}/${pct(x.oracleFirstRate)}`;
          process.stdout.write(`  ${b.statistic.padEnd(28)} ${cell(b)} ${rep.models.map((m) => cell(m.battery[j]!)).join(' ')}\n`);
        });
        if (spaces.length) process.stdout.write(`search space (1 + (1 − s)·${o.k})^N at size ${o.size}:\n`);
        for (const r of spaces) {
          process.stdout.write(
            `  ${r.model.padEnd(14)} ${String(r.nodes).padStart(4)} nodes ${String(r.subgraphs).padStart(3)} subgraphs  s ${r.specificity.toFixed(3)} (${r.specificityFrom}) 10^${r.log10SearchSpace.toFixed(1)}; pooled s ${r.pooledSpecificity.toFixed(3)} 10^${r.log10SearchSpacePooled.toFixed(1)}; no adversary 10^${r.log10SearchSpaceNoAdversary.toFixed(1)}\n`,
          );
        }
      },
    );

  p.command('report')
    .description('HTML report: partition drawing and a table per model')
    .option('--models <list>', 'comma-separated zoo names or .onnx files', 'resnet18,mobilenetv2,bert-base')
    .option('-k, --k <n>', 'sentinels per real subgraph', posInt('--k'), 20)
    .option('--size <n>', 'target operators per subgraph', posInt('--size'), 16)
    .option('--attack', 'also run the adversary and show its numbers')
    .option(
      '--seed <n>',
      'reproducible stream for this measurement (guessable: obfuscate has no seed and always draws a fresh secret one)',
      posInt('--seed'),
      1,
    )
    .requiredOption('-o, --output <file>', 'HTML file to write')
    .action(async (o: { models: string; k: number; size: number; attack?: boolean; seed: number; output: string }) => {
      const models = o.models
        .split(',')
        .filter((s) => s)
        .map((r) => namedModel(r));
      let rep: AttackReport | undefined;
      if (o.attack) {
        const stats = corpusStats();
        const { examples, parts } = await buildExamples(models, { k: o.k, size: o.size, stats, seed: o.seed });
        rep = attack(examples, parts, o.k, o.size);
      }
      const entries = models.map((m) => {
        const partition = partitionModel(m.model, { size: o.size, seed: o.seed });
        const sizes = partition.parts.map((q) => q.length);
        const a = rep?.models.find((x) => x.model === m.name);
        const rows: [string, string | number][] = [
          ['nodes', m.model.graph.nodes.length],
          ['subgraphs', partition.parts.length],
          ['subgraph sizes', sizes.join(', ')],
          ['fusion atoms', partition.atoms.length],
          ['sentinels per subgraph (K)', o.k],
          ['search space without adversary', `10^${log10SearchSpace(0, o.k, partition.parts.length).toFixed(1)}`],
        ];
        if (a)
          rows.push(
            ['adversary AUC', a.auc.toFixed(3)],
            ['specificity at 99% sensitivity', a.specificity.toFixed(3)],
            ['search space vs adversary', `10^${a.log10SearchSpace.toFixed(1)}`],
          );
        return { name: m.name, model: m.model, partition, rows };
      });
      const extra = rep
        ? `<p>Adversary (${rep.classifier}, leave one family out): AUC ${rep.auc.toFixed(3)}, specificity at 99% sensitivity ${rep.specificity.toFixed(3)}.</p>`
        : '';
      writeFileSync(o.output, proteusReportHtml('Proteus partition report', entries, extra));
      process.stdout.write(`wrote ${o.output}\n`);
    });
}
