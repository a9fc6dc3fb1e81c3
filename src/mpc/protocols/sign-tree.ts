/**
 * The sign-only carry circuit of compare.ts (generate level, then the parallel-prefix tree; see the
 * protocol description there) with every bit vector resident in wasm memory (`resident.ts`): the
 * same gates in the same order, the same messages byte for byte and the same output share as the
 * JS-array version (compare.ts keeps that one for the `fold` variant), but an AND level copies in
 * only the dealer's masks and the peer's message and copies out only its own message.
 */
import type { AndTriples, BitMulTriples, PartyContext } from '../context.js';
import { timed } from '../profile.js';
import { type Buf, Region } from '../resident.js';
import type { Ring } from '../ring.js';

/** A gate's two operands: resident offsets of `nbits`-bit vectors (ceil(nbits/8) bytes each). */
type Gate = readonly [number, number];

/** A generate/propagate segment: resident offsets of its XOR shares (no P for the lowest). */
interface Segment {
  g: number;
  p?: number;
}

/** Part i of `t` in resident memory: drawn there when the triples can (`fill`), else copied in. */
function part(R: Region, t: AndTriples, i: 0 | 1 | 2, tb: number): Buf {
  if (!t.fill) return R.copyIn(i === 0 ? t.a : i === 1 ? t.b : t.c, tb);
  const b = R.alloc(tb);
  t.fill(i, new Uint8Array(R.kk.memory.buffer, b.p, tb));
  return b;
}

/** Part `k` of `n` bit-multiplication triples in resident memory: drawn there when `t` can, else copied in. */
function bitMulPart(R: Region, t: BitMulTriples, k: 'xor' | 'arith' | 'a' | 'c', n: number): Buf {
  const len = k === 'xor' ? (n + 7) >>> 3 : 8 * n;
  if (t.fill) {
    const b = R.alloc(len);
    t.fill(k, new Uint8Array(R.kk.memory.buffer, b.p, len));
    return b;
  }
  return k === 'xor' ? R.copyIn(t.xor, len) : R.ring(t[k].subarray(0, n));
}

/**
 * One exchange of `gates.length` XOR-shared AND gates on `nbits`-bit vectors (bits.ts andGates):
 * returns the resident buffer holding this party's output shares, gate i at offset i·ceil(nbits/8).
 */
async function andGatesResident(ctx: PartyContext, R: Region, gates: readonly Gate[], nbits: number): Promise<Buf> {
  const count = gates.length,
    total = count * nbits,
    tb = (total + 7) >>> 3,
    mb = (2 * total + 7) >>> 3,
    vb = (nbits + 7) >>> 3;
  const t = await ctx.dealer.andTriples(total);
  const kk = R.kk;
  // [d, e] = [concat(xs) ⊕ a, concat(ys) ⊕ b], each half tb bytes (whole bytes per half, as andGateOpen)
  const { de, pa, pb, msg } = timed(ctx, 'and', () => {
    const de = R.alloc(2 * tb);
    const pa = part(R, t, 0, tb),
      pb = part(R, t, 1, tb);
    for (let half = 0; half < 2; half++) {
      const dst = de.p + half * tb,
        mask = half === 0 ? pa.p : pb.p;
      // whole bytes per vector: each operand is XORed with its slice of the mask straight into place
      if ((nbits & 7) === 0) for (let i = 0; i < count; i++) kk.xorBytes(gates[i]![half]!, mask + i * vb, dst + i * vb, vb);
      else {
        const stage = R.alloc(count * vb);
        for (let i = 0; i < count; i++) R.move(stage.p + i * vb, gates[i]![half]!, vb);
        kk.packTight(stage.p, count, nbits, dst);
        R.free(stage);
        kk.xorBytes(dst, mask, dst, tb);
      }
    }
    let msg: Uint8Array;
    if ((total & 7) === 0) msg = R.copyOut(de.p, mb);
    else {
      const packed = R.alloc(mb);
      kk.packTight(de.p, 2, total, packed.p);
      msg = R.copyOut(packed.p, mb);
      R.free(packed);
    }
    return { de, pa, pb, msg };
  });
  // handed off: msg is not used again (the close reads this party's [d, e] from resident memory)
  const peer = await ctx.peer.exchange(msg, true);
  if (peer.length !== mb) throw new Error(`sign-tree: AND gate opening has ${peer.length} bytes, expected ${mb}`);
  return timed(ctx, 'and', () => {
    const pp = R.copyIn(peer);
    let pde = pp;
    if ((total & 7) !== 0) {
      pde = R.alloc(2 * tb);
      kk.unpackTight(pp.p, 2, total, pde.p);
      R.free(pp);
    }
    const pc = part(R, t, 2, tb);
    let z = R.alloc(tb);
    kk.andClose(de.p, de.p + tb, pde.p, pde.p + tb, pa.p, pb.p, pc.p, z.p, tb, ctx.party === 0 ? 1 : 0);
    for (const b of [de, pa, pb, pc, pde]) R.free(b);
    if ((nbits & 7) !== 0) {
      const out = R.alloc(count * vb);
      kk.unpackTight(z.p, count, nbits, out.p);
      R.free(z);
      z = out;
    }
    return z;
  });
}

