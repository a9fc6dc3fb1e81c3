/** The only source of secret randomness in privml: AES-CTR PRG, seeds, secret integers, HMAC. */

export { hmacSha256, hmacVerify } from './hmac.js';
export { Prg, randomSeed, SEED_BYTES } from './prg.js';
export { CryptoRng, randomId, secretBytes, secretInt } from './random.js';
