/**
 * Dealer wire format and request validation (all integers little-endian):
 * - setup, dealer → party p: 'D', version, p, seed[16];
 * - request batch, party 1 → dealer: type 1, flags (bit 0: more frames of this batch follow),
 *   u32 count, then per request a kind byte and its u32 fields;
 * - end, party → dealer: type 2 (normal close; party 0 sends it too, so the dealer can tell a
 *   finished party 0 from a dead one);
 * - response, dealer → party 1: per request its correction bytes, in ≤ 16 MiB frames, in order.
 */
import { SEED_BYTES } from '../../crypto/prg.js';
import { checkFssWindow, fssReluKeyBytes } from '../protocols/fss/keys.js';
import { type ConvGeom, convOutSize } from '../ring.js';

/** One correlation request: what a protocol asks the dealer for (kind and sizes only). */
export type CorrelationRequest =
  | { kind: 'beaver'; n: number }
  | { kind: 'matmul'; m: number; k: number; n: number }
  | { kind: 'conv'; geom: ConvGeom }
  | { kind: 'and'; n: number }
  | { kind: 'bits'; n: number }
  | { kind: 'bitmul'; n: number }
  | { kind: 'fssrelu'; n: number; lsb: number; msb: number; rounds: 1 | 2 };

/** Dealer-side counters (for reports). */
export interface DealerServerStats {
  /** Payload bytes the dealer sent to party 0 and to party 1 (setup included). */
  bytesSent: [number, number];
  /** Payload bytes received from party 1 (requests). */
  bytesReceived: number;
  /** Request batches answered (each is one round trip for party 1). */
  roundTrips: number;
  /** Individual correlation requests served. */
  requests: number;
}

/** Client-side counters (for reports). */
export interface DealerClientStats {
  /** Payload bytes received from the dealer (setup included; party 0: the setup frame only). */
  bytesReceived: number;
  /** Payload bytes sent to the dealer (requests and the 1-byte end frame; party 0: only the end frame). */
  bytesSent: number;
  /** Round trips to the dealer (request batches; always 0 for party 0). */
  roundTrips: number;
  /** Correlation requests made (prefetched or on demand). */
  requests: number;
  /** Wall time (ms) with at least one dealer response outstanding (party 1). */
  waitMs: number;
  /** Wall time (ms) spent expanding the PRG and assembling material locally. */
  localMs: number;
}

/** First byte of a setup frame ('D'). */
export const MAGIC = 0x44; // 'D'
/** Dealer wire version in the setup frame. */
export const VERSION = 1;
/** Setup frame size: magic, version, party id, seed. */
export const SETUP_BYTES = 3 + SEED_BYTES;
/** Frame type of a request batch. */
export const T_REQ = 1;
/** Frame type of a normal end of session. */
export const T_END = 2;
/** Request-frame flag: more frames of this batch follow. */
export const F_MORE = 1;
/** Largest response frame; bigger corrections are split. */
export const CHUNK_BYTES = 16 << 20;
/** Requests per request frame (a prefetch of more is split into several frames of one batch). */
export const REQS_PER_FRAME = 8192;
/** Largest array any single request may produce (elements), to bound memory on both sides. */
export const MAX_ELEMS = 1 << 26;

/** Wire code of each correlation kind. */
export const KIND_CODE = { beaver: 1, matmul: 2, conv: 3, and: 4, bits: 5, bitmul: 6, fssrelu: 7 } as const;
/** Convolution geometry fields, in wire order. */
export const CONV_FIELDS = ['n', 'c', 'h', 'w', 'co', 'kh', 'kw', 'strideH', 'strideW', 'padT', 'padL', 'padB', 'padR', 'group'] as const;

/** Sizes of a request's arrays: A, B, C element counts (bits for 'and'/'bits'), and correction bytes. */
export interface Sizes {
  la: number;
  lb: number;
  lc: number;
  correction: number;
  /** Bytes the dealer sends party 0 for this request (FSS correction words; 0 for the others). */
  toParty0?: number;
}

