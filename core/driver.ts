/**
 * The interface a backend implements. A driver is a small set of functions
 * over a client; {@linkcode BaseStore} turns it into the public `Store` and
 * does everything generic once: key and value checks, limits, the `prefix`
 * namespace, closed and aborted calls, error wrapping, sorting, the watch
 * stream rules, lock renewal and the `atomic()` builder.
 *
 * Everything a driver receives is already checked. Keys are full keys: the
 * store's prefix joined with the normalised key, never empty. A `dir` is the
 * string every key of a tree starts with: `"a/b/"`, or `""` for the whole
 * keyspace of the driver (which the driver must confine to what it owns).
 *
 * What a driver's client fails with goes through the backend's one error
 * translator, of the shape `ErrorTranslator` in `translate.ts`
 * (`translateError(error, { op, key })`), wherever a client call fails; the
 * store wraps whatever is left untranslated.
 *
 * @module
 */

import type { CommitResult, StoreLimits } from "./types.ts";
import type { DriverEvent } from "./events.ts";

/** A stored key as a driver reports it. */
export interface Entry {
  /** The full key (with the store's prefix). */
  key: string;
  /** The stored bytes. The driver must not change them afterwards. */
  value: Uint8Array;
  /** The key's version; it grows with every write of the key. */
  lastIndex: bigint;
  /**
   * When the key expires (milliseconds since the epoch), if the driver knows.
   * Watches then report the expiry on time even where the server deletes
   * expired keys late.
   */
  expiresAt?: number;
}

/** Options of driver reads. */
export interface DriverReadOptions {
  /** See `ReadOptions.consistent`; always set. */
  consistent: boolean;
  /** The caller's signal, if any. */
  signal?: AbortSignal;
}

/**
 * One page of a scan, every bound a full key. The driver returns the live
 * entries whose key starts with `dir` (and is not `dir` itself), lies above
 * `lower` (or at it, when `lowerInclusive`) and below `upper`, in UTF-8 byte
 * order of their keys (descending when `reverse`), at most `limit` of them:
 * the first `limit` in that order. A page shorter than `limit` says the
 * range holds no more.
 */
export interface ScanRange {
  /** Every key starts with this, as for `list`. */
  dir: string;
  /** The lower bound, if any. */
  lower?: string;
  /** Whether `lower` itself belongs to the range. */
  lowerInclusive: boolean;
  /** The upper bound (exclusive), if any. */
  upper?: string;
  /** Descending order: the page is the range's last `limit` keys. */
  reverse: boolean;
  /** The most entries the page may hold (at least 1). */
  limit: number;
  /** The caller wants no values: the driver may leave them empty. */
  keysOnly: boolean;
}

/** Options of driver writes. */
export interface DriverWriteOptions {
  /** Time to live in milliseconds, already checked to be positive. */
  ttl?: number;
  /** The caller's signal, if any. */
  signal?: AbortSignal;
}

/** One write of {@linkcode Driver.putMany}, checked like a `put`'s. */
export interface DriverPut {
  /** The full key. */
  key: string;
  /** The value. */
  value: Uint8Array;
  /** Time to live in milliseconds, already checked to be positive. */
  ttl?: number;
}

