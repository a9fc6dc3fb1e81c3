/** GPT-2 decoder (pre-LN, causal self-attention, tied LM head). */
import { dense, geluTanh, layerNorm, selfAttention, ZooGraph } from './layers.js';
import { defineModel, num, type ZooEntry } from './options.js';

const EPS = 1e-5;

/** GPT-2 small: `logits` [batch, seq, vocab]; the LM head multiplies by the transposed token embedding. */
export const gpt2Small: ZooEntry = defineModel(
  'gpt2-small',
  'GPT-2 decoder: token + position embeddings, pre-LN blocks (causal MHA, GELU-tanh MLP), tied LM head',
  [
    { name: 'layers', description: 'decoder blocks', kind: 'int', default: 12 },
    { name: 'hidden', description: 'hidden size', kind: 'int', default: 768 },
    { name: 'heads', description: 'attention heads (must divide hidden)', kind: 'int', default: 12 },
    { name: 'seq', description: 'sequence length (fixed)', kind: 'int', default: 64 },
    { name: 'vocab', description: 'vocabulary size', kind: 'int', default: 50257 },
  ],
  (o) => {
    const hidden = num(o, 'hidden');
    const heads = num(o, 'heads');
    if (hidden % heads !== 0) throw new Error(`zoo model 'gpt2-small': option 'heads' (${heads}) must divide option 'hidden' (${hidden})`);
    const seq = num(o, 'seq');
    const vocab = num(o, 'vocab');
    const layers = num(o, 'layers');
    const z = new ZooGraph('gpt2-small', o);
    const ids = z.b.input('input_ids', 'int64', ['batch', seq]);
    const wte = z.normal('wte.weight', [vocab, hidden], 0.02);
    const wpe = z.normal('wpe.weight', [seq, hidden], 0.01);
    // -1e4 rather than -inf above the diagonal: finite in every runtime, still ~0 after Softmax.
    const maskData = new Float32Array(seq * seq);
    for (let i = 0; i < seq; i++) for (let j = i + 1; j < seq; j++) maskData[i * seq + j] = -1e4;
    const mask = z.constant('causal_mask', [seq, seq], maskData);
    let x = z.b.op('Add', [z.b.op('Gather', [wte, ids], { axis: 0 }), wpe]);
    for (let i = 0; i < layers; i++) {
      const s = `h.${i}`;
      const a = selfAttention(z, layerNorm(z, x, `${s}.ln_1`, hidden, EPS), `${s}.attn`, { hidden, heads, seq, mask });
      x = z.b.op('Add', [x, a]);
      const m = geluTanh(z, dense(z, layerNorm(z, x, `${s}.ln_2`, hidden, EPS), `${s}.mlp.c_fc`, hidden, 4 * hidden));
      x = z.b.op('Add', [x, dense(z, m, `${s}.mlp.c_proj`, 4 * hidden, hidden)]);
    }
    x = layerNorm(z, x, 'ln_f', hidden, EPS);
    const head = z.b.op('Transpose', [wte], { perm: [1, 0] }); // [hidden, vocab], weights tied
    const y = z.b.op('MatMul', [x, head], {}, { output: 'logits' });
    z.b.output(y, 'float32', ['batch', seq, vocab]);
    return z.b.build();
  },
);
