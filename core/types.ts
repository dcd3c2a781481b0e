/**
 * The public types of the store contract.
 *
 * @module
 */

import type { StoreEvents } from "./events.ts";

/** A key with its value and version, as returned by reads. */
export interface KVPair {
  /** The key, normalised: no leading or trailing `/`, relative to the store's `prefix`. */
  key: string;
  /** The stored bytes. */
  value: Uint8Array;
  /**
   * The backend's version of this key (etcd mod revision, Consul ModifyIndex,
   * ...). It changes on every write of the key and is never reused for it.
   */
  lastIndex: bigint;
}

/** Options of calls that only need a signal. */
export interface SignalOptions {
  /** Aborts the call: it rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options of `put`, `atomicPut` and `lock`-free writes. */
export interface WriteOptions extends SignalOptions {
  /**
   * Time to live in milliseconds. The key is readable until it has passed and
   * gone no later than `ttl + limits.ttlGranularityMs` after the write.
   */
  ttl?: number;
}

/** Options of {@linkcode Store.put}. */
export interface PutOptions extends WriteOptions {
  /**
   * A fenced write: the put is applied only if `fence` (a lock of this
   * store) is still held with its `lastIndex`, checked by the server in the
   * same transaction as the write. A holder that lost the lock — paused past
   * its TTL, cut off, taken over — gets a `LockLostError`, and nothing
   * changes.
   */
  fence?: Lock;
}

/** One entry of {@linkcode Store.putMany}. */
export interface PutEntry {
  /** The key. */
  key: string;
  /** The bytes, or a string stored as UTF-8. */
  value: Uint8Array | string;
  /** Time to live in milliseconds, as `put`'s `ttl`. */
  ttl?: number;
}

/** Options of reads. */
export interface ReadOptions extends SignalOptions {
  /**
   * Read the latest committed state (default `true`). `false` allows a stale
   * read where the backend offers a cheaper one (Consul `?stale`, etcd
   * serializable reads, DynamoDB eventually consistent reads).
   */
  consistent?: boolean;
}

/** Options of {@linkcode Store.scan}. */
export interface ScanOptions extends ReadOptions {
  /** At most this many pairs in all. */
  limit?: number;
  /** Resume after the last pair of an earlier scan (its `cursor`). */
  cursor?: string;
  /** Descending key order. */
  reverse?: boolean;
  /** The first key (inclusive); a key under the scanned prefix. */
  start?: string;
  /** The key to stop before (exclusive); a key under the scanned prefix. */
  end?: string;
  /** Pairs carry an empty value; no values are read where avoidable. */
  keysOnly?: boolean;
  /** Pairs fetched per round trip (default 256, at most 10,000). */
  batchSize?: number;
}

/** What {@linkcode Store.scan} returns: pairs, one page fetched at a time. */
export interface ScanIterator
  extends AsyncIterableIterator<KVPair, undefined, undefined> {
  /**
   * A cursor that resumes right after the last pair yielded (`""`, or the
   * cursor the scan was given, before the first).
   */
  readonly cursor: string;
}

/** One event of {@linkcode Store.watchEvents}. */
export type WatchEvent =
  /** A key was written (or is part of the current tree). */
  | { type: "put"; pair: KVPair }
  /** A key was deleted or expired; `lastIndex` where the backend tells it. */
  | { type: "delete"; key: string; lastIndex?: bigint }
  /** Everything up to here has been delivered. */
  | { type: "synced"; lastIndex: bigint }
  /** History was lost: forget the tree; the current one follows as puts. */
  | { type: "reset" };

/** Options of {@linkcode Store.watchEvents}. */
export interface WatchEventsOptions extends SignalOptions {
  /**
   * Resume after this index (a `lastIndex` or `synced` index seen earlier):
   * the changes after it are replayed where the backend keeps history, else
   * the stream starts with `reset`.
   */
  fromIndex?: bigint;
}

/** What a backend can store, declared by each backend. */
export interface StoreLimits {
  /** The longest key, in UTF-8 bytes (after the store's `prefix` is taken off). */
  readonly maxKeyBytes: number;
  /** The largest value, in bytes. */
  readonly maxValueBytes: number;
  /** How late after its TTL a key may still be seen, in milliseconds. */
  readonly ttlGranularityMs: number;
  /** The most checks and writes one `atomic()` operation may hold. */
  readonly maxAtomicOperations: number;
  /**
   * The most bytes one `atomic()` operation may carry — the UTF-8 bytes of
   * its keys (each time a key is checked or written) plus its values —
   * where the backend declares its request limit (etcd: 1.5 MiB less
   * framing; see each backend's page): more is an `InvalidArgumentError` as
   * the step is added, before any I/O. The backend's framing is allowed
   * for. Left out where the request's size is not a function of those
   * bytes (ZooKeeper escapes paths and plans on what it reads, Consul sends
   * base64 and JSON): the driver measures the request it is about to send
   * and refuses one too large with an `InvalidArgumentError`, writing
   * nothing.
   */
  readonly maxAtomicBytes?: number;
  /**
   * The longest TTL a key may be given, in milliseconds, where the backend
   * has one (ZooKeeper's TTL nodes, Consul's sessions); a longer one is an
   * `InvalidArgumentError` before any I/O. Locks' TTLs are not bound by it.
   */
  readonly maxTtlMs?: number;
  /**
   * The most keys one round trip of `getMany`, `putMany` or `deleteMany`
   * carries, where the backend has a batch call (DynamoDB's 25 writes,
   * Consul's 64 transaction operations); longer calls are split into chunks
   * of this size. Absent where each key is its own call.
   */
  readonly maxBatchKeys?: number;
}

/** Options of {@linkcode Store.lock}. */
export interface LockOptions extends SignalOptions {
  /** The value written at the lock's key while it is held (default empty). */
  value?: Uint8Array | string;
  /**
   * How long the lock survives its holder, in milliseconds (default 20 000).
   * While held it is renewed before this runs out.
   */
  ttl?: number;
  /** Delete the key on `unlock()` (default `false`: it keeps the holder's value). */
  deleteOnUnlock?: boolean;
}

/** Options of {@linkcode Store.semaphore}. */
export interface SemaphoreOptions {
  /** How many holders at most (a positive integer, at most 1 000). */
  permits: number;
  /** The TTL of each permit in milliseconds (default 20 000). */
  ttl?: number;
}

/** Options of one acquisition of a recipe. */
export interface AcquireOptions extends SignalOptions {
  /** The value written at the permit's key while held (default empty). */
  value?: Uint8Array | string;
}

/** A counting semaphore: never more than `permits` holders. */
export interface Semaphore {
  /** Waits for a permit. `signal` aborts waiting. */
  acquire(options?: AcquireOptions): Promise<Lock>;
  /** A permit if one is free now, else `null`, without waiting. */
  tryAcquire(options?: AcquireOptions): Promise<Lock | null>;
}

/** Options of {@linkcode Store.readWriteLock}. */
export interface ReadWriteLockOptions {
  /** The TTL of each hold in milliseconds (default 20 000). */
  ttl?: number;
}

/** Many readers or one writer. */
export interface ReadWriteLock {
  /** Waits until no writer holds or waits, then holds as a reader. */
  read(options?: AcquireOptions): Promise<Lock>;
  /** Waits until it is the only holder, then holds as the writer. */
  write(options?: AcquireOptions): Promise<Lock>;
}

/** A held lock. */
export interface Lock extends AsyncDisposable {
  /** The locked key. */
  readonly key: string;
  /** Fencing token: it grows with every acquisition of this key. */
  readonly lastIndex: bigint;
  /** Aborts, with a `LockLostError`, if the lock is lost while held. */
  readonly lost: AbortSignal;
  /**
   * Releases the lock. Idempotent; it never hangs. When the lock was lost
   * before (`lost` aborted), it rejects with that `LockLostError`.
   */
  unlock(): Promise<void>;
}

/** The outcome of {@linkcode AtomicOperation.commit}. */
export type CommitResult =
  | {
    /** Every check passed and every write was applied. */
    ok: true;
    /**
     * The commit's version: the backend's revision where it has one, otherwise
     * the highest `lastIndex` the commit gave to a key it wrote (`0n` when it
     * wrote nothing).
     */
    lastIndex: bigint;
  }
  | {
    /** A check failed; nothing was written. */
    ok: false;
  };

/** Several checks and writes that apply all together or not at all. */
export interface AtomicOperation {
  /**
   * Requires `key` to be at `lastIndex` (`null`: to be absent) at commit.
   *
   * @param key The key.
   * @param lastIndex The expected version, or `null` for "absent".
   */
  check(key: string, lastIndex: bigint | null): this;
  /**
   * Writes `value` at `key`.
   *
   * @param key The key.
   * @param value The bytes, or a string stored as UTF-8.
   * @param options The TTL of the key, in milliseconds.
   */
  put(
    key: string,
    value: Uint8Array | string,
    options?: { ttl?: number },
  ): this;
  /**
   * Deletes `key` (no error if it is absent).
   *
   * @param key The key.
   */
  delete(key: string): this;
  /**
   * Adds `delta` to the counter at `key` (a missing key counts as `0n`), as
   * part of the operation: the counter's value is read and the write is
   * made conditional on it, and a commit that loses to another writer of
   * the counter is run again. The key may not be checked or written too.
   *
   * @param key The counter's key.
   * @param delta What to add (default `1n`).
   */
  sum(key: string, delta?: bigint): this;
  /**
   * Makes the whole operation conditional on `lock` (a lock of this store)
   * still being held with its `lastIndex`, checked by the server in the same
   * transaction as the writes: a holder that lost the lock cannot write
   * (the commit resolves `{ ok: false }` and nothing changes). Counts as one
   * step.
   *
   * @param lock A lock of this store.
   */
  checkLock(lock: Lock): this;
  /**
   * Applies the operation. Resolves `{ ok: false }` when a check fails.
   *
   * @param options A signal to abort the commit.
   */
  commit(options?: SignalOptions): Promise<CommitResult>;
}

/** A key/value store: one API over every backend. */
export interface Store extends AsyncDisposable {
  /** The backend's name: `"memory"`, `"file"`, `"redis"`, `"etcd"`, ... */
  readonly backend: string;
  /** What this store accepts. */
  readonly limits: StoreLimits;
  /**
   * What the store handles on its own, as events: a lost lock, a
   * reconnection, a retry, a resumed watch, a client's background error.
   */
  readonly events: StoreEvents;
  /**
   * Writes `value` at `key` and resolves the key's new `lastIndex` (what a
   * `get` right after would report), as Deno KV's `set` returns a
   * versionstamp and etcd's put a revision.
   */
  put(
    key: string,
    value: Uint8Array | string,
    options?: PutOptions,
  ): Promise<bigint>;
  /** The pair at `key`, or `null` when absent or expired. */
  get(key: string, options?: ReadOptions): Promise<KVPair | null>;
  /** Whether `get(key)` would return a pair. */
  exists(key: string, options?: ReadOptions): Promise<boolean>;
  /** Deletes `key`; deleting an absent key is not an error. */
  delete(key: string, options?: SignalOptions): Promise<void>;
  /** Every pair strictly under `prefix`, at any depth, sorted by key. */
  list(prefix: string, options?: ReadOptions): Promise<KVPair[]>;
  /**
   * The pairs of `list(prefix)`, in the same order (or reversed), read one
   * page of `batchSize` at a time: memory stays bounded however big the
   * tree. Not a snapshot: a key written or deleted meanwhile is seen or not
   * by its position. Breaking out of the loop or aborting frees everything.
   */
  scan(prefix: string, options?: ScanOptions): ScanIterator;
  /** Deletes `prefix` and everything under it. */
  deleteTree(prefix: string, options?: SignalOptions): Promise<void>;
  /** The current state of `key`, then one chunk per change. */
  watch(key: string, options?: SignalOptions): ReadableStream<KVPair | null>;
  /** The current `list(prefix)`, then a fresh snapshot after every change. */
  watchTree(prefix: string, options?: SignalOptions): ReadableStream<KVPair[]>;
  /**
   * One event per change under `prefix`: the current tree as `put`s, then
   * `synced`, then each change in commit order per key. The cost of a change
   * does not grow with the tree. With `fromIndex`, see
   * {@linkcode WatchEventsOptions.fromIndex}.
   */
  watchEvents(
    prefix: string,
    options?: WatchEventsOptions,
  ): ReadableStream<WatchEvent>;
  /** Waits until the lock on `key` is held, then writes its value at `key`. */
  lock(key: string, options?: LockOptions): Promise<Lock>;
  /**
   * Takes the lock on `key` if it is free now and resolves it, or resolves
   * `null` at once when someone holds it: never waits for a holder (a dead
   * holder's lock counts as held until its TTL runs out). `signal` aborts
   * the attempt itself.
   */
  tryLock(key: string, options?: LockOptions): Promise<Lock | null>;
  /**
   * A counting semaphore named `key`: never more than `permits` holders,
   * each hold a lock of this store (renewed, `lost`, fencing) at
   * `<key>/permit-<i>`; a dead holder's permit returns within
   * `ttl + limits.ttlGranularityMs`. Every user of `key` must give the same
   * `permits`.
   */
  semaphore(key: string, options: SemaphoreOptions): Semaphore;
  /**
   * A read-write lock named `key`: many readers or one writer; a waiting
   * writer is not starved by a stream of readers. Each hold is a lock of
   * this store (renewed, `lost`, fencing): the writer's at `<key>/writer`,
   * each reader's under `<key>/readers/`.
   */
  readWriteLock(key: string, options?: ReadWriteLockOptions): ReadWriteLock;
  /**
   * The pairs at `keys`, in the order asked (`null` for an absent key). Not
   * a snapshot: each key is read on its own, several at a time.
   */
  getMany(
    keys: readonly string[],
    options?: ReadOptions,
  ): Promise<(KVPair | null)[]>;
  /**
   * Writes every entry, as `put` would, and resolves their new `lastIndex`es
   * in the entries' order. Not atomic: every entry (key, value, ttl) is
   * checked before any I/O, and a failure part-way rejects with a
   * `BulkWriteError` whose `done` lists the positions known written.
   */
  putMany(
    entries: readonly PutEntry[],
    options?: SignalOptions,
  ): Promise<bigint[]>;
  /**
   * Deletes `keys` (no error for an absent one). Not atomic: every key is
   * checked before any I/O, and a failure part-way rejects with a
   * `BulkWriteError` whose `done` lists the positions known deleted.
   */
  deleteMany(keys: readonly string[], options?: SignalOptions): Promise<void>;
  /**
   * Adds `delta` to the counter at `key` and resolves its new value; a
   * missing key counts as `0n`. Atomic on every backend. The value is stored
   * as decimal text (`"42"`); a value that is not a signed 64-bit integer,
   * or an overflow, is `InvalidArgumentError` and changes nothing. Like
   * `put`, a `ttl` makes the key expire that long after this increment, and
   * none makes it permanent.
   */
  increment(
    key: string,
    delta?: bigint,
    options?: WriteOptions,
  ): Promise<bigint>;
  /** Compare-and-set: writes only if `key` is still at `previous` (`null`: absent). */
  atomicPut(
    key: string,
    value: Uint8Array | string,
    previous: KVPair | null,
    options?: WriteOptions,
  ): Promise<KVPair>;
  /** Compare-and-delete: deletes only if `key` is still at `previous`. */
  atomicDelete(
    key: string,
    previous: KVPair,
    options?: SignalOptions,
  ): Promise<void>;
  /** Starts an all-or-nothing group of checks and writes. */
  atomic(): AtomicOperation;
  /**
   * Serves the reads under `prefix` that pass `consistent: false` (`get`,
   * `exists`, `list`, `scan`) from memory, kept current by the change feed
   * the watches use: no round trip, at the cost of seeing another handle's
   * write only once its change has arrived. Resolves once the whole tree is
   * held; while the feed is down the cache is dropped and reads go to the
   * server until it is whole again. `close()` (or `await using`) stops it;
   * so does closing the store. Memory grows with the tree.
   *
   * @param prefix The tree to cache (`""`: the whole store).
   * @param options A signal to give up waiting for the first sync.
   */
  cacheReads(prefix: string, options?: SignalOptions): Promise<CachedReads>;
  /** Ends watches, releases locks and closes connections. Idempotent. */
  close(): Promise<void>;
}

/** A tree served from memory by {@linkcode Store.cacheReads}. */
export interface CachedReads extends AsyncDisposable {
  /** The cached tree, as given. */
  readonly prefix: string;
  /** Stops caching: reads of the tree go to the server again. */
  close(): Promise<void>;
}

/** TLS settings of network backends. */
export interface TlsOptions {
  /** Certificate authorities to trust (PEM). */
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  /** Client certificate chain (PEM). */
  cert?: string | Uint8Array;
  /** Client private key (PEM). */
  key?: string | Uint8Array;
  /** Server name to verify (default: the host name). */
  servername?: string;
  /** Verify the server's certificate (default `true`). */
  rejectUnauthorized?: boolean;
}

/**
 * The settings every backend takes (its options interface extends this);
 * each backend adds its own (a Redis `db`, a Consul `token`, ...).
 */
export interface StoreOptions {
  // Written by scripts/settings.ts from the settings schema: edit the schema.
  /**
   * A namespace: every key is stored under `prefix/`. It must be a valid
   * key. Keys in pairs, `list` and watches are reported without it.
   *
   * Default: none.
   */
  prefix?: string;
  /**
   * How long opening may wait for the server, in milliseconds, before
   * `NotReachableError`.
   *
   * A number (ms), > 0. Default: `10000`.
   */
  connectTimeout?: number;
  /**
   * TLS: `true` for the system's CAs, or the CA, client certificate and key
   * to use.
   *
   * Default: off (a TLS scheme such as `rediss:` turns it on).
   */
  tls?: TlsOptions | boolean;
  /**
   * The user name for the server's authentication.
   *
   * Default: none.
   */
  username?: string;
  /**
   * The password for the server's authentication.
   *
   * Default: none.
   */
  password?: string;
  /**
   * Aborts opening.
   *
   * Default: none.
   */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode openStore}: the common settings, and those of the
 * backend the URL names. A setting that backend does not know is an
 * `InvalidConfigurationError`.
 */
export interface OpenOptions extends StoreOptions {
  /** A setting of the backend the URL names. */
  [setting: string]: unknown;
}
