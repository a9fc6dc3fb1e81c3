/** What the FHE API calls share: loading and compiling a PAF model, typed rethrows, planner options. */
import { firstLine, ModelError, OptionError, PrivmlError } from '../errors.js';
import type { PlanOptions as PlannerOptions } from '../fhe/planner.js';
import type { Model } from '../onnx/ir.js';
import { loadModel } from './core.js';

/** Options of the planner (see `privml fhe plan --help`). */
export interface PlanOptions {
  /** Client-aided refresh: true = wherever predicted faster, undefined = only when nothing fits without, false = never. */
  refresh?: boolean;
  /** Smallest CKKS scale in bits the planner may choose (20..59; default 30). */
  minScaleBits?: number;
  /** Largest CKKS scale in bits (20..59; default 40). */
  maxScaleBits?: number;
  /** Network profile refresh round trips are costed at (default 20 ms, 100 Mbit/s). */
  network?: { rttMs: number; mbitPerSecond: number };
  /** Statistical hiding of a refresh mask in bits (default 40; its room is kept in the modulus). */
  maskBits?: number;
  /** Images per ciphertext (slot batching, a power of two; default 1). */
  batch?: number;
  /** `plan` only: plan for the split keygen/encrypt/infer flow (each refresh costs two more processes), as `keygen` does. */
  split?: boolean;
  /** Seconds each refresh costs on top of its round trip (default: `keygen` and `split` the measured split-flow overhead, else 0). */
  refreshOverheadSeconds?: number;
}

/** Check `o` and fill in the scale range the CLI's defaults give; OptionError naming the flag otherwise. */
export function plannerOptions(o: PlanOptions = {}): PlannerOptions {
  for (const [flag, v] of [
    ['--min-scale-bits', o.minScaleBits],
    ['--max-scale-bits', o.maxScaleBits],
  ] as const) {
    if (v !== undefined && !(v >= 20 && v <= 59)) throw new OptionError(`${flag} must be between 20 and 59 (SEAL primes are 20..60 bits), got ${v}`);
  }
  const lo = o.minScaleBits ?? Math.min(30, o.maxScaleBits ?? 30);
  const hi = o.maxScaleBits ?? Math.max(40, lo);
  if (lo > hi) throw new OptionError(`--min-scale-bits ${lo} is larger than --max-scale-bits ${hi}`);
  const net = o.network ?? { rttMs: 20, mbitPerSecond: 100 };
  if (!(net.rttMs >= 0) || !(net.mbitPerSecond > 0))
    throw new OptionError(`network must have rttMs ≥ 0 and mbitPerSecond > 0, got ${net.rttMs} ms, ${net.mbitPerSecond} Mbit/s`);
  if (o.maskBits !== undefined && !(Number.isInteger(o.maskBits) && o.maskBits >= 1))
    throw new OptionError(`--mask-bits must be a positive integer, got ${o.maskBits}`);
  if (o.batch !== undefined && !(Number.isInteger(o.batch) && o.batch >= 1 && (o.batch & (o.batch - 1)) === 0))
    throw new OptionError(`--batch must be a power of two ≥ 1, got ${o.batch}`);
  return { refresh: o.refresh, minScaleBits: lo, maxScaleBits: hi, network: net, maskBits: o.maskBits, batch: o.batch };
}

/** Rethrow anything that is not already typed as `make(message)`. */
export function wrap(e: unknown, make: (m: string) => PrivmlError): never {
  if (e instanceof PrivmlError) throw e;
  throw make(firstLine(e));
}

/** Load (when a path or zoo name) and compile `model`; `source` names it in messages and file headers. */
export async function program(model: Model | string, source?: string) {
  const m = typeof model === 'string' ? await loadModel(model) : model;
  const src = source ?? (typeof model === 'string' ? model : m.graph.name);
  const { compileModel } = await import('../fhe/compile.js');
  try {
    return { prog: compileModel(m, src), source: src, model: m };
  } catch (e) {
    return wrap(e, (msg) => new ModelError(msg));
  }
}
