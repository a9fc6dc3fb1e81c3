/** Two-party protocols on shares: arithmetic (arith.ts) and comparison / ReLU (compare.ts). */
export * from './arith.js';
export * from './compare.js';
