/**
 * Locks: the held-lock handle every backend shares (renewal timing, the
 * `lost` signal, an idempotent `unlock` that never hangs) and the loop that
 * waits for a lock without a polling storm.
 *
 * @module
 */

import { LockLostError, StoreError } from "./errors.ts";
import { abortable, deadline, delay, timerDelay, unrefTimer } from "./abort.ts";
import type { LockLease } from "./driver.ts";
import type { Lock } from "./types.ts";

/** The lock TTL when the caller gives none, as the contract says. */
export const DEFAULT_LOCK_TTL_MS = 20_000;

/**
 * A held lock is renewed every `ttl / RENEWALS_PER_TTL`: with three, two
 * renewals may fail (a network blip) before the TTL runs out.
 */
export const RENEWALS_PER_TTL = 3;

/** After a failed renewal, retry this soon (or sooner, before the TTL ends). */
export const RENEW_RETRY_MS = 250;

/** `unlock()` gives the backend this long to release before it gives up. */
export const UNLOCK_TIMEOUT_MS = 5_000;

/** What {@linkcode LockHandle} needs to hold a lock. */
export interface LockHandleOptions {
  /** The lock's key, as the caller named it. */
  key: string;
  /** What the driver returned once the lock was held. */
  lease: LockLease;
  /** The lock's TTL in milliseconds. */
  ttl: number;
  /** Whether `unlock()` deletes the key. */
  deleteOnUnlock: boolean;
  /** Called once, when the lock is released or abandoned. */
  onEnd(lock: LockHandle): void;
  /** How long `unlock()` waits for the backend (default {@linkcode UNLOCK_TIMEOUT_MS}). */
  unlockTimeoutMs?: number;
  /** Called once if the lock is lost, with the error on `lost` and why. */
  onLost?(error: LockLostError, reason: string): void;
  /**
   * Called when a renewal failed and is tried again before the TTL ends,
   * with the count of failures since the last confirmed renewal.
   */
  onRenewFailed?(attempt: number, error: unknown): void;
}

/**
 * A lock held through a driver's {@linkcode LockLease}: it renews the lease
 * in time, reports loss on `lost`, and releases once.
 *
 * @example Holding a lock (through a store)
 * ```ts ignore
 * await using lock = await store.lock("jobs/nightly", { ttl: 10_000 });
 * lock.lost.throwIfAborted();
 * ```
 */
export class LockHandle implements Lock {
  readonly key: string;
  readonly lastIndex: bigint;
  #lost = new AbortController();
  #lease: LockLease;
  #ttl: number;
  #deleteOnUnlock: boolean;
  #onEnd: (lock: LockHandle) => void;
  #onLost: ((error: LockLostError, reason: string) => void) | undefined;
  #onRenewFailed: ((attempt: number, error: unknown) => void) | undefined;
  /** Renewals failed since the last confirmed one. */
  #renewFailures = 0;
  #unlockTimeoutMs: number;
  #confirmedAt: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #renewing: AbortController | undefined;
  #unlocking: Promise<void> | undefined;
  /** Why the renewals since the last confirmed one failed, if they did. */
  #renewError: unknown;
  /** Frozen by {@linkcode pauseLock}: only the server can refuse it now. */
  #paused = false;

  /**
   * Takes over a freshly acquired lease.
   *
   * @param options The lease and how to hold it.
   */
  constructor(options: LockHandleOptions) {
    const { key, lease, ttl } = options;
    this.key = key;
    this.lastIndex = lease.lastIndex;
    this.#lease = lease;
    this.#ttl = ttl;
    this.#deleteOnUnlock = options.deleteOnUnlock;
    this.#onEnd = options.onEnd;
    this.#onLost = options.onLost;
    this.#onRenewFailed = options.onRenewFailed;
    this.#unlockTimeoutMs = options.unlockTimeoutMs ?? UNLOCK_TIMEOUT_MS;
    this.#confirmedAt = Date.now();
    if (lease.lost) {
      const onLost = () =>
        this.#lose("the backend reported it gone", lease.lost!.reason);
      if (lease.lost.aborted) onLost();
      else lease.lost.addEventListener("abort", onLost, { once: true });
    }
    if (lease.renew && !this.#lost.signal.aborted) {
      this.#schedule(ttl / RENEWALS_PER_TTL);
    }
  }

  get lost(): AbortSignal {
    this.#checkConfirmed();
    return this.#lost.signal;
  }

