/** Residual networks: CIFAR-style ResNet-20 and ImageNet-style ResNet-18 / ResNet-50 (torchvision v1.5 layout). */

import type { Model } from '../ir.js';
import { activation, batchNorm, conv, convBnAct, globalPoolFlatten, linear, pool, ZooGraph } from './layers.js';
import { classesOption, defineModel, imageShape, inputOption, num, type OptionValues, type ZooEntry } from './options.js';

/** Conv-BN projection shortcut used when a block changes shape; identity otherwise. */
function shortcut(z: ZooGraph, x: string, scope: string, cin: number, cout: number, stride: number): string {
  if (stride === 1 && cin === cout) return x;
  return batchNorm(z, conv(z, x, `${scope}.downsample.0`, { cin, cout, k: 1, stride }), `${scope}.downsample.1`, cout);
}

/** Basic block: 3×3 conv-BN-Relu, 3×3 conv-BN, + shortcut, Relu. */
function basicBlock(z: ZooGraph, x: string, scope: string, cin: number, cout: number, stride: number): string {
  let y = convBnAct(z, x, `${scope}.1`, { cin, cout, k: 3, stride, pad: 1 }, 'relu');
  y = convBnAct(z, y, `${scope}.2`, { cin: cout, cout, k: 3, pad: 1 }, 'none');
  return activation(z, z.b.op('Add', [y, shortcut(z, x, scope, cin, cout, stride)]), 'relu');
}

/** Bottleneck block (expansion 4, stride on the 3×3 conv as in torchvision). */
function bottleneck(z: ZooGraph, x: string, scope: string, cin: number, width: number, stride: number): string {
  const cout = width * 4;
  let y = convBnAct(z, x, `${scope}.1`, { cin, cout: width, k: 1 }, 'relu');
  y = convBnAct(z, y, `${scope}.2`, { cin: width, cout: width, k: 3, stride, pad: 1 }, 'relu');
  y = convBnAct(z, y, `${scope}.3`, { cin: width, cout, k: 1 }, 'none');
  return activation(z, z.b.op('Add', [y, shortcut(z, x, scope, cin, cout, stride)]), 'relu');
}

/** ResNet-20 for small images: 3 stages × 3 basic blocks at width w / 2w / 4w. */
export const resnet20: ZooEntry = defineModel(
  'resnet20',
  'CIFAR-style ResNet-20: 3×3 stem, 3 stages × 3 basic blocks (16/32/64 ch), GAP, Gemm',
  [
    inputOption('1x28x28', 'image input shape CxHxW (e.g. 1x28x28, 3x32x32)'),
    classesOption(10),
    { name: 'width', description: 'channels of the first stage (doubled per stage)', kind: 'int', default: 16 },
  ],
  (o) => {
    const { c, h, w } = imageShape(o);
    const classes = num(o, 'classes');
    const width = num(o, 'width');
    const z = new ZooGraph('resnet20', o);
    let x = z.b.input('input', 'float32', ['batch', c, h, w]);
    x = convBnAct(z, x, 'stem', { cin: c, cout: width, k: 3, pad: 1 }, 'relu');
    let cin = width;
    for (let stage = 0; stage < 3; stage++) {
      const cout = width << stage;
      for (let i = 0; i < 3; i++) {
        x = basicBlock(z, x, `layer${stage + 1}.${i}`, cin, cout, stage > 0 && i === 0 ? 2 : 1);
        cin = cout;
      }
    }
    const y = linear(z, globalPoolFlatten(z, x), 'fc', cin, classes, 'logits');
    z.b.output(y, 'float32', ['batch', classes]);
    return z.b.build();
  },
);

/** ImageNet ResNet: 7×7/2 stem + 3×3/2 MaxPool, four stages, GAP, Gemm (any input size ≥ 1 pixel). */
function imagenetResnet(name: string, o: OptionValues, kind: 'basic' | 'bottleneck', depths: number[]): Model {
  const { c, h, w } = imageShape(o);
  const classes = num(o, 'classes');
  const z = new ZooGraph(name, o);
  let x = z.b.input('input', 'float32', ['batch', c, h, w]);
  x = convBnAct(z, x, 'stem', { cin: c, cout: 64, k: 7, stride: 2, pad: 3 }, 'relu');
  x = pool(z, x, 'max', 3, 2, 1);
  let cin = 64;
  depths.forEach((n, stage) => {
    const width = 64 << stage;
    for (let i = 0; i < n; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      const scope = `layer${stage + 1}.${i}`;
      x = kind === 'basic' ? basicBlock(z, x, scope, cin, width, stride) : bottleneck(z, x, scope, cin, width, stride);
      cin = kind === 'basic' ? width : width * 4;
    }
  });
  const y = linear(z, globalPoolFlatten(z, x), 'fc', cin, classes, 'logits');
  z.b.output(y, 'float32', ['batch', classes]);
  return z.b.build();
}

/** ResNet-18: basic blocks [2, 2, 2, 2] (11.69M parameters at 1000 classes). */
export const resnet18: ZooEntry = defineModel(
  'resnet18',
  'ImageNet ResNet-18: 7×7 stem, basic blocks [2,2,2,2], GAP, Gemm',
  [inputOption('3x224x224'), classesOption(1000)],
  (o) => imagenetResnet('resnet18', o, 'basic', [2, 2, 2, 2]),
);

/** ResNet-50: bottleneck blocks [3, 4, 6, 3] (25.56M parameters at 1000 classes). */
export const resnet50: ZooEntry = defineModel(
  'resnet50',
  'ImageNet ResNet-50: 7×7 stem, bottleneck blocks [3,4,6,3], GAP, Gemm',
  [inputOption('3x224x224'), classesOption(1000)],
  (o) => imagenetResnet('resnet50', o, 'bottleneck', [3, 4, 6, 3]),
);
