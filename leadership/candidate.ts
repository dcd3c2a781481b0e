/**
 * A candidate for leadership: it campaigns for a key's lock on any store and
 * reports whether it leads.
 *
 * @module
 */

import { deadline } from "../core/abort.ts";
import type { Lock, Store } from "../core/types.ts";

/** Options of {@linkcode Candidate}. */
export interface CandidateOptions {
  /** What followers see while this candidate leads (default empty). */
  value?: string | Uint8Array;
  /**
   * How long leadership survives a dead leader, in milliseconds (the lock's
   * TTL, default 20 000): another candidate takes over within `ttl` plus the
   * store's `ttlGranularityMs`.
   */
  ttl?: number;
  /** Stops campaigning (and steps down) when it aborts. */
  signal?: AbortSignal;
}

/**
 * Campaigns for the lock on `key`, on any store. `campaign()` reports
 * `false` at once, then `true` when elected and `false` when leadership ends
 * (lost, resigned, stopped); after a loss it campaigns again at once, after a
 * resignation once another candidate leads (or one TTL has passed).
 *
 * The leader's value is at `key` while it leads (the lock's value) and is
 * deleted when it steps down. A leader that dies leaves its value until the
 * next leader writes its own, within `ttl` plus the store's granularity when
 * another candidate campaigns. `lastIndex` of each term is the lock's
 * fencing token.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@valkeyrie/valkeyrie/memory";
 * import { Candidate } from "@valkeyrie/valkeyrie/leadership";
 *
 * await using store = new MemoryStore();
 * await using candidate = new Candidate(store, "service/leader", { value: "node-1" });
 * for await (const elected of candidate.campaign()) {
 *   console.log(elected ? "leading" : "following");
 *   if (elected) break;
 * }
 * ```
 */
export class Candidate implements AsyncDisposable {
  #store: Store;
  #key: string;
  #value: string | Uint8Array;
  #ttl: number;
  #stop = new AbortController();
  #resign: (() => void) | undefined;
  #term: Lock | undefined;
  #running: Promise<void> | undefined;

  /**
   * Prepares a candidate; it campaigns once `campaign()` is read.
   *
   * @param store The store holding the lock.
   * @param key The key that names the leadership.
   * @param options Value, TTL and signal.
   */
  constructor(store: Store, key: string, options: CandidateOptions = {}) {
    this.#store = store;
    this.#key = key;
    this.#value = options.value ?? "";
    this.#ttl = options.ttl ?? 20_000;
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.#stop.abort(signal.reason);
      else {
        signal.addEventListener(
          "abort",
          () => this.#stop.abort(signal.reason),
          {
            once: true,
          },
        );
      }
    }
  }

  /** The fencing token of the current term, while leading. */
  get lastIndex(): bigint | undefined {
    return this.#term?.lastIndex;
  }

  /**
   * Starts campaigning. The stream reports `false` first, then every change:
   * `true` when elected, `false` when no longer leading. It ends when the
   * candidate is stopped, and errors if the store fails for good.
   *
   * @returns Whether this candidate leads, after every change.
   */
  campaign(): ReadableStream<boolean> {
    if (this.#running) {
      throw new TypeError("This candidate is already campaigning");
    }
    let emit!: (elected: boolean) => void;
    const stream = new ReadableStream<boolean>({
      start: (controller) => {
        let last: boolean | undefined;
        emit = (elected) => {
          if (elected === last) return;
          last = elected;
          controller.enqueue(elected);
        };
        this.#running = this.#run(emit).then(
          () => controller.close(),
          (error) => controller.error(error),
        );
      },
      cancel: () => this.stop(),
    });
    return stream;
  }

  /**
   * Steps down, if leading, and campaigns again at once (another candidate
   * may win). Safe to call at any time, also while the lock is being lost.
   */
  resign(): void {
    this.#resign?.();
  }

  /** Stops campaigning, stepping down if leading. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running?.catch(() => {});
  }

  /** Stops campaigning: `await using candidate = ...` stops at scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #run(emit: (elected: boolean) => void): Promise<void> {
    const stop = this.#stop.signal;
    emit(false);
    while (!stop.aborted) {
      let lock: Lock;
      try {
        lock = await this.#store.lock(this.#key, {
          value: this.#value,
          ttl: this.#ttl,
          deleteOnUnlock: true,
          signal: stop,
        });
      } catch (error) {
        if (stop.aborted) return;
        throw error;
      }
      this.#term = lock;
      emit(true);
      let resigned = false;
      try {
        resigned = await this.#lead(lock, stop);
      } finally {
        this.#term = undefined;
        emit(false);
        await lock.unlock().catch(() => {});
      }
      if (resigned) await this.#sitOut(stop);
    }
  }

  // Leads until the lock is lost, the candidate resigns (resolves true) or
  // it is stopped. It never writes the lock's key meanwhile: on some
  // backends (Consul) a write to a locked key takes the lock away.
  #lead(lock: Lock, stop: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (resigned: boolean) => {
        this.#resign = undefined;
        lock.lost.removeEventListener("abort", onLost);
        stop.removeEventListener("abort", onLost);
        resolve(resigned);
      };
      const onLost = () => done(false);
      this.#resign = () => done(true);
      lock.lost.addEventListener("abort", onLost, { once: true });
      stop.addEventListener("abort", onLost, { once: true });
      if (lock.lost.aborted || stop.aborted) done(false);
    });
  }

  // After resigning, leaves the field to others: campaigns again once
  // another candidate leads, or after one TTL if none does.
  async #sitOut(stop: AbortSignal): Promise<void> {
    // Not AbortSignal.timeout() in AbortSignal.any(): Node 20 can collect
    // that timeout before it fires, and the candidate would sit out forever.
    const waiting = deadline(this.#ttl, stop);
    try {
      for await (
        const pair of this.#store.watch(this.#key, { signal: waiting.signal })
      ) {
        if (pair) return;
      }
    } catch {
      // Timed out, stopped, or the store failed (the next lock() says so).
    } finally {
      waiting.dispose();
    }
  }
}
