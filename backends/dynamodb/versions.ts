/**
 * Versions (`lastIndex`) without a central counter: a hybrid logical clock.
 *
 * Every write stores a numeric `version` chosen by the writer: its clock in
 * microseconds since the epoch, or one more than the highest version its
 * store handle has seen, whichever is larger. The write is conditional on the
 * item's current version being lower (`version < :version`), and retried
 * above it when not, so a key's version only ever grows.
 *
 * Deleting a key leaves a tombstone that keeps its version for
 * `tombstoneRetention`; a key re-created later starts from the writer's
 * clock, which is past every earlier version as long as clients' clocks
 * differ by less than that retention (an hour by default; AWS rejects
 * requests signed more than five minutes off its own clock, and the SDK
 * corrects for that skew, which this clock follows).
 *
 * A central counter item would make every write two round trips and cap the
 * whole table at one item's write throughput; this costs one round trip and
 * nothing shared.
 *
 * @module
 */

/** Microseconds per millisecond: versions count microseconds. */
export const MICROS_PER_MS = 1000n;

/**
 * Hands out versions: strictly increasing in this process, and at least the
 * current time in microseconds.
 *
 * @example
 * ```ts ignore
 * const clock = new VersionClock(() => Date.now());
 * const a = clock.next();
 * console.log(clock.next() > a); // true
 * ```
 */
export class VersionClock {
  #now: () => number;
  #last = 0n;

  /**
   * @param now The current time in milliseconds since the epoch (the SDK's
   * skew-corrected clock).
   */
  constructor(now: () => number) {
    this.#now = now;
  }

  /** A version above every version handed out or seen so far. */
  next(): bigint {
    const now = BigInt(Math.floor(this.#now())) * MICROS_PER_MS;
    this.#last = now > this.#last ? now : this.#last + 1n;
    return this.#last;
  }

  /** Learns a version written by another client, so the next one is above. */
  observe(version: bigint): void {
    if (version > this.#last) this.#last = version;
  }
}