/** Options of driver calls that only take a signal. */
export interface DriverSignalOptions {
  /** The caller's signal, if any. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Driver.commit}. */
export interface DriverCommitOptions extends DriverSignalOptions {
  /**
   * Fenced writes: leases, each one handed out by this driver's `lock` or
   * `tryLock`, that must all still be held at commit — checked by the server
   * in the same transaction as the steps, never by a read before it. A lease
   * that was released, expired or taken over fails the commit like a failed
   * check (`{ ok: false, fenced: true }`), and nothing changes. Each fence
   * counts as one step towards `limits.maxAtomicOperations`.
   */
  fences?: readonly LockLease[];
}

/**
 * One step of an atomic operation. {@linkcode BaseStore} guarantees that a
 * key is checked at most once and written at most once per operation, and
 * that checks come first.
 */
export type AtomicStep =
  | { type: "check"; key: string; lastIndex: bigint | null }
  | { type: "put"; key: string; value: Uint8Array; ttl?: number }
  | { type: "delete"; key: string };

/**
 * The outcome of {@linkcode Driver.increment}: the counter's new value and
 * version, or why the server refused (nothing changed): the stored value is
 * not a counter, or the sum would leave the signed 64-bit range (`current`
 * is the value it holds).
 */
export type IncrementOutcome =
  | { ok: true; value: bigint; lastIndex: bigint }
  | { ok: false; reason: "not-a-counter" }
  | { ok: false; reason: "overflow"; current: bigint };

/**
 * The outcome of {@linkcode Driver.commit}. On a failed check the driver may
 * say which check failed and what the key's state was, so `atomicPut` and
 * `atomicDelete` can tell "not found" from "modified" without another read.
 */
export type CommitOutcome =
  | CommitResult & { ok: true }
  | {
    ok: false;
    /** The failed check's key, if known. */
    key?: string;
    /** The key's `lastIndex` at commit (`null`: absent), if known. */
    current?: bigint | null;
    /** A fence failed: one of the leases is no longer held, if known. */
    fenced?: boolean;
  };

/**
 * Where a key watch reports. The driver calls `state` with the key's state
 * at the start, after every change it hears of, and after re-reading when it
 * resumes from a dropped connection. {@linkcode BaseStore} drops states it
 * already reported, so a driver may report the same state twice.
 */
export interface KeySink {
  /** The key's state now: its entry, or `null` when absent. */
  state(entry: Entry | null): void;
  /** Ends the watch with an error (a `StoreError` that says why). */
  error(error: unknown): void;
}

/**
 * Where a tree watch reports. The driver calls `reset` with the whole tree at
 * the start and after re-reading, then `put` and `delete` for each change (or
 * `reset` again, if re-listing is all it can do). Changes reported in one
 * synchronous run are folded into one snapshot.
 */
export interface TreeSink {
  /** The whole tree now. */
  reset(entries: Entry[]): void;
  /** A key in the tree was written. */
  put(entry: Entry): void;
  /** A key in the tree was deleted or expired. */
  delete(key: string): void;
  /** Ends the watch with an error (a `StoreError` that says why). */
  error(error: unknown): void;
  /**
   * The feed is down (a dropped connection) and what was reported may be
   * out of date until it is back. Optional for a sink; a driver that can
   * tell calls it when its connection drops, before resuming.
   */
  stale?(): void;
}

/**
 * Where a tree watch that replays history reports (see
 * {@linkcode Driver.replayTree}).
 */
export interface ReplaySink extends TreeSink {
  /**
   * Called instead of the first `reset`: the changes after the asked index
   * follow as `put` and `delete` calls (a delete also of a key the sink has
   * not seen), then `replayed`, then live changes as for any tree watch.
   */
  replaying(): void;
  /** Every change up to `lastIndex` has been reported. */
  replayed(lastIndex: bigint): void;
}

/** What a driver's `lock` returns once the lock is held. */
export interface LockLease {
  /** The fencing token: it grows with every acquisition of the key. */
  readonly lastIndex: bigint;
  /**
   * Extends the hold by another TTL. Resolves `false` when the lock is known
   * to be gone; throws when it could not tell (a network error), and is then
   * retried until the TTL runs out. Leave it out where the backend keeps the
   * lock alive by itself (a session, a lease keep-alive) and reports the loss
   * through `lost`.
   */
  renew?(signal: AbortSignal): Promise<boolean>;
  /** Aborted by the driver when it learns on its own that the lock is gone. */
  readonly lost?: AbortSignal;
  /**
   * Releases the lock, deleting the key too when `deleteKey` is set (in that
   * order, so no other holder's value is deleted). Resolves also when the
   * lock was already gone.
   */
  release(deleteKey: boolean, signal: AbortSignal): Promise<void>;
  /**
   * For the conformance kit: stops whatever the driver does by itself to
   * keep the lease alive (a lease keep-alive, session heartbeats), as if the
   * holder's process were frozen, while leaving the store able to send
   * writes. The server then lets the lock expire and must refuse fenced
   * writes of this lease. Leave it out where nothing but `renew` keeps the
   * lease alive.
   */
  pause?(): void;
}

/** Options of {@linkcode Driver.lock}. */
export interface DriverLockOptions {
  /** The value to write at the key once held. */
  value: Uint8Array;
  /** The lock's TTL in milliseconds. */
  ttl: number;
  /** Aborts waiting: the driver rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode Driver.tryLock}: those of `lock`, whose signal then
 * aborts the one attempt.
 */
export type DriverTryLockOptions = DriverLockOptions;

/** A backend, as seen by {@linkcode BaseStore}. */
export interface Driver {
  /** The backend's name. */
  readonly backend: string;
  /** What the backend accepts. `maxKeyBytes` counts the full key. */
  readonly limits: StoreLimits;
  /**
   * Backend-specific key rules on top of the common ones (ZooKeeper forbids
   * some characters). Returns why the full key is invalid, or `undefined`.
   */
  checkKey?(key: string): string | undefined;
  /** The entry at `key`, or `null`. */
  get(key: string, options: DriverReadOptions): Promise<Entry | null>;
  /**
   * Writes `value` at `key` and resolves the key's new `lastIndex`: exactly
   * what a `get` right after would report, taken from the write's own reply
   * wherever the backend gives it.
   */
  put(
    key: string,
    value: Uint8Array,
    options: DriverWriteOptions,
  ): Promise<bigint>;
  /** Deletes `key`; no error when absent. */
  delete(key: string, options: DriverSignalOptions): Promise<void>;
  /** Every entry whose key starts with `dir`, in any order. */
  list(dir: string, options: DriverReadOptions): Promise<Entry[]>;
  /**
   * One page of a scan (see {@linkcode ScanRange}), read with memory bounded
   * by the page, not by the tree. A driver without it is scanned through
   * `list` (each page lists the whole tree: correct, but neither bounded nor
   * cheap), and its backend page says so.
   */
  scan?(range: ScanRange, options: DriverReadOptions): Promise<Entry[]>;
  /**
   * Batch calls: each is one round trip (or one commit) for a chunk of at
   * most `limits.maxBatchKeys` distinct keys (256 when not declared), and
   * resolves one result per key, in the order given. Not atomic: a chunk that
   * rejects may have been partly applied. A driver that leaves one out gets
   * its single calls, a bounded number at a time.
   */
  getMany?(
    keys: readonly string[],
    options: DriverReadOptions,
  ): Promise<(Entry | null)[]>;
  /** See {@linkcode Driver.getMany}; resolves each key's new `lastIndex`. */
  putMany?(
    writes: readonly DriverPut[],
    options: DriverSignalOptions,
  ): Promise<bigint[]>;
  /** See {@linkcode Driver.getMany}; no error for keys that are absent. */
  deleteMany?(
    keys: readonly string[],
    options: DriverSignalOptions,
  ): Promise<void>;
  /**
   * Adds `delta` (checked to be in the signed 64-bit range) to the counter
   * at `key` in one round trip, where the server can do arithmetic (Redis's
   * `INCRBY`): the value is the decimal text `core/counter.ts` reads, a
   * missing key counting as `0`, and the key then has `options.ttl` as a put
   * would give it. A driver without it gets core's compare-and-set loop.
   */
  increment?(
    key: string,
    delta: bigint,
    options: DriverWriteOptions,
  ): Promise<IncrementOutcome>;
  /**
   * Deletes `key` (unless it is `null`: the root of the store) and every key
   * starting with `dir`.
   */
  deleteTree(
    key: string | null,
    dir: string,
    options: DriverSignalOptions,
  ): Promise<void>;
  /**
   * Applies the steps all together, or none when a check or a fence (see
   * {@linkcode DriverCommitOptions.fences}) fails.
   */
  commit(
    steps: readonly AtomicStep[],
    options: DriverCommitOptions,
  ): Promise<CommitOutcome>;
  /**
   * Starts watching `key`: reports its current state first, then every
   * change, until `signal` aborts.
   */
  watchKey(key: string, sink: KeySink, signal: AbortSignal): void;
  /**
   * Starts watching every key starting with `dir`: a `reset` first, then every
   * change, until `signal` aborts.
   */
  watchTree(dir: string, sink: TreeSink, signal: AbortSignal): void;
  /**
   * Starts watching the tree as `watchTree` does, but first replays the
   * changes after `from` where the backend still holds that history (see
   * {@linkcode ReplaySink}); where it does not (compacted, or `from` lies
   * in the future), starts with a `reset` as `watchTree` does. A driver
   * without it is resumed with a `reset`.
   */
  replayTree?(
    dir: string,
    from: bigint,
    sink: ReplaySink,
    signal: AbortSignal,
  ): void;
  /** Waits until the lock on `key` is held and its value written. */
  lock(key: string, options: DriverLockOptions): Promise<LockLease>;
  /**
   * Takes the lock on `key` if no one holds it now, writing its value, or
   * resolves `null` at once when someone does: never waits for a holder (a
   * dead holder's lock counts as held until it expires). Leaves nothing
   * behind when it resolves `null` (no queued waiter, no session).
   */
  tryLock(
    key: string,
    options: DriverTryLockOptions,
  ): Promise<LockLease | null>;
  /**
   * Called once by the store with where to report what the driver handles
   * on its own: reconnections, retries, resumed watches, a client's
   * background errors (see {@linkcode DriverEvent}). A driver without it
   * reports nothing.
   */
  observe?(emit: (event: DriverEvent) => void): void;
  /** Closes connections. Called once, after watches and locks are ended. */
  close(): Promise<void>;
  /**
   * Drops connections without any goodbye, as a crashed process would: no
   * lock is released, no session closed. Used by the conformance kit.
   */
  abandon(): Promise<void>;
}
