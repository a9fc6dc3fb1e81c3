/**
 * privml's in-memory graph IR: a plain, typed mirror of the parts of ONNX's ModelProto that privml
 * supports. Every runtime (float, simulation, MPC, FHE) and Proteus work on this, never on protobuf.
 *
 * Normalisation rules (applied once, in `proto.ts`):
 * - int64 attributes become JS numbers (an error if outside ±2^53);
 * - int64 tensors become `BigInt64Array`; shapes are `number[]`;
 * - a missing optional node input is the empty string, as in ONNX.
 */
import { ModelError as BaseModelError } from '../errors.js';

/** Element types privml reads and writes (ONNX TensorProto.DataType names, lower-case). */
export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** ONNX TensorProto.DataType code of each supported dtype. */
export const DTYPE_CODE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
};

/** Typed array backing a tensor of each dtype. */
export type TypedArrayOf<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'int64'
      ? BigInt64Array
      : D extends 'int32'
        ? Int32Array
        : D extends 'int16'
          ? Int16Array
          : D extends 'int8'
            ? Int8Array
            : Uint8Array;

/** Any typed array a tensor may hold. */
export type TensorArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

/** A dense constant tensor (an initializer, a Constant's value, a tensor attribute). */
export interface Tensor {
  dtype: DType;
  dims: number[];
  data: TensorArray;
}

/** One dimension of a value's shape: a fixed size, a symbolic name ('batch'), or unknown (null). */
export type Dim = number | string | null;

/** Name, element type and (possibly partial) shape of a graph value. */
export interface ValueInfo {
  name: string;
  dtype: DType;
  /** undefined = rank unknown. */
  shape?: Dim[];
  docString?: string;
}

/** A node attribute; `kind` keeps ONNX's attribute type so a round trip is exact. */
export type Attribute =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: Tensor }
  | { kind: 'graph'; value: Graph }
  | { kind: 'floats'; value: number[] }
  | { kind: 'ints'; value: number[] }
  | { kind: 'strings'; value: string[] };

/** A graph node (operator application). */
export interface Node {
  name: string;
  opType: string;
  /** '' or 'ai.onnx' is the default domain. */
  domain: string;
  /** Input value names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attribute>;
  docString?: string;
}

/** A computational graph in topological order. */
export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, Tensor>;
  /** Intermediate value annotations (shape inference results may be written here). */
  valueInfo: ValueInfo[];
  docString?: string;
}

/** An operator set a model imports. */
export interface OpsetImport {
  domain: string;
  version: number;
}

/** A whole model: graph plus the ModelProto header fields privml keeps. */
export interface Model {
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  /** metadata_props, in insertion order. */
  metadata: Record<string, string>;
  graph: Graph;
}

/** Element count of a shape. */
export function sizeOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** The typed-array class holding each dtype's elements (bool as one byte per element). */
export const ARRAY_TYPES: Record<DType, { new (length: number): TensorArray; new (buffer: ArrayBuffer): TensorArray }> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

/** Allocate a zeroed typed array for `n` elements of `dtype`. */
export function allocArray(dtype: DType, n: number): TensorArray {
  return new ARRAY_TYPES[dtype](n);
}

/** Build a float32 tensor. */
export function floatTensor(dims: number[], data?: ArrayLike<number>): Tensor {
  const n = sizeOf(dims);
  const arr = new Float32Array(n);
  if (data) {
    if (data.length !== n) throw new Error(`tensor data has ${data.length} elements, shape [${dims}] needs ${n}`);
    arr.set(data);
  }
  return { dtype: 'float32', dims: [...dims], data: arr };
}

/** Build an int64 tensor from JS numbers. */
export function int64Tensor(dims: number[], data: ArrayLike<number>): Tensor {
  const n = sizeOf(dims);
  if (data.length !== n) throw new Error(`tensor data has ${data.length} elements, shape [${dims}] needs ${n}`);
  const arr = new BigInt64Array(n);
  for (let i = 0; i < n; i++) arr[i] = BigInt(data[i]!);
  return { dtype: 'int64', dims: [...dims], data: arr };
}

