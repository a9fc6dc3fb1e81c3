/** privml data sets: IDX files, Fashion-MNIST, CIFAR-10, and the shared in-memory Dataset helpers. */

export * from './cifar10.js';
export * from './dataset.js';
export * from './download.js';
export * from './fashion-mnist.js';
export * from './idx.js';
export * from './paths.js';
