/**
 * The driver of one `file:` handle over a shared database file.
 *
 * @module
 */

import { watchKeyLocally, watchTreeLocally } from "../../core/local_feed.ts";
import { lockLocally } from "../../core/local_locks.ts";
import type {
  AtomicStep,
  CommitOutcome,
  Driver,
  DriverLockOptions,
  DriverReadOptions,
  DriverSignalOptions,
  DriverWriteOptions,
  Entry,
  KeySink,
  LockLease,
  TreeSink,
} from "../../core/driver.ts";
import type { StoreLimits } from "../../core/types.ts";
import { closeShared, type SharedDatabase } from "./shared.ts";

/**
 * What a `file:` store accepts. Keys: the engine's node pages hold three
 * keys of 1 KiB each at least, which a B+tree split needs. Values: stored
 * in overflow pages beyond 900 bytes; 16 MiB is the size tested (a value
 * passes through the engine's memory whole). Reads check expiry exactly;
 * only watch notifications wait for a timer.
 */
export const FILE_LIMITS: StoreLimits = Object.freeze({
  maxKeyBytes: 1024,
  maxValueBytes: 16 * 1024 * 1024,
  ttlGranularityMs: 50,
  maxAtomicOperations: 10_000,
});

/** One handle of a database file. */
export class FileDriver implements Driver {
  readonly backend = "file";
  readonly limits: StoreLimits = FILE_LIMITS;
  readonly #shared: SharedDatabase;
  #closed = false;

  constructor(shared: SharedDatabase) {
    this.#shared = shared;
  }

  get(key: string, _options: DriverReadOptions): Promise<Entry | null> {
    try {
      return Promise.resolve(this.#shared.db.get(key));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<void> {
    return this.#shared.db.put(key, value, options.ttl);
  }

  delete(key: string, _options: DriverSignalOptions): Promise<void> {
    return this.#shared.db.delete(key);
  }

  list(dir: string, _options: DriverReadOptions): Promise<Entry[]> {
    return this.#shared.db.list(dir);
  }

  deleteTree(
    key: string | null,
    dir: string,
    _options: DriverSignalOptions,
  ): Promise<void> {
    return this.#shared.db.write((tx) => {
      tx.op();
      tx.deleteTree(key, dir);
    });
  }

  commit(
    steps: readonly AtomicStep[],
    _options: DriverSignalOptions,
  ): Promise<CommitOutcome> {
    return this.#shared.db.write((tx): CommitOutcome => {
      for (const step of steps) {
        if (step.type !== "check") continue;
        const current = tx.revision(step.key);
        if (current !== step.lastIndex) {
          return { ok: false, key: step.key, current };
        }
      }
      const revision = tx.op();
      for (const step of steps) {
        if (step.type === "put") {
          tx.put(step.key, step.value, revision, step.ttl);
        } else if (step.type === "delete") {
          tx.delete(step.key);
        }
      }
      return { ok: true, lastIndex: BigInt(revision) };
    });
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    watchKeyLocally(this.#shared.db, key, sink, signal);
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    watchTreeLocally(this.#shared.db, dir, sink, signal);
  }

  lock(key: string, options: DriverLockOptions): Promise<LockLease> {
    const { db, locks } = this.#shared;
    return lockLocally(locks, key, options, {
      write: (value) =>
        db.write((tx) => {
          const revision = tx.op();
          tx.put(key, value, revision);
          return BigInt(revision);
        }),
      delete: () =>
        db.write((tx) => {
          tx.op();
          tx.delete(key);
        }),
      isOpen: () => !this.#closed,
    });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return closeShared(this.#shared);
  }

  // A crashed holder: its locks stay until their TTL runs out, as they
  // would for another process (which the process lock keeps out anyway).
  abandon(): Promise<void> {
    return this.close();
  }
}
