/**
 * Transformer sentinels: whole layers on a residual stream. Head tensors, MLP activations and
 * streams entering the piece are consumed as a real layer would (attention core, heads merge,
 * output projection, MLP tail, residual adds), attention and MLP blocks in a drawn style (pre- or
 * post-LN, GELU flavour, mask, MLP width) continue it, and outputs are landed as real pieces end
 * (head splits, the stream and its LayerNorm, a tied LM head, a [CLS] pooler).
 */
import type { Model, ValueInfo } from '../onnx/ir.js';
import type { Rng } from './rng.js';
import type { Val } from './sentinel-gen.js';
import { Dead, finish, Gen, num, opsetOf, same } from './sentinel-gen.js';
import type { OpStats, Profile } from './stats.js';

/** What a transformer interface value is, read off its shape against sequence length S and width D. */
type TfRole = 'ids' | 'stream' | 'wide' | 'split' | 'heads' | 'headsT' | 'scores' | 'pooled' | 'other';

/** Geometry of a transformer piece: sequence length, width, heads, head width, MLP width. */
interface TfGeom {
  S: number;
  D: number;
  h: number;
  dh: number;
  F: number;
}

function tfRole(v: ValueInfo, geo: TfGeom): TfRole {
  const s = v.shape!.slice(1).map(num);
  const { S, D } = geo;
  if (v.dtype === 'int64') return s.length === 1 && s[0] === S ? 'ids' : 'other';
  if (s.length === 1) return 'pooled';
  if (s.length === 2 && s[0] === S) return s[1] === D ? 'stream' : 'wide';
  if (s.length === 3 && s[1] === S && s[2] === S) return 'scores';
  if (s.length === 3 && s[0] === S && s[1]! * s[2]! === D) return 'split';
  if (s.length === 3 && s[1] === S && s[0]! * s[2]! === D) return 'heads';
  if (s.length === 3 && s[2] === S && s[0]! * s[1]! === D) return 'headsT';
  return 'other';
}