/** One-line description of a request (no material), for errors. */
export function describeRequest(r: CorrelationRequest): string {
  switch (r.kind) {
    case 'matmul':
      return `matmul(${r.m}x${r.k} · ${r.k}x${r.n})`;
    case 'conv':
      return `conv(${CONV_FIELDS.map((f) => `${f}=${r.geom[f]}`).join(',')})`;
    case 'fssrelu':
      return `fssrelu(${r.n} on [${r.lsb}, ${r.msb}), ${r.rounds} rounds)`;
    default:
      return `${r.kind}(${r.n})`;
  }
}

/** True when two requests have the same kind and sizes. */
export function sameRequest(a: CorrelationRequest, b: CorrelationRequest): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'matmul' && b.kind === 'matmul') return a.m === b.m && a.k === b.k && a.n === b.n;
  if (a.kind === 'conv' && b.kind === 'conv') return CONV_FIELDS.every((f) => a.geom[f] === b.geom[f]);
  if (a.kind === 'fssrelu' && b.kind === 'fssrelu') return a.n === b.n && a.lsb === b.lsb && a.msb === b.msb && a.rounds === b.rounds;
  return (a as { n: number }).n === (b as { n: number }).n;
}

/** Throw a one-line error unless `v` is an integer in [0, max]. */
export function checkCount(what: string, v: number, max = MAX_ELEMS): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new Error(`dealer: ${what} must be an integer in [0, ${max}], got ${v}`);
}

/** Bit-level requests are capped at the same byte budget as ring-element requests. */
export const MAX_BITS = MAX_ELEMS * 64;

/** Validate a request and compute its sizes (throws a one-line Error on bad sizes). */
export function sizesOf(r: CorrelationRequest): Sizes {
  switch (r.kind) {
    case 'beaver':
      checkCount('beaver n', r.n);
      return { la: r.n, lb: r.n, lc: r.n, correction: 8 * r.n };
    case 'matmul': {
      checkCount('matmul m', r.m);
      checkCount('matmul k', r.k);
      checkCount('matmul n', r.n);
      const [la, lb, lc] = [r.m * r.k, r.k * r.n, r.m * r.n];
      for (const [w, v] of [
        ['A', la],
        ['B', lb],
        ['C', lc],
      ] as const)
        checkCount(`matmul ${w} size`, v);
      return { la, lb, lc, correction: 8 * lc };
    }
    case 'conv': {
      const g = r.geom;
      for (const f of CONV_FIELDS) checkCount(`conv ${f}`, g[f]);
      const { oh, ow } = convOutSize(g);
      if (g.group < 1 || g.co < 1 || g.c % g.group !== 0 || g.co % g.group !== 0) {
        throw new Error(`dealer: conv group ${g.group} does not divide channels ${g.c} -> ${g.co}`);
      }
      const [la, lb, lc] = [g.n * g.c * g.h * g.w, g.co * (g.c / g.group) * g.kh * g.kw, g.n * g.co * oh * ow];
      for (const [w, v] of [
        ['input', la],
        ['weight', lb],
        ['output', lc],
      ] as const)
        checkCount(`conv ${w} size`, v);
      return { la, lb, lc, correction: 8 * lc };
    }
    case 'and':
      checkCount('and n', r.n, MAX_BITS);
      return { la: r.n, lb: r.n, lc: r.n, correction: (r.n + 7) >> 3 };
    case 'bits':
      checkCount('bits n', r.n);
      return { la: r.n, lb: 0, lc: r.n, correction: 8 * r.n };
    case 'bitmul':
      // la bits of r, lb ring elements A, lc = 2n ring elements ([r] then C = A·r)
      checkCount('bitmul n', r.n);
      return { la: r.n, lb: r.n, lc: 2 * r.n, correction: 16 * r.n };
    case 'fssrelu':
      checkFssWindow(r.n, r.lsb, r.msb, MAX_ELEMS >> 5);
      if (r.rounds !== 1 && r.rounds !== 2) throw new Error(`dealer: FSS ReLU rounds must be 1 or 2, got ${r.rounds}`);
      return { la: 0, lb: 0, lc: 0, correction: fssReluKeyBytes(1, r.n, r.lsb, r.msb, r.rounds), toParty0: fssReluKeyBytes(0, r.n, r.lsb, r.msb, r.rounds) };
    default:
      throw new Error(`dealer: unknown correlation kind '${(r as { kind: string }).kind}'`);
  }
}

