/**
 * `npm run conformance [-- --dir DIR] [--json] [--filter RE] [--all]`: ONNX backend node cases
 * through the float runtime; prints pass / wrong / refused / crash per op and the totals for the
 * cases whose ops privml lists. Default DIR: test/fixtures/onnx-backend/node.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CaseResult, caseKey, listCases, runCase } from './conformance-lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (k: string): string | undefined => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : undefined;
};
const dir = opt('--dir') ?? join(here, '..', 'test', 'fixtures', 'onnx-backend', 'node');
const filter = opt('--filter') ? new RegExp(opt('--filter')!) : undefined;
const json = args.includes('--json');
const verbose = args.includes('--verbose');

const results: CaseResult[] = [];
for (const name of listCases(dir)) {
  if (filter && !filter.test(name)) continue;
  results.push(await runCase(join(dir, name), name));
}
const listed = results.filter((r) => r.listed);
const count = (rs: CaseResult[], s: CaseResult['status']): number => rs.filter((r) => r.status === s).length;
const summary = {
  dir,
  cases: results.length,
  listed: listed.length,
  listedPass: count(listed, 'pass'),
  listedPassRate: listed.length ? count(listed, 'pass') / listed.length : 0,
  pass: count(results, 'pass'),
  wrong: count(results, 'wrong'),
  refused: count(results, 'refused'),
  crash: count(results, 'crash'),
};
if (json) {
  process.stdout.write(JSON.stringify({ summary, results }, null, 1) + '\n');
} else {
  const byKey = new Map<string, CaseResult[]>();
  for (const r of results) byKey.set(caseKey(r), [...(byKey.get(caseKey(r)) ?? []), r]);
  const rows = [...byKey].sort((a, b) => a[0].localeCompare(b[0]));
  process.stdout.write(`${'op'.padEnd(34)} ${'pass'.padStart(5)} ${'wrong'.padStart(5)} ${'refused'.padStart(7)} ${'crash'.padStart(5)}\n`);
  for (const [k, rs] of rows) {
    process.stdout.write(
      `${k.padEnd(34)} ${String(count(rs, 'pass')).padStart(5)} ${String(count(rs, 'wrong')).padStart(5)} ${String(count(rs, 'refused')).padStart(7)} ${String(count(rs, 'crash')).padStart(5)}\n`,
    );
  }
  for (const r of results) {
    if (r.status === 'wrong' || r.status === 'crash' || (verbose && r.status !== 'pass'))
      process.stdout.write(`  ${r.status.toUpperCase()} ${r.name}: ${r.detail}\n`);
  }
  process.stdout.write(
    `\n${summary.cases} cases: ${summary.pass} pass, ${summary.wrong} wrong, ${summary.refused} refused, ${summary.crash} crash\n` +
      `cases whose ops privml lists: ${summary.listedPass}/${summary.listed} pass (${(100 * summary.listedPassRate).toFixed(1)} %)\n`,
  );
}
process.exitCode = summary.wrong > 0 || summary.crash > 0 ? 1 : 0;
