/**
 * The corpus of real architectures the sentinel generator learns from: the zoo (at small input
 * sizes, which changes shapes but not topology or operator statistics) plus any user models.
 */
import type { Model } from '../onnx/ir.js';
import { buildZoo, zooNames } from '../onnx/zoo/index.js';
import type { OpStats } from './stats.js';
import { learnStats } from './stats.js';

const TRANSFORMER = { layers: 2, hidden: 64, heads: 4, seq: 8, vocab: 100 };

/** Fast build options per zoo model (used for statistics and the adversary's training set). */
export const CORPUS_CONFIGS: Record<string, Record<string, string | number>> = {
  'fmnist-cnn': {},
  lenet5: {},
  resnet20: {},
  resnet18: { input: '3x32x32' },
  resnet50: { input: '3x32x32' },
  vgg16: { input: '3x32x32' },
  mobilenetv2: { input: '3x32x32' },
  'bert-base': TRANSFORMER,
  'gpt2-small': TRANSFORMER,
};

/** Zoo models at their corpus configuration (`weights: 'zero'`: the graphs alone). */
export function zooCorpus(weights: 'random' | 'zero' = 'random'): Model[] {
  return zooNames.map((n) => buildZoo(n, { ...CORPUS_CONFIGS[n], weights }));
}

/** Operator statistics of the zoo plus `extra` user-supplied models (they read the graphs alone: the zoo's weights are not drawn). */
export function corpusStats(extra: readonly Model[] = []): OpStats {
  return learnStats([...zooCorpus('zero'), ...extra]);
}

/** Model family of a zoo name (leave-one-family-out groups); other names are their own family. */
export function familyOf(name: string): string {
  if (/^resnet/.test(name)) return 'resnet';
  if (/^(bert|gpt)/.test(name)) return 'transformer';
  if (/^(fmnist-cnn|lenet)/.test(name)) return 'small-cnn';
  if (/^vgg/.test(name)) return 'vgg';
  if (/^mobilenet/.test(name)) return 'mobilenet';
  return name;
}
