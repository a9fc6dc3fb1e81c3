/**
 * The canonical form every privml runtime starts from (float, MPC, FHE, Proteus, `info`).
 *
 * `canonicalize(model)` returns a copy in which:
 * - `Constant` nodes are initializers, `Identity(initializer)` is an aliased initializer, and nodes
 *   whose inputs are all constant (shape-only subgraphs on static dims included) are folded;
 * - the default opset is at least `CANONICAL_OPSET` (18) and every node has that version's form:
 *   Slice/Pad/Clip/Reshape/Squeeze/Unsqueeze/Split/TopK and the Reduce ops take their parameters as inputs,
 *   Shape has no start/end, Max/Min/Sum/Mean have exactly two inputs, Upsample is Resize,
 *   Softmax-family ops are single-axis, legacy attributes (is_test, spatial, broadcast) are gone;
 * - initializers are no longer listed among graph inputs, and nodes are in topological order;
 * - every problem (unsupported op/type/attribute, dangling input, cycle, missing output,
 *   kernel_shape contradicting the weight, NaN/Inf weight, ...) is collected, then thrown at once
 *   as a `ModelProblems` error listing op, node name and reason (or returned, see options).
 *
 * The pass is pure: the input model is not modified; tensor data is shared, never copied.
 */

import { foldConstants } from './fold.js';
import { cloneModel, type Model, ModelError, type Node, printable, type Tensor } from './ir.js';
import { normalizeOpsets, opsetOf } from './normalize.js';
import { checkGraph, topoSort } from './validate.js';

/** Default-domain opset version of every canonical model (higher versions are kept as they are). */
export const CANONICAL_OPSET = 18;

/** One thing wrong with a model, for a runtime or in general. */
export interface Problem {
  /** Op type ('' for graph-level problems such as a missing output). */
  op: string;
  /** Node name (or value / initializer name for graph-level problems). */
  node: string;
  reason: string;
}

/** A runtime's own verdict on a node: undefined when fine, else the reason(s) it cannot run it. */
export type NodeCheck = (node: Node, model: Model) => string | string[] | undefined;

/** Options of `canonicalize`. */
export interface CanonicalOptions {
  /** Model origin (file path) for error messages; default the graph name. */
  source?: string;
  /** Op types the caller's runtime supports ('Conv'; custom domains as 'domain.Op'); any other op is a problem. Omit to skip. */
  ops?: Iterable<string>;
  /** Extra per-node check by the caller's runtime (attributes, dtypes, geometry it cannot handle). */
  check?: NodeCheck;
  /** Fold constant subgraphs (default true). Constant/Identity-of-initializer folding always happens. */
  fold?: boolean;
  /** Report NaN/Inf in float initializers (default true). */
  checkWeights?: boolean;
  /** Throw `ModelProblems` when any problem is found (default true); false returns them instead. */
  throwOnProblems?: boolean;
}

/** Result of `canonicalize`. */
export interface CanonicalModel {
  /** The canonical copy (never the input object). */
  model: Model;
  /** Every problem found (empty when the model is fine for the caller's runtime). */
  problems: Problem[];
  /** Symbolic dimension names of the graph inputs, e.g. ['batch_size'], in first-seen order. */
  symbolicDims: string[];
  /** Default-domain opset the model declared before canonicalisation. */
  originalOpset: number;
  /** Nodes removed by constant folding (Constant and Identity nodes included). */
  folded: number;
}

/** Every problem of a model at once, as one error (the CLI prints its message and exits 1). */
export class ModelProblems extends ModelError {
  /** The individual problems, in graph order. */
  readonly problems: Problem[];
  constructor(source: string, problems: Problem[]) {
    super(formatProblems(source, problems));
    this.name = 'ModelProblems';
    this.problems = problems;
  }
}

/**
 * "model.onnx: 2 problems: node 'a' (Foo): unsupported op; node 'b' (Conv): ..." — one line (the CLI
 * prints an error's first line), or one problem per line with `multiline`.
 */
export function formatProblems(source: string, problems: Problem[], multiline = false): string {
  // Names come from the file: escaped, so each problem stays on its own single line.
  const item = (p: Problem): string => printable(p.op ? `node '${p.node}' (${p.op}): ${p.reason}` : `${p.node ? `'${p.node}': ` : ''}${p.reason}`);
  if (problems.length === 1) return `${source}: ${item(problems[0]!)}`;
  if (multiline) return `${source}: ${problems.length} problems:\n${problems.map((p) => `  - ${item(p)}`).join('\n')}`;
  return `${source}: ${problems.length} problems: ${problems.map(item).join('; ')}`;
}

/** Bring `model` into canonical form and validate it (see the module comment). */
export function canonicalize(model: Model, opts: CanonicalOptions = {}): CanonicalModel {
  const source = opts.source ?? (model.graph.name || 'model');
  const m = cloneModel(model);
  const g = m.graph;
  const problems: Problem[] = [];
  const originalOpset = opsetOf(model);
  // Initializers listed as inputs (IR < 4 exports) are weights, not something a user feeds.
  g.inputs = g.inputs.filter((v) => !g.initializers.has(v.name));
  const before = g.nodes.length;
  topoSort(g, problems);
  normalizeOpsets(m, problems);
  if (opts.fold !== false) foldConstants(m, problems);
  else foldConstants(m, problems, { onlyTrivial: true });
  const folded = Math.max(0, before - g.nodes.length);
  const ops = opts.ops ? new Set(opts.ops) : undefined;
  checkGraph(m, problems, { ops, check: opts.check, checkWeights: opts.checkWeights ?? true });
  const symbolicDims: string[] = [];
  for (const v of g.inputs) for (const d of v.shape ?? []) if (typeof d === 'string' && !symbolicDims.includes(d)) symbolicDims.push(d);
  const uniq = dedupe(problems);
  if (uniq.length && (opts.throwOnProblems ?? true)) throw new ModelProblems(source, uniq);
  return { model: m, problems: uniq, symbolicDims, originalOpset, folded };
}

/** Only the validation half: every problem of `model` for a runtime (the model is not changed). */
export function validateModel(model: Model, opts: Omit<CanonicalOptions, 'throwOnProblems'> = {}): Problem[] {
  return canonicalize(model, { ...opts, throwOnProblems: false }).problems;
}

/** Canonicalize unless the model already is (marked by this pass); cheap to call from every runtime. */
export function ensureCanonical(model: Model, opts: CanonicalOptions = {}): Model {
  if (model.metadata[CANONICAL_MARK] === '1' && !opts.ops && !opts.check) return model;
  const c = canonicalize(model, opts).model;
  c.metadata[CANONICAL_MARK] = '1';
  return c;
}

/** metadata_props key set on models produced by `ensureCanonical`. */
export const CANONICAL_MARK = 'privml.canonical';

/** Initializer `name` of a canonical model, or undefined (constants are always initializers there). */
export function constantOf(model: Model, name: string | undefined): Tensor | undefined {
  return name ? model.graph.initializers.get(name) : undefined;
}

function dedupe(ps: Problem[]): Problem[] {
  const seen = new Set<string>();
  return ps.filter((p) => {
    const k = `${p.op}\u0000${p.node}\u0000${p.reason}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
