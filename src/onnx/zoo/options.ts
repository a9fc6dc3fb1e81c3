/**
 * Zoo build options: declared per model with defaults, parsed from CLI-style strings or numbers, and
 * rejected with a one-line error naming the model and option.
 */
import type { Model } from '../ir.js';

/** How an option's value is read. */
export type OptionKind = 'int' | 'float' | 'choice' | 'shape';

/** Description of one build option of a zoo model. */
export interface OptionSpec {
  name: string;
  description: string;
  kind: OptionKind;
  default: string | number;
  /** Allowed values of a 'choice' option. */
  choices?: string[];
  /** Smallest allowed value of an 'int'/'float' option (default 1 for int, > 0 for float). */
  min?: number;
}

/** Parsed option values: numbers for int/float, strings for choice, [C, H, W] for shape. */
export type OptionValues = Record<string, number | string | number[]>;

/** A parsed image input option: channels × height × width. */
export interface ImageShape {
  c: number;
  h: number;
  w: number;
}

/** Read `raw` (user values, may be partial) against `specs`; unknown names and bad values throw. */
export function parseOptions(model: string, specs: OptionSpec[], raw: Record<string, string | number> = {}): OptionValues {
  const byName = new Map(specs.map((s) => [s.name, s]));
  for (const key of Object.keys(raw)) {
    if (!byName.has(key)) {
      const known = specs.map((s) => s.name).join(', ') || 'none';
      throw new Error(`zoo model '${model}': unknown option '${key}' (known: ${known})`);
    }
  }
  const out: OptionValues = {};
  for (const spec of specs) out[spec.name] = parseOne(model, spec, raw[spec.name] ?? spec.default);
  return out;
}

function parseOne(model: string, spec: OptionSpec, v: string | number): number | string | number[] {
  const bad = (why: string): Error => new Error(`zoo model '${model}': option '${spec.name}' ${why} (got '${v}')`);
  switch (spec.kind) {
    case 'int': {
      const s = String(v).trim();
      const n = Number(s);
      if (s === '' || !Number.isInteger(n)) throw bad('must be an integer');
      const min = spec.min ?? 1;
      if (n < min) throw bad(`must be >= ${min}`);
      return n;
    }
    case 'float': {
      const s = String(v).trim();
      const n = Number(s);
      if (s === '' || !Number.isFinite(n)) throw bad('must be a number');
      if (spec.min !== undefined ? n < spec.min : n <= 0) throw bad(spec.min !== undefined ? `must be >= ${spec.min}` : 'must be > 0');
      return n;
    }
    case 'choice': {
      const s = String(v);
      if (!spec.choices?.includes(s)) throw bad(`must be one of ${spec.choices?.join(', ')}`);
      return s;
    }
    case 'shape': {
      const m = /^(\d+)x(\d+)x(\d+)$/.exec(String(v).trim());
      if (!m) throw bad('must look like CxHxW, e.g. 3x32x32');
      const dims = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (dims.some((d) => d < 1)) throw bad('must have positive dimensions');
      return dims;
    }
  }
}

/** The [C, H, W] of a parsed 'shape' option. */
export function imageShape(values: OptionValues, name = 'input'): ImageShape {
  const v = values[name];
  if (!Array.isArray(v) || v.length !== 3) throw new Error(`option '${name}' is not a parsed CxHxW shape`);
  return { c: v[0]!, h: v[1]!, w: v[2]! };
}

/** A parsed numeric option. */
export function num(values: OptionValues, name: string): number {
  const v = values[name];
  if (typeof v !== 'number') throw new Error(`option '${name}' is not a parsed number`);
  return v;
}

/** A parsed choice option. */
export function str(values: OptionValues, name: string): string {
  const v = values[name];
  if (typeof v !== 'string') throw new Error(`option '${name}' is not a parsed choice`);
  return v;
}

/** A model of the zoo: its options with defaults and a builder. */
export interface ZooEntry {
  name: string;
  description: string;
  options: OptionSpec[];
  /** Build the model; `opts` values override defaults and are validated. */
  build(opts?: Record<string, string | number>): Model;
}

/** The `seed` option every zoo model takes. */
export const SEED_OPTION: OptionSpec = { name: 'seed', description: 'PRNG seed of the weights', kind: 'int', default: 0, min: 0 };

/** Every model's `weights` option: 'zero' builds the graph alone (shapes and operators; for readers of the structure, such as Proteus's operator statistics, where drawing the zoo's ~80 M weights cost 1.5-2.5 s of every `obfuscate`). */
export const WEIGHTS_OPTION: OptionSpec = {
  name: 'weights',
  description: "'random' (drawn from the seed) or 'zero' (graph only)",
  kind: 'choice',
  choices: ['random', 'zero'],
  default: 'random',
};

/** A `classes` option with the given default. */
export function classesOption(dflt: number): OptionSpec {
  return { name: 'classes', description: 'number of output classes', kind: 'int', default: dflt };
}

/** An `input` (CxHxW) option with the given default. */
export function inputOption(dflt: string, description = 'image input shape CxHxW'): OptionSpec {
  return { name: 'input', description, kind: 'shape', default: dflt };
}

/**
 * Make a ZooEntry: options are parsed and validated before `build` runs, and the model records its
 * zoo name and resolved options in its metadata so a saved file says how it was made.
 */
export function defineModel(name: string, description: string, options: OptionSpec[], build: (v: OptionValues) => Model): ZooEntry {
  const all = [...options, ...[SEED_OPTION, WEIGHTS_OPTION].filter((c) => !options.some((o) => o.name === c.name))];
  return {
    name,
    description,
    options: all,
    build(opts = {}) {
      const values = parseOptions(name, all, opts);
      const model = build(values);
      model.metadata['privml.zoo.model'] = name;
      model.metadata['privml.zoo.options'] = JSON.stringify(
        Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Array.isArray(v) ? v.join('x') : v])),
      );
      return model;
    },
  };
}
