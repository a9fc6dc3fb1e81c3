/**
 * Messages between a CKKS client that keeps its keys (the `privml serve --fhe` page) and the server
 * session that evaluates for it: one binary frame per message, u32 LE JSON length, JSON header,
 * payload (a privml FHE file: a server key or a ciphertext, never the secret key).
 *   client → server: {t:'key', kind:'public'|'relin'|'galois', step?}, {t:'infer', id}, {t:'fresh', id}
 *   server → client: {t:'ready'} (all keys loaded), {t:'refresh', id} (masked ciphertext to re-encrypt),
 *                    {t:'result', id, …report} (output ciphertext), {t:'error', message}
 */

/** Header of one message. */
export interface WireHeader {
  t: 'key' | 'infer' | 'fresh' | 'ready' | 'refresh' | 'result' | 'error';
  [k: string]: unknown;
}

/** Largest JSON header accepted (a header is a few hundred bytes). */
const MAX_HEADER = 1 << 16;

/** One frame: header and payload. */
export function encodeWire(h: WireHeader, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(h));
  const out = new Uint8Array(4 + json.length + payload.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  out.set(payload, 4 + json.length);
  return out;
}

/** Parse one frame; a one-line error for anything malformed. */
export function decodeWire(frame: Uint8Array): { h: WireHeader; payload: Uint8Array } {
  if (frame.length < 4) throw new Error(`malformed frame: ${frame.length} bytes`);
  const n = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0, true);
  if (n > MAX_HEADER || 4 + n > frame.length) throw new Error(`malformed frame: header of ${n} bytes in a ${frame.length}-byte frame`);
  let h: WireHeader;
  try {
    h = JSON.parse(new TextDecoder().decode(frame.subarray(4, 4 + n)));
  } catch {
    throw new Error('malformed frame: header is not JSON');
  }
  if (h === null || typeof h !== 'object' || typeof h.t !== 'string') throw new Error('malformed frame: header has no message type');
  return { h, payload: frame.subarray(4 + n) };
}

/** What the client needs to know of the server's plan: parameters, rotation steps, input packing. */
export interface ServedPlan {
  model: string;
  params: { polyModulusDegree: number; primeBits: number[]; scaleBits: number };
  galoisSteps: number[];
  input: { dims: number[]; slotOf: number[]; period: number; copies: number };
  refreshes: number;
  predictedServerKeyBytes: number;
}
