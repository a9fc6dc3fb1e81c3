/** `privml serve MODEL`: the private-inference page (the server is src/api/serve.ts). */
import type { Command } from 'commander';
import { serve } from '../api/serve.js';

interface ServeFlags {
  port: number;
  host: string;
  reluConfig?: string;
  reluProtocol: string;
  weights: string;
  preprocess?: boolean;
  fhe?: boolean;
  paf?: string;
  json?: boolean;
}

/** Register `serve`. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve a web page that classifies images privately: party 0 runs in the browser, party 1 and the dealer on this machine')
    .argument('<model>', '.onnx model (or zoo name) with a 28×28 single-channel input (e.g. fmnist-cnn)')
    .option('--port <n>', 'HTTP port (0: any free port)', (v) => Number(v), 8080)
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--relu-config <file>', 'HummingBird bit ranges per ReLU node (as for mpc infer)')
    .option('--relu-protocol <name>', 'signonly | crypten | fss | fss2', 'signonly')
    .option('--weights <mode>', 'public (the page receives the model) | secret (the page receives only the architecture)', 'public')
    .option(
      '--preprocess',
      "MPC mode: each image's offline phase (dealer material, party 0's PRG expansion, the input's mask) before the image is shared; the page times the online phase",
    )
    .option('--fhe', 'CKKS mode: the page generates keys, encrypts and decrypts; this machine evaluates (a PAF model, or --paf)')
    .option('--paf <name>', 'with --fhe: make a development PAF model from a ReLU model, as fhe run --paf does (e.g. f1g2)')
    .option('--json', 'print {"url","port"} as one JSON line once listening, instead of the text line')
    .action(async (ref: string, o: ServeFlags) => {
      const log = (l: string) => process.stderr.write(`privml serve: ${l}\n`);
      const { port, url } = await serve(ref, { ...o, log });
      // One line on stdout the test (and scripts) can wait for.
      process.stdout.write(o.json ? JSON.stringify({ url, port }) + '\n' : `serving ${url}\n`);
      await new Promise(() => {});
    });
}
