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

/**
 * Every subcommand in help order with the one-line description `privml --help` shows; it must equal
 * the one its module registers (tested). `src/cli/NAME.ts` registers NAME as `registerName`.
 */
const DESCRIPTIONS = {
  demo: 'run the default pipeline offline: pretrained fmnist-cnn on the committed Fashion-MNIST sample',
  info: 'summarise an ONNX model (a file, or a zoo model name): ops, parameters, shapes, MACs; exit 1 listing every problem',
  zoo: 'list or export the built-in model zoo',
  train: 'train a zoo model (or fine-tune an .onnx file) on a data set; writes the trained ONNX model',
  eval: 'top-1 accuracy and confusion matrix of a classifier on a data set',
  data: 'locate or download data sets',
  mpc: 'two-party secret-shared inference: dealer, parties, infer, benches',
  hummingbird: 'HummingBird: reduced-ring ReLU bit ranges for MPC inference (search, check, report)',
  smartpaf: 'polynomial activation functions (PAFs) for CKKS inference',
  fhe: 'CKKS encrypted inference of SmartPAF models (node-seal)',
  proteus: 'have a third party optimize a model graph without revealing its architecture (Proteus)',
  run: 'run a model on your own tensors (.npy or JSON), print an output summary, optionally save .npy and compare with onnxruntime',
  serve: 'serve a web page that classifies images privately: party 0 runs in the browser, party 1 and the dealer on this machine',
  worker: 'serve privml jobs (FHE, MPC, Proteus) from a Redis queue until stopped',
} as const;

export const COMMANDS: readonly Entry[] = Object.entries(DESCRIPTIONS).map(([name, description]) => ({
  name,
  description,
  load: async () => {
    const mod = (await import(`./${name}.js`)) as Record<string, (program: Command) => unknown>;
    return mod[`register${name[0]!.toUpperCase()}${name.slice(1)}`]!;
  },
}));

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
