/**
 * The `atomic()` builder: collects checked steps, then hands them to the
 * driver in one commit.
 *
 * @module
 */

import { utf8Length } from "./keys.ts";
import { checkDelta } from "./counter.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { AtomicStep, LockLease } from "./driver.ts";
import type {
  AtomicOperation,
  CommitResult,
  Lock,
  SignalOptions,
} from "./types.ts";

/** A counter to add to, resolved by the store at commit. */
export interface AtomicSum {
  /** The full key. */
  key: string;
  /** The key as the caller gave it, for messages. */
  userKey: string;
  /** What to add. */
  delta: bigint;
  /** The counter's TTL after the write (`increment`'s option), if any. */
  ttl?: number;
}

/** What the builder needs from its store. */
export interface AtomicContext {
  /** Checks a key; returns the full key. Throws `InvalidKeyError`. */
  key(key: string): string;
  /** Checks a value; returns its bytes. Throws `ValueTooLargeError`. */
  value(key: string, value: Uint8Array | string): Uint8Array;
  /** Checks a TTL option. */
  ttl(ttl: unknown): number | undefined;
  /**
   * The lease behind a lock of this store, or `null` when the lock is known
   * not to be held any more. Throws `InvalidArgumentError` for anything else.
   */
  lease(lock: Lock): LockLease | null;
  /** The most steps one operation may hold. */
  readonly maxOperations: number;
  /** The most bytes of keys and values the operation may carry, if bound. */
  readonly maxBytes?: number;
  /**
   * Commits the steps (checks first) and adds to the counters, fenced by
   * the leases (`null`: a lock known lost, so the commit must fail).
   */
  commit(
    steps: readonly AtomicStep[],
    sums: readonly AtomicSum[],
    fences: readonly (LockLease | null)[],
    options: SignalOptions | undefined,
  ): Promise<CommitResult>;
}

/**
 * Builds one all-or-nothing operation. Every argument is checked when it is
 * added, so a bad one throws before any I/O. A key may be checked once and
 * written once in one operation: several backends (etcd, DynamoDB) refuse
 * more, so the library refuses it everywhere.
 *
 * @example Through a store
 * ```ts ignore
 * const result = await store.atomic()
 *   .check("config/version", pair.lastIndex)
 *   .put("config/version", "2")
 *   .delete("config/draft")
 *   .commit();
 * if (!result.ok) console.log("someone else changed it");
 * ```
 */
export class AtomicBuilder implements AtomicOperation {
  #context: AtomicContext;
  #checks: AtomicStep[] = [];
  #writes: AtomicStep[] = [];
  #checked = new Set<string>();
  #written = new Set<string>();
  #sums: AtomicSum[] = [];
  #fences: (LockLease | null)[] = [];
  #fenced = new Set<Lock>();
  #committed = false;
  // Bytes of keys and values so far, against `maxBytes`.
  #bytes = 0;

  /**
   * Creates an empty operation.
   *
   * @param context The store's checks and commit.
   */
  constructor(context: AtomicContext) {
    this.#context = context;
  }

  check(key: string, lastIndex: bigint | null): this {
    const full = this.#add(key, this.#checked, "checked");
    if (lastIndex !== null && typeof lastIndex !== "bigint") {
      throw new InvalidArgumentError(
        `check() needs a bigint lastIndex or null for key ${
          JSON.stringify(key)
        }`,
      );
    }
    this.#checks.push({ type: "check", key: full, lastIndex });
    return this;
  }

  put(
    key: string,
    value: Uint8Array | string,
    options?: { ttl?: number },
  ): this {
    const bytes = this.#context.value(key, value);
    const ttl = this.#context.ttl(options?.ttl);
    const full = this.#add(key, this.#written, "written", 1, bytes.byteLength);
    this.#writes.push({ type: "put", key: full, value: bytes, ttl });
    return this;
  }

  delete(key: string): this {
    const full = this.#add(key, this.#written, "written");
    this.#writes.push({ type: "delete", key: full });
    return this;
  }

  sum(key: string, delta: bigint = 1n): this {
    // A sum becomes a check and a put at commit: it counts as two steps,
    // and its value is at most 20 digits and a sign.
    const full = this.#add(key, this.#written, "summed", 2, 20);
    this.#sums.push({ key: full, userKey: key, delta: checkDelta(key, delta) });
    return this;
  }

  checkLock(lock: Lock): this {
    if (this.#fenced.has(lock)) {
      throw new InvalidArgumentError(
        `The lock on ${
          JSON.stringify(lock.key)
        } is checked twice in one atomic operation`,
      );
    }
    const lease = this.#context.lease(lock);
    this.#reserve(1);
    this.#fenced.add(lock);
    this.#fences.push(lease);
    return this;
  }

  commit(options?: SignalOptions): Promise<CommitResult> {
    if (this.#committed) {
      return Promise.reject(
        new InvalidArgumentError("This atomic operation was already committed"),
      );
    }
    this.#committed = true;
    return this.#context.commit(
      [...this.#checks, ...this.#writes],
      this.#sums,
      this.#fences,
      options,
    );
  }

  // Throws when `steps` more would not fit in one operation.
  #reserve(steps: number): void {
    const used = this.#checks.length + this.#writes.length +
      2 * this.#sums.length + this.#fences.length;
    if (used + steps > this.#context.maxOperations) {
      throw new InvalidArgumentError(
        `An atomic operation holds at most ${this.#context.maxOperations} checks and writes on this backend`,
      );
    }
  }

  #add(
    key: string,
    seen: Set<string>,
    verb: string,
    steps = 1,
    valueBytes = 0,
  ): string {
    const full = this.#context.key(key);
    this.#reserve(steps);
    const max = this.#context.maxBytes;
    const bytes = utf8Length(full) + valueBytes;
    if (max !== undefined && this.#bytes + bytes > max) {
      throw new InvalidArgumentError(
        `An atomic operation carries at most ${max} bytes of keys and values on this backend; adding ${
          JSON.stringify(key)
        } makes ${this.#bytes + bytes}`,
      );
    }
    // A sum checks and writes its counter itself.
    const summed = this.#sums.some((sum) => sum.key === full) ||
      (verb === "summed" &&
        (this.#checked.has(full) || this.#written.has(full)));
    if (summed) {
      throw new InvalidArgumentError(
        `Key ${
          JSON.stringify(key)
        } is summed in one atomic operation and cannot also be checked or written`,
      );
    }
    if (seen.has(full)) {
      throw new InvalidArgumentError(
        `Key ${JSON.stringify(key)} is ${verb} twice in one atomic operation`,
      );
    }
    seen.add(full);
    this.#bytes += bytes;
    return full;
  }
}
