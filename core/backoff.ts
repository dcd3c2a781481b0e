/**
 * The one retry backoff every backend uses: exponential, with jitter.
 *
 * The `n`th delay after the last success (from 0) is drawn below a ceiling of
 * `min(capMs, baseMs * 2^n)`, so retries grow quickly while the server is
 * away and the delays of many clients spread out instead of arriving
 * together. The jitter is "full" (a delay anywhere up to the ceiling: the
 * widest spread, AWS's advice for contended retries) or "equal" (half the
 * ceiling plus a random half: a floor that keeps a reconnecting loop from
 * hammering a server that is down). See
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/.
 *
 * Each backend keeps its own base and cap (named constants where it uses
 * them), since what a retry waits for differs: a DynamoDB conflict clears in
 * milliseconds, an etcd leader election in about a second.
 *
 * @module
 */

/** How a delay is drawn below its ceiling. */
export type Jitter = "full" | "equal";

/** The shape of a backoff. */
export interface BackoffOptions {
  /** The ceiling of the first delay, in milliseconds. */
  baseMs: number;
  /** The largest ceiling, in milliseconds. */
  capMs: number;
  /**
   * `"full"`: a delay in `[0, ceiling]`; `"equal"`: in `[ceiling / 2, ceiling]`.
   *
   * @default {"full"}
   */
  jitter?: Jitter;
  /**
   * Where the randomness comes from: a number in `[0, 1)`.
   *
   * @default {Math.random}
   */
  random?: () => number;
}

/** The shortest delay: a retry never comes back in the same tick. */
const MIN_DELAY_MS = 1;

/** Past this many doublings the ceiling is the cap anyway (2^30 > any cap). */
const MAX_DOUBLINGS = 30;

/**
 * The delays of one retry sequence: call {@linkcode Backoff.next} before each
 * retry and {@linkcode Backoff.reset} after a success.
 *
 * @example Retrying with full jitter
 * ```ts
 * import { Backoff } from "./backoff.ts";
 *
 * const backoff = new Backoff({ baseMs: 50, capMs: 1_000 });
 * const first = backoff.next(); // in [1, 50]
 * const second = backoff.next(); // in [1, 100]
 * backoff.reset(); // after a success: small delays again
 * console.log(first <= 50 && second <= 100, backoff.attempts); // true 0
 * ```
 */
export class Backoff {
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #jitter: Jitter;
  readonly #random: () => number;
  #attempt = 0;

  /**
   * Creates a sequence that starts at its smallest ceiling.
   *
   * @param options The base, cap and jitter.
   */
  constructor(options: BackoffOptions) {
    this.#baseMs = options.baseMs;
    this.#capMs = options.capMs;
    this.#jitter = options.jitter ?? "full";
    this.#random = options.random ?? Math.random;
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /**
   * The next delay: at least 1 ms, at most the current ceiling, which then
   * doubles (up to the cap).
   *
   * @returns The delay in milliseconds.
   */
  next(): number {
    const ceiling = Math.min(
      this.#capMs,
      this.#baseMs * 2 ** Math.min(this.#attempt, MAX_DOUBLINGS),
    );
    this.#attempt++;
    const random = this.#random();
    const ms = this.#jitter === "equal"
      ? ceiling / 2 + random * (ceiling / 2)
      : random * ceiling;
    return Math.max(MIN_DELAY_MS, Math.round(ms));
  }

  /** Starts again from the smallest ceiling (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}
