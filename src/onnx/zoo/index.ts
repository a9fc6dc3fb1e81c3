/**
 * privml's model zoo: standard architectures built in code (opset 17) with deterministic, seeded
 * weights, for tests, benchmarks and Proteus sentinels.
 *
 *   const m = buildZoo('resnet20', { input: '3x32x32', seed: 1 });
 */
import type { Model } from '../ir.js';
import { bertBase } from './bert.js';
import { fmnistCnn, lenet5 } from './cnn.js';
import { gpt2Small } from './gpt2.js';
import { mobilenetv2 } from './mobilenet.js';
import type { ZooEntry } from './options.js';
import { resnet18, resnet20, resnet50 } from './resnet.js';
import { vgg16 } from './vgg.js';

export { isParameter, paramCount } from './layers.js';
export type { OptionKind, OptionSpec, ZooEntry } from './options.js';

const ENTRIES: readonly ZooEntry[] = [fmnistCnn, lenet5, resnet20, resnet18, resnet50, vgg16, mobilenetv2, bertBase, gpt2Small];

/** Names of all zoo models, in listing order. */
export const zooNames: readonly string[] = ENTRIES.map((e) => e.name);

/** All zoo models with their descriptions and options. */
export function listZoo(): ZooEntry[] {
  return [...ENTRIES];
}

/** Build zoo model `name`; `opts` override option defaults (strings as on a command line, or numbers). */
export function buildZoo(name: string, opts: Record<string, string | number> = {}): Model {
  const entry = ENTRIES.find((e) => e.name === name);
  if (!entry) throw new Error(`unknown zoo model '${name}' (known: ${zooNames.join(', ')})`);
  return entry.build(opts);
}
