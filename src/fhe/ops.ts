/**
 * Homomorphic operations on CKKS ciphertexts: rotations (Galois keys fetched per step), plaintext
 * and ciphertext multiplications with rescaling, diagonal (BSGS) linear maps, rotate-and-sum
 * pooling and PAF polynomials through src/smartpaf's evaluation plan. Every intermediate SEAL
 * object is deleted; the caller owns (and deletes) returned ciphertexts and its inputs.
 */
import { type PlanArith, planOdd, runPlan } from '../smartpaf/poly.js';
import { Arena, type Ciphertext, type FheContext, type GaloisSource, normStep, type Plaintext, type RelinKeys } from './context.js';
import { type LinearPlan, sourcesOf } from './lower.js';

/** Operation counters. */
export interface HeStats {
  rotations: number;
  mults: number;
  plainMults: number;
  rescales: number;
}

/** Thrown when an operation would need a level that the ciphertext no longer has. */
export class LevelsExhaustedError extends Error {
  constructor(what: string) {
    super(`CKKS levels exhausted: ${what} needs a rescale but the ciphertext is at level 0 (plan more levels or allow --refresh)`);
    this.name = 'LevelsExhaustedError';
  }
}

/**
 * Encoded plaintexts (linear-layer diagonals, PAF coefficients) kept across inferences: they depend
 * only on the model and the level, not on the input, so a server encodes each once and reuses it
 * for every image (most of a conv layer's cost is encoding). Bounded by `budgetBytes` of WASM
 * memory; beyond it plaintexts are encoded per use as before. Call `dispose()`.
 */
export class PlainCache {
  private readonly map = new Map<string, Plaintext>();
  private readonly sizes = new Map<string, number>();
  private readonly ids = new WeakMap<object, number>();
  private bytesUsed = 0;
  private nextId = 0;
  hits = 0;
  misses = 0;
  /**
   * `record` sees every plaintext encoded on a miss, before it is used (to write it to a file as it is
   * made: src/fhe/plainfile.ts `PlainRecorder`); with a zero budget nothing is kept in memory.
   */
  constructor(
    readonly budgetBytes = 1.0e9,
    private readonly record?: (key: string, pt: Plaintext) => void,
  ) {}
  /** A stable number for an object (a plan) within this cache. */
  id(o: object): number {
    let i = this.ids.get(o);
    if (i === undefined) this.ids.set(o, (i = this.nextId++));
    return i;
  }
  /** The cached plaintext for `key`, or a new one from `make` (`owned`: the caller must delete it). */
  get(key: string, bytes: number, make: () => Plaintext): { pt: Plaintext; owned: boolean } {
    const hit = this.map.get(key);
    if (hit) {
      this.hits++;
      return { pt: hit, owned: false };
    }
    this.misses++;
    const pt = make();
    this.record?.(key, pt);
    if (this.bytesUsed + bytes > this.budgetBytes) return { pt, owned: true };
    this.map.set(key, pt);
    this.sizes.set(key, bytes);
    this.bytesUsed += bytes;
    return { pt, owned: false };
  }
  /** Bytes of WASM memory held. */
  get bytes(): number {
    return this.bytesUsed;
  }
  /** The cached plaintexts (to save them: src/fhe/plainfile.ts). */
  entries(): IterableIterator<[string, Plaintext]> {
    return this.map.entries();
  }
  /** Add a plaintext loaded from a file (owned by the cache); false when the budget is full (the caller deletes it). */
  put(key: string, pt: Plaintext, bytes: number): boolean {
    if (this.map.has(key) || this.bytesUsed + bytes > this.budgetBytes) return false;
    this.map.set(key, pt);
    this.sizes.set(key, bytes);
    this.bytesUsed += bytes;
    return true;
  }
  /** Delete these cached plaintexts (a file's that failed its checks after loading). */
  drop(keys: readonly string[]): void {
    for (const k of keys) {
      const pt = this.map.get(k);
      if (!pt) continue;
      pt.delete();
      this.map.delete(k);
      this.bytesUsed -= this.sizes.get(k) ?? 0;
      this.sizes.delete(k);
    }
  }
  /** Delete every cached plaintext. */
  dispose(): void {
    for (const p of this.map.values()) p.delete();
    this.map.clear();
    this.sizes.clear();
    this.bytesUsed = 0;
  }
}

/** Evaluator bound to a context and server keys. */
export class HeEval {
  readonly stats: HeStats = { rotations: 0, mults: 0, plainMults: 0, rescales: 0 };
  constructor(
    readonly ctx: FheContext,
    private readonly relin: RelinKeys,
    private readonly galois: GaloisSource,
    private readonly cache?: PlainCache,
  ) {}

