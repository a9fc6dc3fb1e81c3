/**
 * `node:fs` for the page bundle: the only file the engine reads in the page is build/ring.wasm,
 * whose bytes esbuild embeds (binary loader); every other file access throws naming the path.
 */
// @ts-expect-error esbuild's binary loader turns the .wasm import into its bytes.
import ringWasm from '../../../build/ring.wasm';

const isRing = (p: unknown): boolean => String(p).endsWith('ring.wasm');

/** True only for the embedded ring kernels. */
export function existsSync(p: unknown): boolean {
  return isRing(p);
}

/** The embedded ring kernels; nothing else can be read in the page. */
export function readFileSync(p: unknown): Uint8Array {
  if (isRing(p)) return ringWasm as Uint8Array;
  throw new Error(`file access in the page: cannot read ${String(p)}`);
}

/** Writing files is not possible in the page. */
export function writeFileSync(p: unknown): never {
  throw new Error(`file access in the page: cannot write ${String(p)}`);
}

/** Directories do not exist in the page (the FHE key code names these; the page never calls them). */
export function mkdirSync(p: unknown): never {
  throw new Error(`file access in the page: cannot create ${String(p)}`);
}

/** Directories do not exist in the page. */
export function readdirSync(p: unknown): never {
  throw new Error(`file access in the page: cannot list ${String(p)}`);
}

/** The default export some modules import. */
export default { existsSync, readFileSync, writeFileSync, mkdirSync, readdirSync };
