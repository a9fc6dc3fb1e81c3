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
 * Wire format (all integers little-endian):
 * - setup, dealer → party p: 'D', version, p, seed[16];
 * - request batch, party 1 → dealer: type 1, flags (bit 0: more frames of this batch follow),
 *   u32 count, then per request a kind byte and its u32 fields;
 * - end, party 1 → dealer: type 2 (normal close);
 * - response, dealer → party 1: per request its correction bytes, in ≤ 16 MiB frames, in order.
 */

import type {
  AndTriples,
  BeaverTriple,
  BitMulTriples,
  ConvTriple,
  Correlations,
  FrameChannel,
  MatmulTriple,
  PartyId,
  SharedBits,
} from './context.js';
import { Prg, randomSeed, SEED_BYTES } from '../crypto/prg.js';
import { assembleFssRelu, checkFssWindow, dealFssRelu, drawFssRelu, fssReluKeyBytes, type FssDrawn, type FssReluKey } from './protocols/fss/keys.js';
import { bitsToRing, convOutSize, ringAdd, ringConv2d, ringMatmul, ringMul, ringSub, ringToBytes, type ConvGeom } from './ring.js';

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
  /** Payload bytes sent to the dealer (requests; always 0 for party 0). */
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

const MAGIC = 0x44; // 'D'
const VERSION = 1;
const SETUP_BYTES = 3 + SEED_BYTES;
const T_REQ = 1;
const T_END = 2;
const F_MORE = 1;
/** Largest response frame; bigger corrections are split. */
const CHUNK_BYTES = 16 << 20;
/** Requests per request frame (a prefetch of more is split into several frames of one batch). */
const REQS_PER_FRAME = 8192;
/** Largest array any single request may produce (elements), to bound memory on both sides. */
const MAX_ELEMS = 1 << 26;

const KIND_CODE = { beaver: 1, matmul: 2, conv: 3, and: 4, bits: 5, bitmul: 6, fssrelu: 7 } as const;
const CONV_FIELDS = ['n', 'c', 'h', 'w', 'co', 'kh', 'kw', 'strideH', 'strideW', 'padT', 'padL', 'padB', 'padR', 'group'] as const;

/** Sizes of a request's arrays: A, B, C element counts (bits for 'and'/'bits'), and correction bytes. */
interface Sizes {
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

function sameRequest(a: CorrelationRequest, b: CorrelationRequest): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'matmul' && b.kind === 'matmul') return a.m === b.m && a.k === b.k && a.n === b.n;
  if (a.kind === 'conv' && b.kind === 'conv') return CONV_FIELDS.every((f) => a.geom[f] === b.geom[f]);
  if (a.kind === 'fssrelu' && b.kind === 'fssrelu') return a.n === b.n && a.lsb === b.lsb && a.msb === b.msb && a.rounds === b.rounds;
  return (a as { n: number }).n === (b as { n: number }).n;
}

function checkCount(what: string, v: number, max = MAX_ELEMS): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new Error(`dealer: ${what} must be an integer in [0, ${max}], got ${v}`);
}

/** Bit-level requests are capped at the same byte budget as ring-element requests. */
const MAX_BITS = MAX_ELEMS * 64;