/**
 * The carry tree on resident memory: bit planes lsb … lsb + b − 1 of the n ring elements at `px`,
 * then the generate level and the tree; returns the resident offset of this party's XOR share of the
 * sign estimate (ceil(n/8) bytes, live until R closes). b ≥ 1.
 */
async function signTree(ctx: PartyContext, R: Region, px: number, n: number, lsb: number, b: number): Promise<number> {
  const st = (n + 7) >>> 3;
  const all = timed(ctx, 'bitplanes', () => R.planes(px, n, lsb, b));
  const plane = (j: number): number => all.p + j * st;
  const top = plane(b - 1);
  const m = b - 1;
  if (m === 0) return top;
  const zero = R.zeros(st).p;
  // a one-sided AND of party 0's value and party 1's value: each party supplies its own operand
  const oneSided = (mine: number): Gate => (ctx.party === 0 ? [mine, zero] : [zero, mine]);
  const g0 = await andGatesResident(
    ctx,
    R,
    Array.from({ length: m }, (_, j) => oneSided(plane(j))),
    n,
  );
  let segs: Segment[] = Array.from({ length: m }, (_, j) => (j === 0 ? { g: g0.p } : { g: g0.p + j * st, p: plane(j) }));
  // pair adjacent segments bottom-up, one exchange per level; the outputs stay live to the end
  // (a segment without a partner passes through to the next level unchanged)
  while (segs.length > 1) {
    const gates: Gate[] = [];
    for (let k = 0; k + 1 < segs.length; k += 2) {
      const lo = segs[k]!,
        hi = segs[k + 1]!;
      gates.push([hi.p!, lo.g]);
      if (k > 0) gates.push([hi.p!, lo.p!]);
    }
    const z = await andGatesResident(ctx, R, gates, n);
    const next: Segment[] = [];
    let at = 0;
    const t0 = performance.now();
    for (let k = 0; k < segs.length; k += 2) {
      const lo = segs[k]!,
        hi = segs[k + 1];
      if (!hi) {
        next.push(lo);
        continue;
      }
      // G = G_hi ⊕ P_hi & G_lo, written over the gate's output slot
      const g = z.p + at++ * st;
      R.kk.xorBytes(hi.g, g, g, st);
      next.push(k === 0 ? { g } : { g, p: z.p + at++ * st });
    }
    ctx.profile?.add('and', performance.now() - t0);
    segs = next;
  }
  return timed(ctx, 'and', () => {
    const g = segs[0]!.g;
    R.kk.xorBytes(top, g, g, st);
    return g;
  });
}

/** XOR share (packed bits, a JS array) of the sign estimate over bits [lsb, lsb + b), b ≥ 1. */
export async function signOnlyResident(ctx: PartyContext, x: Ring, lsb: number, b: number): Promise<Uint8Array> {
  const R = new Region();
  try {
    const s = await signTree(ctx, R, R.ring(x).p, x.length, lsb, b);
    return R.copyOut(s, (x.length + 7) >>> 3);
  } finally {
    R.close();
  }
}

/**
 * The sign-only ReLU (compare.ts reluWithMask, b ≥ 1) on resident memory: x is copied in once for
 * the bit planes, the opening [c = s ⊕ r, D = x − A] and the closing step (ringReluTail's kernel);
 * the same dealer requests, messages and shares as the JS-array version.
 */
export async function reluSignOnlyResident(
  ctx: PartyContext,
  x: Ring,
  lsb: number,
  b: number,
  /** Arrays of x.length elements the shares are written to (default: new ones). */
  into?: { y: Ring; mask: Ring },
): Promise<{ y: Ring; mask: Ring }> {
  const n = x.length,
    cb = (n + 7) >>> 3;
  const R = new Region();
  try {
    const px = R.ring(x).p;
    const s = await signTree(ctx, R, px, n, lsb, b);
    const t = await ctx.dealer.bitMulTriples(n);
    const kk = R.kk;
    const { d, msg } = timed(ctx, 'pack', () => {
      const r = bitMulPart(R, t, 'xor', n);
      kk.xorBytes(s, r.p, s, cb); // c = s ⊕ r (this party's share)
      const d = bitMulPart(R, t, 'a', n);
      kk.sub(px, d.p, d.p, n); // D = x − A
      return { d, msg: R.copyOut2(s, cb, d.p, 8 * n) };
    });
    const peer = await ctx.peer.exchange(msg, true); // handed off: msg is not used again
    if (peer.length !== msg.length) throw new Error(`compare: ReLU opening has ${peer.length} bytes, expected ${msg.length}`);
    return timed(ctx, 'ring', () => {
      const pp = R.copyIn(peer).p;
      kk.xorBytes(s, pp, s, cb); // the opened c
      const tc = bitMulPart(R, t, 'c', n).p,
        ar = bitMulPart(R, t, 'arith', n).p;
      const y = R.alloc(8 * n).p,
        mask = R.alloc(8 * n).p;
      kk.reluTail(px, d.p, pp + cb, tc, ar, s, n, ctx.party === 0 ? 1 : 0, y, mask);
      return { y: R.takeRing(y, n, into?.y), mask: R.takeRing(mask, n, into?.mask) };
    });
  } finally {
    R.close();
  }
}
