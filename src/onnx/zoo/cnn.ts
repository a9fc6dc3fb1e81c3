/** Small Fashion-MNIST CNNs: the project's own `fmnist-cnn` and LeCun's LeNet-5. */
import { activation, conv, linear, type PoolKind, pool, ZooGraph } from './layers.js';
import { defineModel, type OptionSpec, str, type ZooEntry } from './options.js';

function poolOption(dflt: PoolKind): OptionSpec {
  return { name: 'pool', description: 'pooling layers: avg (AveragePool) or max (MaxPool)', kind: 'choice', default: dflt, choices: ['avg', 'max'] };
}

/** Two conv/relu/pool stages and one linear layer on 1×28×28 input (≈ 20k parameters). */
const FMNIST_CNN_TITLE = 'Fashion-MNIST CNN: 2 × (Conv 3×3 + Relu + 2×2 pool), Gemm 1568→10';
export const fmnistCnn: ZooEntry = defineModel('fmnist-cnn', FMNIST_CNN_TITLE, [poolOption('avg')], (o) => {
  const z = new ZooGraph('fmnist-cnn', o);
  const kind = str(o, 'pool') as PoolKind;
  let x = z.b.input('input', 'float32', ['batch', 1, 28, 28]);
  x = pool(z, activation(z, conv(z, x, 'conv1', { cin: 1, cout: 16, k: 3, pad: 1, bias: true }), 'relu'), kind, 2, 2);
  x = pool(z, activation(z, conv(z, x, 'conv2', { cin: 16, cout: 32, k: 3, pad: 1, bias: true }), 'relu'), kind, 2, 2);
  x = z.b.op('Flatten', [x], { axis: 1 });
  const y = linear(z, x, 'fc', 32 * 7 * 7, 10, 'logits');
  z.b.output(y, 'float32', ['batch', 10]);
  return z.b.build();
});

/** LeNet-5 on 1×28×28 (first conv padded to keep 28×28), Relu activations. */
export const lenet5: ZooEntry = defineModel('lenet5', 'LeNet-5: Conv 5×5 (6, 16) + Relu + pool, Gemm 400→120→84→10', [poolOption('max')], (o) => {
  const z = new ZooGraph('lenet5', o);
  const kind = str(o, 'pool') as PoolKind;
  let x = z.b.input('input', 'float32', ['batch', 1, 28, 28]);
  x = pool(z, activation(z, conv(z, x, 'conv1', { cin: 1, cout: 6, k: 5, pad: 2, bias: true }), 'relu'), kind, 2, 2);
  x = pool(z, activation(z, conv(z, x, 'conv2', { cin: 6, cout: 16, k: 5, bias: true }), 'relu'), kind, 2, 2);
  x = z.b.op('Flatten', [x], { axis: 1 });
  x = activation(z, linear(z, x, 'fc1', 16 * 5 * 5, 120), 'relu');
  x = activation(z, linear(z, x, 'fc2', 120, 84), 'relu');
  const y = linear(z, x, 'fc3', 84, 10, 'logits');
  z.b.output(y, 'float32', ['batch', 10]);
  return z.b.build();
});
