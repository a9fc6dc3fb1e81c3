/** A model reference as users give it: an .onnx path, or the name of a model of the built-in zoo. */
import { existsSync } from 'node:fs';
import { ModelError } from '../errors.js';
import type { Model } from '../onnx/ir.js';
import { loadModel } from '../onnx/proto.js';
import { buildZoo, zooNames } from '../onnx/zoo/index.js';

/** Load a model from an .onnx path, or build it when `ref` names a zoo model; `source` names where it came from. */
export function resolveModel(ref: string, zooOpts: Record<string, string> = {}): { model: Model; source: string } {
  if (existsSync(ref)) return { model: loadModel(ref), source: ref };
  if (zooNames.includes(ref)) return { model: buildZoo(ref, zooOpts), source: `zoo:${ref}` };
  throw new ModelError(`${ref}: no such model file (nor a zoo model; known: ${zooNames.join(', ')})`);
}
