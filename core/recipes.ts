/**
 * Coordination recipes built on any store's locks: a counting semaphore and
 * a read-write lock. Every hold is an ordinary lock of the store, so it
 * renews itself, reports loss on `lost` and fences writes
 * (`atomic().checkLock`, `put(..., { fence })`) like any other.
 *
 * A recipe owns the subtree under its key: the semaphore's permits are the
 * keys `<key>/permit-<i>`, the read-write lock's are `<key>/writer` and
 * `<key>/readers/<id>`. Everyone using one key must agree on the recipe and,
 * for a semaphore, on the number of permits.
 *
 * @module
 */

import { abortable, delay } from "./abort.ts";
import { InvalidArgumentError } from "./errors.ts";
import { DEFAULT_LOCK_TTL_MS } from "./lock.ts";
import type {
  AcquireOptions,
  Lock,
  LockOptions,
  ReadWriteLock,
  ReadWriteLockOptions,
  Semaphore,
  SemaphoreOptions,
  Store,
} from "./types.ts";

/** The most permits a semaphore takes: each one is a key to try. */
export const MAX_PERMITS = 1_000;

/**
 * A waiter re-tries every permit at least this often (or after half a TTL,
 * if shorter): a permit whose holder died frees by expiry, which no watch
 * reports, so a waiter takes it at most this long after it expired.
 * Releases are heard at once through the watch.
 */
const RECHECK_MS = 2_000;

function checkAcquire(options: AcquireOptions | undefined): void {
  if (options !== undefined && (typeof options !== "object" || !options)) {
    throw new InvalidArgumentError("Acquire options must be an object");
  }
}

function recheckMs(ttl: number): number {
  return Math.max(10, Math.min(RECHECK_MS, ttl / 2));
}

/**
 * The changes of the tree under `prefix` after its first snapshot (a release
 * deletes its hold's key), for a waiter of a recipe, until `signal` aborts.
 */
class TreeChanges {
  #reader: ReadableStreamDefaultReader<unknown>;
  #first: Promise<unknown>;
  #signal: AbortSignal;

  constructor(store: Store, prefix: string, signal: AbortSignal) {
    this.#signal = signal;
    this.#reader = store.watchTree(prefix, { signal }).getReader();
    this.#first = this.#reader.read().catch(() => {});
  }

  /**
   * Waits for the next change, or for the re-check of a recipe whose holds
   * have `ttl` (what no watch reports: a dead holder's expiry); rejects with
   * the signal's reason when it aborts.
   */
  nextOrRecheck(ttl: number): Promise<void> {
    return abortable(
      Promise.race([
        this.#next(),
        delay(recheckMs(ttl), this.#signal).catch(() => {}),
      ]),
      this.#signal,
    );
  }

  async #next(): Promise<void> {
    await this.#first;
    await this.#reader.read().catch(() => {});
  }
}

/**
 * A semaphore of `permits` on `store`, as {@linkcode Store.semaphore}
 * describes. Each permit is the lock of one key; `acquire` tries them all,
 * then waits for any change under the key (a release deletes its permit's
 * key, which the watch hears) or a re-check, which finds a dead holder's
 * permit once it expired; a waiter never holds or queues for a permit it
 * does not take, so nothing is left behind when it gives up.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@valkeyrie/valkeyrie/memory";
 *
 * await using store = new MemoryStore();
 * const pool = store.semaphore("jobs/encoders", { permits: 2 });
 * await using permit = await pool.acquire();
 * console.log(permit.key.startsWith("jobs/encoders/permit-")); // true
 * ```
 */
