/** MobileNetV2 (Sandler et al. 2018, torchvision layout): inverted residuals with linear bottlenecks. */
import { convBnAct, globalPoolFlatten, linear, ZooGraph } from './layers.js';
import { classesOption, defineModel, imageShape, inputOption, num, type ZooEntry } from './options.js';

/** Inverted-residual settings: expansion t, output channels c, repeats n, first stride s. */
const SETTINGS: [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** Round channels to a multiple of 8 without losing more than 10 % (torchvision's _make_divisible). */
function makeDivisible(v: number, divisor = 8): number {
  const n = Math.max(divisor, Math.floor(v + divisor / 2) - (Math.floor(v + divisor / 2) % divisor));
  return n < 0.9 * v ? n + divisor : n;
}

/** 1×1 expand (Relu6) → 3×3 depthwise (Relu6) → 1×1 linear projection, + input when shapes match. */
function invertedResidual(z: ZooGraph, x: string, scope: string, cin: number, cout: number, stride: number, t: number): string {
  const hidden = cin * t;
  let y = x;
  let part = 0;
  if (t !== 1) y = convBnAct(z, y, `${scope}.${part++}`, { cin, cout: hidden, k: 1 }, 'relu6');
  y = convBnAct(z, y, `${scope}.${part++}`, { cin: hidden, cout: hidden, k: 3, stride, pad: 1, group: hidden }, 'relu6');
  y = convBnAct(z, y, `${scope}.${part}`, { cin: hidden, cout, k: 1 }, 'none');
  return stride === 1 && cin === cout ? z.b.op('Add', [x, y]) : y;
}

/** MobileNetV2 with width multiplier (3.50M parameters at width 1, 1000 classes). */
export const mobilenetv2: ZooEntry = defineModel(
  'mobilenetv2',
  'MobileNetV2: inverted residuals (expansion 6, depthwise conv, Relu6 as Clip), GAP, Gemm',
  [inputOption('3x224x224'), classesOption(1000), { name: 'width', description: 'width multiplier', kind: 'float', default: 1.0 }],
  (o) => {
    const { c, h, w } = imageShape(o);
    const classes = num(o, 'classes');
    const mult = num(o, 'width');
    const z = new ZooGraph('mobilenetv2', o);
    let x = z.b.input('input', 'float32', ['batch', c, h, w]);
    let cin = makeDivisible(32 * mult);
    x = convBnAct(z, x, 'features.0', { cin: c, cout: cin, k: 3, stride: 2, pad: 1 }, 'relu6');
    let idx = 1;
    for (const [t, ch, n, s] of SETTINGS) {
      const cout = makeDivisible(ch * mult);
      for (let i = 0; i < n; i++) {
        x = invertedResidual(z, x, `features.${idx++}`, cin, cout, i === 0 ? s : 1, t);
        cin = cout;
      }
    }
    const last = makeDivisible(1280 * Math.max(1, mult));
    x = convBnAct(z, x, `features.${idx}`, { cin, cout: last, k: 1 }, 'relu6');
    const y = linear(z, globalPoolFlatten(z, x), 'classifier', last, classes, 'logits');
    z.b.output(y, 'float32', ['batch', classes]);
    return z.b.build();
  },
);
