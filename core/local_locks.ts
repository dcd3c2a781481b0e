/**
 * Locks held in this process, for backends whose every lock holder and
 * waiter lives in one process (`memory:`, and `file:`, which one process
 * opens at a time): a table of holders with TTLs, and the driver's `lock()`
 * over it, waiting on release notices rather than polling.
 *
 * @module
 */

import { waitForLock } from "./lock.ts";
import type {
  DriverLockOptions,
  DriverTryLockOptions,
  LockLease,
} from "./driver.ts";

interface Held {
  owner: symbol;
  expiresAt: number;
}

/**
 * The held locks of one database, and who waits for their release.
 *
 * @example
 * ```ts
 * import { LocalLockTable } from "./local_locks.ts";
 *
 * const table = new LocalLockTable();
 * const me = Symbol("me");
 * console.log(table.tryLock("k", me, 1000)); // null: taken
 * ```
 */
export class LocalLockTable {
  #held = new Map<string, Held>();
  #listeners = new Set<(key: string) => void>();

  /**
   * Takes the lock on `key` for `owner` unless another owner holds it.
   *
   * @returns `null` when taken, else how long the holder's hold has left.
   */
  tryLock(key: string, owner: symbol, ttl: number): number | null {
    const held = this.#held.get(key);
    const now = Date.now();
    if (held && held.owner !== owner && held.expiresAt > now) {
      return held.expiresAt - now;
    }
    this.#held.set(key, { owner, expiresAt: now + ttl });
    return null;
  }

  /** Extends `owner`'s hold; `false` when it no longer holds the lock. */
  renew(key: string, owner: symbol, ttl: number): boolean {
    if (!this.holds(key, owner)) return false;
    this.#held.get(key)!.expiresAt = Date.now() + ttl;
    return true;
  }

  /** Whether `owner` holds the lock on `key` now. */
  holds(key: string, owner: symbol): boolean {
    const held = this.#held.get(key);
    return held !== undefined && held.owner === owner &&
      held.expiresAt > Date.now();
  }

  /** Releases `owner`'s lock on `key`, if it holds it, and wakes waiters. */
  unlock(key: string, owner: symbol): void {
    if (this.#held.get(key)?.owner !== owner) return;
    this.#held.delete(key);
    for (const listener of [...this.#listeners]) listener(key);
  }

  /** Hears releases; returns the function that stops it. */
  listen(listener: (key: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Forgets every lock (the database is closing). */
  clear(): void {
    this.#held.clear();
    this.#listeners.clear();
  }
}

/** How a lock's value is written and deleted in the backend's data. */
export interface LocalLockData {
  /** Writes the holder's value at the key; resolves its new `lastIndex`. */
  write(value: Uint8Array): Promise<bigint>;
  /** Deletes the key. */
  delete(): Promise<void>;
  /** Whether the handle is still open (a closed one renews nothing). */
  isOpen(): boolean;
}

/**
 * A waiter re-attempts a lock at least this often even if it hears nothing:
 * a safety net, since every release in the process is heard.
 */
const LOCK_RECHECK_MS = 1_000;

/**
 * The driver's `lock()` over a {@linkcode LocalLockTable}: waits for the
 * lock, writes its value, and hands out a lease whose fencing token is the
 * value's `lastIndex`.
 *
 * @param table The database's lock table.
 * @param key The full key.
 * @param options The value, TTL and signal.
 * @param data How the value is written and deleted.
 * @returns The lease, once the lock is held.
 *
 * @example
 * ```ts ignore
 * lock(key, options) {
 *   return lockLocally(this.#locks, key, options, {
 *     write: (value) => this.#db.put(key, value),
 *     delete: () => this.#db.delete(key),
 *     isOpen: () => !this.#closed,
 *   });
 * }
 * ```
 */
export function lockLocally(
  table: LocalLockTable,
  key: string,
  options: DriverLockOptions,
  data: LocalLockData,
): Promise<LockLease> {
  const owner = Symbol(key);
  return waitForLock<LockLease>({
    signal: options.signal,
    maxWaitMs: LOCK_RECHECK_MS,
    attempt: () => attemptLocally(table, key, owner, options, data),
    changed: (signal) =>
      new Promise<void>((resolve) => {
        const done = () => {
          stop();
          resolve();
        };
        const stop = table.listen((released) => {
          if (released === key) done();
        });
        signal.addEventListener("abort", done, { once: true });
      }),
  });
}

/**
 * The driver's `tryLock()` over a {@linkcode LocalLockTable}: one attempt,
 * `null` when someone holds the lock.
 *
 * @param table The database's lock table.
 * @param key The full key.
 * @param options The value, TTL and signal.
 * @param data How the value is written and deleted.
 * @returns The lease, or `null`.
 */
export async function tryLockLocally(
  table: LocalLockTable,
  key: string,
  options: DriverTryLockOptions,
  data: LocalLockData,
): Promise<LockLease | null> {
  options.signal?.throwIfAborted();
  const result = await attemptLocally(
    table,
    key,
    Symbol(key),
    options,
    data,
  );
  return typeof result === "number" ? null : result;
}

/**
 * Whether a lease of {@linkcode lockLocally} or {@linkcode tryLockLocally}
 * is held now (`false` for a lease of anything else): the fence check of a
 * local driver's commit, run synchronously with the commit itself.
 *
 * @param lease A lease the driver handed out.
 */
export function holdsLocally(lease: LockLease): boolean {
  return holders.get(lease)?.() ?? false;
}

// How each local lease tells whether it is held.
const holders = new WeakMap<LockLease, () => boolean>();

async function attemptLocally(
  table: LocalLockTable,
  key: string,
  owner: symbol,
  options: DriverTryLockOptions,
  data: LocalLockData,
): Promise<LockLease | number> {
  const { ttl } = options;
  const heldFor = table.tryLock(key, owner, ttl);
  if (heldFor !== null) return heldFor;
  let lastIndex: bigint;
  try {
    lastIndex = await data.write(options.value);
  } catch (error) {
    table.unlock(key, owner);
    throw error;
  }
  const lease: LockLease = {
    lastIndex,
    renew: () => Promise.resolve(data.isOpen() && table.renew(key, owner, ttl)),
    release: async (deleteKey: boolean) => {
      try {
        if (deleteKey && table.holds(key, owner)) await data.delete();
      } finally {
        table.unlock(key, owner);
      }
    },
  };
  holders.set(lease, () => data.isOpen() && table.holds(key, owner));
  return lease;
}
