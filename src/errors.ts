/**
 * Typed errors of the public API and the CLI. Kept free of imports so that `privml --version` and
 * `import 'privml'` stay fast; the CLI prints `message` as one line and exits with `exitCode`.
 */

/** Base class of every error privml throws on purpose (bad input, refused operation). */
export class PrivmlError extends Error {
  constructor(
    message: string,
    /** Exit code the CLI uses: 1 for a failed operation, 2 for a usage error. */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A model file or graph that privml cannot load, or that does not fit the requested operation. */
export class ModelError extends PrivmlError {}

/** A data set or input tensor that is missing, malformed or of the wrong shape. */
export class DataError extends PrivmlError {}

/** An option with a bad value (exit code 2 in the CLI). */
export class OptionError extends PrivmlError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A failed or refused private-inference protocol run (MPC parties, dealer, FHE evaluation). */
export class ProtocolError extends PrivmlError {}

/** Missing, mismatched or misplaced keys (FHE key directories, Proteus owner keys). */
export class KeyError extends PrivmlError {}

/** A file that cannot be read or written (checked before long work starts). */
export class FileError extends PrivmlError {}

/** The first line of an unknown error's message, for wrapping third-party errors into typed ones. */
export function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0] ?? m;
}
