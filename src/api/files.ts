/** Output files are checked before long work starts, so minutes of training never end in EACCES. */
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FileError, firstLine } from '../errors.js';

/** Create the parent folder of `path` and check that `path` can be written; FileError naming the path otherwise. */
export function ensureWritable(path: string): void {
  const dir = dirname(resolve(path));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new FileError(`${path}: cannot create the folder ${dir} (${firstLine(e)})`);
  }
  try {
    if (existsSync(path)) {
      if (statSync(path).isDirectory()) throw new FileError(`${path}: is a directory`);
      accessSync(path, constants.W_OK);
    } else accessSync(dir, constants.W_OK);
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(`${path}: not writable (${firstLine(e)})`);
  }
}

/** Create the folder `dir` (an output directory) and check that it can be written; FileError otherwise. */
export function ensureWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new FileError(`${dir}: cannot create or write the folder (${firstLine(e)})`);
  }
}
