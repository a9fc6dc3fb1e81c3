/**
 * The op-level random walk, the fallback for pieces that are neither CNN nor transformer: a Markov
 * chain over operators weighted by the corpus's dataflow bigrams and the real piece's own entry ops,
 * with whole motifs (attention, GELU, conv units) as single moves; adapters land the output shapes.
 */
import type { Model, ValueInfo } from '../onnx/ir.js';
import type { Rng } from './rng.js';
import type { Val } from './sentinel-gen.js';
import { finish, Gen, num, opsetOf, same } from './sentinel-gen.js';
import type { OpStats, Profile } from './stats.js';

/** Candidate moves from x with their bigram weights; each returns the new current value. */
export function stepOn(g: Gen, x: Val, minSpatial: number): Val | undefined {
  const r = x.shape.length;
  const moves: [string, () => Val][] = [];
  const C = num(x.shape[1]!);
  if (r === 4 && g.has('Conv') && C > 0) {
    const k = g.pick(g.prof.kernels, 3);
    const h = num(x.shape[2]!);
    const strideOk = g.prof.strides.filter((s) => s > 1 && Math.ceil(h / s) >= minSpatial);
    const stride = strideOk.length && g.rng.next() < 0.25 ? g.pick(strideOk, 2) : 1;
    const dw = g.prof.depthwise && k > 1 && g.rng.next() < 0.5;
    let cout = dw ? C : g.rng.next() < 0.5 ? C : g.pick(g.prof.channels, C);
    let kk = k;
    if (!dw && !g.fits(cout * C * kk * kk)) {
      const cheaper = g.prof.channels.filter((c) => g.fits(c * C));
      kk = 1;
      cout = cheaper.length ? g.pick(cheaper, C) : Math.min(C, cout);
    }
    if (dw || g.fits(cout * C * kk * kk)) moves.push(['Conv', () => g.conv(x, cout, kk, stride, Math.floor(kk / 2), dw ? C : 1)]);
  }
  if (r === 4 && g.has('BatchNormalization')) moves.push(['BatchNormalization', () => g.bn(x)]);
  for (const a of ['Relu', 'Clip', 'Sigmoid']) if (g.has(a)) moves.push([a, () => g.act(x, a)]);
  if (r === 4) {
    for (const p of ['MaxPool', 'AveragePool']) {
      const h = num(x.shape[2]!);
      if (g.has(p) && h / 2 >= minSpatial) moves.push([p, () => g.pool2(x, p, g.pick(g.prof.poolKernels, 2), 2, 0)]);
    }
    if (g.has('GlobalAveragePool') && minSpatial <= 0) moves.push(['GlobalAveragePool', () => g.gapFlatten(x)]);
  }
  if (r === 2 && g.has('Gemm')) moves.push(['Gemm', () => g.gemm(x, g.pick(g.prof.widths, C))]);
  if (r === 3) {
    const d = num(x.shape[2]!);
    if (g.has('MatMul')) moves.push(['MatMul', () => g.linear(x, g.rng.next() < 0.6 ? d : g.pick(g.prof.widths, d))]);
    if (g.has('LayerNormalization')) moves.push(['LayerNormalization', () => g.layerNorm(x)]);
    if (g.has('Softmax') && g.has('Transpose')) moves.push(['Softmax', () => g.attention(x)]);
    if (g.has('Erf') || (g.has('Tanh') && g.has('Mul'))) moves.push([g.has('Erf') ? 'Div' : 'Mul', () => g.gelu(x)]);
  }
  if (r === 4 && !g.has('Conv') && g.has('Transpose') && g.has('Reshape')) {
    const [a, b2, c] = x.shape.slice(1).map(num) as [number, number, number];
    moves.push(['Transpose', () => g.reshape(g.transpose(x, [0, 2, 1, 3]), [b2, a * c])]);
  }
  const p = g.partner(x);
  if (p && g.has('Add') && g.lastOp !== 'Add' && g.rng.next() < 0.5 + g.stats.skipRate) moves.push(['Add', () => g.node('Add', [x.name, p.name], {}, x.shape)]);
  if (moves.length === 0) return undefined;
  const row = g.stats.bigram[g.lastOp] ?? {};
  const total = Object.values(row).reduce((s, v) => s + v, 0) || 1;
  const entry = g.lastOp === '<in>' ? g.prof.entry : [];
  // Transition probability, the real subgraph's own entry ops at the start, a little smoothing.
  const wts = moves.map(([op]) => (row[op] ?? 0) / total + (entry.includes(op) ? 1 : 0) + 0.01);
  let u = g.rng.next() * wts.reduce((s, w) => s + w, 0);
  for (let i = 0; i < moves.length; i++) {
    u -= wts[i]!;
    if (u <= 0) return moves[i]![1]();
  }
  return moves[moves.length - 1]![1]();
}

