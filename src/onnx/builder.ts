/**
 * A small builder for constructing ONNX graphs in code (the model zoo, tests, Proteus sentinels).
 *
 *   const b = new GraphBuilder('tiny');
 *   const x = b.input('x', 'float32', ['batch', 4]);
 *   const y = b.op('Relu', [x]);
 *   b.output(y, 'float32', ['batch', 4]);
 *   const model = b.build();
 */
import type { Attribute, Dim, DType, Graph, Model, Node, OpsetImport, Tensor, ValueInfo } from './ir.js';

/** Default opset of models privml writes (17: LayerNormalization is a standard op). */
export const DEFAULT_OPSET = 17;
/** IR version written with opset 17 (ORT accepts it; onnx-proto's schema is IR 8). */
export const DEFAULT_IR_VERSION = 8;

/** An attribute given to `op`: integers, int lists, strings and tensors are inferred; floats must say so with `float()`. */
export type AttrInput = Attribute | number | number[] | string | string[] | Tensor;

/** Mark a number as a float attribute (`alpha: float(1)`). */
export function float(value: number): Attribute {
  return { kind: 'float', value };
}

/** Mark a list as a float-list attribute. */
export function floats(value: number[]): Attribute {
  return { kind: 'floats', value: [...value] };
}

function toAttribute(name: string, v: AttrInput): Attribute {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute '${name}' = ${v} is not an integer: wrap floats with float()`);
    return { kind: 'int', value: v };
  }
  if (typeof v === 'string') return { kind: 'string', value: v };
  if (Array.isArray(v)) {
    if (v.length > 0 && typeof v[0] === 'string') return { kind: 'strings', value: v as string[] };
    const nums = v as number[];
    for (const x of nums) if (!Number.isInteger(x)) throw new Error(`attribute '${name}' has non-integer ${x}: use floats()`);
    return { kind: 'ints', value: [...nums] };
  }
  if ('kind' in v) return v;
  return { kind: 'tensor', value: v };
}

/** Incrementally builds a Graph/Model; generates unique value and node names. */
export class GraphBuilder {
  readonly name: string;
  private readonly nodes: Node[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly inits = new Map<string, Tensor>();
  private readonly used = new Set<string>();
  private readonly opCount = new Map<string, number>();
  private opsets: OpsetImport[] = [{ domain: '', version: DEFAULT_OPSET }];

  constructor(name: string, opset = DEFAULT_OPSET) {
    this.name = name;
    this.opsets = [{ domain: '', version: opset }];
  }

  /** A fresh value name starting with `base`. */
  fresh(base: string): string {
    let name = base;
    let i = 1;
    while (this.used.has(name)) name = `${base}_${i++}`;
    this.used.add(name);
    return name;
  }

  /** Declare a graph input. */
  input(name: string, dtype: DType, shape: Dim[]): string {
    if (this.used.has(name)) throw new Error(`value name '${name}' already used`);
    this.used.add(name);
    this.inputs.push({ name, dtype, shape: [...shape] });
    return name;
  }

  /** Add an initializer (weight) and return its name. */
  init(base: string, tensor: Tensor): string {
    const name = this.fresh(base);
    this.inits.set(name, tensor);
    return name;
  }

  /** Add a node with one output; returns the output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrInput> = {}, opts: { name?: string; output?: string; domain?: string } = {}): string {
    return this.opMulti(opType, inputs, 1, attrs, opts)[0]!;
  }

  /** Add a node with `nOutputs` outputs; returns their names. */
  opMulti(
    opType: string,
    inputs: string[],
    nOutputs: number,
    attrs: Record<string, AttrInput> = {},
    opts: { name?: string; output?: string; domain?: string } = {},
  ): string[] {
    const k = (this.opCount.get(opType) ?? 0) + 1;
    this.opCount.set(opType, k);
    const nodeName = opts.name ?? `${opType.toLowerCase()}_${k}`;
    const outs: string[] = [];
    for (let i = 0; i < nOutputs; i++) {
      if (i === 0 && opts.output) {
        if (this.used.has(opts.output)) throw new Error(`value name '${opts.output}' already used`);
        this.used.add(opts.output);
        outs.push(opts.output);
      } else {
        outs.push(this.fresh(nOutputs === 1 ? `${nodeName}_out` : `${nodeName}_out${i}`));
      }
    }
    const a: Record<string, Attribute> = {};
    for (const [key, v] of Object.entries(attrs)) a[key] = toAttribute(key, v);
    this.nodes.push({ name: nodeName, opType, domain: opts.domain ?? '', inputs: [...inputs], outputs: outs, attrs: a });
    if (opts.domain && !this.opsets.some((o) => o.domain === opts.domain)) this.opsets.push({ domain: opts.domain, version: 1 });
    return outs;
  }

  /** Declare `value` a graph output. */
  output(value: string, dtype: DType, shape?: Dim[]): void {
    this.outputs.push({ name: value, dtype, shape: shape ? [...shape] : undefined });
  }

  /** The graph built so far. */
  graph(): Graph {
    return {
      name: this.name,
      nodes: this.nodes.map((n) => ({ ...n })),
      inputs: [...this.inputs],
      outputs: [...this.outputs],
      initializers: new Map(this.inits),
      valueInfo: [],
    };
  }

  /** The model built so far, with privml as producer. */
  build(meta: Record<string, string> = {}): Model {
    return {
      irVersion: DEFAULT_IR_VERSION,
      opsetImports: this.opsets.map((o) => ({ ...o })),
      producerName: 'privml',
      producerVersion: '0.1.0',
      domain: '',
      modelVersion: 1,
      docString: '',
      metadata: { ...meta },
      graph: this.graph(),
    };
  }
}