  /**
   * Releases the lock. A lock that was lost before (its `lost` aborted)
   * releases what it still can, then rejects with the `LockLostError`: the
   * caller learns that what it did under the lock may have overlapped
   * another holder.
   */
  unlock(): Promise<void> {
    this.#checkConfirmed();
    this.#unlocking ??= this.#release();
    return this.#unlocking;
  }

  // A holder that was paused (SIGSTOP, a long GC, a starved event loop) past
  // its TTL cannot have held the lock the whole time, even if no timer has
  // run yet to say so: lost is aborted before anything else of it runs.
  #checkConfirmed(): void {
    if (
      this.#lease.renew && !this.#unlocking && !this.#lost.signal.aborted &&
      !this.#paused &&
      Date.now() > this.#confirmedAt + this.#ttl
    ) {
      if (this.#renewError !== undefined) {
        this.#lose(`it could not be renewed within its TTL`, this.#renewError);
      } else {
        this.#lose(
          `its last renewal was confirmed more than its TTL (${this.#ttl} ms) ago`,
        );
      }
    }
  }

  /**
   * The lease behind `lock` while it may still be held, for a fenced write;
   * `null` once it is known not to be (unlocked, abandoned, lost, or paused
   * past its TTL).
   */
  static leaseOf(lock: LockHandle): LockLease | null {
    if (lock.#unlocking) return null;
    if (lock.#paused) return lock.#lease;
    lock.#checkConfirmed();
    return lock.#lost.signal.aborted ? null : lock.#lease;
  }

  /** See {@linkcode pauseLock}. */
  static pause(lock: LockHandle): void {
    lock.#paused = true;
    lock.#stop();
    lock.#lease.pause?.();
  }

  /** Aborts `lost` of `lock`: the store learnt the lock is gone. */
  static markLost(lock: LockHandle, reason: string): void {
    if (!lock.#unlocking) lock.#lose(reason);
  }

  /** The `LockLostError` that aborted `lost`, if it did. */
  static lostError(lock: LockHandle): LockLostError | undefined {
    const reason = lock.#lost.signal.aborted
      ? lock.#lost.signal.reason
      : undefined;
    return reason instanceof LockLostError ? reason : undefined;
  }

  /** Releases the lock: `await using lock = ...` releases it at scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.unlock();
  }

  /**
   * Stops renewing without releasing, as a crashed holder would: the lock
   * then expires on the server after its TTL.
   */
  abandon(): void {
    this.#unlocking ??= Promise.resolve();
    this.#stop();
    this.#onEnd(this);
  }

  async #release(): Promise<void> {
    const lostBefore = this.#lost.signal.aborted;
    await this.#releaseLease();
    if (lostBefore) throw this.#lost.signal.reason;
  }

  async #releaseLease(): Promise<void> {
    this.#stop();
    // An ordinary timer (see deadline()), which also keeps the process
    // alive while unlock() waits. Raced here as well, so a driver that
    // ignores the signal cannot hang unlock() either.
    const timeout = deadline(this.#unlockTimeoutMs);
    try {
      await abortable(
        this.#lease.release(this.#deleteOnUnlock, timeout.signal),
        timeout.signal,
      );
    } catch (error) {
      // A lock that is already lost has nothing left to release.
      if (this.#lost.signal.aborted) return;
      if (error instanceof StoreError) throw error;
      throw new StoreError(
        `Could not release the lock on ${JSON.stringify(this.key)}${
          isTimeout(error)
            ? ` within ${this.#unlockTimeoutMs} ms; it will expire after its TTL`
            : ""
        }`,
        { cause: error },
      );
    } finally {
      timeout.dispose();
      this.#onEnd(this);
    }
  }

  #stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#renewing?.abort();
  }

  #schedule(ms: number): void {
    // Renewing early (a TTL beyond a timer's reach) is harmless.
    this.#timer = setTimeout(() => this.#renew(), timerDelay(ms));
    unrefTimer(this.#timer);
  }

  async #renew(): Promise<void> {
    this.#checkConfirmed();
    if (this.#unlocking || this.#lost.signal.aborted) return;
    const sentAt = Date.now();
    const deadline = this.#confirmedAt + this.#ttl;
    this.#renewing = new AbortController();
    const timeout = setTimeout(
      () => this.#renewing?.abort(),
      timerDelay(deadline - sentAt),
    );
    let held: boolean;
    try {
      held = await this.#lease.renew!(this.#renewing.signal);
    } catch (error) {
      clearTimeout(timeout);
      this.#renewError = error;
      if (this.#unlocking) return;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.#lose(`it could not be renewed within its TTL`, error);
      } else {
        this.#onRenewFailed?.(++this.#renewFailures, error);
        this.#schedule(Math.min(RENEW_RETRY_MS, left));
      }
      return;
    }
    clearTimeout(timeout);
    if (this.#unlocking) return;
    if (!held) {
      this.#lose("another holder has it or it expired");
      return;
    }
    this.#confirmedAt = sentAt;
    this.#renewError = undefined;
    this.#renewFailures = 0;
    this.#schedule(this.#ttl / RENEWALS_PER_TTL);
  }

  #lose(reason: string, cause?: unknown): void {
    if (this.#lost.signal.aborted || this.#paused) return;
    this.#stop();
    const error = new LockLostError(
      this.key,
      reason,
      cause === undefined ? undefined : { cause },
    );
    this.#lost.abort(error);
    this.#onLost?.(error, reason);
  }
}

/**
 * For the conformance kit: freezes `lock` as a holder stopped by `SIGSTOP`
 * whose own clock stopped too. Nothing renews it any more (neither the
 * store nor the driver's keep-alives), and the store no longer rules it
 * lost by itself, so its fenced writes reach the server: once the lock has
 * expired there, only the server's check can refuse them. `unlock()` still
 * works.
 *
 * @param lock A lock of a store of this library.
 *
 * @example
 * ```ts ignore
 * pauseLock(lock);
 * await otherStore.lock(lock.key); // waits until it expires on the server
 * await store.put("data", "x", { fence: lock }); // rejects: LockLostError
 * ```
 */
export function pauseLock(lock: Lock): void {
  if (!(lock instanceof LockHandle)) {
    throw new StoreError("pauseLock() needs a lock of a store of this library");
  }
  LockHandle.pause(lock);
}

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

/** Options of {@linkcode waitForLock}. */
export interface WaitForLockOptions<T> {
  /**
   * Tries to take the lock once. Resolves the lease when taken. When someone
   * else holds it: how many milliseconds the holder's TTL has left (the next
   * attempt then comes no later than that), or `null` when unknown.
   */
  attempt(): Promise<T | number | null>;
  /**
   * Resolves when the lock may have become free (the backend's notification),
   * or when `signal` aborts (then it may resolve or reject, either is fine).
   */
  changed(signal: AbortSignal): Promise<void>;
  /** Aborts waiting: the loop rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Longest wait between attempts when no notification comes, in
   * milliseconds: the safety net for a missed notification.
   */
  maxWaitMs: number;
}

/**
 * Takes a lock, waiting for the backend's notification between attempts
 * (never a polling storm): an attempt comes after a notification, after the
 * holder's TTL would have run out, or after `maxWaitMs`, whichever is first.
 *
 * @param options How to attempt and how to wait.
 * @returns What the successful attempt resolved.
 *
 * @example
 * ```ts
 * import { waitForLock } from "./lock.ts";
 *
 * let free = false;
 * setTimeout(() => (free = true), 10);
 * const lease = await waitForLock({
 *   attempt: async () => (free ? { lastIndex: 1n } : null),
 *   changed: (signal) => new Promise((resolve) => signal.addEventListener("abort", () => resolve())),
 *   maxWaitMs: 5,
 * });
 * console.log(lease.lastIndex);
 * ```
 */
export async function waitForLock<T extends object>(
  options: WaitForLockOptions<T>,
): Promise<T> {
  const { signal } = options;
  while (true) {
    signal?.throwIfAborted();
    // Listen before attempting, so a release between the attempt and the
    // wait is not missed.
    const stopWaiting = new AbortController();
    const changed = options.changed(stopWaiting.signal).catch(() => {});
    let result: T | number | null;
    try {
      result = await options.attempt();
    } catch (error) {
      stopWaiting.abort();
      throw error;
    }
    if (result !== null && typeof result !== "number") {
      stopWaiting.abort();
      return result;
    }
    const heldFor = result ?? Infinity;
    const wait = Math.max(1, Math.min(options.maxWaitMs, heldFor));
    const timeout = delay(wait, stopWaiting.signal).catch(() => {});
    const aborted = new Promise<void>((resolve) => {
      if (!signal) return;
      if (signal.aborted) resolve();
      signal.addEventListener("abort", () => resolve(), {
        once: true,
        signal: stopWaiting.signal,
      });
    });
    await Promise.race([changed, timeout, aborted]);
    stopWaiting.abort();
  }
}
