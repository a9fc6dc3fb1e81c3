/** The only source of secret randomness in privml: AES-CTR PRG, seeds, secret integers, HMAC, GMAC. */

export { GMAC_KEY_BYTES, GMAC_NONCE_BYTES, gmac, gmacKey, gmacStream, gmacVerify } from './gmac.js';
export { hmacSha256, hmacVerify } from './hmac.js';
export { Prg, randomSeed, SEED_BYTES } from './prg.js';
export { CryptoRng, randomId, secretBytes, secretInt } from './random.js';