  /** Plaintext bytes at the level of `ct`. */
  private ptBytes(ct: Ciphertext): number {
    return (this.level(ct) + 1) * this.ctx.params.polyModulusDegree * 8;
  }

  /** A model-dependent plaintext through the cache (when there is one). */
  private plain(key: string, like: Ciphertext, make: () => Plaintext): { pt: Plaintext; owned: boolean } {
    if (!this.cache) return { pt: make(), owned: true };
    return this.cache.get(`${key}@${this.level(like)}`, this.ptBytes(like), make);
  }

  private get ev() {
    return this.ctx.evaluator;
  }

  /** Level of a ciphertext. */
  level(ct: Ciphertext): number {
    return this.ctx.level(ct);
  }

  /** A copy of `ct`. */
  clone(ct: Ciphertext): Ciphertext {
    return ct.clone();
  }

  /** rot(ct, step)[i] = ct[i + step]. */
  rotate(ct: Ciphertext, step: number): Ciphertext {
    const s = normStep(step, this.ctx.slots);
    if (s === 0) return ct.clone();
    this.stats.rotations++;
    return this.ev.rotateVector(ct, s, this.galois.get(s)) as Ciphertext;
  }

  private rescale(ct: Ciphertext, what: string): void {
    if (this.level(ct) === 0) throw new LevelsExhaustedError(what);
    this.ev.rescaleToNext(ct, ct);
    this.stats.rescales++;
  }

  /** Bring `a` and `b` to the same level; returns the two operands (new objects only where switched, listed in `temps`). */
  private align(a: Ciphertext, b: Ciphertext, temps: Arena): [Ciphertext, Ciphertext] {
    const la = this.level(a);
    const lb = this.level(b);
    if (la > lb) return [temps.add(this.ev.cipherModSwitchTo(a, b.parmsId) as Ciphertext), b];
    if (lb > la) return [a, temps.add(this.ev.cipherModSwitchTo(b, a.parmsId) as Ciphertext)];
    return [a, b];
  }

  /** a + b (levels aligned; scales equal by construction). */
  add(a: Ciphertext, b: Ciphertext): Ciphertext {
    return this.combine(a, b, 'add');
  }

  /** a ± b after aligning levels (scales equal by construction). */
  private combine(a: Ciphertext, b: Ciphertext, op: 'add' | 'sub'): Ciphertext {
    const temps = new Arena();
    try {
      const [x, y] = this.align(a, b, temps);
      if (x.scale !== y.scale) y.setScale(x.scale);
      return (op === 'add' ? this.ev.add(x, y) : this.ev.sub(x, y)) as Ciphertext;
    } finally {
      temps.dispose();
    }
  }

  /** In-place acc += b. */
  addInto(acc: Ciphertext, b: Ciphertext): void {
    const temps = new Arena();
    try {
      const [x, y] = this.align(acc, b, temps);
      if (x !== acc) throw new Error('addInto: accumulator must not be above the addend level');
      if (x.scale !== y.scale) y.setScale(x.scale);
      this.ev.add(acc, y, acc);
    } finally {
      temps.dispose();
    }
  }

  /** a · b, relinearised and rescaled (scale reset to Δ). */
  mul(a: Ciphertext, b: Ciphertext, what = 'multiplication'): Ciphertext {
    const temps = new Arena();
    try {
      const [x, y] = this.align(a, b, temps);
      if (this.level(x) === 0) throw new LevelsExhaustedError(what);
      const r = (x === y ? this.ev.square(x) : this.ev.multiply(x, y)) as Ciphertext;
      this.ev.relinearize(r, this.relin, r);
      this.rescale(r, what);
      r.setScale(this.ctx.scale);
      this.stats.mults++;
      return r;
    } finally {
      temps.dispose();
    }
  }

  /** a · c for a real constant c (one level; the plaintext scale is the prime dropped, so the scale is kept). */
  mulScalar(a: Ciphertext, c: number, what = 'scalar multiplication'): Ciphertext {
    const l = this.level(a);
    if (l === 0) throw new LevelsExhaustedError(what);
    const { pt, owned } = this.plain(`c:${c}:${a.scale}`, a, () => this.ctx.encode(new Float64Array(this.ctx.slots).fill(c), this.ctx.primeAt(l), a));
    try {
      return this.mulPlainKeepScale(a, pt, what);
    } finally {
      if (owned) pt.delete();
    }
  }

