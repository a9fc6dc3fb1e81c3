/**
 * ONNX ModelProto <-> privml IR (see ir.ts). This is the only module that touches protobuf; it
 * normalises int64 once: Long attributes/header fields become JS numbers, int64 tensors become
 * BigInt64Array, and tensor payloads are copied into aligned little-endian typed arrays.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import pkg from 'onnx-proto';
import type { Attribute, Dim, DType, Graph, Model, Node, Tensor, TensorArray, ValueInfo } from './ir.js';
import { ARRAY_TYPES, DTYPE_CODE, ModelError, sizeOf } from './ir.js';

const { onnx } = pkg;
type P = typeof onnx;
type IModel = InstanceType<P['ModelProto']>;
type IGraph = NonNullable<IModel['graph']>;
type INode = NonNullable<IGraph['node']>[number];
type ITensor = NonNullable<IGraph['initializer']>[number];
type IValueInfo = NonNullable<IGraph['input']>[number];
type IAttr = NonNullable<INode['attribute']>[number];

/** protobufjs int64 value: a number or a Long-like object. */
type Int64 = number | { low: number; high: number; unsigned?: boolean };

const AT = onnx.AttributeProto.AttributeType;
const CODE_DTYPE = new Map<number, DType>(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));
/** Names of ONNX element types privml cannot hold, for error messages. */
const UNSUPPORTED_DTYPE: Record<number, string> = {
  0: 'undefined',
  4: 'uint16',
  8: 'string',
  10: 'float16',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
};
const BYTES: Record<DType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 };
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8 = new TextDecoder('utf-8');
const utf8enc = new TextEncoder();

/** Thrown internally with a context path ("initializer 'w'"); decodeModel prefixes the file name. */
class Bad extends Error {}

/** Long/number → JS number, erroring beyond ±2^53 (where a double stops being exact). */
function toNum(v: Int64 | null | undefined, what: string): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  const lo = v.low >>> 0;
  const n = v.unsigned ? (v.high >>> 0) * 2 ** 32 + lo : v.high * 2 ** 32 + lo;
  if (!Number.isSafeInteger(n)) throw new Bad(`${what}: int64 value ${toBig(v)} does not fit a JS number`);
  return n;
}

/** Long/number → bigint (exact). */
function toBig(v: Int64): bigint {
  if (typeof v === 'number') return BigInt(v);
  return (BigInt(v.unsigned ? v.high >>> 0 : v.high) << 32n) | BigInt(v.low >>> 0);
}

function dtypeOf(code: number | null | undefined, what: string): DType {
  const d = CODE_DTYPE.get(code ?? 0);
  if (!d) throw new Bad(`${what}: unsupported element type ${UNSUPPORTED_DTYPE[code ?? 0] ?? `code ${code}`}`);
  return d;
}

/** Reverse byte order of each `width`-byte element (only needed on big-endian hosts). */
function swapBytes(b: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i < b.length; i += width) b.subarray(i, i + width).reverse();
}

/** View an aligned ArrayBuffer as the typed array of `dtype`. */
function viewAs(dtype: DType, buf: ArrayBuffer): TensorArray {
  return new ARRAY_TYPES[dtype](buf);
}

function decodeTensor(t: ITensor, what: string): Tensor {
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0) {
    throw new Bad(`${what}: external tensor data is not supported (re-export with the weights embedded)`);
  }
  if (t.segment) throw new Bad(`${what}: segmented tensors are not supported`);
  const dtype = dtypeOf(t.dataType, what);
  const dims = (t.dims ?? []).map((d) => toNum(d as Int64, what));
  const n = sizeOf(dims);
  const width = BYTES[dtype];
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    if (raw.length !== n * width) throw new Bad(`${what}: raw_data has ${raw.length} bytes, shape [${dims}] of ${dtype} needs ${n * width}`);
    const bytes = new Uint8Array(raw); // a copy: raw may be a Buffer view at an unaligned offset
    if (!HOST_LE) swapBytes(bytes, width);
    return { dtype, dims, data: viewAs(dtype, bytes.buffer) };
  }
  const src: ArrayLike<number | Int64> =
    dtype === 'float32'
      ? (t.floatData ?? [])
      : dtype === 'float64'
        ? (t.doubleData ?? [])
        : dtype === 'int64'
          ? ((t.int64Data as Int64[]) ?? [])
          : (t.int32Data ?? []);
  // Checked before allocating: a corrupt dim must not ask for an impossible (or huge) buffer.
  if (src.length !== n) throw new Bad(`${what}: has ${src.length} elements, shape [${dims}] needs ${n}`);
  const data = viewAs(dtype, new ArrayBuffer(n * width));
  if (data instanceof BigInt64Array) for (let i = 0; i < n; i++) data[i] = toBig(src[i] as Int64);
  else data.set(src as ArrayLike<number>);
  return { dtype, dims, data };
}