/** Sequence length, width and head split of a transformer piece, from its interface; undefined if it has none. */
function tfGeometry(real: Model, prof: Profile, rng: Rng): TfGeom | undefined {
  const vals = [...real.graph.inputs, ...real.graph.outputs].map((v) => v.shape!.slice(1).map(num));
  const ids = real.graph.inputs.find((v) => v.dtype === 'int64');
  const seqs = vals.filter((s) => s.length === 2).map((s) => s[0]!);
  const S = ids ? num(ids.shape![1]!) : seqs[0];
  if (S === undefined || S <= 0) return undefined;
  // Width: the most common last dimension of [S, ·] values (inputs count double: they are the stream).
  const votes = new Map<number, number>();
  real.graph.inputs.forEach((v) => {
    const s = v.shape!.slice(1).map(num);
    if (s.length === 2 && s[0] === S) votes.set(s[1]!, (votes.get(s[1]!) ?? 0) + 2);
  });
  for (const s of vals) if (s.length === 2 && s[0] === S) votes.set(s[1]!, (votes.get(s[1]!) ?? 0) + 1);
  let D = [...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
  if (D === undefined) {
    const head = vals.find((s) => s.length === 3);
    if (!head) return undefined;
    D = head[0] === S ? head[1]! * head[2]! : head[1] === S ? head[0]! * head[2]! : head[0]! * head[1]!;
  }
  // Heads: read off the head tensors of the interface, by the same roles the generator uses.
  let h = 0;
  const sized: TfGeom = { S, D, h: 0, dh: 0, F: 0 };
  for (const v of [...real.graph.inputs, ...real.graph.outputs]) {
    const r = tfRole(v, sized);
    const s = v.shape!.slice(1).map(num);
    if (r === 'split') h = s[1]!;
    else if (r === 'heads' || r === 'headsT') h = s[0]!;
  }
  if (!h) {
    const hs = prof.heads.filter((v) => D! % v === 0);
    const dflt = [1, 2, 4, 8, 12, 16].filter((v) => D! % v === 0 && D! / v >= 8);
    const pool = hs.length ? hs : dflt.length ? dflt : [1];
    h = pool[rng.int(pool.length)]!;
  }
  const wides = [...prof.widths, ...vals.filter((s) => s.length === 2 && s[0] === S).map((s) => s[1]!)].filter((w) => w !== D && w >= D && w <= 8 * D);
  // MLP width: one seen in the piece, else 4× as in BERT and GPT (narrower MLPs read as smaller pieces).
  const F = wides.length ? wides[rng.int(wides.length)]! : 4 * D;
  return { S, D, h, dh: D / h, F };
}

/** Whether a subgraph is a transformer piece: sequence-shaped interface, no convolutions, transformer ops. */
export function isTransformer(real: Model, prof: Profile): boolean {
  if ((prof.ops.Conv ?? 0) > 0) return false;
  const ops = ['MatMul', 'LayerNormalization', 'Softmax', 'Gather'];
  const seq = real.graph.inputs.every(
    (v) => (v.dtype === 'int64' && v.shape?.length === 2) || (v.dtype === 'float32' && (v.shape?.length === 3 || v.shape?.length === 4)),
  );
  return seq && ops.some((o) => (prof.ops[o] ?? 0) > 0);
}

/** Choices that make one transformer sentinel: pre- or post-LN blocks, GELU flavour, attention mask. */
interface TfStyle {
  preLN: boolean;
  tanh: boolean;
  mask: boolean;
  /** Linear layers carry a bias Add (as the real piece's do; LLaMA/T5-style exports have none). */
  bias: boolean;
}

/** Transformer layers on a residual stream, in the op patterns real exports use (see the zoo). */
class TfBody {
  /** The residual stream. */
  x?: Val;
  /** Attention cores built so far. */
  cores = 0;
  private lnOfX?: Val;
  constructor(
    readonly g: Gen,
    readonly geo: TfGeom,
    readonly st: TfStyle,
  ) {}
  /** A linear layer in the style's form (MatMul, plus its bias Add when the style has biases). */
  lin(v: Val, out: number): Val {
    if (this.st.bias) return this.g.linear(v, out);
    const d = num(v.shape[v.shape.length - 1]!);
    return this.g.node('MatMul', [v.name, this.g.weight('MatMul', 1, [d, out], d)], {}, [...v.shape.slice(0, -1), out]);
  }
  /** Split [S, D] into heads [S, h, dh], then transposed by perm (q/v: 0,2,1,3; kᵀ: 0,2,3,1). */
  split(v: Val, perm?: number[]): Val {
    const r = this.g.reshape(v, [this.geo.S, this.geo.h, this.geo.dh]);
    return perm ? this.g.transpose(r, perm) : r;
  }
  /** Scaled dot-product attention on heads: [h, S, dh] context before the heads merge. */
  core(q: Val, kT: Val, v: Val, scores?: Val): Val {
    const g = this.g;
    const { S, h, dh } = this.geo;
    const b = q.shape[0]!;
    const sc = [b, h, S, S];
    let s = scores ?? g.node('Div', [g.node('MatMul', [q.name, kT.name], {}, sc).name, g.scalar(Math.sqrt(dh))], {}, sc);
    if (this.st.mask) {
      s = g.node('Add', [s.name, g.causalMask(S)], {}, sc);
    }
    const p = g.node('Softmax', [s.name], { axis: { kind: 'int', value: -1 } }, sc);
    this.cores++;
    return g.node('MatMul', [p.name, v.name], {}, [b, h, S, dh]);
  }
  /** Merge heads back to [S, D]. */
  merge(ctx: Val): Val {
    return this.g.reshape(this.g.transpose(ctx, [0, 2, 1, 3]), [this.geo.S, this.geo.D]);
  }
  /** Multi-head self-attention of src, through the output projection. */
  attention(src: Val): Val {
    const q = this.split(this.lin(src, this.geo.D), [0, 2, 1, 3]);
    const kT = this.split(this.lin(src, this.geo.D), [0, 2, 3, 1]);
    const v = this.split(this.lin(src, this.geo.D), [0, 2, 1, 3]);
    return this.lin(this.merge(this.core(q, kT, v)), this.geo.D);
  }
  mlp(src: Val): Val {
    return this.lin(this.g.gelu(this.lin(src, this.geo.F), this.st.tanh), this.geo.D);
  }
  /** The normalised stream the next block reads (pre-LN: LayerNorm of x, made once; post-LN: x). */
  lnx(): Val {
    if (!this.x) throw new Dead();
    if (!this.st.preLN) return this.x;
    this.lnOfX ??= this.g.layerNorm(this.x);
    return this.lnOfX;
  }
  /** Close a block: residual add of y onto `res` (default x), LayerNorm after it in post-LN style. */
  residual(y: Val, res?: Val): void {
    const base = res ?? this.x;
    const sum = base ? this.g.node('Add', [base.name, y.name], {}, y.shape) : y;
    this.x = this.st.preLN ? sum : this.g.layerNorm(sum);
    this.lnOfX = undefined;
  }
  /** One block (attention or MLP) reading src (default: the normalised stream). */
  block(kind: 'attention' | 'mlp', src?: Val, res?: Val): void {
    const s = src ?? this.lnx();
    this.residual(kind === 'attention' ? this.attention(s) : this.mlp(s), res);
  }
}

/**
 * Whether the real piece's linear layers are bias-free: it has weight MatMuls and none is followed by
 * a bias Add. One unbiased MatMul is not enough: GPT-2's LM head has no bias while its MLP does, and
 * sentinels of that piece without biases lacked its all-zero bias tensors (zero fraction and
 * duplicates picked the real member).
 */
function unbiased(real: Model): boolean {
  const g = real.graph;
  const readers = new Map<string, string[]>();
  for (const n of g.nodes) for (const t of n.inputs) readers.set(t, [...(readers.get(t) ?? []), n.opType]);
  const linear = g.nodes.filter((n) => n.opType === 'MatMul' && g.initializers.has(n.inputs[1] ?? ''));
  return linear.length > 0 && !linear.some((n) => (readers.get(n.outputs[0]!) ?? []).includes('Add'));
}

/** Nodes of one block of `kind` in `st` style (to steer the sentinel's size). */
function tfBlockSize(kind: 'attention' | 'mlp', st: TfStyle): number {
  const lin = st.bias ? 2 : 1;
  const body = kind === 'attention' ? 4 * lin + 3 * 2 + 5 + (st.mask ? 1 : 0) : 2 * lin + (st.tanh ? 9 : 5);
  return body + 2;
}

/**
 * One transformer sentinel: the interface's head tensors, MLP activations and streams are consumed
 * as a real layer would (attention core, heads merge and projection, MLP tail, residual adds), then
 * whole attention/MLP blocks in the drawn style continue the stream until the size is near the
 * target, and outputs are landed as real pieces end (head splits, the stream and its LayerNorm,
 * MLP activations, a tied LM head or a [CLS] pooler).
 */
export function tfAttempt(real: Model, prof: Profile, stats: OpStats, rng: Rng, target: number, modelOps?: ReadonlySet<string>): Model {
  const geo = tfGeometry(real, prof, rng);
  if (!geo) throw new Dead();
  const rg = real.graph;
  const ins: ValueInfo[] = rg.inputs.map((v, i) => ({ name: `in${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const outs: ValueInfo[] = rg.outputs.map((v, i) => ({ name: `out${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const g = new Gen(rng, prof, stats, ins, opsetOf(real));
  const has = (op: string): boolean => (prof.ops[op] ?? 0) > 0;
  const st: TfStyle = {
    preLN: rng.next() < 0.5,
    tanh:
      has('Tanh') && !has('Erf')
        ? true
        : has('Erf')
          ? false
          : modelOps?.has('Tanh') && !modelOps.has('Erf')
            ? true
            : modelOps?.has('Erf')
              ? false
              : rng.next() < 0.5,
    // An additive (causal) mask exactly when the real attention has one: the mask constant dominates weight statistics.
    mask: prof.pairs.includes('Add>Softmax'),
    bias: !unbiased(real),
  };
  const t = new TfBody(g, geo, st);
  const inRoles = ins.map((v) => tfRole(v, geo));
  const roles = outs.map((o) => tfRole(o, geo));
  const by = (r: TfRole): Val[] => ins.filter((_, i) => inRoles[i] === r).map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape! }));
  if (inRoles.some((r) => r === 'other' || r === 'pooled')) throw new Dead();
  const streams = by('stream');
  for (let i = streams.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [streams[i], streams[j]] = [streams[j]!, streams[i]!];
  }
  const [split, heads, headsT, scores, wide] = [by('split'), by('heads'), by('headsT'), by('scores'), by('wide')] as const;
  let lastSrc: Val | undefined;
  // A stream a projection reads: an unread stream input, else the normalised stream.
  const src = (): Val => {
    const s = streams.shift();
    if (s) return (lastSrc = s);
    if (t.x) return t.lnx();
    // Q, K and V may all be projections of the same stream.
    if (lastSrc) return lastSrc;
    throw new Dead();
  };
  // An attention context left unmerged, for a [h, S, dh] output (pieces cut after the core).
  let openCtx: Val | undefined;
  let next: 'attention' | 'mlp' = rng.next() < 0.5 ? 'attention' : 'mlp';
  for (const ids of by('ids')) {
    const emb = g.node('Gather', [g.weight('Gather', 0, [g.pick(prof.vocab, 1000), geo.D]), ids.name], { axis: { kind: 'int', value: 0 } }, [
      ids.shape[0]!,
      geo.S,
      geo.D,
    ]);
    const pos = g.node('Add', [emb.name, g.weight('Add', 1, [geo.S, geo.D])], {}, emb.shape);
    if (t.x) t.residual(pos);
    else t.x = st.preLN ? pos : g.layerNorm(pos);
    next = 'attention';
  }
  // Head tensors entering the piece: finish the attention they belong to.
  while (split.length || heads.length || headsT.length || scores.length) {
    const head = (perm: number[]): Val => {
      const s = split.shift();
      if (s) return g.transpose(s, perm);
      // An entering stream may be a projection already (cut between a projection and its head split).
      const fresh = streams.length > 0;
      const from = src();
      return t.split(fresh && rng.next() < 0.5 ? from : t.lin(from, geo.D), perm);
    };
    // A [h, S, dh] input is a query/value, or (sometimes) an attention context before the heads merge.
    let ctx: Val | undefined;
    if (!has('Softmax') && split.length && !heads.length && !headsT.length && !scores.length) {
      // A context already transposed back to [S, h, dh]: merge it and project.
      t.residual(t.lin(g.reshape(split.shift()!, [geo.S, geo.D]), geo.D), streams.shift());
      next = 'mlp';
      continue;
    }
    if (!has('Softmax') && heads.length && !headsT.length && !scores.length && !split.length && rng.next() < 0.5) ctx = heads.shift()!;
    else {
      const sc = scores.shift();
      // Which of Q, K, V the entering head tensors are is drawn (in real pieces it is any of them).
      const made: Partial<Record<'q' | 'kT' | 'v', Val>> = {};
      const need: ('q' | 'kT' | 'v')[] = sc ? ['v'] : rng.next() < 0.5 ? ['q', 'kT', 'v'] : ['v', 'kT', 'q'];
      for (const r of need) made[r] = r === 'kT' ? (headsT.shift() ?? head([0, 2, 3, 1])) : (heads.shift() ?? head([0, 2, 1, 3]));
      ctx = t.core(made.q ?? made.v!, made.kT ?? made.v!, made.v!, sc);
    }
    const last = !(split.length || heads.length || headsT.length || scores.length);
    if (
      last &&
      (roles.includes('heads') || roles.includes('split') || (roles.filter((r) => r === 'stream').length === 1 && !t.x && !streams.length)) &&
      rng.next() < 0.5
    ) {
      openCtx = ctx;
      break;
    }
    t.residual(t.lin(t.merge(ctx), geo.D), streams.shift());
    next = 'mlp';
  }
  // MLP activations entering the piece: the MLP's tail.
  for (const w of wide) {
    const a = rng.next() < 0.5 ? g.gelu(w, st.tanh) : w;
    t.residual(t.lin(a, geo.D), streams.shift());
    next = 'attention';
  }
  if (!t.x && !openCtx) {
    // Streams only: a block reads one (the normalised stream) and adds onto another (the residual),
    // or one is a merged attention context whose output projection adds onto the other.
    const u = rng.next();
    if (streams.length >= 2 && u < 0.4) {
      const s0 = streams.shift()!;
      t.block(next, s0, streams.shift());
      next = next === 'attention' ? 'mlp' : 'attention';
    } else if (streams.length >= 2 && u < 0.8) {
      const ctx = streams.shift()!;
      t.residual(t.lin(ctx, geo.D), streams.shift());
      next = 'mlp';
    } else t.x = streams.shift();
  }
  if (!t.x && !openCtx) throw new Dead();
  // Whole blocks while they bring the size nearer the target; extra streams join as residuals.
  const landCost = roles.reduce((c, r) => c + ({ heads: 5, headsT: 5, split: 3, wide: 3, stream: 1, pooled: 4, ids: 0, scores: 6, other: 3 } as const)[r], 0);
  const isInput = (v: Val): boolean => ins.some((i) => i.name === v.name);
  while (t.x && (streams.length || isInput(t.x) || g.nodes.length + landCost + tfBlockSize(next, st) / 2 < target)) {
    t.block(next, undefined, streams.shift());
    next = next === 'attention' ? 'mlp' : 'attention';
    if (g.nodes.length > 4 * target + 40) throw new Dead();
  }
  // Land the outputs: the last stream output is the stream itself; the others branch off it.
  const lastStream = roles.lastIndexOf('stream');
  const outNames: string[] = new Array(outs.length);
  const taken = new Set<string>();
  const order = outs.map((_, j) => j).sort((a, b) => (a === lastStream ? 1 : 0) - (b === lastStream ? 1 : 0));
  for (const j of order) {
    const o = outs[j]!;
    const r = roles[j]!;
    let y: Val;
    const x = t.x;
    if (openCtx && (r === 'heads' || r === 'split' || (r === 'stream' && !x))) {
      // The open attention context: as it is, transposed back, or merged.
      y = r === 'heads' ? openCtx : r === 'split' ? g.transpose(openCtx, [0, 2, 1, 3]) : t.merge(openCtx);
      openCtx = undefined;
    } else if (!x) throw new Dead();
    else if (r === 'stream') {
      if (j === lastStream && !taken.has(x.name)) y = x;
      else {
        // The stream's LayerNorm, an earlier stream value (a residual sum, the stream before the
        // last block: real pieces export those), or a projection of the normalised stream.
        const l = t.lnx();
        const earlier = g.pool.filter((v) => v !== x && v !== l && !taken.has(v.name) && !isInput(v) && same(v.shape, x.shape));
        const u = rng.next();
        if (l !== x && !taken.has(l.name) && u < 0.45) y = l;
        else if (earlier.length && u < 0.8) y = earlier[rng.int(earlier.length)]!;
        else y = t.lin(l, geo.D);
      }
    } else if (r === 'heads' || r === 'headsT' || r === 'split') {
      const perm = r === 'heads' ? [0, 2, 1, 3] : r === 'headsT' ? [0, 2, 3, 1] : undefined;
      if (r === 'heads' && t.cores < (prof.ops.Softmax ?? 0)) {
        // An attention context before the heads merge.
        const l = t.lnx();
        const proj = (p: number[]): Val => t.split(t.lin(l, geo.D), p);
        y = t.core(proj([0, 2, 1, 3]), proj([0, 2, 3, 1]), proj([0, 2, 1, 3]));
      } else y = t.split(t.lin(t.lnx(), geo.D), perm);
    } else if (r === 'wide') {
      const w = num(o.shape![2]!);
      if (w > 8 * geo.D || (rng.next() < 0.3 && has('Transpose'))) {
        // A tied LM head: final LayerNorm (post-LN streams are normalised already), then the transposed embedding table.
        const l = st.preLN ? g.layerNorm(x) : x;
        const tab = g.transpose({ name: g.weight('Gather', 0, [w, geo.D]), dtype: 'float32', shape: [w, geo.D] }, [1, 0]);
        y = g.node('MatMul', [l.name, tab.name], {}, [x.shape[0]!, geo.S, w]);
      } else {
        y = t.lin(t.lnx(), w);
        if (rng.next() < 0.5) y = g.gelu(y, st.tanh);
      }
    } else if (r === 'pooled') {
      // A [CLS] pooler and classifier.
      const c = num(o.shape![1]!);
      const cls = g.node('Gather', [x.name, g.ints([0], [])], { axis: { kind: 'int', value: 1 } }, [x.shape[0]!, geo.D]);
      y = t.lin(g.node('Tanh', [g.gemm(cls, geo.D).name], {}, [x.shape[0]!, geo.D]), c);
    } else y = g.land(x, o.shape!, true);
    if (taken.has(y.name)) throw new Dead();
    taken.add(y.name);
    outNames[j] = y.name;
  }
  return finish(real, g, ins, outs, outNames);
}