/** One attempt at a sentinel with about `target` operators. */
export function attempt(real: Model, prof: Profile, stats: OpStats, rng: Rng, target: number): Model {
  const rg = real.graph;
  const ins: ValueInfo[] = rg.inputs.map((v, i) => ({ name: `in${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const outs: ValueInfo[] = rg.outputs.map((v, i) => ({ name: `out${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const g = new Gen(rng, prof, stats, ins, opsetOf(real));
  const minSpatial = Math.min(...outs.map((o) => (o.shape!.length === 4 ? num(o.shape![2]!) : 0)));
  // Start from a float input (an index input first goes through an embedding lookup).
  const vals: Val[] = ins.map((v) => {
    if (v.dtype !== 'int64') return { name: v.name, dtype: v.dtype, shape: v.shape! };
    const vocab = g.pick(prof.vocab, 1000);
    const d = g.pick(prof.widths, 64);
    const emb = g.node('Gather', [g.weight('Gather', 0, [vocab, d]), v.name], { axis: { kind: 'int', value: 0 } }, [...v.shape!, d]);
    return v.shape!.length === 2 && (prof.ops.Add ?? 0) > 0 ? g.node('Add', [emb.name, g.weight('Add', 1, [num(v.shape![1]!), d])], {}, emb.shape) : emb;
  });
  for (const v of vals) if (ins.some((i) => i.name === v.name)) g.pool.push(v);
  const isStart = (v: Val): boolean => ins.every((i) => i.name !== v.name) || v.dtype === 'float32';
  let floatIdx = vals.findIndex((v) => isStart(v) && (prof.ops.Conv !== undefined || v.shape.length === 3));
  if (floatIdx < 0) floatIdx = vals.findIndex(isStart);
  let x = vals[floatIdx < 0 ? 0 : floatIdx]!;
  g.usedInputs.add(ins[floatIdx < 0 ? 0 : floatIdx]!.name);
  const reserve = outs.length * 2 + vals.length - 1;
  while (g.nodes.length < target - reserve) {
    const y = g.step(x, minSpatial);
    if (!y) break;
    x = y;
  }
  // Every input must be read: a dangling input would give the sentinel away.
  vals.forEach((v, i) => {
    if (g.usedInputs.has(ins[i]!.name) && v.name === ins[i]!.name) return;
    if (v === x) return;
    if (v.name !== ins[i]!.name && g.nodes.some((n) => n.inputs.includes(v.name))) return;
    const a = g.land(v, x.shape, v.name === ins[i]!.name && !g.has('Add'));
    x = g.node(g.has('Add') || !g.has('Mul') ? 'Add' : 'Mul', [x.name, a.name], {}, x.shape);
  });
  // Land each required output; earlier ones branch off intermediate values, the last one ends the chain.
  const taken = new Set<string>(ins.map((v) => v.name));
  const outNames: string[] = [];
  outs.forEach((o, j) => {
    let src = x;
    if (j < outs.length - 1) {
      const produced = g.pool.filter((v) => !taken.has(v.name) && g.nodes.some((n) => n.outputs[0] === v.name));
      const fit = produced.filter((v) => same(v.shape, o.shape!));
      src = fit.length ? fit[rng.int(fit.length)]! : produced.length ? (produced[Math.floor(produced.length * (0.5 + 0.5 * rng.next()))] ?? x) : x;
    }
    const y = g.land(src, o.shape!, taken.has(src.name));
    taken.add(y.name);
    outNames.push(y.name);
    if (j === outs.length - 1 || src === x) x = y;
  });
  // Outputs may still have left the current value dangling (when the last output came from elsewhere): finish() rejects that.
  return finish(real, g, ins, outs, outNames);
}
