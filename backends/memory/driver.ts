/**
 * The driver of one `memory:` handle over a shared {@linkcode MemoryDatabase}.
 *
 * @module
 */

import { watchKeyLocally, watchTreeLocally } from "../../core/local_feed.ts";
import {
  holdsLocally,
  type LocalLockData,
  lockLocally,
  tryLockLocally,
} from "../../core/local_locks.ts";
import type {
  AtomicStep,
  CommitOutcome,
  Driver,
  DriverCommitOptions,
  DriverLockOptions,
  DriverPut,
  DriverReadOptions,
  DriverSignalOptions,
  DriverTryLockOptions,
  DriverWriteOptions,
  Entry,
  KeySink,
  LockLease,
  ScanRange,
  TreeSink,
} from "../../core/driver.ts";
import type { StoreLimits } from "../../core/types.ts";
import {
  closeDatabase,
  type MemoryDatabase,
  openDatabase,
} from "./database.ts";

/**
 * What a `memory:` store accepts. Nothing in memory forces these numbers;
 * they are chosen so that what works here also works on the embedded engine.
 */
export const MEMORY_LIMITS: StoreLimits = Object.freeze({
  maxKeyBytes: 4096,
  maxValueBytes: 16 * 1024 * 1024,
  // Reads check expiry exactly; only watch notifications wait for a timer.
  ttlGranularityMs: 50,
  maxAtomicOperations: 1024,
  maxBatchKeys: 1024,
});

/** One handle of a memory database. */
export class MemoryDriver implements Driver {
  readonly backend = "memory";
  readonly limits: StoreLimits = MEMORY_LIMITS;
  #name: string;
  #db: MemoryDatabase;
  #closed = false;

  constructor(name: string) {
    this.#name = name;
    this.#db = openDatabase(name);
  }

  get(key: string, _options: DriverReadOptions): Promise<Entry | null> {
    return Promise.resolve(this.#db.get(key));
  }

  put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<bigint> {
    // A commit without checks always applies; its revision is the key's.
    const outcome = this.#db.commit([
      { type: "put", key, value, ttl: options.ttl },
    ]) as { lastIndex: bigint };
    return Promise.resolve(outcome.lastIndex);
  }

  delete(key: string, _options: DriverSignalOptions): Promise<void> {
    this.#db.commit([{ type: "delete", key }]);
    return Promise.resolve();
  }

  getMany(
    keys: readonly string[],
    _options: DriverReadOptions,
  ): Promise<(Entry | null)[]> {
    return Promise.resolve(keys.map((key) => this.#db.get(key)));
  }

  putMany(
    writes: readonly DriverPut[],
    _options: DriverSignalOptions,
  ): Promise<bigint[]> {
    // One commit: every key gets its revision.
    const outcome = this.#db.commit(
      writes.map(({ key, value, ttl }) => ({ type: "put", key, value, ttl })),
    ) as { lastIndex: bigint };
    return Promise.resolve(writes.map(() => outcome.lastIndex));
  }

  deleteMany(
    keys: readonly string[],
    _options: DriverSignalOptions,
  ): Promise<void> {
    this.#db.commit(keys.map((key) => ({ type: "delete", key })));
    return Promise.resolve();
  }

  list(dir: string, _options: DriverReadOptions): Promise<Entry[]> {
    return Promise.resolve(this.#db.list(dir));
  }

  scan(range: ScanRange, _options: DriverReadOptions): Promise<Entry[]> {
    return Promise.resolve(this.#db.scan(range));
  }

  deleteTree(
    key: string | null,
    dir: string,
    _options: DriverSignalOptions,
  ): Promise<void> {
    this.#db.deleteTree(key, dir);
    return Promise.resolve();
  }

  commit(
    steps: readonly AtomicStep[],
    options: DriverCommitOptions,
  ): Promise<CommitOutcome> {
    // Checked in the same synchronous run as the commit: nothing between.
    if (options.fences?.some((lease) => !holdsLocally(lease))) {
      return Promise.resolve({ ok: false, fenced: true });
    }
    return Promise.resolve(this.#db.commit(steps));
  }

  watchKey(key: string, sink: KeySink, signal: AbortSignal): void {
    watchKeyLocally(this.#db, key, sink, signal);
  }

  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void {
    watchTreeLocally(this.#db, dir, sink, signal);
  }

  lock(key: string, options: DriverLockOptions): Promise<LockLease> {
    return lockLocally(this.#db.locks, key, options, this.#lockData(key));
  }

  tryLock(
    key: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | null> {
    return tryLockLocally(this.#db.locks, key, options, this.#lockData(key));
  }

  // How a lock's value is written and deleted.
  #lockData(key: string): LocalLockData {
    const db = this.#db;
    return {
      write: (value) =>
        Promise.resolve(
          (db.commit([{ type: "put", key, value }]) as { lastIndex: bigint })
            .lastIndex,
        ),
      delete: () => {
        db.commit([{ type: "delete", key }]);
        return Promise.resolve();
      },
      isOpen: () => !this.#closed,
    };
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      closeDatabase(this.#name, this.#db);
    }
    return Promise.resolve();
  }

  // A crashed holder: its locks stay in the shared database until their TTL
  // runs out, as they would on a server.
  abandon(): Promise<void> {
    return this.close();
  }
}
