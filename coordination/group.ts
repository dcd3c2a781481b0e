/**
 * Group membership on any store: each member is a key with a TTL that its
 * process renews; a member that dies stops renewing and its key expires,
 * which every follower of the group hears through a watch.
 *
 * @module
 */

import { timerDelay, unrefTimer } from "../core/abort.ts";
import {
  DEFAULT_LOCK_TTL_MS,
  RENEW_RETRY_MS,
  RENEWALS_PER_TTL,
} from "../core/lock.ts";
import { InvalidArgumentError, LockLostError } from "../core/errors.ts";
import type { KVPair, SignalOptions, Store } from "../core/types.ts";

/** Options of {@linkcode Group.join}. */
export interface JoinOptions extends SignalOptions {
  /** What the other members see of this one (default empty). */
  value?: string | Uint8Array;
  /**
   * How long the membership survives its process, in milliseconds (default
   * 20 000): a member that dies leaves within `ttl` plus the store's
   * `ttlGranularityMs`.
   */
  ttl?: number;
}

/** One member of a group, as {@linkcode Group.members} reports it. */
export interface Member {
  /** The id the member joined with. */
  id: string;
  /** Its value, as UTF-8 text. */
  value: string;
}

/** This process's membership of a group. */
export interface Membership extends AsyncDisposable {
  /** The member's id. */
  readonly id: string;
  /**
   * Aborts, with a `LockLostError`, when the membership can no longer be
   * proven (renewals failed for a whole TTL, or the key was removed).
   */
  readonly lost: AbortSignal;
  /** Leaves the group: deletes the member's key. Idempotent. */
  leave(): Promise<void>;
}

const decoder = new TextDecoder();

/**
 * A named group: members join with an id and a value, and anyone can follow
 * who is in it. Members are the keys under `<name>/` (one per id).
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@valkeyrie/valkeyrie/memory";
 * import { Group } from "@valkeyrie/valkeyrie/coordination";
 *
 * await using store = new MemoryStore();
 * const workers = new Group(store, "services/workers");
 * await using me = await workers.join("worker-1", { value: "10.0.0.7:8080" });
 * const reader = workers.members().getReader();
 * console.log((await reader.read()).value); // [{ id: "worker-1", value: "10.0.0.7:8080" }]
 * await reader.cancel();
 * ```
 */
export class Group {
  readonly #store: Store;
  readonly #name: string;

  /**
   * Names a group on a store; nothing is read or written yet.
   *
   * @param store The store holding the members.
   * @param name The group's key: members are the keys under it.
   */
  constructor(store: Store, name: string) {
    if (typeof name !== "string" || name === "") {
      throw new InvalidArgumentError("A group needs a non-empty name");
    }
    this.#store = store;
    this.#name = name;
  }

  /**
   * Joins the group as `id`. Rejects with `KeyExistsError` when a live
   * member already has this id.
   *
   * @param id The member's id: one key segment (no `/`).
   * @param options Value, TTL and signal.
   */
  async join(id: string, options: JoinOptions = {}): Promise<Membership> {
    if (typeof id !== "string" || id === "" || id.includes("/")) {
      throw new InvalidArgumentError(
        `A member id is a non-empty string without "/", not ${
          JSON.stringify(id)
        }`,
      );
    }
    const ttl = options.ttl ?? DEFAULT_LOCK_TTL_MS;
    const key = `${this.#name}/${id}`;
    const value = options.value ?? "";
    const pair = await this.#store.atomicPut(key, value, null, {
      ttl,
      signal: options.signal,
    });
    return new HeldMembership(this.#store, id, key, value, ttl, pair);
  }

  /**
   * The members, sorted by id: the current ones first, then the whole list
   * again after each change (a join, a leave, a value written, an expiry).
   *
   * @param options A signal to end the stream.
   */
  members(options?: SignalOptions): ReadableStream<Member[]> {
    const prefix = `${this.#name}/`;
    const tree = this.#store.watchTree(this.#name, options);
    return tree.pipeThrough(
      new TransformStream<KVPair[], Member[]>({
        transform(pairs, controller) {
          controller.enqueue(
            pairs
              .filter((pair) => !pair.key.slice(prefix.length).includes("/"))
              .map((pair) => ({
                id: pair.key.slice(prefix.length),
                value: decoder.decode(pair.value),
              })),
          );
        },
      }),
    );
  }
}

// One membership: renews its key every ttl / RENEWALS_PER_TTL, each time
// conditional on the key being as this member last wrote it, so a key that
// someone removed or took over is a loss, not something to overwrite.
class HeldMembership implements Membership {
  readonly id: string;
  readonly #lost = new AbortController();
  readonly #store: Store;
  readonly #key: string;
  readonly #value: string | Uint8Array;
  readonly #ttl: number;
  #pair: KVPair;
  #confirmedAt = Date.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #leaving: Promise<void> | undefined;

  constructor(
    store: Store,
    id: string,
    key: string,
    value: string | Uint8Array,
    ttl: number,
    pair: KVPair,
  ) {
    this.#store = store;
    this.id = id;
    this.#key = key;
    this.#value = value;
    this.#ttl = ttl;
    this.#pair = pair;
    this.#schedule(ttl / RENEWALS_PER_TTL);
  }

  get lost(): AbortSignal {
    if (
      !this.#leaving && Date.now() > this.#confirmedAt + this.#ttl
    ) this.#lose("it was not renewed within its TTL");
    return this.#lost.signal;
  }

  leave(): Promise<void> {
    this.#leaving ??= (async () => {
      clearTimeout(this.#timer);
      if (this.#lost.signal.aborted) return;
      // Only our own key: a member that lost it does not delete another's.
      await this.#store.atomicDelete(this.#key, this.#pair).catch(() => {});
    })();
    return this.#leaving;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.leave();
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => this.#renew(), timerDelay(ms));
    unrefTimer(this.#timer);
  }

  async #renew(): Promise<void> {
    if (this.#leaving || this.#lost.signal.aborted) return;
    const sentAt = Date.now();
    try {
      this.#pair = await this.#store.atomicPut(
        this.#key,
        this.#value,
        this.#pair,
        { ttl: this.#ttl, signal: AbortSignal.timeout(this.#ttl) },
      );
      this.#confirmedAt = sentAt;
      this.#schedule(this.#ttl / RENEWALS_PER_TTL);
    } catch (error) {
      if (this.#leaving) return;
      const name = (error as Error)?.name;
      if (name === "KeyModifiedError" || name === "KeyNotFoundError") {
        this.#lose("its key was removed or taken over", error);
        return;
      }
      const left = this.#confirmedAt + this.#ttl - Date.now();
      if (left <= 0) {
        this.#lose("it could not be renewed within its TTL", error);
        return;
      }
      this.#schedule(Math.min(RENEW_RETRY_MS, left));
    }
  }

  #lose(reason: string, cause?: unknown): void {
    if (this.#lost.signal.aborted) return;
    clearTimeout(this.#timer);
    this.#lost.abort(
      new LockLostError(
        this.#key,
        `membership ${reason}`,
        cause === undefined ? undefined : { cause },
      ),
    );
  }
}
