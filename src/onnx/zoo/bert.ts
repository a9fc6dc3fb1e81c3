/** BERT encoder (post-LN) with a pooled classification head, in the layout of an ONNX BERT export. */
import { dense, geluErf, layerNorm, linear, selfAttention, ZooGraph } from './layers.js';
import { classesOption, defineModel, num, type ZooEntry } from './options.js';

const EPS = 1e-12;

interface BertDims {
  hidden: number;
  heads: number;
  ffn: number;
  seq: number;
}

/** Attention → residual → LN → FFN (GELU-erf) → residual → LN. */
function encoderLayer(z: ZooGraph, x: string, scope: string, d: BertDims, output?: string): string {
  const att = selfAttention(z, x, `${scope}.attention`, d);
  const h = layerNorm(z, z.b.op('Add', [att, x]), `${scope}.attention.norm`, d.hidden, EPS);
  const f = geluErf(z, dense(z, h, `${scope}.intermediate`, d.hidden, d.ffn));
  const out = dense(z, f, `${scope}.output`, d.ffn, d.hidden);
  return layerNorm(z, z.b.op('Add', [out, h]), `${scope}.output.norm`, d.hidden, EPS, output);
}

/** BERT-base: outputs `hidden` [batch, seq, hidden] and `logits` [batch, classes] from the [CLS] token. */
export const bertBase: ZooEntry = defineModel(
  'bert-base',
  'BERT encoder: token + position embeddings, post-LN layers (MHA, GELU FFN), tanh pooler, classifier',
  [
    { name: 'layers', description: 'encoder layers', kind: 'int', default: 12 },
    { name: 'hidden', description: 'hidden size', kind: 'int', default: 768 },
    { name: 'heads', description: 'attention heads (must divide hidden)', kind: 'int', default: 12 },
    { name: 'ffn', description: 'feed-forward width (0 = 4 × hidden)', kind: 'int', default: 0, min: 0 },
    { name: 'seq', description: 'sequence length (fixed)', kind: 'int', default: 128 },
    { name: 'vocab', description: 'vocabulary size', kind: 'int', default: 30522 },
    classesOption(2),
  ],
  (o) => {
    const hidden = num(o, 'hidden');
    const heads = num(o, 'heads');
    if (hidden % heads !== 0) throw new Error(`zoo model 'bert-base': option 'heads' (${heads}) must divide option 'hidden' (${hidden})`);
    const d: BertDims = { hidden, heads, ffn: num(o, 'ffn') || 4 * hidden, seq: num(o, 'seq') };
    const layers = num(o, 'layers');
    const classes = num(o, 'classes');
    const z = new ZooGraph('bert-base', o);
    const ids = z.b.input('input_ids', 'int64', ['batch', d.seq]);
    const wte = z.normal('embeddings.word_embeddings.weight', [num(o, 'vocab'), hidden], 0.02);
    const wpe = z.normal('embeddings.position_embeddings.weight', [d.seq, hidden], 0.02);
    const emb = z.b.op('Add', [z.b.op('Gather', [wte, ids], { axis: 0 }), wpe]);
    let x = layerNorm(z, emb, 'embeddings.norm', hidden, EPS);
    for (let i = 0; i < layers; i++) x = encoderLayer(z, x, `encoder.layer.${i}`, d, i === layers - 1 ? 'hidden' : undefined);
    const cls = z.b.op('Gather', [x, z.int64([0], [])], { axis: 1 }); // [batch, hidden]
    const pooled = z.b.op('Tanh', [linear(z, cls, 'pooler.dense', hidden, hidden)]);
    const y = dense(z, pooled, 'classifier', hidden, classes, 'logits');
    z.b.output(x, 'float32', ['batch', d.seq, hidden]);
    z.b.output(y, 'float32', ['batch', classes]);
    return z.b.build();
  },
);
