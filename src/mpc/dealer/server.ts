/** The dealer process's loop: seeds to both parties, then corrections for party 1's requests. */

import { Prg, randomSeed } from '../../crypto/prg.js';
import type { FrameChannel, PartyId } from '../context.js';
import { dealFssReluSteps } from '../protocols/fss/keys.js';
import { andCorrectionStreamed, bitMulCorrectionStreamed, correction, draw } from './correlations.js';
import { CHUNK_BYTES, type DealerServerStats, decodeRequests, errMsg, MAGIC, SETUP_BYTES, sizesOf, T_END, T_REQ, VERSION } from './wire.js';

/** Observation points of the dealer loop (fault-injection tests, tracing). */
export interface DealerHooks {
  /** Called when request frame number `index` (from 0) arrives, before it is answered. */
  onBatch?: (index: number) => void;
}

/**
 * The dealer: sends each party its seed, then answers party 1's request batches with corrections
 * until party 1 ends the session. Party 0's link carries the setup frame and, at its end, party 0's
 * end frame; the dealer watches it, so a party 0 that dies fails the session at once.
 */
export class DealerServer {
  /** Counters for reports. */
  readonly stats: DealerServerStats = { bytesSent: [0, 0], bytesReceived: 0, roundTrips: 0, requests: 0 };
  private started = false;

  /** Serve party 0 over `link0` (setup only) and party 1 over `link1` (setup + requests). */
  constructor(
    private readonly link0: FrameChannel,
    private readonly link1: FrameChannel,
    private readonly hooks: DealerHooks = {},
  ) {}

  /** Run the dealer; resolves when party 1 ends normally, rejects (and closes both links) on any failure. */
  async serve(): Promise<void> {
    if (this.started) throw new Error('dealer: serve() was already called');
    this.started = true;
    try {
      const mirror0 = this.setup(this.link0, 0);
      const mirror1 = this.setup(this.link1, 1);
      // Party 0 sends nothing until its end frame: anything else on its link means it is gone.
      let done = false;
      let gone0: Error | undefined;
      this.link0.recv().then(
        (f) => {
          if (f.length === 1 && f[0] === T_END) return;
          gone0 = new Error(`dealer: party 0 sent an unexpected frame (${f.length} bytes)`);
          if (!done) this.link1.close();
        },
        (e: unknown) => {
          gone0 = new Error(`dealer: party 0 left before the session ended: ${errMsg(e)}`);
          if (!done) this.link1.close();
        },
      );
      let lastYield = performance.now();
      for (let batch = 0; ; batch++) {
        let frame: Uint8Array;
        try {
          frame = await this.link1.recv();
        } catch (e) {
          throw gone0 ?? new Error(`dealer: link to party 1 failed before the session ended: ${errMsg(e)}`);
        }
        this.stats.bytesReceived += frame.length;
        if (frame.length === 1 && frame[0] === T_END) {
          done = true;
          return;
        }
        if (frame[0] !== T_REQ) throw new Error(`dealer: malformed frame from party 1 (type ${frame[0]})`);
        this.hooks.onBatch?.(batch);
        const { reqs, more } = decodeRequests(frame);
        for (const r of reqs) {
          // Let heartbeats and a dead party 0 be noticed during a long prefetch.
          if (performance.now() - lastYield > 50) {
            await new Promise((res) => setImmediate(res));
            lastYield = performance.now();
            if (gone0) throw gone0;
          }
          const s = sizesOf(r);
          let corr: Uint8Array;
          if (r.kind === 'fssrelu') {
            // FSS correction words are common to both keys: party 0 gets them too, over its own link.
            // Level by level, yielding like between requests: a large layer's keys take seconds
            // and must not silence the heartbeats (the parties would declare the dealer dead).
            const steps = dealFssReluSteps(draw(mirror0, 0, r, s).fss!, draw(mirror1, 1, r, s).fss!, r.n, r.lsb, r.msb, r.rounds);
            let step = steps.next();
            while (!step.done) {
              if (performance.now() - lastYield > 50) {
                await new Promise((res) => setImmediate(res));
                lastYield = performance.now();
                if (gone0) throw gone0;
              }
              step = steps.next();
            }
            const k = step.value;
            for (let o = 0; o < k.to0.length; o += CHUNK_BYTES) {
              const chunk = k.to0.subarray(o, Math.min(k.to0.length, o + CHUNK_BYTES));
              this.link0.send(chunk);
              this.stats.bytesSent[0] += chunk.length;
            }
            corr = k.to1;
          } else if (r.kind === 'and') corr = andCorrectionStreamed(mirror0, mirror1, r.n);
          else if (r.kind === 'bitmul' && mirror0.seekable) corr = bitMulCorrectionStreamed(mirror0, mirror1, r.n);
          else corr = correction(r, draw(mirror0, 0, r, s), draw(mirror1, 1, r, s));
          for (let o = 0; o < corr.length; o += CHUNK_BYTES) {
            const chunk = corr.subarray(o, Math.min(corr.length, o + CHUNK_BYTES));
            this.link1.send(chunk, true); // corr is fresh and never written again: no copy into the frame
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
