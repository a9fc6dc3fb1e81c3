/**
 * The simple-statistics attacker of issue 13, run on bundles exactly as `privml proteus obfuscate`
 * writes them: for each model it exports the model to a file, runs the CLI's `obfuscate` (a fresh
 * secret stream per run, timed), reads the member files back from disk and, per group (the key says
 * which member is real; the optimizer would group members by their shared I/O signature), ranks the
 * members by one statistic at a time. It reports how often the real member ranks first, per
 * statistic and direction (largest / smallest / closest to the group median), against chance 1/(K+1);
 * the target is ≤ 2/(K+1).
 *
 *   node --import tsx scripts/proteus-attack-stats.ts [--runs 5] [--k 20] [--size 16] MODEL...
 *   MODEL = zoo name, zoo name with options (gpt2-small:layers=2,hidden=256) or an .onnx file
 *   node --import tsx scripts/proteus-attack-stats.ts --bundle DIR --key FILE   (attack one existing bundle)
 *
 * Statistics: the battery of `src/proteus/battery.ts` (duplicates, distinct ratio, moments, tails,
 * float bits, BatchNorm running statistics, channel norms, file size, onnxruntime load validity),
 * plus the most extreme standardised value on each side (min z, max z, in σ) and op-set validity by
 * a second implementation, the `onnx` package's full checker at the member's declared opset
 * (Debian's python3-onnx; skipped with a note when it is not installed). Prints JSON.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Model } from '../src/onnx/ir.js';
import { decodeModel, loadModel, saveModel } from '../src/onnx/proto.js';
import { buildZoo, zooNames } from '../src/onnx/zoo/index.js';
import type { BatteryRow } from '../src/proteus/index.js';
import {
  architectureOf,
  firstRate,
  multiplicities,
  nearTwinScores,
  ortLoads,
  readKey,
  structureOf,
  type TwinSketch,
  twinSketches,
  VALUE_FEATURES,
  valueStats,
} from '../src/proteus/index.js';

const EXTRA = ['min z (σ)', 'max z (σ)', 'onnx checker valid'] as const;
const NAMES = [...VALUE_FEATURES, ...EXTRA];

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const runs = Number(arg('--runs', '5'));
const k = Number(arg('--k', '20'));
const size = Number(arg('--size', '16'));
const flags = new Set(['--runs', '--k', '--size', '--bundle', '--key']);
const refs = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !flags.has(all[i - 1] ?? ''));
const root = new URL('..', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'privml-proteus-attack-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** Mean over float tensors of their most negative and most positive standardised value. */
function extremes(m: Model): [number, number] {
  let lo = 0;
  let hi = 0;
  let n = 0;
  for (const t of m.graph.initializers.values()) {
    if (t.dtype !== 'float32' || t.data.length < 16) continue;
    const d = t.data as Float32Array;
    if (d.some((v) => v <= -1e3)) continue; // additive masks are constants
    let s = 0;
    let s2 = 0;
    for (const v of d) {
      s += v;
      s2 += v * v;
    }
    const mu = s / d.length;
    const sd = Math.sqrt(Math.max(0, s2 / d.length - mu * mu));
    if (!(sd > 0)) continue;
    let a = Infinity;
    let b = -Infinity;
    for (const v of d) {
      a = Math.min(a, v);
      b = Math.max(b, v);
    }
    lo += (a - mu) / sd;
    hi += (b - mu) / sd;
    n++;
  }
  return n ? [lo / n, hi / n] : [NaN, NaN];
}

