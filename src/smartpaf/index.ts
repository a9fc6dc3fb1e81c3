/** SmartPAF: polynomial activation functions (PAFs) for CKKS inference, and their trainable runtime ops. */
export * from './poly.js';
export * from './remez.js';
export * from './paf.js';
export * from './pool.js';
export * from './ops.js';
export * from './graph.js';
export * from './plot.js';
export * from './layers.js';
export * from './ct.js';
export * from './at.js';
export * from './pa.js';
export * from './pipeline.js';
export * from './report.js';
