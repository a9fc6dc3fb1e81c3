/**
 * Time `obfuscate` on a zoo model (issue 13's cost target: resnet50 at K = 20 ≤ 60 s): wall and
 * process CPU seconds, sentinel seconds, bytes written. Prints JSON.
 *
 *   node --import tsx scripts/proteus-obfuscate-time.ts [resnet50] [K=20] [input=3x224x224|''] [threads]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildZoo } from '../src/onnx/zoo/index.js';
import { corpusStats, obfuscate } from '../src/proteus/index.js';

async function main(): Promise<void> {
  const [name = 'resnet50', kArg = '20', input, thArg] = process.argv.slice(2);
  const threads = thArg ? Number(thArg) : undefined;
  const k = Number(kArg);
  const model = buildZoo(name, input ? { input } : {});
  const tmp = mkdtempSync(join(tmpdir(), 'privml-proteus-time-'));
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await obfuscate(model, { k, stats: corpusStats(), outDir: join(tmp, 'bundle'), reference: false, threads });
    const c = process.cpuUsage(c0);
    // The bound on peak memory is stated against the largest group (a piece and its K decoys).
    const largestGroup = Math.max(...r.key.groups.map((g) => g.members.reduce((a, f) => a + statSync(join(tmp, 'bundle', f)).size, 0)));
    const round = (x: number): number => Math.round(x * 10) / 10;
    process.stdout.write(
      JSON.stringify({
        model: name,
        input: input || 'default',
        k,
        subgraphs: r.key.groups.length,
        wallSeconds: round((performance.now() - t0) / 1000),
        cpuSeconds: round((c.user + c.system) / 1e6),
        sentinelSeconds: round(r.sentinelSeconds),
        bytes: r.bytes,
        regenerated: r.regenerated,
        threads: threads ?? 'default',
        // Whole process, worker threads included.
        peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
        largestGroupMiB: Math.round(largestGroup / 2 ** 20),
      }) + '\n',
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
