/** Helpers shared by the `privml` subcommands: model and data resolution, progress, output. */
import { Presets, SingleBar } from 'cli-progress';
import type { Dataset } from '../api/core.js';
import { loadDatasetSync } from '../api/data.js';
import { PrivmlError } from '../errors.js';

/** A user-facing error of the CLI layer: printed as one line, exit code 1 (2 for usage errors). */
export class CliError extends PrivmlError {}

export { DATASETS } from '../api/data.js';

/** Parse repeated `key=value` zoo options. */
export function parseKeyValues(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CliError(`option '${kv}' must look like key=value`, 2);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

export { resolveModel } from '../api/model-ref.js';

/** Options that pick a data set. */
export interface DataOptions {
  dataset: string;
  dataDir?: string;
  limit?: number;
}

/** Load a split of a named data set; the search path comes from PRIVML_DATA, Debian's package and the user cache. */
export function loadDataset(opts: DataOptions, split: 'train' | 'test'): Dataset {
  return loadDatasetSync(opts.dataset, { split, dataDir: opts.dataDir, limit: opts.limit });
}

/** Parse a positive integer flag. */
export function posInt(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`${name} must be a positive integer, got '${v}'`, 2);
    return n;
  };
}

/** Parse a non-negative integer flag (0 allowed, e.g. to skip a step). */
export function nonNegInt(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new CliError(`${name} must be a non-negative integer, got '${v}'`, 2);
    return n;
  };
}

/** Parse a positive number flag. */
export function posNum(name: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new CliError(`${name} must be a positive number, got '${v}'`, 2);
    return n;
  };
}

/** A progress bar on stderr when it is a terminal (and not in --json mode); silent otherwise. */
export class Progress {
  private bar?: SingleBar;
  constructor(enabled: boolean) {
    if (enabled && process.stderr.isTTY) {
      this.bar = new SingleBar(
        { format: '{label} [{bar}] {percentage}% {value}/{total} {extra}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
        Presets.shades_classic,
      );
    }
  }
  /** Start a new phase of `total` steps. */
  start(label: string, total: number): void {
    this.bar?.start(total, 0, { label, extra: '' });
  }
  /** Advance to `value`, with a short status text. */
  update(value: number, extra = ''): void {
    this.bar?.update(value, { extra });
  }
  /** Finish the current phase. */
  stop(): void {
    this.bar?.stop();
  }
}

/** Print `value` as pretty JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Percent with one decimal. */
export const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
