/**
 * Predicted time of a lowered program under given CKKS parameters, for the planner to compare
 * ring degrees, chains and refresh placements. Per-operation CPU seconds follow SEAL's asymptotics
 * with constants fitted on this machine (node-seal 6.0.3, one core; see `OP_COST`):
 *   key switching (rotation, relinearisation) ∝ N·log2 N·k·(k+1) for k data primes at the level
 *   (k decomposition parts, each NTT'd over k+1 primes), encoding ∝ N·log2 N·(K+4) (privml encodes
 *   at the top level K and drops primes), plaintext multiply ∝ N·k, rescale ∝ N·log2 N·k.
 * A client-aided refresh costs a network round trip at a stated profile plus the client's decrypt
 * and re-encrypt and both ciphertext transfers.
 */
import { stagesCost } from '../smartpaf/poly.js';
import { ctsOf, type Lowered, sourcesOf } from './lower.js';

/** Fitted constants (CPU seconds): `fhe` microbenchmark, N = 8192/16384/32768 with 5/10/17 primes. */
export const OP_COST = {
  /** Per N·log2N·k·(k+1) of a key switch. */
  keySwitch: 4.8e-9,
  /** Per N·log2N·(K+4) of an encode. */
  encode: 3.3e-9,
  /** Per N·k of a plaintext multiplication. */
  mulPlain: 5e-8,
  /** Per N·log2N·k of a rescale. */
  rescale: 7.6e-9,
  /** Fixed overhead per SEAL call (allocation, WASM boundary). */
  call: 0.002,
} as const;

/** A network between client and server for refresh round trips. */
export interface NetworkProfile {
  rttMs: number;
  mbitPerSecond: number;
}

/** Default network profile for refresh round trips: a 20 ms, 100 Mbit/s wide-area link. */
export const DEFAULT_NETWORK: NetworkProfile = { rttMs: 20, mbitPerSecond: 100 };

/** Predicted seconds, split by kind. */
export interface CostPrediction {
  serverSeconds: number;
  refreshSeconds: number;
  totalSeconds: number;
  /** Per lowered step (same order), server seconds (a refresh step: its round trip). */
  steps: number[];
}

/** Options of `predictCost`. */
export interface CostOptions {
  /**
   * Model plaintexts (linear diagonals, PAF constants) already encoded (a server's PlainCache after
   * its first image): their encodes are not charged. Default false (first image, or --cache-mb 0).
   */
  cachedPlaintexts?: boolean;
}

/** Bytes of a ciphertext (2 polynomials) with k primes at ring degree N. */
export function ciphertextBytes(N: number, k: number): number {
  return 2 * N * k * 8;
}

/**
 * Predict a lowered program's time. `topLevel` is the chain's top data level (primes − 2): every
 * chain (start and after each refresh) starts there.
 */
export function predictCost(l: Lowered, N: number, topLevel: number, net: NetworkProfile = DEFAULT_NETWORK, opts: CostOptions = {}): CostPrediction {
  const lg = Math.log2(N);
  const K = topLevel + 1;
  const ks = (k: number) => OP_COST.call + OP_COST.keySwitch * N * lg * k * (k + 1);
  const enc = () => OP_COST.call + OP_COST.encode * N * lg * (K + 4);
  // An encode of a model plaintext: free once cached (input-dependent encodes use `enc`).
  const encModel = () => (opts.cachedPlaintexts ? 0 : enc());
  const mulP = (k: number) => OP_COST.call + OP_COST.mulPlain * N * k;
  const resc = (k: number) => OP_COST.call + OP_COST.rescale * N * lg * k;
  // A ct×ct multiplication: tensor (4 products), relinearise, rescale.
  const ctMul = (k: number) => 4 * mulP(k) + ks(k) + resc(k);
  // A leaf c·x: encode, multiply, rescale.
  const scalar = (k: number) => encModel() + mulP(k) + resc(k);
  const poly = (stages: readonly (readonly number[])[], level: number) => {
    const c = stagesCost(stages);
    // Operations spread over the polynomial's depth: charge them at its middle level.
    const k = Math.max(1, level + 1 - c.depth / 2);
    return c.mults * ctMul(k) + c.scalarMults * scalar(k) + ctMul(Math.max(1, level + 1 - c.depth));
  };
  let level = topLevel;
  let server = 0;
  let refresh = 0;
  const steps: number[] = [];
  l.steps.forEach((s, i) => {
    const k = level + 1;
    let t = 0;
    switch (s.kind) {
      case 'linear': {
        t = s.plainMults * (encModel() + mulP(k));
        // Baby rotations are computed once per (input ciphertext, step) and shared by the plans.
        const babies = new Set<string>();
        for (const p of s.plans) {
          const giants = p.horner !== undefined ? p.giants[p.giants.length - 1]! / p.horner : (p.giantChain?.length ?? p.giants.filter((g) => g !== 0).length);
          for (const src of sourcesOf(p)) for (const b of src.babies) babies.add(`${src.input}:${b.step}`);
          t += p.giants.length * resc(k) + (giants + p.reduce.length) * ks(k - 1) + enc();
        }
        // Babies the client encrypted (clientBabies) cost the server nothing.
        if (!s.clientBabies) t += babies.size * ks(k);
        break;
      }
      case 'sumpool':
        t = s.rotations * ks(k);
        break;
      case 'paf':
        t = ctsOf(s.out) * poly(s.src.stages, level);
        break;
      case 'scale':
        t = ctsOf(s.out) * scalar(k);
        break;
      case 'maxlevel':
        t = ctsOf(s.out) * (ks(k) + poly(s.stages, level));
        break;
      case 'refresh': {
        // Server masks (encode + add), sends the ciphertext at its level, client decrypts and
        // encrypts afresh at the top level and sends it back; one round trip.
        const c = ctsOf(s.out);
        const bytes = c * (ciphertextBytes(N, k) + ciphertextBytes(N, K));
        t = net.rttMs / 1000 + (bytes * 8) / (net.mbitPerSecond * 1e6) + c * (3 * enc() + ks(K) / 2);
        refresh += t;
        steps.push(t);
        level = Math.min(topLevel, s.resumeLevel ?? topLevel);
        return;
      }
    }
    server += t;
    steps.push(t);
    level -= l.depths[i]!;
  });
  return { serverSeconds: server, refreshSeconds: refresh, totalSeconds: server + refresh, steps };
}
