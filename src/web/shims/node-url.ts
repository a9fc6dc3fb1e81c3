/** `node:url` for the page bundle: file URLs only name the embedded ring kernels there (see node-fs.ts). */

/** The URL's text; node-fs.ts recognises the ring kernels by name. */
export function fileURLToPath(u: URL | string): string {
  return String(u);
}

/** The default export some modules import. */
export default { fileURLToPath };