  /** a · pt, rescaled; pt was encoded at the scale of the prime the rescale drops, so a's scale is kept. */
  private mulPlainKeepScale(a: Ciphertext, pt: Plaintext, what: string): Ciphertext {
    const r = this.ev.multiplyPlain(a, pt) as Ciphertext;
    this.stats.plainMults++;
    this.rescale(r, what);
    r.setScale(a.scale);
    return r;
  }

  /** a − b (same level and scale, e.g. a ciphertext and its rotation). */
  sub(a: Ciphertext, b: Ciphertext): Ciphertext {
    return this.combine(a, b, 'sub');
  }

  /** a ⊙ v for a plaintext vector v (one level, scale kept, like `mulScalar`). */
  mulVec(a: Ciphertext, v: ArrayLike<number>, what = 'plaintext multiplication'): Ciphertext {
    const l = this.level(a);
    if (l === 0) throw new LevelsExhaustedError(what);
    const pt = this.ctx.encode(v, this.ctx.primeAt(l), a);
    try {
      return this.mulPlainKeepScale(a, pt, what);
    } finally {
      pt.delete();
    }
  }

  /**
   * A diagonal-method linear map (BSGS), one level. `xs` are the input tensor's ciphertexts (one
   * unless the tensor is spread over several): each plan source's baby-step products are summed
   * into the shared giant groups, so the giant rotations are paid once per output ciphertext.
   * `shared` caches the baby rotations across the output ciphertexts of one step (caller deletes them).
   */
  linear(xs: Ciphertext | readonly Ciphertext[], plan: LinearPlan, name: string, shared?: Map<string, Ciphertext>): Ciphertext {
    const n = this.ctx.slots;
    const arena = new Arena();
    const all = Array.isArray(xs) ? (xs as readonly Ciphertext[]) : [xs as Ciphertext];
    try {
      const srcs = sourcesOf(plan).map((src, si) => {
        const ct = all[src.input];
        if (!ct) throw new Error(`linear layer '${name}': input ciphertext ${src.input} missing (${all.length} given)`);
        const baby = new Map<number, Ciphertext>([[0, ct]]);
        return { si, src, ct, baby };
      });
      const x = srcs[0]!.ct;
      const l = this.level(x);
      if (l === 0) throw new LevelsExhaustedError(`linear layer '${name}'`);
      if (srcs.some((s) => this.level(s.ct) !== l)) throw new Error(`linear layer '${name}': input ciphertexts at different levels`);
      const q = this.ctx.primeAt(l);
      // Baby steps are rotations of an input: with `shared` (owned by the caller, one per linear step)
      // every output ciphertext's plan reuses them instead of rotating again.
      for (const s of srcs)
        for (const b of s.src.babies) {
          const key = `${s.src.input}:${b.step}`;
          let r = shared?.get(key);
          if (!r) {
            r = this.rotate(s.baby.get(b.from)!, b.via);
            if (shared) shared.set(key, r);
            else arena.add(r);
          }
          s.baby.set(b.step, r);
        }
      const inner = new Map<number, Ciphertext>();
      const buf = new Float64Array(n);
      for (const g of plan.giants) {
        let acc: Ciphertext | undefined;
        for (const { si, src, baby } of srcs)
          for (const [b, ct] of baby) {
            // Diagonal k = g + b (< n) belongs to exactly this (giant, baby) pair.
            const d = g + b < n ? src.diags.get(g + b) : undefined;
            if (!d) continue;
            // A_{g,b}[i] = D_{g+b}[i − g]: the giant rotation moves it back into place.
            if (!d.some((v) => v !== 0)) continue;
            const { pt, owned } = this.plain(`d:${this.cache?.id(plan)}:${si}:${g}:${b}:${x.scale}`, x, () => {
              for (let i = 0; i < n; i++) buf[i] = d[(i - g + n) % n]!;
              return this.ctx.encode(buf, q, x);
            });
            const prod = this.ev.multiplyPlain(ct, pt) as Ciphertext;
            if (owned) pt.delete();
            this.stats.plainMults++;
            if (acc) {
              this.ev.add(acc, prod, acc);
              prod.delete();
            } else acc = arena.add(prod);
          }
        if (acc) {
          this.rescale(acc, `linear layer '${name}'`);
          acc.setScale(x.scale);
          inner.set(g, acc);
        }
      }
      if (inner.size === 0) throw new Error(`linear layer '${name}' has no non-zero weights`);
      let y: Ciphertext;
      if (plan.giantChain) {
        // Children before parents: each giant's sum, rotated by its chain step, joins its parent's.
        for (let j = plan.giantChain.length - 1; j >= 0; j--) {
          const e = plan.giantChain[j]!;
          const c = inner.get(e.step);
          if (!c) continue;
          const r = this.rotate(c, e.via);
          const p = inner.get(e.from);
          if (p) {
            this.ev.add(p, r, p);
            r.delete();
          } else inner.set(e.from, arena.add(r));
        }
        y = inner.get(0)!.clone();
      } else if (plan.horner !== undefined) {
        const G = plan.horner;
        const top = Math.max(...inner.keys()) / G;
        y = inner.get(top * G)!.clone();
        for (let j = top - 1; j >= 0; j--) {
          const r = this.rotate(y, G);
          y.delete();
          y = r;
          const p = inner.get(j * G);
          if (p) this.ev.add(y, p, y);
        }
      } else {
        y = this.ctx.seal.CipherText();
        let first = true;
        for (const [g, p] of inner) {
          const r = this.rotate(p, g);
          if (first) {
            y.delete();
            y = r;
            first = false;
          } else {
            this.ev.add(y, r, y);
            r.delete();
          }
        }
      }
      for (const st of plan.reduce) {
        const r = this.rotate(y, st);
        this.ev.add(y, r, y);
        r.delete();
      }
      if (plan.bias.some((v) => v !== 0)) {
        const bp = this.ctx.encode(plan.bias, y.scale, y);
        this.ev.addPlain(y, bp, y);
        bp.delete();
      }
      return y;
    } finally {
      arena.dispose();
    }
  }

