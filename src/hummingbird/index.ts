/** HummingBird: reduced-ring ReLU for MPC inference — simulator, search, fine-tuning, configs, report. */

export * from './config.js';
export * from './evaluator.js';
export * from './finetune.js';
export * from './graph.js';
export * from './op.js';
export * from './report.js';
export * from './search.js';
export * from './simulate.js';
