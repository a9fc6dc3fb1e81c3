/** Proteus graph surgery: partition, extract, optimize (ORT), reassemble. */

export * from './adversary.js';
export * from './anonymize.js';
export * from './atoms.js';
export * from './battery.js';
export * from './boost.js';
export * from './bundle.js';
export * from './corpus.js';
export * from './duplicates.js';
export * from './extract.js';
export * from './graph.js';
export * from './islands.js';
export * from './near-twin.js';
export * from './optimize.js';
export * from './partition.js';
export * from './pipeline.js';
export * from './rank.js';
export * from './reassemble.js';
export * from './recover.js';
export * from './report.js';
export * from './rng.js';
export * from './sentinel.js';
export * from './shuffle.js';
export * from './stats.js';
export * from './validity.js';
export * from './verify.js';
export * from './weights.js';