  /** Non-overlapping sum pooling by rotations (no level): kw−1 column shifts then kh−1 row shifts. */
  sumPool(x: Ciphertext, colShifts: number[], rowShifts: number[]): Ciphertext {
    let cur = x.clone();
    for (const shifts of [colShifts, rowShifts]) {
      if (shifts.length === 0) continue;
      const acc = cur.clone();
      for (const s of shifts) {
        const r = this.rotate(cur, s);
        this.ev.add(acc, r, acc);
        r.delete();
      }
      cur.delete();
      cur = acc;
    }
    return cur;
  }

  /**
   * sign(u) through the stages' plans (PlanArith over ciphertexts); `u` is not consumed. With
   * `firstMask`, the first stage's coefficient leaves c·u become (c·mask) ⊙ u (same level): the
   * result is exactly 0 wherever the mask is 0.
   */
  sign(u: Ciphertext, stages: readonly (readonly number[])[], name: string, firstMask?: Float64Array): Ciphertext {
    const arena = new Arena();
    try {
      const arith: PlanArith<Ciphertext, number> = {
        mul: (a, b) => arena.add(this.mul(a, b, `PAF '${name}'`)),
        mulConst: (a, c) => arena.add(this.mulScalar(a, c, `PAF '${name}'`)),
        add: (a, b) => arena.add(this.add(a, b)),
      };
      const masked: PlanArith<Ciphertext, number> = firstMask
        ? {
            ...arith,
            mulConst: (a, c) =>
              arena.add(
                this.mulVec(
                  a,
                  firstMask.map((m) => m * c),
                  `PAF '${name}'`,
                ),
              ),
          }
        : arith;
      let v = u;
      stages.forEach((st, i) => (v = runPlan(planOdd(st.length), v, (k) => st[k]!, i === 0 ? masked : arith)));
      return v === u ? u.clone() : arena.keep(v);
    } finally {
      arena.dispose();
    }
  }

  /**
   * One level of a PAF max tree: with r = rot(x, shift) and d = x − r, returns (x + r) + d·sign(d)
   * (= 2·max(x, r) where the mask is 1; `stages` already carry the 1/(gain·s) factor). One rotation,
   * the sign's depth plus one level.
   */
  pafMaxLevel(x: Ciphertext, shift: number, stages: readonly (readonly number[])[], mask: Float64Array, name: string): Ciphertext {
    const arena = new Arena();
    try {
      const r = arena.add(this.rotate(x, shift));
      const d = arena.add(this.sub(x, r));
      const sum = arena.add(this.add(x, r));
      const sg = arena.add(this.sign(d, stages, name, mask));
      const y = arena.add(this.mul(d, sg, `PAF '${name}' ((a−b)·sign)`));
      return this.add(sum, y);
    } finally {
      arena.dispose();
    }
  }

  /** PAF ReLU on u = x/s: returns u + u·sign(u) (= 2·ReLU(x)/s; the gain is folded downstream). */
  pafRelu(u: Ciphertext, stages: readonly (readonly number[])[], name: string): Ciphertext {
    const sg = this.sign(u, stages, name);
    try {
      const y = this.mul(u, sg, `PAF '${name}' (x·sign)`);
      try {
        return this.add(u, y);
      } finally {
        y.delete();
      }
    } finally {
      sg.delete();
    }
  }
}
