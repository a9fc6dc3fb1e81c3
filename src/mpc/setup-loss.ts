/**
 * Ending a party's setup at once when another of its links is lost (a peer that died or left after
 * its handshake), instead of waiting for the connect timeout. Split from roles.ts.
 */
import type { TcpFrameChannel } from './net/tcp.js';

/**
 * A promise that rejects when a link watched with `watch` fails before the session starts (the
 * peer died or left during setup): raced against the setup steps, it ends the wait at once instead
 * of at the connect timeout.
 */
export function lossWatch(): { lost: Promise<never>; watch: (ch: TcpFrameChannel, who: string) => void } {
  let fail: (e: Error) => void = () => {};
  const lost = new Promise<never>((_, reject) => (fail = reject));
  lost.catch(() => {});
  return { lost, watch: (ch, who) => ch.onFailure?.((e) => fail(new Error(`${who} left before the session started (${e.message})`))) };
}

/** How long a setup step may still settle after the loss of another link (see `orLoss`). */
const LOSS_GRACE_MS = 2_000;

/**
 * `step`, or the loss of another link if that comes first. A lost dealer is often the consequence
 * of what the step is about to report (the dealer saw the parties' different settings and hung up
 * while the peer's hello naming the setting is in flight): a step that fails within a short grace
 * after the loss reports its own, more precise error.
 */
export async function orLoss<T>(step: Promise<T>, lost: Promise<never>): Promise<T> {
  let stepFailed = false;
  const marked = step.catch((e: unknown) => {
    stepFailed = true;
    throw e;
  });
  try {
    return await Promise.race([marked, lost]);
  } catch (e) {
    if (stepFailed) throw e;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const own = await Promise.race([
      marked.then(
        () => undefined,
        (se: unknown) => se,
      ),
      new Promise<undefined>((res) => {
        timer = setTimeout(() => res(undefined), LOSS_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    throw own ?? e;
  }
}
