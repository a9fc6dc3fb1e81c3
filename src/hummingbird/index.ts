/** HummingBird: reduced-ring ReLU for MPC inference — simulator, search, fine-tuning, configs, report. */
export * from './simulate.js';
export * from './op.js';
export * from './graph.js';
export * from './config.js';
export * from './evaluator.js';
export * from './search.js';
export * from './finetune.js';
export * from './report.js';
