/**
 * The `privml` command: one subcommand per file, errors printed as one line. Subcommand modules are
 * imported only when their command runs (they pull in tfjs, onnxruntime, node-seal), so `--version`
 * and `--help` start in a fraction of a second.
 */
import { Command, CommanderError } from 'commander';
import { PrivmlError } from '../errors.js';
import { VERSION } from '../version.js';

export { VERSION };

/** One top-level subcommand: its name, the one-line description shown by `privml --help`, its loader. */
interface Entry {
  name: string;
  description: string;
  load: () => Promise<(program: Command) => unknown>;
}

/** Every subcommand in help order; `description` must equal the one its module registers (tested). */
export const COMMANDS: readonly Entry[] = [
  {
    name: 'demo',
    description: 'run the default pipeline offline: pretrained fmnist-cnn on the committed Fashion-MNIST sample',
    load: async () => (await import('./demo.js')).registerDemo,
  },
  {
    name: 'info',
    description: 'summarise an ONNX model (a file, or a zoo model name): ops, parameters, shapes, MACs; exit 1 listing every problem',
    load: async () => (await import('./info.js')).registerInfo,
  },
  { name: 'zoo', description: 'list or export the built-in model zoo', load: async () => (await import('./zoo.js')).registerZoo },
  {
    name: 'train',
    description: 'train a zoo model (or fine-tune an .onnx file) on a data set; writes the trained ONNX model',
    load: async () => (await import('./train.js')).registerTrain,
  },
  {
    name: 'eval',
    description: 'top-1 accuracy and confusion matrix of a classifier on a data set',
    load: async () => (await import('./eval.js')).registerEval,
  },
  { name: 'data', description: 'locate or download data sets', load: async () => (await import('./data.js')).registerData },
  { name: 'mpc', description: 'two-party secret-shared inference: dealer, parties, infer, benches', load: async () => (await import('./mpc.js')).registerMpc },
  {
    name: 'hummingbird',
    description: 'HummingBird: reduced-ring ReLU bit ranges for MPC inference (search, check, report)',
    load: async () => (await import('./hummingbird.js')).registerHummingbird,
  },
  {
    name: 'smartpaf',
    description: 'polynomial activation functions (PAFs) for CKKS inference',
    load: async () => (await import('./smartpaf.js')).registerSmartpaf,
  },
  { name: 'fhe', description: 'CKKS encrypted inference of SmartPAF models (node-seal)', load: async () => (await import('./fhe.js')).registerFhe },
  {
    name: 'proteus',
    description: 'have a third party optimize a model graph without revealing its architecture (Proteus)',
    load: async () => (await import('./proteus.js')).registerProteus,
  },
  {
    name: 'run',
    description: 'run a model on your own tensors (.npy or JSON), print an output summary, optionally save .npy and compare with onnxruntime',
    load: async () => (await import('./run.js')).registerRun,
  },
  {
    name: 'serve',
    description: 'serve a web page that classifies images privately: party 0 runs in the browser, party 1 and the dealer on this machine',
    load: async () => (await import('./serve.js')).registerServe,
  },
  {
    name: 'worker',
    description: 'serve privml jobs (FHE, MPC, Proteus) from a Redis queue until stopped',
    load: async () => (await import('./worker.js')).registerWorker,
  },
];

/** The subcommand named on the command line (`help NAME` counts too), if any. */
function requested(args: string[]): Entry | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return COMMANDS.find((c) => c.name === name);
}

/**
 * Build the command tree. With `load: 'all'` every subcommand module is imported (for tests); with
 * `load: argv` only the one argv names is, the others are listed by name and description only.
 */
export async function buildProgram(load: 'all' | string[] = 'all'): Promise<Command> {
  const program = new Command();
  program
    .name('privml')
    .description('Private ML inference (MPC, CKKS) and model confidentiality for graph optimization, on ONNX.')
    .version(VERSION)
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const wanted = load === 'all' ? undefined : requested(load.slice(2));
  for (const c of COMMANDS) {
    if (load === 'all' || c === wanted) (await c.load())(program);
    else program.command(c.name).description(c.description);
  }
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** True for the error a closed stdout pipe raises (`privml … | head -1`): the reader is gone, not a failure. */
function isBrokenPipe(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
}

/** Run the CLI on `argv` (process.argv form); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  // A reader that closes the pipe early ends the output; exit quietly instead of printing a stack trace.
  process.stdout.on('error', (e) => {
    if (isBrokenPipe(e)) process.exit(0);
    throw e;
  });
  const debug = argv.includes('--debug');
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed the message (or the help/version text).
      return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
    }
    if (isBrokenPipe(e)) return 0;
    const err = e as Error;
    const line = (err.message || String(err)).split('\n')[0];
    process.stderr.write(`privml: error: ${line}\n`);
    if (debug && err.stack) process.stderr.write(err.stack + '\n');
    return e instanceof PrivmlError ? e.exitCode : 1;
  }
}
