/**
 * `src/fhe/compile.ts` for the CKKS client page bundle: the client only packs, encrypts and decrypts;
 * compiling and simulating a model (which pulls in the tfjs runtime) is the server's job. The
 * functions the client's modules name throw if ever called in the page.
 */
const serverOnly = (name: string) => (): never => {
  throw new Error(`${name} runs on the server, not in the page`);
};

export const simulateProgram = serverOnly('simulateProgram');
export const stepDepth = serverOnly('stepDepth');
