/** The `privml` command: one subcommand per file, errors printed as one line. */
import { Command, CommanderError } from 'commander';
import { CliError } from './common.js';
import { registerData } from './data.js';
import { registerDemo } from './demo.js';
import { registerEval } from './eval.js';
import { registerInfo } from './info.js';
import { registerMpc } from './mpc.js';
import { registerHummingbird } from './hummingbird.js';
import { registerSmartpaf } from './smartpaf.js';
import { registerFhe } from './fhe.js';
import { registerProteus } from './proteus.js';
import { registerRun } from './run.js';
import { registerTrain } from './train.js';
import { registerZoo } from './zoo.js';

/** Build the command tree (exported for tests and for --help generation). */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('privml')
    .description('Private ML inference (MPC, CKKS) and model confidentiality for graph optimization, on ONNX.')
    .version('0.1.0')
    .option('--debug', 'print stack traces on errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerDemo(program);
  registerInfo(program);
  registerZoo(program);
  registerTrain(program);
  registerEval(program);
  registerData(program);
  registerMpc(program);
  registerHummingbird(program);
  registerSmartpaf(program);
  registerFhe(program);
  registerProteus(program);
  registerRun(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

/** Run the CLI on `argv` (process.argv form); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander already printed the message (or the help/version text).
      return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
    }
    const err = e as Error;
    const line = (err.message || String(err)).split('\n')[0];
    process.stderr.write(`privml: error: ${line}\n`);
    if (debug && err.stack) process.stderr.write(err.stack + '\n');
    return e instanceof CliError ? e.exitCode : 1;
  }
}