/** A tensor as TensorProto fields, payload as little-endian raw_data. */
function encodeTensor(t: Tensor, name?: string): ITensor {
  if (t.data.length !== sizeOf(t.dims))
    throw new ModelError(`tensor ${name ? `'${name}' ` : ''}has ${t.data.length} elements, shape [${t.dims}] needs ${sizeOf(t.dims)}`);
  let raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  if (!HOST_LE) swapBytes((raw = raw.slice()), BYTES[t.dtype]);
  return { name: name ?? '', dims: t.dims, dataType: DTYPE_CODE[t.dtype], rawData: raw };
}

function decodeValueInfo(v: IValueInfo, what: string): ValueInfo {
  const name = v.name ?? '';
  const tt = v.type?.tensorType;
  if (!tt) throw new Bad(`${what} '${name}': only tensor types are supported`);
  let shape: Dim[] | undefined;
  if (tt.shape) {
    shape = (tt.shape.dim ?? []).map((d) =>
      d.dimValue !== null && d.dimValue !== undefined ? toNum(d.dimValue as Int64, `${what} '${name}'`) : d.dimParam ? d.dimParam : null,
    );
  }
  const out: ValueInfo = { name, dtype: dtypeOf(tt.elemType, `${what} '${name}'`), shape };
  if (v.docString) out.docString = v.docString;
  return out;
}

function encodeValueInfo(v: ValueInfo): IValueInfo {
  const shape = v.shape ? { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})) } : undefined;
  return { name: v.name, docString: v.docString ?? '', type: { tensorType: { elemType: DTYPE_CODE[v.dtype], shape } } };
}

function decodeAttr(a: IAttr, what: string): Attribute {
  const w = `${what} attribute '${a.name}'`;
  // Very old exporters leave `type` UNDEFINED: fall back to whichever field is set.
  let type = a.type ?? AT.UNDEFINED;
  if (type === AT.UNDEFINED) {
    type = a.t
      ? AT.TENSOR
      : a.g
        ? AT.GRAPH
        : a.floats?.length
          ? AT.FLOATS
          : a.ints?.length
            ? AT.INTS
            : a.strings?.length
              ? AT.STRINGS
              : a.s?.length
                ? AT.STRING
                : a.i && toNum(a.i as Int64, w) !== 0
                  ? AT.INT
                  : AT.FLOAT;
  }
  switch (type) {
    case AT.FLOAT:
      return { kind: 'float', value: a.f ?? 0 };
    case AT.INT:
      return { kind: 'int', value: toNum(a.i as Int64, w) };
    case AT.STRING:
      return { kind: 'string', value: utf8.decode(a.s ?? new Uint8Array()) };
    case AT.TENSOR:
      return { kind: 'tensor', value: decodeTensor(a.t ?? {}, w) };
    case AT.GRAPH:
      return { kind: 'graph', value: decodeGraph(a.g ?? {}, `${w} graph`) };
    case AT.FLOATS:
      return { kind: 'floats', value: [...(a.floats ?? [])] };
    case AT.INTS:
      return { kind: 'ints', value: (a.ints ?? []).map((x) => toNum(x as Int64, w)) };
    case AT.STRINGS:
      return { kind: 'strings', value: (a.strings ?? []).map((s) => utf8.decode(s)) };
    default:
      throw new Bad(`${w}: attribute type ${AT[type] ?? type} is not supported`);
  }
}

function encodeAttr(name: string, a: Attribute): IAttr {
  switch (a.kind) {
    case 'float':
      return { name, type: AT.FLOAT, f: a.value };
    case 'int':
      return { name, type: AT.INT, i: a.value };
    case 'string':
      return { name, type: AT.STRING, s: utf8enc.encode(a.value) };
    case 'tensor':
      return { name, type: AT.TENSOR, t: encodeTensor(a.value) };
    case 'graph':
      return { name, type: AT.GRAPH, g: encodeGraph(a.value) };
    case 'floats':
      return { name, type: AT.FLOATS, floats: a.value };
    case 'ints':
      return { name, type: AT.INTS, ints: a.value };
    case 'strings':
      return { name, type: AT.STRINGS, strings: a.value.map((s) => utf8enc.encode(s)) };
  }
}

