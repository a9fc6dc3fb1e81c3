/**
 * Sentinels with the real piece's wiring. The learned blocks cannot build every real wiring (a cut
 * inside a block starts or ends mid-unit), so a group's sentinels could all be wired otherwise and
 * "the member no other shares its wiring with" found the real one: resnet18's real member in 17.9 %
 * of groups, resnet20's in 12.8 % (`proteus attack`, seed 1); gpt2-small's in 16 % of groups
 * (`scripts/proteus-architecture.ts`). A clone takes the real piece's nodes and draws all its
 * weights afresh; alone it copies the architecture, so the generator gives it widths of its own
 * where the piece has any (`sentinel-width.ts`; a transformer piece's are mostly pinned).
 */

import type { Model, ValueInfo } from '../onnx/ir.js';
import { countedTensor, initializerUses } from './battery.js';
import type { Rng } from './rng.js';
import { finish, Gen, opsetOf } from './sentinel-gen.js';
import type { OpStats, Profile } from './stats.js';

/**
 * An attempt with `real`'s nodes, attributes and wiring: every float weight of two or more values is
 * a fresh lazily drawn weight of its kind (`Gen.weight`); scalars, integer constants (Clip bounds,
 * shape operands) and additive attention masks are kept as they are.
 */
export function cloneAttempt(real: Model, prof: Profile, stats: OpStats, rng: Rng): Model {
  const rg = real.graph;
  const ins: ValueInfo[] = rg.inputs.map((v, i) => ({ name: `in${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const outs: ValueInfo[] = rg.outputs.map((v, i) => ({ name: `out${i}`, dtype: v.dtype, shape: v.shape!.slice() }));
  const g = new Gen(rng, prof, stats, ins, opsetOf(real));
  const name = new Map(rg.inputs.map((v, i) => [v.name, ins[i]!.name]));
  const uses = initializerUses(real);
  for (const [t, w] of rg.initializers) {
    const use = uses.get(t);
    if (!use) continue;
    if (countedTensor(w)) name.set(t, g.weight(use.op, use.slot, w.dims.slice()));
    else {
      const c = g.fresh('c');
      g.inits.set(c, { dtype: w.dtype, dims: w.dims.slice(), data: w.data.slice() } as typeof w);
      name.set(t, c);
    }
  }
  for (const n of rg.nodes) {
    const outputs = n.outputs.map((o) => {
      if (!o) return o;
      const fresh = g.fresh('t');
      name.set(o, fresh);
      return fresh;
    });
    const inputs = n.inputs.map((t) => (t ? (name.get(t) ?? t) : t));
    g.nodes.push({ name: g.fresh('n'), opType: n.opType, domain: n.domain, inputs, outputs, attrs: { ...n.attrs } });
  }
  return finish(
    real,
    g,
    ins,
    outs,
    rg.outputs.map((o) => name.get(o.name) ?? o.name),
  );
}
