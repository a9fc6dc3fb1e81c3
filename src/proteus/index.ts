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
export * from './stats.js';
export * from './sentinel.js';
export * from './anonymize.js';
export * from './bundle.js';
export * from './recover.js';
export * from './corpus.js';
export * from './adversary.js';
export * from './report.js';
