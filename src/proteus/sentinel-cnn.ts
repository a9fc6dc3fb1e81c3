/**
 * CNN sentinels, assembled like a window of a real network: inputs joined as a residual block's tail
 * joins them, then block templates learned from the corpus (basic/bottleneck blocks with identity or
 * projection shortcut, inverted residuals, conv units, pooling), chained by the corpus's block
 * transitions and restricted to the op pairs, kernels and strides of the real subgraph; outputs are
 * landed by conv units, strided convs and heads as real networks change shape.
 */

import type { Dim, Model, ValueInfo } from '../onnx/ir.js';
import { sizeOf } from '../onnx/ir.js';
import type { Rng } from './rng.js';
import type { Val } from './sentinel-gen.js';
import { Dead, finish, Gen, num, opsetOf, same } from './sentinel-gen.js';
import type { BlockTemplate, OpStats, Profile } from './stats.js';

/** End ops of a classifier head that take one input (anything else, e.g. a bias Add, is not appended). */
const UNARY_END = new Set(['Relu', 'Clip', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Softmax', 'LogSoftmax', 'HardSigmoid', 'HardSwish']);

/** Whether a subgraph is a feature-map (CNN) piece: float 4-D inputs, 4-D or 2-D outputs, convs or pooling. */
export function isCnn(real: Model, prof: Profile): boolean {
  const g = real.graph;
  return (
    (prof.ops.Conv ?? 0) + (prof.ops.MaxPool ?? 0) + (prof.ops.AveragePool ?? 0) > 0 &&
    g.inputs.every((v) => v.dtype === 'float32' && v.shape?.length === 4) &&
    g.outputs.every((v) => v.shape?.length === 4 || v.shape?.length === 2) &&
    (g.inputs.length === 1 || (prof.ops.Add ?? 0) > 0)
  );
}

/** Block templates a sentinel for this profile may use: its ops, conv wiring, kernels and depthwise-ness. */
export function eligibleBlocks(prof: Profile, stats: OpStats): BlockTemplate[] {
  const ops = new Set(Object.keys(prof.ops));
  const convNext = new Set(prof.convNext);
  const base = (stats.blocks ?? []).filter((t) => {
    if (!t.ops.every((o) => ops.has(o))) return false;
    return t.nodes.every((n, i) => {
      if (n.op !== 'Conv') return true;
      if (n.dw && !prof.depthwise) return false;
      // What reads this conv inside the template must be what reads convs in the real subgraph.
      return t.nodes.every((m) => !m.ins.includes(i) || convNext.has(m.op));
    });
  });
  // Kernel sizes where the real subgraph uses them: a 1×1 only strided (a projection) stays so.
  const ks = new Set(prof.convKS.map(([k, s]) => `${k}:${s > 1}`));
  const strict = base.filter((t) => t.nodes.every((n) => n.op !== 'Conv' || n.dw || ks.has(`${n.k}:${n.s! > 1}`)));
  const pool = strict.length ? strict : base;
  // A block must end on an op the real subgraph continues from or ends on (no BN→Conv where BN always feeds Add/act).
  const ends = pool.filter((t) => prof.outputOps.includes(lastOp(t)) || continues(prof, lastOp(t)));
  return ends.length ? ends : pool;
}

/** A residual template's main branch: the chain of node indices from the block input to an Add operand. */
export interface Branch {
  t: BlockTemplate;
  chain: number[];
}

/** Main branches (the longer Add operand chain, starting at a Conv) of the residual templates. */
function residualBranches(blocks: readonly BlockTemplate[]): Branch[] {
  const out: Branch[] = [];
  for (const t of blocks) {
    const add = t.nodes.findIndex((n) => n.op === 'Add' && n.ins.length === 2);
    if (add < 0) continue;
    const walk = (i: number): number[] | undefined => {
      const chain: number[] = [];
      while (i >= 0) {
        const n = t.nodes[i]!;
        if (n.ins.length !== 1) return undefined;
        chain.unshift(i);
        i = n.ins[0]!;
      }
      return chain;
    };
    const cs = t.nodes[add]!.ins.map(walk).filter((c): c is number[] => c !== undefined);
    const main = cs.sort((a, b) => b.length - a.length)[0];
    if (main && main.length >= 2 && t.nodes[main[0]!]!.op === 'Conv') out.push({ t, chain: main });
  }
  return out;
}

/**
 * Main branches a sentinel for this profile may use at its ends (also when the real piece holds no
 * whole block): only its ops, depthwise only if it has depthwise convs, its kernel/stride pairs where possible.
 */
function branchesFor(prof: Profile, stats: OpStats): Branch[] {
  const ops = new Set(Object.keys(prof.ops));
  const base = residualBranches(stats.blocks ?? []).filter(({ t, chain }) =>
    chain.every((i) => ops.has(t.nodes[i]!.op) && (!t.nodes[i]!.dw || prof.depthwise)),
  );
  const ks = new Set(prof.convKS.map(([k, s]) => `${k}:${s > 1}`));
  const strict = base.filter(({ t, chain }) =>
    chain.every((i) => t.nodes[i]!.op !== 'Conv' || t.nodes[i]!.dw || ks.has(`${t.nodes[i]!.k}:${t.nodes[i]!.s! > 1}`)),
  );
  return strict.length ? strict : base;
}

/** The op a template ends on. */
const lastOp = (t: BlockTemplate): string => t.nodes[t.nodes.length - 1]!.op;

/** Whether the real subgraph feeds another block (conv, pooling, head) from an `op` output. */
function continues(prof: Profile, op: string): boolean {
  return prof.pairs.some((q) => q.startsWith(`${op}>`) && /^(Conv|MaxPool|AveragePool|GlobalAveragePool|Flatten)$/.test(q.slice(op.length + 1)));
}

/** Op pairs along the template's edges, including those from the op `entry` producing its input. */
function blockPairs(t: BlockTemplate, entry: string): string[] {
  return t.nodes.flatMap((n) => n.ins.map((i) => `${i < 0 ? entry : t.nodes[i]!.op}>${n.op}`)).filter((q) => !q.startsWith('>'));
}

/** Integer downsampling factor from spatial size h to t, or 0 if there is none. */
const factor = (h: number, t: number): number => (t > 0 && h >= t && h % t === 0 ? h / t : 0);

/**
 * One CNN sentinel with about `target` operators, assembled like a window of a real network: the
 * inputs are joined as a residual block's tail would join them, learned blocks follow (chosen by the
 * corpus's block-to-block transitions), and the outputs are landed by the conv units, strided convs
 * and projection shortcuts real networks use to change shape, each ending on the op that produces
 * the corresponding real output.
 */
export function cnnAttempt(real: Model, prof: Profile, stats: OpStats, rng: Rng, target: number, blocks: BlockTemplate[]): Model {
  const rg = real.graph;
  const ins: ValueInfo[] = rg.inputs.map((v, i) => ({ name: `in${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const outs: ValueInfo[] = rg.outputs.map((v, i) => ({ name: `out${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const g = new Gen(rng, prof, stats, ins, opsetOf(real));
  const vals: Val[] = ins.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape! }));
  for (const v of vals) g.pool.push(v);
  const H = (v: { shape: Dim[] } | ValueInfo): number => num(v.shape![2]!);
  const C = (v: { shape: Dim[] } | ValueInfo): number => num(v.shape![1]!);
  const menu = [...new Set([...prof.channels, ...rg.inputs.map(C), ...rg.outputs.filter((o) => o.shape!.length === 4).map(C)])];
  const hasBN = g.convNext.has('BatchNormalization');
  const addAct = prof.addNext.find((o) => o !== 'Conv' && o !== 'Add' && o !== 'BatchNormalization' && g.has(o));
  // Widths from ratios snap to a nearby real width, else to a multiple of 8 as real networks use.
  const snap = (w: number): number => {
    const near = menu.filter((c) => Math.abs(c - w) <= 0.25 * w).sort((a, b) => Math.abs(a - w) - Math.abs(b - w))[0];
    return near ?? (w >= 8 ? Math.round(w / 8) * 8 : Math.max(1, Math.round(w)));
  };
  const branches = branchesFor(prof, stats);
  // Whether this sentinel is drawn above (1) or below (-1) the real node count. Below, most attempts
  // are tight: every part takes its shortest form and no block overshoots the budget (whole blocks
  // with slack never came out smaller than ResNet-18's real pieces, which are cut inside blocks);
  // the others keep the slack, so a piece whose joins need whole blocks still gets joined attempts.
  const lean = Math.sign(target - prof.nodes);
  // (Only pieces with residual joins: tight plain stacks made LeNet-5's below-drawn sentinels lose
  // whole conv blocks, and its initializers-per-node share rose from 0.57 to 0.72.)
  const tight = lean < 0 && (prof.ops.Add ?? 0) > 0 && rng.next() < 0.75;

  // ---- entry: join every input into one value, as the tail of a residual block does.
  // The join lands on the deepest input, preferring one the real subgraph adds as an identity shortcut.
  const skip = (i: number): number => (prof.skipInputs.includes(i) ? 0 : 1);
  const order = vals.map((_, i) => i).sort((a, b) => H(vals[a]!) - H(vals[b]!) || skip(a) - skip(b) || C(vals[b]!) - C(vals[a]!) || rng.next() - 0.5);
  let x = vals[order[0]!]!;
  for (const i of order.slice(1)) {
    const v = vals[i]!;
    const r = factor(H(v), H(x));
    if (!r || factor(num(v.shape[3]!), num(x.shape[3]!)) !== r) throw new Dead();
    const tail = (a: Val, stride: number): Val => {
      const co = C(x);
      // Mostly the (end of the) main branch of a learned residual block, as real cuts fall inside blocks.
      if (branches.length && rng.next() < 0.75) {
        const m = g.mark();
        try {
          const y = g.branchTail(a, stride, co, branches, snap, tight);
          if (y && g.params <= g.budget) return y;
        } catch (e) {
          if (!(e instanceof Dead)) throw e;
        }
        g.rollback(m);
      }
      if (tight || rng.next() < 0.5) return g.unit(a, co, stride, 'BatchNormalization');
      const dw = prof.depthwise && rng.next() < 0.7;
      // A depthwise conv on a width narrower than the real ones widens first, as real blocks do.
      const wide = dw && !g.depthwiseAt(C(a)) ? g.unit(a, g.pick(prof.dwWidths, C(a)), 1, g.actOp, 1) : a;
      const first = dw ? g.unit(wide, C(wide), stride, g.actOp, 3, C(wide)) : g.unit(a, g.pick(menu, co), stride, g.actOp);
      return g.unit(first, co, 1, 'BatchNormalization', dw ? 1 : undefined);
    };
    let main: Val;
    let skip: Val;
    if (same(v.shape, x.shape) || rng.next() < 0.75) {
      [main, skip] = rng.next() < 0.5 || !same(v.shape, x.shape) ? [tail(v, r), x] : [tail(x, 1), v];
    } else {
      main = tail(x, 1);
      const proj = g.conv(v, C(x), 1, r, 0);
      skip = hasBN ? g.bn(proj) : proj;
    }
    const sum = g.node('Add', rng.next() < 0.5 ? [main.name, skip.name] : [skip.name, main.name], {}, x.shape);
    x = addAct ? g.act(sum, addAct) : sum;
  }

  // ---- body: learned blocks until the node budget is spent.
  const outs4 = outs.map((_o, j) => j).filter((j) => outs[j]!.shape!.length === 4);
  const mainOut = outs4.sort((a, b) => H(outs[b]!) - H(outs[a]!) || C(outs[b]!) - C(outs[a]!))[0];
  // A head that pools before flattening (VGG) keeps the last 2× of spatial size for that pool.
  const headPool = mainOut === undefined && prof.pairs.includes('MaxPool>Flatten') ? 2 : 1;
  const ht = mainOut === undefined ? headPool : H(outs[mainOut]!);
  const wt = mainOut === undefined ? headPool : num(outs[mainOut]!.shape![3]!);
  // A piece ending in the classifier head mostly widens to the real subgraph's widest convs first, as real networks do.
  const widest = Math.max(0, ...prof.channels);
  const ct = mainOut === undefined ? (widest > C(x) && rng.next() < 0.7 ? widest : g.pick(menu, C(x))) : C(outs[mainOut]!);
  const headNodes = outs.reduce((s, o) => s + (o.shape!.length === 2 ? 2 + 2 * Math.max(1, prof.ops.Gemm ?? 1) - 1 : hasBN ? 3 : 2), 0);
  const budget = target - headNodes + (mainOut !== undefined ? (hasBN ? 3 : 2) : 0);
  // Widths step through the real subgraph's channel counts towards the output's, as network stages do.
  const widths = [...new Set([...prof.channels, ct])].sort((a, b) => a - b);
  const nextWidth = (c: number): number => {
    const up = widths.find((w) => w > c && w <= Math.max(ct, c));
    if (up !== undefined && (!prof.channels.includes(c) || rng.next() < 0.5)) return up;
    return prof.channels.includes(c) || !widths.length ? c : g.pick(widths, c);
  };
  // A block of its own width keeps one of the corpus's ratios (expansion, projection) half the time.
  const ratioPick = new Map<BlockTemplate, number>();
  // Only ratios that stay within the piece's width range: a stem's 3 → 64 ratio applied to 64
  // channels gave 1,368-channel convolutions no real window has.
  // Nor below half the real subgraph's narrowest conv: a ratio applied to a 1-channel image gave
  // fmnist-cnn 2-channel convolutions, the smallest sentinels of every group.
  const [lo, hi] = [prof.channels.length ? Math.min(...prof.channels) / 2 : Math.min(...menu) / 4, Math.max(...menu)];
  const widthOf = (t: BlockTemplate, dflt: number): number => {
    if (!ratioPick.has(t)) {
      const w = t.ratios.length && rng.next() < 0.5 ? snap(C(x) * g.pick(t.ratios, 1)) : 0;
      ratioPick.set(t, w >= lo && w <= 2 * hi ? w : 0);
    }
    return ratioPick.get(t) || dflt;
  };
  let prev = '';
  let pool = blocks.slice();
  const pairs = new Set(prof.pairs);
  const total = blocks.reduce((s, t) => s + t.count, 0) || 1;
  while (pool.length) {
    const left = budget - g.nodes.length;
    const hx = H(x);
    const need = mainOut === undefined ? 0 : Math.log2(Math.max(1, hx / ht));
    // A width the real subgraph's convs never produce (an image) is widened first, as real stems do;
    // a sentinel drawn below the real piece gets a stem half as wide half the time (with the real
    // stem width only, fmnist-cnn's below-drawn sentinels were its own structure again; a wider stem
    // above spends the weight budget on the head and ends with fewer blocks, on the wrong side).
    const raw = (prof.ops.Conv ?? 0) > 0 && !prof.channels.includes(C(x));
    const nw = raw && lean < 0 && rng.next() < 0.5 ? snap(nextWidth(C(x)) / 2) : nextWidth(C(x));
    ratioPick.clear();
    const ok = pool.filter((t) => {
      if (t.nodes.length > left + (tight ? 0 : 4) || !g.fits(g.blockCost(x, t, widthOf(t, nw)))) return false;
      if (raw && (t.out !== 'new' || t.nodes[0]!.op !== 'Conv')) return false;
      if (t.stride === 1) return true;
      const f = factor(hx, t.stride * ht);
      return f > 0 && factor(num(x.shape[3]!), t.stride * wt) > 0;
    });
    // Only blocks wired like the real subgraph (no op pair it never has); none left: the exit takes over.
    const xop = g.nodes.find((n) => n.outputs[0] === x.name)?.opType ?? '';
    const fit = ok.filter((t) => {
      if (!blockPairs(t, xop).every((q) => pairs.has(q))) return false;
      // A block ending where the real subgraph never continues can only be the one landing the main output.
      if (continues(prof, lastOp(t))) return true;
      return mainOut !== undefined && hx / t.stride === ht && (t.out === 'in' ? C(x) : widthOf(t, nw)) === ct;
    });
    if (!fit.length) break;
    const row = stats.blockNext?.[prev] ?? {};
    const rowTotal = Object.values(row).reduce((s, v) => s + v, 0) || 1;
    // Never a block transition the corpus has not seen (dw after dw): the exit takes over instead.
    if (prev && rowTotal > 1 && fit.every((t) => !row[t.key])) break;
    const wts = fit.map((t) => {
      let w = (row[t.key] ?? 0) / rowTotal + ((prev ? 0.02 : 0.2) * t.count) / total;
      // Downsample while budget remains for it; real subgraphs spend their strides inside blocks.
      if (need > 0 && t.stride > 1 && left < 8 * need) w *= 6;
      return w;
    });
    let u = rng.next() * wts.reduce((s, w) => s + w, 0);
    let pick = fit.length - 1;
    for (let i = 0; i < fit.length; i++)
      if ((u -= wts[i]!) <= 0) {
        pick = i;
        break;
      }
    const t = fit[pick]!;
    const m = g.mark();
    try {
      x = g.block(x, t, widthOf(t, nw));
      prev = t.key;
      if (!continues(prof, lastOp(t))) break;
    } catch (e) {
      if (!(e instanceof Dead)) throw e;
      g.rollback(m);
      pool = pool.filter((p) => p !== t);
    }
  }

  // ---- exit: land each output with conv units (strided where the shape shrinks).
  const outNames = new Array<string>(outs.length);
  const endOp = (j: number): string => prof.outputOps[j] ?? g.actOp;
  const landUnits = (src: Val, j: number, mustCompute: boolean): Val => {
    const o = outs[j]!;
    const f = factor(H(src), H(o));
    const fits = f > 0 && factor(num(src.shape[3]!), num(o.shape![3]!)) === f;
    // Node budget left once the outputs still to land get a unit each.
    const room = target - g.nodes.length - outs.filter((_, i) => i !== j && outNames[i] === undefined).length * (hasBN ? 3 : 2);
    // With room left, the output is the start of a learned residual block's main branch (cuts fall inside blocks).
    if (fits && branches.length && room >= 4 && rng.next() < 0.8) {
      const m = g.mark();
      try {
        const y = g.branchHead(src, f, C(o), endOp(j), branches, snap, room);
        if (y && g.params <= g.budget) return y;
      } catch (e) {
        if (!(e instanceof Dead)) throw e;
      }
      g.rollback(m);
    }
    if (!mustCompute && same(src.shape, o.shape!)) return src;
    if (!fits) return g.land(src, o.shape!, mustCompute);
    let y = src;
    let rest = f;
    do {
      const s = rest % 2 === 0 ? 2 : rest;
      rest /= s;
      const last = rest === 1;
      const co = last ? C(o) : g.pick(menu, C(o));
      // A depthwise piece's units are as often its 3×3 depthwise convs as 1×1s (real cuts end after
      // either): with 1×1 units only, MobileNetV2's sentinels had more 1×1 convs than the real piece
      // in 2 of 3 groups (1×1-share AUC 0.31).
      // A depthwise unit at another width widens to it first (1×1), as an inverted residual block does.
      const dw = prof.depthwise && g.depthwiseAt(co) && rng.next() < 0.5;
      if (dw && co !== C(y)) y = g.unit(y, co, 1, g.actOp, 1);
      y = dw ? g.unit(y, co, s, last ? endOp(j) : g.actOp, 3, co) : g.unit(y, co, s, last ? endOp(j) : g.actOp);
    } while (rest > 1);
    return y;
  };
  let mainVal = x;
  if (mainOut !== undefined) {
    mainVal = landUnits(
      x,
      mainOut,
      ins.some((v) => v.name === x.name),
    );
    outNames[mainOut] = mainVal.name;
  }
  for (const j of outs4) {
    if (j === mainOut) continue;
    // Either further along the chain (the next block's first units) or forked off the value the main
    // output was landed from (a projection shortcut next to the main branch), as real cuts leave them.
    const fork = x !== mainVal && factor(H(x), H(outs[j]!)) > 0 && factor(num(x.shape[3]!), num(outs[j]!.shape![3]!)) > 0 && rng.next() < 0.5;
    outNames[j] = landUnits(fork ? x : mainVal, j, true).name;
  }
  // Dense layers as the real piece writes them: Gemm, or MatMul + bias Add (CNTK, TensorFlow exports).
  const dense = (v: Val, w: number): Val => (!g.has('Gemm') && g.has('MatMul') ? g.linear(v, w) : g.gemm(v, w));
  outs.forEach((o, j) => {
    if (o.shape!.length !== 2) return;
    let y = mainVal;
    const yop = g.nodes.find((n) => n.outputs[0] === y.name)?.opType;
    // The conv stack ends as the real one does before its head: on the pooling op that feeds the real
    // Flatten (every fmnist-cnn sentinel ended in Relu > Flatten, the real one in AveragePool > Flatten).
    const headPoolOp = (['MaxPool', 'AveragePool'] as const).find((p) => prof.pairs.includes(`${p}>Flatten`));
    if (headPoolOp && yop !== headPoolOp && H(y) >= 2) y = g.pool2(y, headPoolOp, 2, 2, 0);
    if (g.has('GlobalAveragePool')) y = g.gapFlatten(y);
    else y = g.node('Flatten', [y.name], { axis: { kind: 'int', value: 1 } }, [y.shape[0]!, sizeOf(y.shape.slice(1).map(num))]);
    // A head of several dense layers gets one fewer or one more hidden layer half the time (never
    // fewer than two layers): with the real depth only, a piece that already holds the most conv
    // blocks its input allows (LeNet-5) had no sentinel deeper than itself.
    const realGemms = prof.ops.Gemm ?? 1;
    // The extra layer only where the node target is above the real count, the missing one only below.
    const gemms = realGemms >= 2 ? Math.max(2, realGemms + (lean === 0 ? rng.int(3) - 1 : lean * rng.int(2))) : Math.max(1, realGemms);
    // Hidden widths of a classifier head shrink towards the output (4096, 4096, 1000; 120, 84, 10).
    let wmax = Infinity;
    for (let i = 1; i < gemms; i++) {
      const out = num(o.shape![1]!);
      const wider = prof.widths.filter((w) => w > out && w <= wmax);
      // Heads narrower than their output (a 512-wide head over 1,000 classes) keep their own hidden widths.
      const hidden = prof.widths.filter((w) => w !== out && w <= wmax);
      const ws = wider.length ? wider : hidden;
      // No real width fits under an own width above: that width again (never one that widens or is the output's).
      const picked = ws.length ? g.pick(ws, out) : Number.isFinite(wmax) ? wmax : g.pick(prof.widths, out);
      // Sometimes a width of its own below the picked one (100 between 120 and 84), never
      // narrower than 1.5× the output: with the real widths only, no sentinel had more distinct
      // weight dimensions than the real head.
      const own = Math.round((picked * (0.6 + 0.4 * rng.next())) / 4) * 4;
      // More often above the real size (where a tie in distinct dims would still leave the real head the richest).
      const w = picked > out && own >= 1.5 * out && rng.next() < (lean > 0 ? 2 / 3 : lean < 0 ? 1 / 6 : 1 / 3) ? own : picked;
      wmax = w;
      y = g.act(dense(y, w), g.actOp);
    }
    y = dense(y, num(o.shape![1]!));
    // A unary end op (an activation, a softmax) goes after the head; a bias Add already ends `linear`.
    if (UNARY_END.has(endOp(j)) && g.has(endOp(j))) y = g.act(y, endOp(j));
    outNames[j] = y.name;
  });
  return finish(real, g, ins, outs, outNames);
}
