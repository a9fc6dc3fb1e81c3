/** Function secret sharing (Boyle et al. 2021): DCF keys from the dealer and the ReLU gate built on them. */
export * from './dcf.js';
export * from './keys.js';
export { aesCounter } from './mmo.js';
export * from './relu.js';