const PY = '/usr/bin/python3';
const checkerOk = existsSync(PY) && spawnSync(PY, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;

/** The onnx package's verdict on each file (full check: op schemas at the declared opset and strict shape inference). */
function onnxChecker(files: string[]): Map<string, boolean> {
  const out = new Map<string, boolean>();
  if (!checkerOk) return out;
  const code = [
    'import sys, onnx',
    'for f in sys.stdin.read().split():',
    '    try:',
    '        onnx.checker.check_model(onnx.load(f), full_check=True); print("ok", f)',
    '    except Exception as e:',
    '        print("bad", f, str(e).splitlines()[0] if str(e) else type(e).__name__)',
  ].join('\n');
  const r = spawnSync(PY, ['-c', code], { input: files.join('\n'), encoding: 'utf8', maxBuffer: 1 << 26 });
  for (const line of r.stdout.split('\n')) {
    const [v, f, ...why] = line.split(' ');
    if (!f) continue;
    out.set(f, v === 'ok');
    if (v !== 'ok') process.stderr.write(`onnx checker: ${f}: ${why.join(' ')}\n`);
  }
  return out;
}

/** Rows of one bundle: every member with its statistics, grouped as the key says. */
async function attackBundle(
  dir: string,
  keyPath: string,
  model: string,
  run: number,
  group0: number,
): Promise<{ rows: BatteryRow[]; invalid: number; checkerInvalid: number }> {
  const key = readKey(keyPath);
  const files = key.groups.flatMap((g) => g.members.map((m) => join(dir, m)));
  const checked = onnxChecker(files);
  const rows: BatteryRow[] = [];
  const sketches: TwinSketch[][] = [];
  const architectures: string[] = [];
  const wirings: string[] = [];
  let invalid = 0;
  let checkerInvalid = 0;
  for (const [gi, g] of key.groups.entries()) {
    for (const name of g.members) {
      const path = join(dir, name);
      const bytes = readFileSync(path);
      const m = decodeModel(bytes, name);
      const loads = await ortLoads(bytes);
      if (!loads) invalid++;
      const ok = checked.get(path);
      if (ok === false) checkerInvalid++;
      sketches.push(twinSketches(m));
      architectures.push(architectureOf(m));
      wirings.push(structureOf(m));
      rows.push({
        model,
        family: model,
        group: group0 + gi,
        real: name === g.real,
        v: [...valueStats(m, bytes.length, loads), ...extremes(m), ok === undefined ? NaN : ok ? 1 : 0],
      });
    }
  }
  // The near-twin statistic compares each member with every other member of the bundle.
  const twin = VALUE_FEATURES.indexOf('nearest twin distance');
  nearTwinScores(sketches).forEach((score, i) => {
    rows[i]!.v[twin] = score.distance;
    rows[i]!.v[twin + 1] = score.rank;
  });
  // And how many members of the bundle share each one's architecture.
  const repeat = VALUE_FEATURES.indexOf('architecture multiplicity');
  multiplicities(architectures).forEach((c, i) => {
    rows[i]!.v[repeat] = c;
  });
  multiplicities(wirings).forEach((c, i) => {
    rows[i]!.v[repeat + 1] = c;
  });
  void run;
  return { rows, invalid, checkerInvalid };
}

/** A model file for `ref` (zoo name with options, or a path). */
function modelFile(ref: string): string {
  if (existsSync(ref)) return ref;
  const [name, spec] = ref.split(':');
  if (!zooNames.includes(name!)) throw new Error(`${ref}: no such file or zoo model`);
  const opts = Object.fromEntries(
    (spec ?? '')
      .split(',')
      .filter((s) => s)
      .map((kv) => kv.split('=') as [string, string]),
  );
  const file = join(tmp, `${ref.replace(/[^\w.-]+/g, '_')}.onnx`);
  saveModel(buildZoo(name!, opts), file);
  return file;
}

/** Share of groups whose real member is the one closest to the group's median of statistic `j` (ties share). */
function centralRate(rows: readonly BatteryRow[], j: number): number {
  const groups = new Map<number, BatteryRow[]>();
  for (const r of rows) (groups.get(r.group) ?? groups.set(r.group, []).get(r.group)!).push(r);
  let hit = 0;
  for (const ms of groups.values()) {
    const xs = ms
      .map((r) => r.v[j]!)
      .filter((x) => !Number.isNaN(x))
      .sort((a, b) => a - b);
    if (!xs.length) {
      hit += 1 / ms.length;
      continue;
    }
    const med = xs[xs.length >> 1]!;
    const d = (r: BatteryRow): number => (Number.isNaN(r.v[j]!) ? Infinity : Math.abs(r.v[j]! - med));
    const best = Math.min(...ms.map(d));
    const at = ms.filter((r) => d(r) === best);
    if (at.some((r) => r.real)) hit += 1 / at.length;
  }
  return groups.size ? hit / groups.size : NaN;
}

/** One-sided binomial tail P(X ≥ x) for X ~ Bin(n, p): how surprising `x` real-first groups are under chance. */
function binomTail(x: number, n: number, p: number): number {
  let term = (1 - p) ** n;
  let cdf = 0;
  for (let i = 0; i < Math.ceil(x - 1e-9) && i <= n; i++) {
    cdf += term;
    term *= ((n - i) / (i + 1)) * (p / (1 - p));
  }
  return Math.max(0, 1 - cdf);
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * Per statistic: real-first rate ranking by largest, smallest and closest-to-the-group-median value,
 * the worst of the three, and the binomial tail of the worst under chance (small = a real leak, not
 * noise; three directions × many statistics are tried, so a few tails near 0.05 are expected).
 */
function table(rows: BatteryRow[]): Record<string, { largest: number; smallest: number; central: number; worst: number; pChance: number }> {
  const n = new Set(rows.map((r) => r.group)).size;
  return Object.fromEntries(
    NAMES.map((s, j) => {
      const largest = firstRate(rows, j, 1);
      const smallest = firstRate(rows, j, -1);
      const central = centralRate(rows, j);
      const worst = Math.max(largest, smallest, central);
      return [s, { largest: r3(largest), smallest: r3(smallest), central: r3(central), worst: r3(worst), pChance: r3(binomTail(worst * n, n, 1 / (k + 1))) }];
    }),
  );
}

async function main(): Promise<void> {
  const bundle = process.argv.includes('--bundle') ? arg('--bundle', '') : '';
  const out: Record<string, unknown> = {
    k,
    size,
    chance: r3(1 / (k + 1)),
    target: r3(2 / (k + 1)),
    onnxChecker: checkerOk ? 'python3-onnx full_check' : 'not installed (skipped)',
  };
  const all: BatteryRow[] = [];
  const perModel: Record<string, unknown> = {};
  if (bundle) {
    const { rows, invalid, checkerInvalid } = await attackBundle(bundle, arg('--key', ''), 'bundle', 0, 0);
    all.push(...rows);
    perModel.bundle = { groups: new Set(rows.map((r) => r.group)).size, invalidOrt: invalid, invalidChecker: checkerInvalid, statistics: table(rows) };
  }
  let group0 = 0;
  for (const ref of refs) {
    const file = modelFile(ref);
    const nodes = loadModel(file).graph.nodes.length;
    const mine: BatteryRow[] = [];
    const seconds: number[] = [];
    let invalid = 0;
    let checkerInvalid = 0;
    for (let run = 0; run < runs; run++) {
      const dir = join(tmp, `b-${group0}`);
      const keyPath = join(tmp, `k-${group0}.json`);
      const t0 = performance.now();
      const r = spawnSync(
        process.execPath,
        [join(root, 'bin/privml.js'), 'proteus', 'obfuscate', file, '-k', String(k), '--size', String(size), '-o', dir, '--key', keyPath, '--json'],
        { encoding: 'utf8', maxBuffer: 1 << 26 },
      );
      seconds.push(Math.round((performance.now() - t0) / 100) / 10);
      if (r.status !== 0) throw new Error(`obfuscate ${ref} failed: ${r.stderr.trim().split('\n').pop()}`);
      const res = await attackBundle(dir, keyPath, ref, run, group0);
      group0 += new Set(res.rows.map((x) => x.group)).size;
      invalid += res.invalid;
      checkerInvalid += res.checkerInvalid;
      mine.push(...res.rows);
      rmSync(dir, { recursive: true, force: true });
      process.stderr.write(`${ref} run ${run + 1}/${runs}: ${seconds.at(-1)} s\n`);
    }
    all.push(...mine);
    const t = table(mine);
    perModel[ref] = {
      nodes,
      groups: new Set(mine.map((r) => r.group)).size,
      obfuscateSeconds: seconds,
      invalidOrt: invalid,
      invalidChecker: checkerInvalid,
      worst: Object.entries(t)
        .sort((a, b) => b[1].worst - a[1].worst)
        .slice(0, 3)
        .map(([s, v]) => `${s} ${v.worst}`),
      statistics: t,
    };
  }
  const t = table(all);
  out.models = perModel;
  out.pooled = {
    groups: new Set(all.map((r) => r.group)).size,
    overTarget: Object.entries(t)
      .filter(([, v]) => v.worst > 2 / (k + 1))
      .map(([s, v]) => `${s} ${v.worst}`),
    statistics: t,
  };
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
