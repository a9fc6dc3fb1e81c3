/** privml's version (kept equal to package.json by test/cli/lazy.test.ts). */
export const VERSION = '0.1.0';
