/**
 * `npm run bench:mpc`: the MPC engine's targets in one run, each over real processes on loopback.
 * Prints one JSON object: ReLU cost per protocol, and fmnist-cnn end to end (batch 1 and 64,
 * sign-only vs the CrypTen-equivalent baseline, with the dealer online and online-only).
 *
 *   npm run bench:mpc -- [--model models/fmnist-cnn.onnx] [--net none|lan|wan] [--reps 10]
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { model: { type: 'string', default: 'models/fmnist-cnn.onnx' }, net: { type: 'string', default: 'none' }, reps: { type: 'string', default: '10' } },
});
const bin = join(import.meta.dirname, '..', 'bin', 'privml.js');
const run = (args: string[]): unknown => JSON.parse(execFileSync(process.execPath, [bin, ...args, '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 }));
const net = ['--net', values.net!];

const relu = ['signonly', 'crypten'].map((p) => run(['mpc', 'bench', 'relu', '--n', '10000', '--relu-protocol', p, ...net]));
const model: unknown[] = [];
for (const batch of [1, 64]) {
  for (const p of ['signonly', 'crypten']) {
    const reps = batch === 1 ? values.reps! : '3';
    const r = run(['mpc', 'bench', 'model', values.model!, '--batch', String(batch), '--reps', reps, '--relu-protocol', p, ...net]) as Record<string, unknown>;
    delete r.layers;
    model.push(r);
  }
}
process.stdout.write(JSON.stringify({ net: values.net, relu, model }, null, 2) + '\n');
