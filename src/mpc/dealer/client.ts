/** A party's side of the dealer: local PRG draws, and (party 1) batched requests for corrections. */

import { Prg } from '../../crypto/prg.js';
import type { AndTriples, BeaverTriple, BitMulTriples, ConvTriple, Correlations, FrameChannel, MatmulTriple, PartyId, SharedBits } from '../context.js';
import { assembleFssRelu, type FssReluKey } from '../protocols/fss/keys.js';
import type { ConvGeom } from '../ring.js';
import { assemble, draw, LAZY_AND_BYTES, LazyAndTriples, LazyBitMul } from './correlations.js';
import {
  CONV_FIELDS,
  type CorrelationRequest,
  type DealerClientStats,
  describeRequest,
  encodeBatch,
  errMsg,
  MAGIC,
  SETUP_BYTES,
  sameRequest,
  sizesOf,
  T_END,
  VERSION,
} from './wire.js';

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
   * and must match them exactly. Resolves when all material is ready. `expand` (an offline phase):
   * large triples are expanded from the PRG now, not when consumed, so the online phase that follows
   * does none of this party's PRG work.
   */
  async prefetch(requests: CorrelationRequest[], expand = false): Promise<void> {
    if (this.failure) throw this.failure;
    requests.forEach(sizesOf); // validate all first so a bad entry cannot leave the streams half-advanced
    const entries = requests.map((r) => this.start(r));
    this.queue.push(...entries);
    this.flush();
    const values = await Promise.all(entries.map((e) => e.value));
    if (expand) for (const v of values) if (v instanceof LazyAndTriples || v instanceof LazyBitMul) v.expand();
  }

  /** Keystream bytes this party's PRG has expanded so far (what a batch takes, for `reserve`). */
  get prgBytes(): number {
    return this.prg.streamed;
  }

  /**
   * The next batch will expand about `bytes` of this party's PRG (as measured with `prgBytes` on a
   * batch of the same plan; undefined: not known, nothing to do): the page fetches that keystream
   * from WebCrypto now, and from then on nothing beyond what is reserved; in Node this resolves at
   * once (the keystream is computed on demand).
   */
  reserve(bytes: number | undefined): Promise<void> {
    // plus one small-draw buffer of the Prg, which may stand differently at the batch start
    return bytes === undefined ? Promise.resolve() : this.prg.reserve(bytes + 4096);
  }

  /** Number of prefetched correlations not consumed yet. */
  get pending(): number {
    return this.queue.length;
  }

  /** End the session: the party tells the dealer it is done, then closes its link. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A plan mismatch leaves the link intact, so the dealer still gets a normal end. Party 0 sends
    // one too: the dealer tells a finished party 0 from a dead one by it.
    if (!this.linkFailed) {
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
          `dealer client (party ${this.party}): correlation request ${describeRequest(req)} does not match the ` +
            `prefetched plan, which expected ${describeRequest(head.req)}`,
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
    if (req.kind === 'and' && this.prg.seekable && (req.n + 7) >>> 3 >= LAZY_AND_BYTES)
      return this.startLazy(req, new LazyAndTriples(this.prg, this.party, req.n), s.correction);
    if (req.kind === 'bitmul' && this.prg.seekable && 8 * req.n >= LAZY_AND_BYTES)
      return this.startLazy(req, new LazyBitMul(this.prg, this.party, req.n), s.correction);
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

  /** `start` for large AND / bit-multiplication triples: the parts are drawn when consumed (`lazy`, already forked). */
  private startLazy(req: CorrelationRequest, lazy: LazyAndTriples | LazyBitMul, correction: number): Entry {
    this.stats.requests++;
    this.history.push(req);
    if (this.party === 0) return { req, value: Promise.resolve(lazy) };
    this.batch.push(req);
    const value = new Promise<Uint8Array>((resolve, reject) => {
      if (this.waiters.length === 0) this.busySince = performance.now();
      this.waiters.push({ bytes: correction, resolve, reject });
    }).then((corr) => (lazy instanceof LazyAndTriples ? lazy.setC(corr) : lazy.setCorrection(corr)));
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
    this.party0Reads = next.then(
      () => undefined,
      () => undefined,
    );
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
