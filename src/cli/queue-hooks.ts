/**
 * The `--queue URL` variants of `privml proteus optimize`, `privml fhe run` and `privml mpc infer`: each
 * splits the work into jobs for `privml worker`s and prints what the local command prints. Kept out of
 * the pillar CLI files so their hooks stay one line each.
 */
import { parseQueueUrl } from '../queue/connection.js';
import { Progress, printJson } from './common.js';

/** Progress bar + retry notes on stderr while a batch runs. */
function progress(label: string, json: boolean | undefined) {
  const bar = new Progress(!json);
  let started = false;
  return {
    onProgress: (d: number, t: number) => {
      if (!started) bar.start(label, t);
      started = true;
      bar.update(d);
    },
    log: (line: string) => process.stderr.write(`${line}\n`),
    stop: () => bar.stop(),
  };
}

/** `privml proteus optimize BUNDLE -o OUT --queue URL`. */
export async function proteusOptimizeQueued(dir: string, o: { output: string; level: string; json?: boolean; queue: string }): Promise<void> {
  const target = parseQueueUrl(o.queue);
  const { optimizeOverQueue } = await import('../queue/proteus.js');
  const p = progress('optimizing', o.json);
  try {
    const r = await optimizeOverQueue(target, dir, o.output, { level: o.level as 'extended', onProgress: p.onProgress, log: p.log });
    p.stop();
    const summary = { bundle: dir, output: o.output, level: o.level, members: r.members, seconds: Math.round(r.seconds * 100) / 100, queue: target.display, workers: r.workers.length, computeSeconds: Math.round(r.computeSeconds * 100) / 100, retried: r.attempts.filter((a) => a > 1).length };
    if (o.json) return printJson(summary);
    process.stdout.write(`optimized ${r.members} members (level ${o.level}) into ${o.output} in ${summary.seconds} s (${summary.workers} workers via ${target.display})\n`);
  } finally {
    p.stop();
  }
}
