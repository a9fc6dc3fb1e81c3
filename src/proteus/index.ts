/** Proteus graph surgery: partition, extract, optimize (ORT), reassemble. */
export * from './rng.js';
export * from './graph.js';
export * from './atoms.js';
export * from './partition.js';
export * from './extract.js';
export * from './optimize.js';
export * from './reassemble.js';
export * from './verify.js';
export * from './pipeline.js';
