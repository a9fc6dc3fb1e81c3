/** Transports of the MPC engine: framing, TCP/TLS and in-memory FrameChannels, emulation, PeerChannel, handshake. */

export * from './admit.js';
export * from './emulate.js';
export * from './framing.js';
export * from './handshake.js';
export * from './memory.js';
export * from './peer.js';
export { formatSeconds } from './queue.js';
export * from './tcp.js';
