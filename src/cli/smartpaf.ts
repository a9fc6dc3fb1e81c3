/** `privml smartpaf …`: the PAF library (`list`); the training pipeline extends the same command. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { listPafs, MINIMAX27_EPS, type Paf } from '../smartpaf/paf.js';
import { oddCost, oddDegree } from '../smartpaf/poly.js';
import { measureSign } from '../smartpaf/remez.js';
import { pafSvg } from '../smartpaf/plot.js';
import { CliError, printJson } from './common.js';

/** |x| from which sign errors are reported (the approximations are poor closer to 0 by design). */
const SIGN_ERROR_FROM = 0.1;

/** JSON description of one PAF, as printed by `smartpaf list --json`. */
export function describePaf(paf: Paf) {
  const m = measureSign(paf.stages, SIGN_ERROR_FROM, 4000);
  const minimax = paf.name === 'minimax27' ? { eps: MINIMAX27_EPS, signMaxErrorFromEps: measureSign(paf.stages, MINIMAX27_EPS, 4000).signError } : {};
  return {
    name: paf.name,
    title: paf.title,
    degree: paf.degree,
    algebraicDegree: paf.algebraicDegree,
    depth: paf.cost.depth,
    mults: paf.cost.mults,
    scalarMults: paf.cost.scalarMults,
    adds: paf.cost.adds,
    relu: { depth: paf.reluCost.depth, mults: paf.reluCost.mults },
    stages: paf.stages.map((c, i) => {
      const cost = oddCost(c);
      return { name: paf.stageNames[i]!, degree: oddDegree(c), depth: cost.depth, mults: cost.mults, coefficients: c };
    }),
    reluMaxError: m.reluError,
    signMaxError: { from: SIGN_ERROR_FROM, value: m.signError },
    ...minimax,
  };
}

/** Register `smartpaf` with its `list` subcommand; returns the command so the pipeline can extend it. */
export function registerSmartpaf(program: Command): Command {
  const sp = program.command('smartpaf').description('polynomial activation functions (PAFs) for CKKS inference');
  sp.command('list')
    .description('list the PAFs: coefficients per stage, degree, multiplicative depth, multiplication count')
    .option('--json', 'machine-readable output')
    .option('--svg <dir>', 'also write one SVG plot per PAF (sign and ReLU vs exact) into this directory')
    .action((o: { json?: boolean; svg?: string }) => {
      const pafs = listPafs();
      const rows = pafs.map(describePaf);
      const files: string[] = [];
      if (o.svg) {
        try {
          mkdirSync(o.svg, { recursive: true });
          for (const p of pafs) {
            const f = join(o.svg, `${p.name}.svg`);
            writeFileSync(f, pafSvg(p));
            files.push(f);
          }
        } catch (e) {
          throw new CliError(`--svg ${o.svg}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
      if (o.json) return printJson(o.svg ? { pafs: rows, svg: files } : rows);
      const out: string[] = ['name        degree (alg.)  depth  mults  relu-err  stages'];
      for (const r of rows) {
        out.push(
          `${r.name.padEnd(11)} ${String(r.degree).padStart(6)} (${String(r.algebraicDegree).padStart(3)})  ${String(r.depth).padStart(5)}  ${String(r.mults).padStart(5)}  ${r.reluMaxError.toExponential(2)}  ${r.title}`,
        );
        for (const s of r.stages) out.push(`${''.padEnd(14)}${s.name.padEnd(4)} deg ${s.degree}: ${s.coefficients.map((c) => Number(c.toPrecision(10))).join(', ')}`);
      }
      out.push('degree = sum of stage degrees (papers\' convention); alg. = degree of the composed polynomial.');
      out.push('depth/mults: sign(x) with minimal-depth power-basis evaluation (see src/smartpaf/poly.ts); ReLU adds 1 and 1.');
      for (const f of files) out.push(`wrote ${f}`);
      process.stdout.write(out.join('\n') + '\n');
    });
  return sp;
}