export function semaphore(
  store: Store,
  key: string,
  options: SemaphoreOptions,
): Semaphore {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      "semaphore() needs options with a number of permits",
    );
  }
  const { permits } = options;
  if (
    typeof permits !== "number" || !Number.isInteger(permits) || permits < 1 ||
    permits > MAX_PERMITS
  ) {
    throw new InvalidArgumentError(
      `permits must be an integer from 1 to ${MAX_PERMITS}, not ${
        String(permits)
      }`,
    );
  }
  const ttl = options.ttl ?? DEFAULT_LOCK_TTL_MS;
  const slots = Array.from({ length: permits }, (_, i) => `${key}/permit-${i}`);
  const lockOptions = (value: AcquireOptions["value"]): LockOptions => ({
    value,
    ttl,
    deleteOnUnlock: true,
  });

  const tryAcquire = async (
    acquire?: AcquireOptions,
  ): Promise<Lock | null> => {
    checkAcquire(acquire);
    // From a random permit on, so contenders spread over the permits
    // instead of all trying the first one.
    const start = Math.floor(Math.random() * permits);
    for (let i = 0; i < permits; i++) {
      const lock = await store.tryLock(slots[(start + i) % permits], {
        ...lockOptions(acquire?.value),
        signal: acquire?.signal,
      });
      if (lock) return lock;
    }
    return null;
  };

  return {
    tryAcquire,
    acquire: async (acquire?: AcquireOptions): Promise<Lock> => {
      checkAcquire(acquire);
      const signal = acquire?.signal;
      const stop = new AbortController();
      const both = signal
        ? AbortSignal.any([signal, stop.signal])
        : stop.signal;
      const changes = new TreeChanges(store, key, both);
      try {
        while (true) {
          const free = await tryAcquire(acquire);
          if (free) return free;
          await changes.nextOrRecheck(ttl);
        }
      } finally {
        stop.abort();
      }
    },
  };
}

/**
 * A read-write lock on `store`, as {@linkcode Store.readWriteLock}
 * describes. The writer's lock (`<key>/writer`) is also the gate readers
 * pass: a reader takes it for a moment, takes its own reader lock
 * (`<key>/readers/<id>`) and lets go; a writer holds it while it waits for
 * the readers to leave, so no new reader gets in meanwhile and a stream of
 * readers cannot starve it. A reader that died is told apart from a live one
 * by trying its lock: a dead reader's lock is free once it expired.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@valkeyrie/valkeyrie/memory";
 *
 * await using store = new MemoryStore();
 * const config = store.readWriteLock("config/lock");
 * const reader = await config.read();
 * await reader.unlock();
 * await using writer = await config.write();
 * console.log(writer.key); // "config/lock/writer"
 * ```
 */
export function readWriteLock(
  store: Store,
  key: string,
  options: ReadWriteLockOptions = {},
): ReadWriteLock {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError("readWriteLock() options must be an object");
  }
  const ttl = options.ttl ?? DEFAULT_LOCK_TTL_MS;
  const gate = `${key}/writer`;
  const readers = `${key}/readers`;

  return {
    read: async (acquire?: AcquireOptions): Promise<Lock> => {
      checkAcquire(acquire);
      const signal = acquire?.signal;
      const passage = await store.lock(gate, { ttl, signal });
      try {
        return await store.lock(`${readers}/${crypto.randomUUID()}`, {
          value: acquire?.value,
          ttl,
          signal,
          deleteOnUnlock: true,
        });
      } finally {
        await passage.unlock();
      }
    },
    write: async (acquire?: AcquireOptions): Promise<Lock> => {
      checkAcquire(acquire);
      const signal = acquire?.signal;
      const writer = await store.lock(gate, {
        value: acquire?.value,
        ttl,
        signal,
      });
      const stop = new AbortController();
      const both = signal
        ? AbortSignal.any([signal, stop.signal, writer.lost])
        : AbortSignal.any([stop.signal, writer.lost]);
      try {
        const changes = new TreeChanges(store, readers, both);
        while (true) {
          if (await noReaders(store, readers, ttl, both)) return writer;
          await changes.nextOrRecheck(ttl);
        }
      } catch (error) {
        await writer.unlock().catch(() => {});
        throw error;
      } finally {
        stop.abort();
      }
    },
  };
}

// Whether no live reader holds a lock under `readers`: a key whose lock is
// free (its holder died and the lock expired) is cleared on the way.
async function noReaders(
  store: Store,
  readers: string,
  ttl: number,
  signal: AbortSignal,
): Promise<boolean> {
  const scan = store.scan(readers, {
    keysOnly: true,
    consistent: true,
    signal,
  });
  for await (const pair of scan) {
    const dead = await store.tryLock(pair.key, {
      ttl,
      signal,
      deleteOnUnlock: true,
    });
    if (!dead) return false;
    await dead.unlock();
  }
  return true;
}
