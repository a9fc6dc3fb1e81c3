/** Transports of the MPC engine: framing, TCP/TLS and in-memory FrameChannels, emulation, PeerChannel, handshake. */
export * from './framing.js';
export * from './tcp.js';
export * from './memory.js';
export * from './emulate.js';
export * from './peer.js';
export * from './handshake.js';
export * from './admit.js';
export { formatSeconds } from './queue.js';
