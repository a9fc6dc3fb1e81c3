/**
 * `privml worker --queue redis://[:PASSWORD@]HOST:PORT [--concurrency N] [--kinds fhe,mpc,proteus]`:
 * a long-running worker serving privml's BullMQ queues (see docs/scale-out.md). It runs until SIGINT or
 * SIGTERM, then finishes its running jobs and exits 0.
 */
import { existsSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Command } from 'commander';
import { OptionError } from '../errors.js';
import { parseQueueUrl } from '../queue/connection.js';
import { JOB_KINDS, parseKinds } from '../queue/jobs.js';
import { startWorker } from '../queue/worker.js';
import { posInt, posNum } from './common.js';

/** Register `privml worker`. */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('serve privml jobs (FHE, MPC, Proteus) from a Redis queue until stopped')
    .requiredOption('--queue <url>', 'Redis URL: redis://[USER][:PASSWORD@]HOST:PORT[/DB], rediss:// for TLS')
    .option('--concurrency <n>', 'jobs run at once per kind', posInt('--concurrency'), 1)
    .option('--kinds <list>', `job kinds to serve (comma-separated subset of ${JOB_KINDS.join(',')})`, JOB_KINDS.join(','))
    .option('--stall-seconds <s>', "seconds after which a silent worker's job is retried elsewhere", posNum('--stall-seconds'), 30)
    .option('--shared-dir <dir>', "this machine's mount of the storage submitters pass with --shared-dir (default: the submitter's path)")
    .option('--ort-threads <n>', 'onnxruntime intra-op threads per Proteus job (default 1, as the local command)', posInt('--ort-threads'))
    .option('--quiet', 'no per-job log lines')
    .action(
      async (o: { queue: string; concurrency: number; kinds: string; stallSeconds: number; sharedDir?: string; ortThreads?: number; quiet?: boolean }) => {
        const target = parseQueueUrl(o.queue);
        const kinds = parseKinds(o.kinds);
        const log = (line: string) => {
          if (!o.quiet) process.stderr.write(`${new Date().toISOString()} ${line}\n`);
        };
        if (o.sharedDir && !existsSync(o.sharedDir)) throw new OptionError(`--shared-dir ${o.sharedDir}: no such directory`);
        const sharedDir = o.sharedDir ? resolvePath(o.sharedDir) : undefined;
        const w = await startWorker(target, { kinds, concurrency: o.concurrency, stallSeconds: o.stallSeconds, sharedDir, ortThreads: o.ortThreads, log });
        await new Promise<void>((resolve) => {
          const stop = (sig: string) => {
            log(`${sig}: finishing running jobs`);
            void w.close().then(resolve, resolve);
          };
          process.once('SIGINT', () => stop('SIGINT'));
          process.once('SIGTERM', () => stop('SIGTERM'));
        });
        log(`stopped (${w.counts.completed} jobs completed, ${w.counts.failed} failed)`);
      },
    );
}
