/** SmartPAF: polynomial activation functions (PAFs) for CKKS inference, and their trainable runtime ops. */
export * from './poly.js';
export * from './remez.js';
export * from './paf.js';
export * from './pool.js';
export * from './ops.js';
export * from './graph.js';
export * from './plot.js';
