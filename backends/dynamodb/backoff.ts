/**
 * Exponential backoff with full jitter, as AWS recommends for retrying
 * throttled or conflicting requests: every waiter picks a random delay below
 * a ceiling that doubles, so retries of many clients spread out instead of
 * arriving together.
 *
 * @module
 */

/** A backoff's first ceiling and its cap, in milliseconds. */
export interface BackoffOptions {
  /** The ceiling of the first delay. */
  baseMs: number;
  /** The largest ceiling. */
  capMs: number;
}

/**
 * Delays of one retry sequence: the `n`th is random in
 * `[0, min(cap, base * 2^n)]` (with a floor of 1 ms).
 *
 * @example
 * ```ts ignore
 * const backoff = new Backoff({ baseMs: 50, capMs: 1_000 });
 * await delay(backoff.next());
 * ```
 */
export class Backoff {
  #options: BackoffOptions;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    this.#options = options;
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The next delay in milliseconds. */
  next(): number {
    const { baseMs, capMs } = this.#options;
    const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.max(1, Math.round(Math.random() * ceiling));
  }

  /** Starts again from the smallest ceiling (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}
