/** `privml proteus obfuscate|optimize|recover|attack|report`: graph optimization without revealing the architecture. */
import type { Command } from 'commander';
import { saveModel } from '../api/core.js';
import * as api from '../api/proteus.js';
import { attack, report } from '../api/proteus-attack.js';
import { CliError, Progress, posInt, printJson, resolveModel } from './common.js';

/** Load --corpus model files (extra statistics for the sentinel generator). */
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

/** Register `proteus`. */
/** An ORT optimization level given on the command line, or a usage error. */
function optLevel(level: string): api.OptLevel {
  if (!['basic', 'extended', 'all'].includes(level)) throw new CliError(`--level must be basic, extended or all (got '${level}')`, 2);
  return level as api.OptLevel;
}

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
    .option('--threads <n>', 'decoy generators running at once, as worker threads (default: the cores, at most 4)', posInt('--threads'))
    .option('--json', 'machine-readable output')
    .action(
      async (
        ref: string,
        o: {
          k: number;
          size: number;
          output: string;
          key: string;
          corpus?: string;
          force?: boolean;
          inputShape?: string[];
          threads?: number;
          json?: boolean;
        },
      ) => {
        const t0 = performance.now();
        const bar = new Progress(!o.json);
        let started = false;
        const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
        const res = await api
          .obfuscate(ref, o.output, {
            k: o.k,
            size: o.size,
            corpus: (o.corpus ?? '').split(',').filter((s) => s),
            keyFile: o.key,
            force: o.force,
            inputShapes: o.inputShape,
            threads: o.threads,
            onEstimate: (bytes, free) => {
              if (!o.json) process.stderr.write(`bundle estimate ${mib(bytes)} (free ${mib(free)})\n`);
            },
            onProgress: (d, t) => {
              if (!started) bar.start('sentinels', t);
              started = true;
              bar.update(d);
            },
          })
          .finally(() => bar.stop());
        const n = res.subgraphs;
        const source = res.source;
        const summary = {
          model: source,
          subgraphs: n,
          k: o.k,
          members: res.members,
          bundle: o.output,
          key: o.key,
          bytes: res.bytes,
          regeneratedInvalidDecoys: res.regenerated,
          sizeExtremeGroups: res.sizeExtremes,
          architectureCopies: res.architectureCopies,
          sentinelSeconds: Math.round(res.sentinelSeconds * 100) / 100,
          totalSeconds: Math.round((performance.now() - t0) / 10) / 100,
          log10SearchSpaceNoAdversary: Math.round(res.log10SearchSpace * 10) / 10,
        };
        // Few pieces hide little: say so with what was measured on this bundle.
        if (res.weak) {
          process.stderr.write(
            `warning: ${source} has only ${n} subgraph(s): a uniform guess finds the real model with probability 10^-${res.log10SearchSpace.toFixed(1)}, ` +
              `and the real member is the unique largest or smallest file in ${res.sizeExtremes} of ${n} group(s); use a smaller --size or a larger -k\n`,
          );
        }
        if (res.architectureCopies > 0)
          process.stderr.write(
            `warning: ${res.architectureCopies} of ${summary.members - n} sentinels have their real piece's architecture: the optimizer sees those pieces (see the README's threat model)\n`,
          );
        if (o.json) return printJson({ ...summary, warning: res.weak });
        process.stdout.write(
          `${source}: ${n} subgraphs × (1 + ${o.k} sentinels) = ${summary.members} members, ${mib(res.bytes)} ` +
            `in ${o.output} (${summary.totalSeconds} s, sentinels ${summary.sentinelSeconds} s; ` +
            `${res.regenerated} invalid decoys regenerated)\n` +
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
    .option(
      '--member-check <how>',
      "with --shared-dir: mac (default: this command reads every member once and tags it with a per-run GMAC) or sha256 (workers check the manifest's hashes; this command reads no member)",
    )
    .action(
      async (dir: string, o: { output: string; level: string; json?: boolean; queue?: string; sharedDir?: string; perJob?: number; memberCheck?: string }) => {
        const level = optLevel(o.level);
        if ((o.sharedDir || o.perJob) && !o.queue) throw new CliError('--shared-dir and --per-job go with --queue', 2);
        if (o.memberCheck !== undefined && !o.sharedDir) throw new CliError('--member-check goes with --shared-dir', 2);
        if (o.memberCheck !== undefined && !['mac', 'sha256'].includes(o.memberCheck))
          throw new CliError(`--member-check must be mac or sha256 (got '${o.memberCheck}')`, 2);
        if (o.queue) return (await import('./queue-hooks.js')).proteusOptimizeQueued(dir, { ...o, queue: o.queue });
        const bar = new Progress(!o.json);
        let started = false;
        const r = await api.optimize(dir, o.output, {
          level,
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
      },
    );

  p.command('recover')
    .description('(owner) pick the real optimized subgraphs, stitch them back, verify, report latency')
    .argument('<optimized>', 'optimized bundle directory')
    .requiredOption('--key <file>', 'owner key file')
    .requiredOption('-o, --output <file>', 'recovered optimized .onnx')
    .option('--original <model>', 'original model: verify against it and measure its latency')
    .option('--bundle <dir>', 'the unoptimized bundle: check every member hash against the key')
    .option('--runs <n>', 'timed runs per model', posInt('--runs'), 10)
    .option('--level <level>', "ORT level to optimize the original at for the comparison (default: the members' level, read from their ops)")
    .option('--json', 'machine-readable output')
    .action(async (dir: string, o: { key: string; output: string; original?: string; bundle?: string; runs: number; level?: string; json?: boolean }) => {
      const key = await api.readKey(o.key);
      const original = o.original ? resolveModel(o.original).model : undefined;
      const r = await api.recover(dir, key, { original, bundleDir: o.bundle });
      await saveModel(r.model, o.output);
      const level = o.level === undefined ? undefined : optLevel(o.level);
      const latency = original ? await api.compareLatency(original, r.model, { runs: o.runs, level }) : undefined;
      const round = (x: number): number => Math.round(x * 1000) / 1000;
      const summary = {
        output: o.output,
        subgraphs: key.groups.length,
        relError: r.relError,
        hashesChecked: r.hashesChecked,
        latency: latency && Object.fromEntries(Object.entries(latency).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v])),
      };
      if (o.json) return printJson(summary);
      process.stdout.write(`recovered ${key.groups.length} subgraphs into ${o.output}; max relative output error ${r.relError.toExponential(2)}\n`);
      if (latency) {
        process.stdout.write(
          `latency (median, 1 thread): original ${round(latency.msUnoptimized)} ms, ORT whole-graph optimized ` +
            `${round(latency.msWholeOptimized)} ms, recovered ${round(latency.msRecovered)} ms (ratio ` +
            `${round(latency.ratioRecoveredToWhole)}; level ${latency.level})\n` +
            `whole-graph optimization gain ${round(latency.gain)}x; the recovered model keeps ${Math.round(latency.gainKept * 100)} % of the time it saves` +
            `${latency.gain < 1.1 ? ' (a gain under 1.10x: the share is mostly timing noise)' : ''}\n`,
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
      '--min-groups <n>',
      'obfuscate each model again (fresh partition and sentinels) until it has this many groups; a one-piece model ' +
        "gives one group per bundle, whose AUC is just the real member's rank (1 = one bundle per model)",
      posInt('--min-groups'),
      20,
    )
    .option(
      '--no-fresh-weights',
      'keep one weight draw per zoo model in every bundle (its one-piece models then have one real member, whose ' +
        'rank no group count averages out); by default each bundle after the first rebuilds the zoo model with seed + bundle',
    )
    .option(
      '--search-space <list>',
      'also partition these models (zoo names at their full default size plus --opt, or .onnx files) at --size ' +
        'and report (1 + (1 − s)·K)^N with the measured specificity s',
    )
    .option('--examples <file>', 'also write the labelled feature vectors (JSON lines: feature names, then one member per line) for other classifiers')
    .option('--json', 'machine-readable output')
    .action(
      async (o: {
        models: string;
        k: number;
        size: number;
        seed: number;
        opt?: string[];
        examples?: string;
        groupAware?: boolean;
        full?: boolean;
        load: boolean;
        minGroups: number;
        freshWeights: boolean;
        searchSpace?: string;
        json?: boolean;
      }) => {
        const split = (v: string): string[] => v.split(',').filter((s) => s);
        const bar = new Progress(!o.json);
        const models = split(o.models);
        let done = 0;
        bar.start('models', models.length);
        const full = await attack({
          models,
          k: o.k,
          size: o.size,
          seed: o.seed,
          modelOptions: modelOpts(o.opt),
          groupAware: o.groupAware,
          load: o.load,
          full: o.full,
          minGroups: o.minGroups,
          freshWeights: o.freshWeights,
          examplesOut: o.examples,
          onBundle: (model, b, n) => {
            if (b === n) done++;
            bar.update(done, `${model} bundle ${b}/${n}`);
          },
          searchSpace: split(o.searchSpace ?? ''),
        }).finally(() => bar.stop());
        const { searchSpace, ...rep } = full;
        const spaces = searchSpace ?? [];
        if (o.json) return printJson(full);
        process.stdout.write(
          `adversary: ${rep.classifier}\nAUC ${rep.auc.toFixed(3)}, specificity at 99% sensitivity ` +
            `${rep.specificity.toFixed(3)}; best single-feature heuristic '${rep.bestHeuristic.feature}' AUC ` +
            `${rep.bestHeuristic.auc.toFixed(3)}\nsecond adversary: ${rep.boosted.classifier}\nAUC ` +
            `${rep.boosted.auc.toFixed(3)}, specificity at 99% sensitivity ${rep.boosted.specificity.toFixed(3)}\n` +
            `per model: AUC (chance p) logistic / boosted trees; search space from the stronger's specificity\n`,
        );
        for (const m of rep.models) {
          process.stdout.write(
            `  ${m.model.padEnd(14)} ${String(m.subgraphs).padStart(3)} subgraphs ${String(m.groups).padStart(4)} groups ${String(m.reals).padStart(4)} reals  ` +
              `AUC ${m.auc.toFixed(3)} (${m.aucChanceP.toFixed(2)}) / ${m.boosted.auc.toFixed(3)} (${m.boosted.aucChanceP.toFixed(2)})  ` +
              `s ${m.specificity.toFixed(3)} / ${m.boosted.specificity.toFixed(3)}  search space 10^${m.log10SearchSpace.toFixed(1)}\n`,
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
            `  ${r.model.padEnd(14)} ${String(r.nodes).padStart(4)} nodes ${String(r.subgraphs).padStart(3)} ` +
              `subgraphs  s ${r.specificity.toFixed(3)} (${r.specificityFrom}) ` +
              `10^${r.log10SearchSpace.toFixed(1)}; pooled s ${r.pooledSpecificity.toFixed(3)} ` +
              `10^${r.log10SearchSpacePooled.toFixed(1)}; no adversary ` +
              `10^${r.log10SearchSpaceNoAdversary.toFixed(1)}\n`,
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
      await report(o.output, {
        models: o.models.split(',').filter((s) => s),
        k: o.k,
        size: o.size,
        seed: o.seed,
        attack: o.attack,
      });
      process.stdout.write(`wrote ${o.output}\n`);
    });
}
