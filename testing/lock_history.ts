/**
 * A safety checker for recorded lock histories: what many holders saw, each
 * operation with the time it was invoked and the time it completed, checked
 * against what a correct lock allows whatever the order the server chose.
 *
 * - Fencing tokens strictly grow with acquisitions: an acquisition that
 *   completed before another was invoked has the smaller token.
 * - Holds never overlap beyond the permits: of the holds that were surely
 *   held at one instant (acquired, not yet asked to release, not paused),
 *   never more than `permits`.
 * - No fenced write after the holder's loss: a fenced write that succeeded
 *   was invoked before any later holder's acquisition completed.
 *
 * @module
 */

import type { Lock } from "../core/types.ts";

/** One acquisition, its holder's fenced writes, and how it ended. */
export interface RecordedHold {
  /** Who held it, for messages. */
  holder: string;
  /** The lock's fencing token (`lastIndex`). */
  token: bigint;
  /** When `lock()` was called. */
  invokedAt: number;
  /** When `lock()` resolved. */
  acquiredAt: number;
  /**
   * When the holder asked to release (`unlock()` called), or when it was
   * paused: from then on it may or may not hold the lock.
   */
  releasedAt: number;
  /** The holder was paused instead of released. */
  paused: boolean;
  /** Its fenced writes that the store applied. */
  writes: { invokedAt: number; completedAt: number }[];
}

/**
 * Starts the record of a hold of `lock`, acquired just now by `holder`
 * after a `lock()` invoked at `invokedAt`: it ends where `lost` aborts (or
 * at once, if it already had), or where the caller sets `releasedAt` first.
 */
export function recordHold(
  holder: string,
  lock: Lock,
  invokedAt: number,
): RecordedHold {
  const hold: RecordedHold = {
    holder,
    token: lock.lastIndex,
    invokedAt,
    acquiredAt: Date.now(),
    releasedAt: Infinity,
    paused: false,
    writes: [],
  };
  const lost = () => {
    hold.releasedAt = Math.min(hold.releasedAt, Date.now());
  };
  if (lock.lost.aborted) lost();
  else lock.lost.addEventListener("abort", lost, { once: true });
  return hold;
}

/**
 * The violations in `holds` of a lock with `permits` holders at most (one
 * for a mutex); empty when the history is safe.
 *
 * @param holds Every acquisition of one key (or one semaphore).
 * @param permits How many holders may hold at once.
 */
export function lockViolations(
  holds: readonly RecordedHold[],
  permits = 1,
): string[] {
  const found: string[] = [];
  const name = (hold: RecordedHold) => `${hold.holder}#${hold.token}`;
  for (const a of holds) {
    for (const b of holds) {
      if (a === b) continue;
      if (permits === 1 && a.acquiredAt < b.invokedAt && a.token >= b.token) {
        found.push(
          `${name(b)} was acquired after ${name(a)} with a token not above it`,
        );
      }
      if (permits !== 1 || b.token <= a.token) continue;
      // b came later: a's fenced writes must all have started before b held.
      for (const write of a.writes) {
        if (write.invokedAt > b.acquiredAt) {
          found.push(
            `${name(a)} wrote, fenced, ${
              write.invokedAt - b.acquiredAt
            } ms after ${name(b)} held the lock`,
          );
        }
      }
    }
  }
  // The surely-held intervals, swept in time order.
  const events = holds.flatMap((hold) => [
    { at: hold.acquiredAt, delta: 1 },
    { at: hold.releasedAt, delta: -1 },
  ]).sort((x, y) => x.at - y.at || x.delta - y.delta);
  let held = 0;
  for (const event of events) {
    held += event.delta;
    if (held > permits) {
      found.push(`${held} holders at once (at most ${permits})`);
      break;
    }
  }
  return found;
}
