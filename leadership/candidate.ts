/**
 * A candidate for leadership: it campaigns for a key's lock on any store and
 * reports whether it leads.
 *
 * @module
 */

import { KeyModifiedError, KeyNotFoundError } from "../core/errors.ts";
import type { KVPair, Lock, Store } from "../core/types.ts";

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

/** The leader's value is re-written this many times per TTL while it leads. */
const REFRESHES_PER_TTL = 3;

/**
 * Campaigns for the lock on `key`, on any store. `campaign()` reports
 * `false` at once, then `true` when elected and `false` when leadership ends
 * (lost, resigned, stopped); after a loss or a resignation it campaigns again.
 *
 * While leading, it keeps its value at `key` with a TTL, so a dead leader's
 * value disappears with it, and followers never report a leader that is gone.
 * `lastIndex` of each term is the lock's fencing token.
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
      try {
        await this.#lead(lock, stop);
      } finally {
        this.#term = undefined;
        emit(false);
        await lock.unlock().catch(() => {});
      }
    }
  }

  // Leads until the lock is lost, the candidate resigns or stops, or its
  // value was changed by someone else (then it is no longer the leader the
  // followers see). The value is re-written with a TTL while leading.
  async #lead(lock: Lock, stop: AbortSignal): Promise<void> {
    const ended = new AbortController();
    const end = () => ended.abort();
    this.#resign = end;
    lock.lost.addEventListener("abort", end, { once: true });
    stop.addEventListener("abort", end, { once: true, signal: ended.signal });
    try {
      let written: KVPair | null = await this.#store.get(this.#key);
      const every = this.#ttl / REFRESHES_PER_TTL;
      while (!ended.signal.aborted && written) {
        written = await this.#store.atomicPut(this.#key, this.#value, written, {
          ttl: this.#ttl,
        }).catch((error) => {
          if (error instanceof KeyModifiedError) return null;
          if (error instanceof KeyNotFoundError) return null;
          throw error;
        });
        if (!written) break;
        await sleep(every, ended.signal);
      }
    } finally {
      this.#resign = undefined;
      lock.lost.removeEventListener("abort", end);
      ended.abort();
    }
  }
}

// A ref'd timer: a campaigning candidate keeps its process alive, as a
// server's socket would.
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
