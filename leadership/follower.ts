/**
 * A follower: it reports who leads, on any store.
 *
 * @module
 */

import type { Store } from "../core/types.ts";

/** Options of {@linkcode Follower}. */
export interface FollowerOptions {
  /** Stops following when it aborts (the stream errors with its reason). */
  signal?: AbortSignal;
}

/**
 * Follows the leadership named by `key`: `leaders()` reports the current
 * leader's value at once (`""` when there is none), then every change, never
 * the same value twice in a row. If the store's watch fails, the stream
 * errors with the reason instead of going silent.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@valkeyrie/valkeyrie/memory";
 * import { Follower } from "@valkeyrie/valkeyrie/leadership";
 *
 * await using store = new MemoryStore();
 * const follower = new Follower(store, "service/leader");
 * for await (const leader of follower.leaders()) {
 *   console.log(leader === "" ? "no leader" : `led by ${leader}`);
 *   break;
 * }
 * ```
 */
export class Follower {
  #store: Store;
  #key: string;
  #signal: AbortSignal | undefined;

  /**
   * Prepares a follower; it follows once `leaders()` is read.
   *
   * @param store The store holding the leadership.
   * @param key The key that names the leadership.
   * @param options A signal to stop following.
   */
  constructor(store: Store, key: string, options: FollowerOptions = {}) {
    this.#store = store;
    this.#key = key;
    this.#signal = options.signal;
  }

  /**
   * The leader's value now, then after every change of leader.
   *
   * @returns The leaders' values as text (`""`: no leader).
   */
  leaders(): ReadableStream<string> {
    const decoder = new TextDecoder();
    let last: string | undefined;
    return this.#store.watch(this.#key, { signal: this.#signal }).pipeThrough(
      new TransformStream({
        transform(pair, controller) {
          const leader = pair ? decoder.decode(pair.value) : "";
          if (leader === last) return;
          last = leader;
          controller.enqueue(leader);
        },
      }),
    );
  }
}
