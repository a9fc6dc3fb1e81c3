/** Shared fixtures of the SmartPAF pipeline tests: a tiny ReLU/MaxPool CNN and a learnable generated data set. */

import type { Dataset } from '../../src/nn/data/dataset.js';
import { writeIdx } from '../../src/nn/data/idx.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { floatTensor, type Model, type Tensor } from '../../src/onnx/ir.js';

/** Deterministic pseudo-random numbers (not cryptographic). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const rand = (dims: number[], seed: number, amp: number): Tensor => {
  const r = lcg(seed);
  return floatTensor(
    dims,
    Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * amp),
  );
};

/** Conv(1→4, 3×3) → Relu → MaxPool 2×2 → Conv(4→4) → Relu → Flatten → Gemm → 10 logits, on side×side images. */
export function tinyCnn(side = 12): Model {
  const b = new GraphBuilder('tiny');
  const x = b.input('x', 'float32', ['batch', 1, side, side]);
  let h = b.op('Conv', [x, b.init('conv1.w', rand([4, 1, 3, 3], 1, 0.6)), b.init('conv1.b', rand([4], 2, 0.1))], { pads: [1, 1, 1, 1] }, { name: 'conv1' });
  h = b.op('Relu', [h], {}, { name: 'relu1' });
  h = b.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool1' });
  h = b.op('Conv', [h, b.init('conv2.w', rand([4, 4, 3, 3], 3, 0.4)), b.init('conv2.b', rand([4], 4, 0.1))], { pads: [1, 1, 1, 1] }, { name: 'conv2' });
  h = b.op('Relu', [h], {}, { name: 'relu2' });
  h = b.op('Flatten', [h], {}, { name: 'flatten' });
  const half = side / 2;
  b.output(
    b.op('Gemm', [h, b.init('fc.w', rand([10, 4 * half * half], 5, 0.2)), b.init('fc.b', rand([10], 6, 0.05))], { transB: 1 }, { name: 'fc' }),
    'float32',
  );
  return b.build();
}

/** n images whose class k lights up a k-dependent patch, plus noise (learnable, deterministic). */
export function patternBytes(n: number, side: number, seed: number): { pixels: Uint8Array; labels: Uint8Array } {
  const r = lcg(seed);
  const pixels = new Uint8Array(n * side * side);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % 10;
    labels[i] = k;
    const [py, px] = [Math.floor(k / 4) * Math.floor(side / 3), (k % 4) * Math.floor(side / 4)];
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++) {
        const on = y >= py && y < py + 3 && x >= px && x < px + 3;
        pixels[i * side * side + y * side + x] = Math.min(255, Math.floor(r() * 60 + (on ? 180 : 0)));
      }
  }
  return { pixels, labels };
}

/** A generated Dataset (values in [0, 1]). */
export function patternDataset(n: number, side: number, seed: number): Dataset {
  const { pixels, labels } = patternBytes(n, side, seed);
  return {
    name: `pattern${side}`,
    images: Float32Array.from(pixels, (v) => v / 255),
    labels,
    n,
    shape: [1, side, side],
    classes: Array.from({ length: 10 }, (_, i) => `c${i}`),
  };
}

/** Write generated Fashion-MNIST-format files (28×28) into `dir` for the CLI. */
export function writeFakeFashionMnist(dir: string, nTrain: number, nTest: number): void {
  for (const [split, n, seed] of [
    ['train', nTrain, 11],
    ['t10k', nTest, 12],
  ] as const) {
    const { pixels, labels } = patternBytes(n, 28, seed);
    writeIdx(`${dir}/${split}-images-idx3-ubyte.gz`, [n, 28, 28], pixels, { gzip: true });
    writeIdx(`${dir}/${split}-labels-idx1-ubyte.gz`, [n], labels, { gzip: true });
  }
}
