/**
 * The HummingBird config file: the MPC engine's `--relu-config` format ({"layers": {node: {msb, lsb}}})
 * plus a `hummingbird` metadata block (model hash, mode, budget, levels, bits discarded, accuracies).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Model } from '../onnx/ir.js';
import { modelHash } from './graph.js';
import { type BitRange, checkRange } from './simulate.js';

/** Search mode: eco keeps every prediction; aggressive trades a little accuracy for fewer bits. */
export type HbMode = 'eco' | 'aggressive';

/** One level: ReLU layers sharing a bit range. */
export interface HbLevel {
  /** Level label, e.g. "28x28" or a node name. */
  name: string;
  /** Relu node names in the level. */
  nodes: string[];
  /** ReLU elements per image over the level's nodes. */
  elements: number;
  msb: number;
  lsb: number;
}

/** Accuracy numbers of a config on one data split. */
export interface HbEval {
  dataset: string;
  n: number;
  /** Accuracy of the exact (64-bit) model. */
  accuracy64: number;
  /** Accuracy with the reduced ranges (simulated, fresh random shares). */
  accuracy: number;
  /** Fraction of predictions equal to the 64-bit model's. */
  agreement: number;
  /** Agreement when every lost carry is lost (adversarial shares), if measured. */
  agreementWorst?: number;
}

/** Metadata block written next to `layers`. */
export interface HbMeta {
  version: 1;
  /** Model file the config was made for (as given on the command line). */
  model: string;
  /** {@link modelHash} of that model: a config for another model is refused. */
  modelHash: string;
  mode: HbMode;
  /** Budget: average kept bits per ReLU element (weighted by element counts). */
  budget: number;
  fracBits: number;
  levels: HbLevel[];
  /** Average kept bits per ReLU element. */
  bitsKept: number;
  /** Fraction of the 64-bit baseline's comparison bits discarded (1 − bitsKept/64). */
  bitsDiscarded: number;
  calibration: HbEval & { seed: number };
  test?: HbEval;
  /** Private inference check on test images: predictions of the config against the 64-bit MPC model. */
  mpcCheck?: { n: number; identical: number; accuracy64?: number; accuracy?: number };
  finetune?: { epochs: number; examples: number; lr: number; calibrationAccuracyBefore: number; seconds: number };
  search?: { evals: number; seconds: number; levelsBy: string; note?: string };
}

/** A config as written to disk. */
export interface HbConfig {
  layers: Record<string, BitRange>;
  hummingbird?: HbMeta;
}

/** Weighted average of kept bits (msb − lsb) per ReLU element over `levels`. */
export function bitsKept(levels: readonly Pick<HbLevel, 'elements' | 'msb' | 'lsb'>[]): number {
  let w = 0,
    s = 0;
  for (const l of levels) {
    w += l.elements;
    s += l.elements * (l.msb - l.lsb);
  }
  return w ? s / w : 64;
}

/** Per-node ranges of `levels`. */
export function layersOf(levels: readonly HbLevel[]): Record<string, BitRange> {
  const out: Record<string, BitRange> = {};
  for (const l of levels) for (const n of l.nodes) out[n] = { msb: l.msb, lsb: l.lsb };
  return out;
}

/** Write `cfg` as pretty JSON. */
export function writeConfig(path: string, cfg: HbConfig): void {
  writeFileSync(path, JSON.stringify(cfg, null, 2) + '\n');
}

/** Parse a config from JSON text (either {"layers": …, "hummingbird": …} or a plain {node: range} map). */
export function parseConfig(text: string, source: string): HbConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${source}: expected a JSON object`);
  const obj = raw as { layers?: unknown; hummingbird?: unknown };
  const layersRaw = obj.layers ?? raw;
  if (typeof layersRaw !== 'object' || layersRaw === null || Array.isArray(layersRaw))
    throw new Error(`${source}: "layers" must be an object of per-node bit ranges`);
  const layers: Record<string, BitRange> = {};
  for (const [name, v] of Object.entries(layersRaw as Record<string, unknown>)) {
    if (name === 'hummingbird' && obj.layers === undefined) continue;
    const r = v as { msb?: unknown; lsb?: unknown } | null;
    const msb = Number(r?.msb),
      lsb = Number(r?.lsb ?? 0);
    // msb = lsb (b = 0) is allowed: the ReLU is removed; lsb > msb is an error.
    checkRange({ msb, lsb }, `${source}: node '${name}'`);
    layers[name] = { msb, lsb };
  }
  const meta = obj.hummingbird as HbMeta | undefined;
  if (meta !== undefined && (typeof meta !== 'object' || meta === null)) throw new Error(`${source}: "hummingbird" must be an object`);
  return meta ? { layers, hummingbird: meta } : { layers };
}

/** Read and parse a config file. */
export function readConfig(path: string): HbConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read config (${(e as Error).message.split('\n')[0]})`);
  }
  return parseConfig(text, path);
}

/**
 * Check `cfg` against `model` before any party starts: every named layer is a Relu or MaxPool node,
 * ranges are valid (msb ≤ 64, lsb < msb unless both mark a removed ReLU with msb = lsb), and the
 * config's model hash (when present) is this model's. Returns the per-node ranges.
 */
export function validateConfig(cfg: HbConfig, model: Model, source: string): Record<string, BitRange> {
  const nodes = new Map(model.graph.nodes.map((n) => [n.name, n.opType]));
  for (const [name, r] of Object.entries(cfg.layers)) {
    const op = nodes.get(name);
    if (op === undefined) throw new Error(`${source}: layer '${name}' is not a node of the model`);
    if (op !== 'Relu' && op !== 'MaxPool') throw new Error(`${source}: layer '${name}' is a ${op} node, not Relu or MaxPool`);
    checkRange(r, `${source}: layer '${name}'`);
    if (op === 'MaxPool' && r.msb === r.lsb) throw new Error(`${source}: MaxPool layer '${name}' needs at least one bit (msb > lsb)`);
  }
  const want = cfg.hummingbird?.modelHash;
  if (want !== undefined) {
    const have = modelHash(model);
    if (want !== have) {
      throw new Error(
        `${source}: config was made for another model (${cfg.hummingbird?.model ?? '?'}, hash ` +
          `${want.slice(0, 12)}…), this model's hash is ${have.slice(0, 12)}…`,
      );
    }
  }
  return { ...cfg.layers };
}
