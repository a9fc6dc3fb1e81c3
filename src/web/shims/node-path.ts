/** `node:path` for the page bundle: only `join`, for names in messages (the page has no files). */
export function join(...parts: string[]): string {
  return parts
    .filter((p) => p !== '')
    .join('/')
    .replace(/\/+/g, '/');
}

/** The default export some modules import. */
export default { join };