function decodeNode(n: INode, i: number, where: string): Node {
  const name = n.name ?? '';
  const what = `${where}node '${name || `#${i}`}' (${n.opType})`;
  const attrs: Record<string, Attribute> = {};
  for (const a of n.attribute ?? []) attrs[a.name ?? ''] = decodeAttr(a, what);
  const node: Node = { name, opType: n.opType ?? '', domain: n.domain ?? '', inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs };
  if (n.docString) node.docString = n.docString;
  return node;
}

function decodeGraph(g: IGraph, where = ''): Graph {
  const pre = where ? `${where} ` : '';
  if ((g.sparseInitializer?.length ?? 0) > 0) throw new Bad(`${pre}sparse initializer '${g.sparseInitializer![0]!.values?.name ?? ''}' is not supported`);
  const initializers = new Map<string, Tensor>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', decodeTensor(t, `${pre}initializer '${t.name}'`));
  const graph: Graph = {
    name: g.name ?? '',
    nodes: (g.node ?? []).map((n, i) => decodeNode(n, i, pre)),
    inputs: (g.input ?? []).map((v) => decodeValueInfo(v, `${pre}input`)),
    outputs: (g.output ?? []).map((v) => decodeValueInfo(v, `${pre}output`)),
    initializers,
    // value_info is only an annotation: drop entries privml cannot represent instead of failing.
    valueInfo: (g.valueInfo ?? []).flatMap((v) => {
      try {
        return [decodeValueInfo(v, `${pre}value_info`)];
      } catch {
        return [];
      }
    }),
  };
  if (g.docString) graph.docString = g.docString;
  return graph;
}

function encodeGraph(g: Graph): IGraph {
  return {
    name: g.name,
    docString: g.docString ?? '',
    node: g.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      input: n.inputs,
      output: n.outputs,
      docString: n.docString ?? '',
      attribute: Object.entries(n.attrs).map(([k, a]) => encodeAttr(k, a)),
    })),
    input: g.inputs.map(encodeValueInfo),
    output: g.outputs.map(encodeValueInfo),
    valueInfo: g.valueInfo.map(encodeValueInfo),
    initializer: [...g.initializers].map(([name, t]) => encodeTensor(t, name)),
  };
}

/** Decode ONNX ModelProto bytes into the IR; `source` (a file name) prefixes every error. */
export function decodeModel(bytes: Uint8Array, source: string): Model {
  let m: IModel;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new ModelError(`${source}: not a valid ONNX model (${(e as Error).message})`);
  }
  // protobuf is lenient with garbage; a real model always has an IR version and a graph.
  if (!m.graph) throw new ModelError(`${source}: not a valid ONNX model (no graph)`);
  try {
    const irVersion = toNum(m.irVersion as Int64, 'ir_version');
    if (irVersion < 1 || irVersion > 100) throw new ModelError(`${source}: not a valid ONNX model (ir_version ${irVersion})`);
    if ((m.functions?.length ?? 0) > 0) throw new Bad(`model-local function '${m.functions![0]!.name}' is not supported`);
    const metadata: Record<string, string> = {};
    for (const p of m.metadataProps ?? []) metadata[p.key ?? ''] = p.value ?? '';
    return {
      irVersion,
      opsetImports: (m.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: toNum(o.version as Int64, 'opset_import') })),
      producerName: m.producerName ?? '',
      producerVersion: m.producerVersion ?? '',
      domain: m.domain ?? '',
      modelVersion: toNum(m.modelVersion as Int64, 'model_version'),
      docString: m.docString ?? '',
      metadata,
      graph: decodeGraph(m.graph),
    };
  } catch (e) {
    if (e instanceof Bad) throw new ModelError(`${source}: ${e.message}`);
    throw e;
  }
}

/** Encode the IR as ONNX ModelProto bytes (tensors as little-endian raw_data). */
export function encodeModel(model: Model): Uint8Array {
  const proto: InstanceType<P['ModelProto']> = onnx.ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: model.docString,
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
    graph: encodeGraph(model.graph),
  });
  return onnx.ModelProto.encode(proto).finish();
}

/** Read and decode an .onnx file; a missing or invalid file is a one-line ModelError. */
export function loadModel(path: string): Model {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${(e as Error).message})`);
  }
  return decodeModel(bytes, path);
}

/** Encode and write a model to an .onnx file. */
export function saveModel(model: Model, path: string): void {
  writeFileSync(path, encodeModel(model));
}

/** Decode a serialized TensorProto (ONNX test data `input_0.pb`) into a tensor; errors name `source`. */
export function decodeTensorProto(bytes: Uint8Array, source: string): Tensor & { name: string } {
  try {
    const t = onnx.TensorProto.decode(bytes);
    return { name: t.name ?? '', ...decodeTensor(t, 'tensor') };
  } catch (e) {
    throw new ModelError(`${source}: ${(e as Error).message}`);
  }
}
