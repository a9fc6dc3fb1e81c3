/** privml data sets: IDX files, Fashion-MNIST, CIFAR-10, and the shared in-memory Dataset helpers. */

export * from './dataset.js';
export * from './idx.js';
export * from './paths.js';
export * from './fashion-mnist.js';
export * from './cifar10.js';
export * from './download.js';
