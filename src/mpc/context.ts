/**
 * The interfaces every two-party protocol is written against: a party's view of the session
 * (its index, a channel to the peer with round/byte accounting) and its source of correlated
 * randomness (the dealer). Transports and dealers implement these; protocols only consume them.
 *
 * Conventions
 * - Ring elements are Z_2^64 values held in `BigInt64Array` (two's-complement view).
 * - Bit vectors are packed little-endian: bit i lives in byte i >> 3 at position i & 7;
 *   a vector of n bits occupies ceil(n / 8) bytes and its unused high bits are zero.
 * - Both parties call protocol functions, and therefore request correlations, in the same order.
 */

import type { Profiler } from './profile.js';
import type { ConvGeom } from './ring.js';

/** Which of the two computing parties: 0 = data owner (client), 1 = model owner (server). */
export type PartyId = 0 | 1;

/** Communication counters of one party (payload bytes, excluding frame headers). */
export interface CommStats {
  bytesSent: number;
  bytesReceived: number;
  /** Communication rounds: one per `exchange`, one per one-way `send`/`recv` pair. */
  rounds: number;
}

/** One party's channel to its peer. */
export interface PeerChannel {
  /**
   * Send `msg` to the peer and receive the peer's message of the same round (counts one round).
   * `handOff`: the caller never modifies `msg` again, so a transport may send it without copying
   * (tcp.ts does for large frames); without it, `msg` may be reused as soon as this returns.
   */
  exchange(msg: Uint8Array, handOff?: boolean): Promise<Uint8Array>;
  /** One-way send (e.g. reveal to one party); the receiver calls `recv`. Counts one round. `handOff` as for exchange. */
  send(msg: Uint8Array, handOff?: boolean): void;
  /** Receive a one-way message sent with `send`. */
  recv(): Promise<Uint8Array>;
  /** Counters since creation. */
  readonly stats: CommStats;
}

/** Additive shares of elementwise Beaver triples: c = a·b (mod 2^64). */
export interface BeaverTriple {
  a: BigInt64Array;
  b: BigInt64Array;
  c: BigInt64Array;
}

/** Shares of a matrix triple: A is m×k, B is k×n, C = A·B (row-major, mod 2^64). */
export interface MatmulTriple {
  a: BigInt64Array;
  b: BigInt64Array;
  c: BigInt64Array;
}

/** Shares of a convolution triple: A shaped like the input, B like the weights, C = conv(A, B). */
export interface ConvTriple {
  a: BigInt64Array;
  b: BigInt64Array;
  c: BigInt64Array;
}

/** XOR shares of `n` AND triples, packed: c = a & b bitwise. */
export interface AndTriples {
  a: Uint8Array;
  b: Uint8Array;
  c: Uint8Array;
  /**
   * Optional: write part 0/1/2 (a/b/c) into `into` (its length is the part's), e.g. straight from the
   * PRG into wasm memory; the part is consumed (reading it again, by `fill` or the property, throws).
   */
  fill?(part: 0 | 1 | 2, into: Uint8Array): void;
}

/** `n` random bits r shared twice: XOR-shared (packed) and additively shared over Z_2^64. */
export interface SharedBits {
  xor: Uint8Array;
  arith: BigInt64Array;
}

/**
 * `n` random bits r shared in XOR and arithmetic form plus a Beaver pair for multiplying a shared
 * value by r: A uniform and C = A·r (additively shared). x·r then costs one opening, x − A.
 */
export interface BitMulTriples {
  xor: Uint8Array;
  arith: BigInt64Array;
  a: BigInt64Array;
  c: BigInt64Array;
  /** Optional: write a part's bytes into `into` (its byte length), consuming it (as AndTriples.fill). */
  fill?(part: 'xor' | 'arith' | 'a' | 'c', into: Uint8Array): void;
}

/** A party's source of correlated randomness (the dealer, as CrypTen's trusted third party). */
export interface Correlations {
  /** `n` elementwise Beaver triples. */
  beaver(n: number): Promise<BeaverTriple>;
  /** One matrix triple for an m×k by k×n product. */
  matmulTriple(m: number, k: number, n: number): Promise<MatmulTriple>;
  /** `n` bit-level AND triples. */
  andTriples(n: number): Promise<AndTriples>;
  /** `n` random bits shared in both XOR and arithmetic form (for bit-to-arithmetic conversion). */
  sharedBits(n: number): Promise<SharedBits>;
  /** `n` shared random bits with a Beaver pair (A, A·r) each (for B2A fused with x·r). */
  bitMulTriples(n: number): Promise<BitMulTriples>;
  /** One convolution triple for `geom` (secret-weight conv); optional so test doubles may omit it. */
  convTriple?(geom: ConvGeom): Promise<ConvTriple>;
}

/** Everything a protocol step needs on one party. */
export interface PartyContext {
  readonly party: PartyId;
  readonly peer: PeerChannel;
  readonly dealer: Correlations;
  /** Fixed-point fractional bits (default 16). */
  readonly fracBits: number;
  /** Optional time accounting per kernel kind and wait (`profile.ts`); protocols only add to it. */
  readonly profile?: Profiler;
}

/** A reliable, ordered, message-framed duplex link (TCP/TLS, emulated, or in-memory). */
export interface FrameChannel {
  /**
   * Queue one frame for the other end. `handOff`: the caller never modifies `frame` again, so it
   * may be written without a copy; without it, the frame is copied or written before this returns.
   */
  send(frame: Uint8Array, handOff?: boolean): void;
  /** The next frame from the other end; rejects with a clear Error if the link closes or fails. */
  recv(): Promise<Uint8Array>;
  /** Close the link (pending and later `recv` calls reject). */
  close(): void;
}
