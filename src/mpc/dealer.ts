/**
 * The dealer (CrypTen's trusted third party) and its clients. At setup the dealer draws one PRG seed
 * per party and sends it once. Afterwards party 0 derives ALL of its correlated randomness from its
 * seed locally and never hears from the dealer again; party 1 derives the random parts of its shares
 * (a1, b1, ...) from its seed and receives only correction terms (c1 = a·b − c0, ...) from the
 * dealer, which mirrors both PRG streams. Party 1 therefore sends the dealer each request's kind and
 * sizes (a few bytes, batched), and both parties must consume correlations in the same order.
 *
 * The dealer never receives inputs, shares or outputs, and nothing here logs seeds or material.
 *
 * Split by concern: dealer/wire.ts (format, validation), dealer/correlations.ts (maths),
 * dealer/server.ts (the dealer's loop), dealer/client.ts (a party's side, request batching).
 *
 * Wire format (all integers little-endian):
 * - setup, dealer → party p: 'D', version, p, seed[16];
 * - request batch, party 1 → dealer: type 1, flags (bit 0: more frames of this batch follow),
 *   u32 count, then per request a kind byte and its u32 fields;
 * - end, party → dealer: type 2 (normal close; from party 0 too, so its death is noticed);
 * - response, dealer → party 1: per request its correction bytes, in ≤ 16 MiB frames, in order.
 */

export { DealerClient } from './dealer/client.js';
export { type DealerHooks, DealerServer } from './dealer/server.js';
export type { CorrelationRequest, DealerClientStats, DealerServerStats } from './dealer/wire.js';
export { describeRequest } from './dealer/wire.js';