/** The u32 fields of a request, in wire order. */
export function fieldsOf(r: CorrelationRequest): number[] {
  switch (r.kind) {
    case 'matmul':
      return [r.m, r.k, r.n];
    case 'conv':
      return CONV_FIELDS.map((f) => r.geom[f]);
    case 'fssrelu':
      return [r.n, r.lsb, r.msb, r.rounds];
    default:
      return [r.n];
  }
}

/** Encode requests as one or more request frames of a single batch. */
export function encodeBatch(reqs: CorrelationRequest[]): Uint8Array[] {
  const frames: Uint8Array[] = [];
  for (let start = 0; start < reqs.length; start += REQS_PER_FRAME) {
    const part = reqs.slice(start, start + REQS_PER_FRAME);
    const fields = part.map(fieldsOf);
    const size = 6 + part.length + fields.reduce((s, f) => s + 4 * f.length, 0);
    const buf = new Uint8Array(size);
    const dv = new DataView(buf.buffer);
    buf[0] = T_REQ;
    buf[1] = start + REQS_PER_FRAME < reqs.length ? F_MORE : 0;
    dv.setUint32(2, part.length, true);
    let o = 6;
    part.forEach((r, i) => {
      buf[o++] = KIND_CODE[r.kind];
      for (const v of fields[i]!) {
        dv.setUint32(o, v, true);
        o += 4;
      }
    });
    frames.push(buf);
  }
  return frames;
}

/** Decode one request frame (throws on malformed input without large allocations). */
export function decodeRequests(frame: Uint8Array): { reqs: CorrelationRequest[]; more: boolean } {
  const bad = (why: string): never => {
    throw new Error(`dealer: malformed request frame from party 1 (${why})`);
  };
  if (frame.length < 6) bad('too short');
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const count = dv.getUint32(2, true);
  if (count > frame.length) bad(`count ${count} exceeds the frame`);
  const reqs: CorrelationRequest[] = [];
  let o = 6;
  const u32 = (): number => {
    if (o + 4 > frame.length) bad('truncated');
    const v = dv.getUint32(o, true);
    o += 4;
    return v;
  };
  for (let i = 0; i < count; i++) {
    if (o >= frame.length) bad('truncated');
    const code = frame[o++]!;
    let r: CorrelationRequest;
    switch (code) {
      case KIND_CODE.beaver:
        r = { kind: 'beaver', n: u32() };
        break;
      case KIND_CODE.matmul:
        r = { kind: 'matmul', m: u32(), k: u32(), n: u32() };
        break;
      case KIND_CODE.conv: {
        const g = {} as Record<(typeof CONV_FIELDS)[number], number>;
        for (const f of CONV_FIELDS) g[f] = u32();
        r = { kind: 'conv', geom: g };
        break;
      }
      case KIND_CODE.and:
        r = { kind: 'and', n: u32() };
        break;
      case KIND_CODE.bits:
        r = { kind: 'bits', n: u32() };
        break;
      case KIND_CODE.bitmul:
        r = { kind: 'bitmul', n: u32() };
        break;
      case KIND_CODE.fssrelu:
        r = { kind: 'fssrelu', n: u32(), lsb: u32(), msb: u32(), rounds: u32() as 1 | 2 };
        break;
      default:
        return bad(`unknown kind code ${code}`);
    }
    reqs.push(r);
  }
  if (o !== frame.length) bad('trailing bytes');
  return { reqs, more: (frame[1]! & F_MORE) !== 0 };
}

/** One-line message of any thrown value. */
export function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
