/**
 * The blocking-query loop every watch, lock waiter and lock monitor runs,
 * with the rules of https://developer.hashicorp.com/consul/api-docs/features/blocking:
 * block on the last `X-Consul-Index`; reset to 0 when it goes backwards;
 * never block on an index below 1; rate-limit the loop so a key that
 * churns costs a bounded number of requests. Failures are retried with
 * backoff and, past a bounded time, reported: a loop never goes silent.
 * Each retry is a `retry` event, and the first answer after failures a
 * `watch-resume` (core/events.ts).
 *
 * @module
 */

import { delay } from "../../core/abort.ts";
import { Backoff, type BackoffOptions } from "../../core/backoff.ts";
import { StoreError } from "../../core/errors.ts";
import type { DriverEvent } from "../../core/events.ts";
import { ConsulHttpError } from "./http.ts";

/**
 * The loop's token bucket: a burst of this many queries goes at once
 * (the docs suggest a small burst so "a couple of quick successive
 * deliveries" are not delayed) ...
 */
const RATE_BURST = 3;

/**
 * ... then one query per this many ms while the result keeps changing
 * (the docs' example is 15 s; a store's watch must report changes
 * promptly, and folds what changes in between).
 */
const RATE_INTERVAL_MS = 100;

/**
 * Waits after failed queries: from 100 ms, doubling per failure up to 5 s,
 * with equal jitter (at least half the ceiling, so a loop whose agent is
 * down never polls it in a tight loop).
 */
export const RETRY_BACKOFF: BackoffOptions = {
  baseMs: 100,
  capMs: 5_000,
  jitter: "equal",
};

/** How one loop reads and what it does with the answers. */
export interface BlockingLoop<T> {
  /** What the loop watches, for messages: `watch of "a/b"`. */
  what: string;
  /** The key or tree prefix it watches, for its `watch-resume` events. */
  key: string;
  /** The call it serves, for its `retry` events: `watch`, `lockMonitor`. */
  operation: string;
  /** Hears the loop's retries and its recoveries. */
  emit(event: DriverEvent): void;
  /**
   * One read: blocking on `index` when it is above 0, else answering at
   * once. Resolves the result and its `X-Consul-Index`.
   */
  read(
    index: bigint,
    signal: AbortSignal,
  ): Promise<{ value: T; index: bigint }>;
  /** Takes each answer; returning `true` ends the loop. */
  onResult(value: T): boolean | void;
  /** Called once when the loop gives up. */
  onFailure(error: StoreError): void;
  /** Ends the loop. */
  signal: AbortSignal;
  /**
   * How long failures may last before the loop gives up and says why,
   * rather than retry forever in silence.
   */
  giveUpMs: number;
}

/** Runs a blocking-query loop until its signal aborts or it ends. */
export async function runBlockingLoop<T>(loop: BlockingLoop<T>): Promise<void> {
  const { signal } = loop;
  const bucket = new TokenBucket();
  let index = 0n;
  let failingSince: number | undefined;
  let failures = 0;
  const retries = new Backoff(RETRY_BACKOFF);
  while (!signal.aborted) {
    try {
      await bucket.take(signal);
      const answer = await loop.read(index, signal);
      // Read afresh (from index 0), the answer is the state now: the loop
      // missed nothing.
      if (failures > 0) loop.emit({ type: "watch-resume", key: loop.key });
      failingSince = undefined;
      failures = 0;
      retries.reset();
      // Reset when the index goes backwards; never block below 1.
      index = answer.index < index ? 0n : answer.index > 0n ? answer.index : 1n;
      if (loop.onResult(answer.value)) return;
    } catch (error) {
      if (signal.aborted) return;
      const now = Date.now();
      failingSince ??= now;
      const transient = error instanceof ConsulHttpError && error.transient;
      if (!transient || now - failingSince >= loop.giveUpMs) {
        loop.onFailure(
          new StoreError(
            transient
              ? `The consul ${loop.what} failed for ${
                ((now - failingSince) / 1000).toFixed(1)
              } s: ${(error as Error).message}`
              : `The consul ${loop.what} failed: ${(error as Error).message}`,
            { cause: error },
          ),
        );
        return;
      }
      loop.emit({
        type: "retry",
        operation: loop.operation,
        attempt: ++failures,
        error,
      });
      // After a failure, read the state again rather than block on an index
      // that may have missed changes.
      index = 0n;
      // The last wait ends when the loop is due to give up.
      const left = failingSince + loop.giveUpMs - now;
      try {
        await delay(Math.min(retries.next(), left), signal);
      } catch {
        return;
      }
    }
  }
}

/** A token bucket of {@linkcode RATE_BURST} tokens, one back per interval. */
export class TokenBucket {
  #tokens = RATE_BURST;
  #refilledAt = Date.now();

  /** Waits for a token. */
  async take(signal: AbortSignal): Promise<void> {
    const now = Date.now();
    const earned = Math.floor((now - this.#refilledAt) / RATE_INTERVAL_MS);
    if (earned > 0) {
      this.#tokens = Math.min(RATE_BURST, this.#tokens + earned);
      this.#refilledAt += earned * RATE_INTERVAL_MS;
    }
    if (this.#tokens > 0) {
      this.#tokens--;
      if (this.#tokens === RATE_BURST - 1) this.#refilledAt = now;
      return;
    }
    await delay(this.#refilledAt + RATE_INTERVAL_MS - now, signal);
    this.#refilledAt += RATE_INTERVAL_MS;
  }
}
