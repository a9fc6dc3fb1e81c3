/** VGG-16 (configuration D, no BatchNorm) with an ImageNet or CIFAR-sized classifier. */
import { activation, conv, linear, pool, ZooGraph } from './layers.js';
import { classesOption, defineModel, imageShape, inputOption, num, type ZooEntry } from './options.js';

/** Conv widths of VGG-16; 'M' is a 2×2/2 MaxPool. */
const CFG: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];

/**
 * VGG-16: 13 conv 3×3 + Relu, 5 MaxPools, then Gemm-Relu-Gemm-Relu-Gemm. The classifier's hidden
 * width is 4096 for inputs of at least 224×224 (ImageNet: 25088→4096→4096→classes) and 512 below
 * (CIFAR: 512→512→classes at 32×32); its input width follows the feature map size.
 */
export const vgg16: ZooEntry = defineModel(
  'vgg16',
  'VGG-16: 13 × (Conv 3×3 + Relu), 5 MaxPools, 3-layer Gemm classifier',
  [inputOption('3x224x224', 'image input shape CxHxW, H and W >= 32 (e.g. 3x224x224, 3x32x32)'), classesOption(1000)],
  (o) => {
    const { c, h, w } = imageShape(o);
    if (h < 32 || w < 32) throw new Error(`zoo model 'vgg16': option 'input' needs H and W >= 32 for 5 MaxPools (got '${c}x${h}x${w}')`);
    const classes = num(o, 'classes');
    const z = new ZooGraph('vgg16', o);
    let x = z.b.input('input', 'float32', ['batch', c, h, w]);
    let cin = c;
    let fh = h;
    let fw = w;
    let i = 0;
    for (const v of CFG) {
      if (v === 'M') {
        x = pool(z, x, 'max', 2, 2);
        fh = Math.floor(fh / 2);
        fw = Math.floor(fw / 2);
      } else {
        x = activation(z, conv(z, x, `features.${i++}`, { cin, cout: v, k: 3, pad: 1, bias: true }), 'relu');
        cin = v;
      }
    }
    const hidden = h >= 224 && w >= 224 ? 4096 : 512;
    x = z.b.op('Flatten', [x], { axis: 1 });
    x = activation(z, linear(z, x, 'classifier.0', cin * fh * fw, hidden), 'relu');
    x = activation(z, linear(z, x, 'classifier.1', hidden, hidden), 'relu');
    const y = linear(z, x, 'classifier.2', hidden, classes, 'logits');
    z.b.output(y, 'float32', ['batch', classes]);
    return z.b.build();
  },
);