/** Validate a request and compute its sizes (throws a one-line Error on bad sizes). */
function sizesOf(r: CorrelationRequest): Sizes {
  switch (r.kind) {
    case 'beaver':
      checkCount('beaver n', r.n);
      return { la: r.n, lb: r.n, lc: r.n, correction: 8 * r.n };
    case 'matmul': {
      checkCount('matmul m', r.m);
      checkCount('matmul k', r.k);
      checkCount('matmul n', r.n);
      const [la, lb, lc] = [r.m * r.k, r.k * r.n, r.m * r.n];
      for (const [w, v] of [['A', la], ['B', lb], ['C', lc]] as const) checkCount(`matmul ${w} size`, v);
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
      for (const [w, v] of [['input', la], ['weight', lb], ['output', lc]] as const) checkCount(`conv ${w} size`, v);
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

function fieldsOf(r: CorrelationRequest): number[] {
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
function encodeBatch(reqs: CorrelationRequest[]): Uint8Array[] {
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
function decodeRequests(frame: Uint8Array): { reqs: CorrelationRequest[]; more: boolean } {
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

/** XOR of two equal-length byte arrays (word-wise where possible). */
function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  const words = a.length >> 2;
  if (words > 0 && a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const aw = new Uint32Array(a.buffer, a.byteOffset, words), bw = new Uint32Array(b.buffer, b.byteOffset, words);
    const ow = new Uint32Array(out.buffer, 0, words);
    for (let i = 0; i < words; i++) ow[i] = aw[i]! ^ bw[i]!;
    for (let i = words * 4; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  } else {
    for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  }
  return out;
}

/** (a0⊕a1)&(b0⊕b1)⊕c0, bytewise in 32-bit words. */
function andCorrection(a0: Uint8Array, a1: Uint8Array, b0: Uint8Array, b1: Uint8Array, c0: Uint8Array): Uint8Array {
  const a = xorBytes(a0, a1), b = xorBytes(b0, b1);
  const words = a.length >> 2;
  const aw = new Uint32Array(a.buffer, 0, words), bw = new Uint32Array(b.buffer, 0, words);
  for (let i = 0; i < words; i++) aw[i] = aw[i]! & bw[i]!;
  for (let i = words * 4; i < a.length; i++) a[i] = a[i]! & b[i]!;
  return xorBytes(a, c0);
}

/** The random parts party `p` draws from its PRG for request `r`, in the fixed draw order. */
interface Drawn {
  a: BigInt64Array | Uint8Array;
  b: BigInt64Array | Uint8Array;
  /** Party 0's c (its own third share); undefined for party 1 (c comes from the dealer). */
  c?: BigInt64Array | Uint8Array;
  /** FSS requests: the PRG-expanded part of the key. */
  fss?: FssDrawn;
}

function draw(prg: Prg, party: PartyId, r: CorrelationRequest, s: Sizes): Drawn {
  if (r.kind === 'fssrelu') return { a: new Uint8Array(0), b: new Uint8Array(0), fss: drawFssRelu(prg, party, r.n, r.lsb, r.msb, r.rounds) };
  if (r.kind === 'and') {
    const a = prg.bits(s.la), b = prg.bits(s.lb);
    return party === 0 ? { a, b, c: prg.bits(s.lc) } : { a, b };
  }
  if (r.kind === 'bits') {
    // a = XOR share of r; party 0's c = its arithmetic share; party 1's arithmetic share is the correction.
    const a = prg.bits(s.la);
    return party === 0 ? { a, b: new Uint8Array(0), c: prg.ring(s.lc) } : { a, b: new Uint8Array(0) };
  }
  if (r.kind === 'bitmul') {
    // a = XOR share of r, b = share of A; party 0's c = its shares of [r] and C; party 1's come as the correction.
    const a = prg.bits(s.la), b = prg.ring(s.lb);
    return party === 0 ? { a, b, c: prg.ring(s.lc) } : { a, b };
  }
  const a = prg.ring(s.la), b = prg.ring(s.lb);
  return party === 0 ? { a, b, c: prg.ring(s.lc) } : { a, b };
}

/** The dealer's correction for party 1, from both parties' drawn parts. */
function correction(r: CorrelationRequest, p0: Drawn, p1: Drawn): Uint8Array {
  if (r.kind === 'and') {
    return andCorrection(p0.a as Uint8Array, p1.a as Uint8Array, p0.b as Uint8Array, p1.b as Uint8Array, p0.c as Uint8Array);
  }
  if (r.kind === 'bits') {
    const bits = bitsToRing(xorBytes(p0.a as Uint8Array, p1.a as Uint8Array), r.n);
    return ringToBytes(ringSub(bits, p0.c as BigInt64Array));
  }
  if (r.kind === 'bitmul') {
    const bits = bitsToRing(xorBytes(p0.a as Uint8Array, p1.a as Uint8Array), r.n);
    const a = ringAdd(p0.b as BigInt64Array, p1.b as BigInt64Array);
    const both = new BigInt64Array(2 * r.n);
    both.set(bits, 0);
    both.set(ringMul(a, bits), r.n);
    return ringToBytes(ringSub(both, p0.c as BigInt64Array));
  }
  if (r.kind === 'fssrelu') throw new Error('dealer: FSS keys are dealt by dealFssRelu, not as a correction');
  const a = ringAdd(p0.a as BigInt64Array, p1.a as BigInt64Array);
  const b = ringAdd(p0.b as BigInt64Array, p1.b as BigInt64Array);
  const prod = r.kind === 'beaver' ? ringMul(a, b) : r.kind === 'matmul' ? ringMatmul(a, b, r.m, r.k, r.n) : ringConv2d(a, b, r.geom);
  return ringToBytes(ringSub(prod, p0.c as BigInt64Array));
}

/** Ring elements from received bytes: a view when aligned, else a copy. */
function ringView(bytes: Uint8Array, n: number): BigInt64Array {
  if (bytes.byteOffset % 8 === 0) return new BigInt64Array(bytes.buffer, bytes.byteOffset, n);
  const out = new BigInt64Array(n);
  new Uint8Array(out.buffer).set(bytes.subarray(0, 8 * n));
  return out;
}

/** Assemble party `p`'s material from its drawn parts and (party 1) the dealer's correction. */
function assemble(r: CorrelationRequest, d: Drawn, corr: Uint8Array | undefined): unknown {
  if (r.kind === 'fssrelu') return assembleFssRelu(1, d.fss!, corr!, r.n, r.lsb, r.msb, r.rounds);
  const c = d.c ?? (r.kind === 'and' ? corr! : ringView(corr!, corr!.length / 8));
  if (r.kind === 'bits') return { xor: d.a as Uint8Array, arith: c as BigInt64Array } satisfies SharedBits;
  if (r.kind === 'bitmul') {
    const rc = c as BigInt64Array;
    return { xor: d.a as Uint8Array, arith: rc.subarray(0, r.n), a: d.b as BigInt64Array, c: rc.subarray(r.n) } satisfies BitMulTriples;
  }
  return { a: d.a, b: d.b, c };
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The dealer: sends each party its seed, then answers party 1's request batches with corrections
 * until party 1 ends the session. Party 0's link is used for the setup frame only.
 */
export class DealerServer {
  /** Counters for reports. */
  readonly stats: DealerServerStats = { bytesSent: [0, 0], bytesReceived: 0, roundTrips: 0, requests: 0 };
  private started = false;

  /** Serve party 0 over `link0` (setup only) and party 1 over `link1` (setup + requests). */
  constructor(
    private readonly link0: FrameChannel,
    private readonly link1: FrameChannel,
  ) {}

  /** Run the dealer; resolves when party 1 ends normally, rejects (and closes both links) on any failure. */
  async serve(): Promise<void> {
    if (this.started) throw new Error('dealer: serve() was already called');
    this.started = true;
    try {
      const mirror0 = this.setup(this.link0, 0);
      const mirror1 = this.setup(this.link1, 1);
      for (;;) {
        let frame: Uint8Array;
        try {
          frame = await this.link1.recv();
        } catch (e) {
          throw new Error(`dealer: link to party 1 failed before the session ended: ${errMsg(e)}`);
        }
        this.stats.bytesReceived += frame.length;
        if (frame.length === 1 && frame[0] === T_END) return;
        if (frame[0] !== T_REQ) throw new Error(`dealer: malformed frame from party 1 (type ${frame[0]})`);
        const { reqs, more } = decodeRequests(frame);
        for (const r of reqs) {
          const s = sizesOf(r);
          let corr: Uint8Array;
          if (r.kind === 'fssrelu') {
            // FSS correction words are common to both keys: party 0 gets them too, over its own link.
            const k = dealFssRelu(draw(mirror0, 0, r, s).fss!, draw(mirror1, 1, r, s).fss!, r.n, r.lsb, r.msb, r.rounds);
            for (let o = 0; o < k.to0.length; o += CHUNK_BYTES) {
              const chunk = k.to0.subarray(o, Math.min(k.to0.length, o + CHUNK_BYTES));
              this.link0.send(chunk);
              this.stats.bytesSent[0] += chunk.length;
            }
            corr = k.to1;
          } else corr = correction(r, draw(mirror0, 0, r, s), draw(mirror1, 1, r, s));
          for (let o = 0; o < corr.length; o += CHUNK_BYTES) {
            const chunk = corr.subarray(o, Math.min(corr.length, o + CHUNK_BYTES));
            this.link1.send(chunk);
            this.stats.bytesSent[1] += chunk.length;
          }
          this.stats.requests++;
        }
        if (!more) this.stats.roundTrips++;
      }
    } catch (e) {
      this.link0.close();
      this.link1.close();
      throw e instanceof Error ? e : new Error(String(e));
    }
  }

  /** Send party `p` a fresh seed; returns the dealer's mirror of that party's PRG. */
  private setup(link: FrameChannel, p: PartyId): Prg {
    const seed = randomSeed();
    const frame = new Uint8Array(SETUP_BYTES);
    frame.set([MAGIC, VERSION, p]);
    frame.set(seed, 3);
    const prg = new Prg(seed);
    seed.fill(0);
    try {
      link.send(frame);
    } catch (e) {
      throw new Error(`dealer: cannot send setup to party ${p}: ${errMsg(e)}`);
    }
    frame.fill(0);
    this.stats.bytesSent[p] += SETUP_BYTES;
    return prg;
  }
}

/** A pending dealer response (party 1). */
interface Waiter {
  bytes: number;
  resolve(b: Uint8Array): void;
  reject(e: Error): void;
}

/** A prepared correlation (prefetched or in flight). */
interface Entry {
  req: CorrelationRequest;
  value: Promise<unknown>;
}

/**
 * A party's view of the dealer (implements Correlations). Party 0 derives everything from its seed;
 * party 1 derives its random parts and fetches corrections, batching the requests made in one tick.
 * `prefetch` prepares a whole request list ahead (offline phase); later calls must follow that list.
 */
export class DealerClient implements Correlations {
  /** Counters for reports. */
  readonly stats: DealerClientStats;
  /** Requests made so far, in order (e.g. to record a model's plan for a later `prefetch`). */
  readonly history: CorrelationRequest[] = [];
  private readonly queue: Entry[] = [];
  private readonly waiters: Waiter[] = [];
  private batch: CorrelationRequest[] = [];
  private flushScheduled = false;
  private pumping = false;
  private busySince = 0;
  private failure: Error | undefined;
  private linkFailed = false;
  private closed = false;
  /** Party 0: chain of pending FSS key reads (they arrive in request order). */
  private party0Reads: Promise<void> = Promise.resolve();

  private constructor(
    /** Which party this client serves. */
    readonly party: PartyId,
    private readonly link: FrameChannel,
    private readonly prg: Prg,
  ) {
    this.stats = { bytesReceived: SETUP_BYTES, bytesSent: 0, roundTrips: 0, requests: 0, waitMs: 0, localMs: 0 };
  }

  /** Receive this party's seed from the dealer over `link` and return the ready client. */
  static async connect(party: PartyId, link: FrameChannel): Promise<DealerClient> {
    let frame: Uint8Array;
    try {
      frame = await link.recv();
    } catch (e) {
      throw new Error(`dealer client (party ${party}): no setup from the dealer: ${errMsg(e)}`);
    }
    if (frame.length !== SETUP_BYTES || frame[0] !== MAGIC || frame[1] !== VERSION) {
      throw new Error(`dealer client (party ${party}): malformed setup frame from the dealer`);
    }
    if (frame[2] !== party) throw new Error(`dealer client (party ${party}): the dealer set this link up for party ${frame[2]}`);
    const prg = new Prg(frame.subarray(3));
    frame.fill(0);
    return new DealerClient(party, link, prg);
  }

  /** `n` elementwise Beaver triples. */
  beaver(n: number): Promise<BeaverTriple> {
    return this.take({ kind: 'beaver', n }) as Promise<BeaverTriple>;
  }

  /** One matrix triple for an m×k by k×n product. */
  matmulTriple(m: number, k: number, n: number): Promise<MatmulTriple> {
    return this.take({ kind: 'matmul', m, k, n }) as Promise<MatmulTriple>;
  }

  /** One convolution triple for `geom`. */
  convTriple(geom: ConvGeom): Promise<ConvTriple> {
    const g = {} as ConvGeom;
    for (const f of CONV_FIELDS) g[f] = geom[f];
    return this.take({ kind: 'conv', geom: g }) as Promise<ConvTriple>;
  }

  /** `n` bit-level AND triples (XOR-shared, packed). */
  andTriples(n: number): Promise<AndTriples> {
    return this.take({ kind: 'and', n }) as Promise<AndTriples>;
  }

  /** `n` random bits, XOR-shared and additively shared. */
  sharedBits(n: number): Promise<SharedBits> {
    return this.take({ kind: 'bits', n }) as Promise<SharedBits>;
  }

  /** `n` shared random bits r with Beaver pairs (A, A·r). */
  bitMulTriples(n: number): Promise<BitMulTriples> {
    return this.take({ kind: 'bitmul', n }) as Promise<BitMulTriples>;
  }

  /** Material for `n` FSS ReLU gates on bits [lsb, msb) (party 0 receives correction words too). */
  fssRelu(n: number, lsb: number, msb: number, rounds: 1 | 2 = 1): Promise<FssReluKey> {
    return this.take({ kind: 'fssrelu', n, lsb, msb, rounds }) as Promise<FssReluKey>;
  }

  /**
   * Prepare `requests` ahead, in order (party 1: one batched round trip); later calls consume them
   * and must match them exactly. Resolves when all material is ready.
   */
  async prefetch(requests: CorrelationRequest[]): Promise<void> {
    if (this.failure) throw this.failure;
    requests.forEach(sizesOf); // validate all first so a bad entry cannot leave the streams half-advanced
    const entries = requests.map((r) => this.start(r));
    this.queue.push(...entries);
    this.flush();
    await Promise.all(entries.map((e) => e.value));
  }

  /** Number of prefetched correlations not consumed yet. */
  get pending(): number {
    return this.queue.length;
  }

  /** End the session: party 1 tells the dealer it is done; both close their link. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A plan mismatch leaves the link intact, so the dealer still gets a normal end.
    if (this.party === 1 && !this.linkFailed) {
      try {
        this.flush();
        this.link.send(new Uint8Array([T_END]));
        this.stats.bytesSent += 1;
      } catch {
        // the link is already gone; closing below is all that is left to do
      }
    }
    this.link.close();
    this.fail(new Error(`dealer client (party ${this.party}): closed`));
  }

  /** Consume the next correlation: the head of the prefetched queue (checked) or a fresh request. */
  private take(req: CorrelationRequest): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const head = this.queue.shift();
    if (head) {
      if (!sameRequest(head.req, req)) {
        const err = new Error(
          `dealer client (party ${this.party}): correlation request ${describeRequest(req)} does not match the prefetched plan, which expected ${describeRequest(head.req)}`,
        );
        this.fail(err);
        return Promise.reject(err);
      }
      return head.value;
    }
    let entry: Entry;
    try {
      entry = this.start(req);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    this.scheduleFlush();
    return entry.value;
  }

  /** Draw this party's PRG parts now (fixing the stream order) and, for party 1, queue the request. */
  private start(req: CorrelationRequest): Entry {
    if (this.failure) throw this.failure;
    const s = sizesOf(req);
    const t0 = performance.now();
    const drawn = draw(this.prg, this.party, req, s);
    this.stats.localMs += performance.now() - t0;
    this.stats.requests++;
    this.history.push(req);
    if (this.party === 0 && req.kind === 'fssrelu') {
      const value = this.readParty0(s.toParty0!).then((bytes) => assembleFssRelu(0, drawn.fss!, bytes, req.n, req.lsb, req.msb, req.rounds));
      value.catch(() => {}); // reported to the consumer
      return { req, value };
    }
    if (this.party === 0) return { req, value: Promise.resolve(assemble(req, drawn, undefined)) };
    this.batch.push(req);
    const value = new Promise<Uint8Array>((resolve, reject) => {
      if (this.waiters.length === 0) this.busySince = performance.now();
      this.waiters.push({ bytes: s.correction, resolve, reject });
    }).then((corr) => {
      const t1 = performance.now();
      const out = assemble(req, drawn, corr);
      this.stats.localMs += performance.now() - t1;
      return out;
    });
    value.catch(() => {}); // a failure is reported to whoever consumes the entry
    return { req, value };
  }

  /** Party 0: the next `bytes` bytes the dealer sends (FSS correction words), in request order. */
  private readParty0(bytes: number): Promise<Uint8Array> {
    const next = this.party0Reads.then(async () => {
      if (this.failure) throw this.failure;
      const t0 = performance.now();
      const buf = new Uint8Array(bytes);
      try {
        for (let got = 0; got < bytes; ) {
          const part = await this.link.recv();
          this.stats.bytesReceived += part.length;
          if (got + part.length > bytes) throw new Error('the dealer sent more bytes than the FSS keys need');
          buf.set(part, got);
          got += part.length;
        }
      } catch (e) {
        this.linkFailed = true;
        this.fail(new Error(`dealer client (party 0): link to the dealer failed while receiving FSS keys: ${errMsg(e)}`));
        throw this.failure!;
      }
      this.stats.waitMs += performance.now() - t0;
      return buf;
    });
    this.party0Reads = next.then(() => undefined, () => undefined);
    return next;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Requests made in the same tick (e.g. Promise.all over protocols) share one round trip.
    queueMicrotask(() => this.flush());
  }

  /** Send the batched requests (party 1) and make sure responses are being read. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.batch.length === 0 || this.failure) return;
    const reqs = this.batch;
    this.batch = [];
    try {
      for (const f of encodeBatch(reqs)) {
        this.link.send(f);
        this.stats.bytesSent += f.length;
      }
    } catch (e) {
      this.linkFailed = true;
      this.fail(new Error(`dealer client (party 1): cannot send requests to the dealer: ${errMsg(e)}`));
      return;
    }
    this.stats.roundTrips++;
    void this.pump();
  }

  /** Read responses into the waiters, in order, while any are outstanding. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.waiters.length > 0 && !this.failure) {
        const w = this.waiters[0]!;
        let buf: Uint8Array;
        if (w.bytes === 0) {
          buf = new Uint8Array(0);
        } else {
          const first = await this.link.recv();
          this.stats.bytesReceived += first.length;
          if (first.length === w.bytes) {
            buf = first;
          } else {
            // a correction split into several frames
            buf = new Uint8Array(w.bytes);
            let got = 0;
            let part = first;
            for (;;) {
              if (got + part.length > w.bytes) throw new Error('the dealer sent more bytes than a correction needs');
              buf.set(part, got);
              got += part.length;
              if (got === w.bytes) break;
              part = await this.link.recv();
              this.stats.bytesReceived += part.length;
            }
          }
        }
        this.waiters.shift();
        if (this.waiters.length === 0) this.stats.waitMs += performance.now() - this.busySince;
        w.resolve(buf);
      }
    } catch (e) {
      this.linkFailed = true;
      this.fail(new Error(`dealer client (party 1): link to the dealer failed: ${errMsg(e)}`));
    } finally {
      this.pumping = false;
    }
  }

  /** Mark the client failed and reject everything outstanding. */
  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
    const ws = this.waiters.splice(0);
    for (const w of ws) w.reject(err);
  }
}
