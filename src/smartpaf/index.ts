/** SmartPAF: polynomial activation functions (PAFs) for CKKS inference, and their trainable runtime ops. */

export * from './at.js';
export * from './ct.js';
export * from './graph.js';
export * from './layers.js';
export * from './ops.js';
export * from './pa.js';
export * from './paf.js';
export * from './pipeline.js';
export * from './plot.js';
export * from './poly.js';
export * from './pool.js';
export * from './remez.js';
export * from './report.js';