/** Read a tensor's elements as JS numbers (int64 converted; throws past ±2^53). */
export function tensorToNumbers(t: Tensor): number[] {
  const out: number[] = new Array(t.data.length);
  if (t.data instanceof BigInt64Array) {
    for (let i = 0; i < t.data.length; i++) {
      const v = t.data[i]!;
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new Error(`int64 value ${v} does not fit a JS number`);
      }
      out[i] = Number(v);
    }
  } else {
    for (let i = 0; i < t.data.length; i++) out[i] = Number(t.data[i]!);
  }
  return out;
}

/** Map from value name to the node producing it. */
export function producers(graph: Graph): Map<string, Node> {
  const m = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) m.set(o, n);
  return m;
}

/** Map from value name to the nodes consuming it. */
export function consumers(graph: Graph): Map<string, Node[]> {
  const m = new Map<string, Node[]>();
  for (const n of graph.nodes) {
    for (const i of n.inputs) {
      if (!i) continue;
      const list = m.get(i);
      if (list) list.push(n);
      else m.set(i, [n]);
    }
  }
  return m;
}

/** Look up attribute `name` of an allowed kind, or return `dflt`; a clear error when missing or mistyped. */
function attrValue<T>(node: Node, name: string, kinds: Attribute['kind'][], dflt: T | undefined): T {
  const a = node.attrs[name];
  if (a === undefined) {
    if (dflt === undefined) throw new Error(`node '${node.name}' (${node.opType}) lacks required attribute '${name}'`);
    return dflt;
  }
  if (!kinds.includes(a.kind)) {
    throw new Error(`node '${node.name}' (${node.opType}) attribute '${name}' must be ${kinds[0]}, is ${a.kind}`);
  }
  return a.value as T;
}

/** Int attribute with default. */
export function attrInt(node: Node, name: string, dflt?: number): number {
  return attrValue(node, name, ['int'], dflt);
}

/** Float attribute with default (an int attribute is accepted). */
export function attrFloat(node: Node, name: string, dflt?: number): number {
  return attrValue(node, name, ['float', 'int'], dflt);
}

/** Int-list attribute with default. */
export function attrInts(node: Node, name: string, dflt?: number[]): number[] {
  return attrValue(node, name, ['ints'], dflt);
}

/** String attribute with default. */
export function attrString(node: Node, name: string, dflt?: string): string {
  return attrValue(node, name, ['string'], dflt);
}

/** Deep-enough copy of a model: graph structure copied, tensor data shared unless `copyData`. */
export function cloneModel(model: Model, copyData = false): Model {
  return { ...model, opsetImports: model.opsetImports.map((o) => ({ ...o })), metadata: { ...model.metadata }, graph: cloneGraph(model.graph, copyData) };
}

/** Copy a graph; tensors are shared unless `copyData`. */
export function cloneGraph(g: Graph, copyData = false): Graph {
  const ct = (t: Tensor): Tensor => (copyData ? { dtype: t.dtype, dims: [...t.dims], data: t.data.slice() as TensorArray } : t);
  return {
    name: g.name,
    docString: g.docString,
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    inputs: g.inputs.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : undefined })),
    outputs: g.outputs.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : undefined })),
    valueInfo: g.valueInfo.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : undefined })),
    initializers: new Map([...g.initializers].map(([k, t]) => [k, ct(t)])),
  };
}

/**
 * A name or message with control characters escaped (\n, \t, \u001b ...): value and node names come
 * from the file, and a newline in one must not split an error into lines or forge a second line.
 */
export function printable(s: string): string {
  const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return s.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Error about a model, naming the file/node/op it concerns; always one line (names from the file are
 * escaped). A subclass of the API's ModelError, itself a PrivmlError, so callers catch one type.
 */
export class ModelError extends BaseModelError {
  constructor(message: string) {
    super(printable(message));
  }
}
