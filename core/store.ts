/**
 * {@linkcode BaseStore}: the public `Store`, built once over any
 * {@linkcode Driver}. Every backend's class extends it.
 *
 * @module
 */

import { AtomicBuilder, type AtomicSum } from "./atomic.ts";
import {
  abortable,
  allowManyListeners,
  deadline,
  delay,
  unrefTimer,
} from "./abort.ts";
import { Backoff } from "./backoff.ts";
import { DEFAULT_BATCH_KEYS, runBulk, runChunked } from "./bulk.ts";
import {
  addToCounter,
  checkDelta,
  counterOverflow,
  notACounter,
  readCounter,
} from "./counter.ts";
import {
  InvalidArgumentError,
  InvalidConfigurationError,
  InvalidKeyError,
  KeyError,
  KeyExistsError,
  KeyModifiedError,
  KeyNotFoundError,
  LockLostError,
  PreviousNotSpecifiedError,
  StoreClosedError,
  StoreError,
} from "./errors.ts";
import {
  compareKeys,
  dirOf,
  joinKey,
  normalizeKey,
  normalizePrefix,
  utf8Length,
} from "./keys.ts";
import { DEFAULT_LOCK_TTL_MS, LockHandle } from "./lock.ts";
import { checkTtl, describe, toBytes } from "./values.ts";
import {
  EventWatch,
  KeyWatch,
  TreeWatch,
  type Watch,
  type WatchSetup,
} from "./watch.ts";
import { pageOfList, planScan, Scan } from "./scan.ts";
import {
  publishHold,
  publishWatchLag,
  type TraceContext,
  tracingChannel,
  type WatchLagMessage,
} from "./tracing.ts";
import { noteExpiry } from "./expiry.ts";
import { ReadCache } from "./read_cache.ts";
import { type StoreEvent, StoreEvents } from "./events.ts";
import { readWriteLock, semaphore } from "./recipes.ts";
import type {
  AtomicStep,
  Driver,
  DriverReadOptions,
  Entry,
  LockLease,
} from "./driver.ts";
import type {
  AtomicOperation,
  CachedReads,
  CommitResult,
  KVPair,
  Lock,
  LockOptions,
  PutEntry,
  PutOptions,
  ReadOptions,
  ReadWriteLock,
  ReadWriteLockOptions,
  ScanIterator,
  ScanOptions,
  Semaphore,
  SemaphoreOptions,
  SignalOptions,
  Store,
  StoreLimits,
  WatchEvent,
  WatchEventsOptions,
  WriteOptions,
} from "./types.ts";

/** Options every store takes. */
export interface BaseStoreOptions {
  /** A namespace every key is stored under (a valid key), or none. */
  prefix?: string;
}

let abandonStore: (store: BaseStore) => Promise<void>;

/** One tree kept by `cacheReads`: the cache serving now, replaced on loss. */
interface CacheSlot {
  current: ReadCache;
  close(): void;
}

/** Pauses before a read cache that lost its feed is started again. */
const CACHE_RESTART_BACKOFF = {
  baseMs: 100,
  capMs: 5_000,
  jitter: "equal",
} as const;

/**
 * How long a counter's writer waits before trying again after another
 * writer of the counter won: it reads the new value first, so a short,
 * growing, jittered pause is enough to let a crowd of writers through.
 */
const COUNTER_BACKOFF = { baseMs: 2, capMs: 100 };
/** A read with no options, as drivers get it (shared: they only read it). */
const CONSISTENT_READ: DriverReadOptions = Object.freeze({ consistent: true });

/**
 * The `Store` of the contract over a {@linkcode Driver}. It checks every
 * argument before any I/O, applies the `prefix`, turns driver entries into
 * pairs, sorts lists, wraps foreign errors in `StoreError`, rejects calls
 * after `close()`, and runs watches and locks with the shared machinery.
 *
 * @example A backend's class
 * ```ts ignore
 * export class MemoryStore extends BaseStore {
 *   constructor(options: MemoryStoreOptions = {}) {
 *     super(new MemoryDriver(options), options);
 *   }
 * }
 * ```
 */
export class BaseStore implements Store {
  readonly backend: string;
  readonly limits: StoreLimits;
  readonly events: StoreEvents = new StoreEvents();
  #driver: Driver;
  #prefix: string;
  #closed = false;
  #closing: Promise<void> | undefined;
  // Every waiting call of the store listens to it.
  #closeSignal = new AbortController();
  #watches = new Set<Watch>();
  #locks = new Set<LockHandle>();
  // Trees served from memory to reads that allow it (cacheReads).
  #caches = new Set<CacheSlot>();
  // Every lock this store handed out, so a fence from another store is told
  // apart from one of ours that ended.
  #handles = new WeakSet<LockHandle>();

  static {
    abandonStore = (store) => store.#abandon();
  }

  /**
   * Wraps a driver.
   *
   * @param driver The backend.
   * @param options The store's `prefix`.
   */
  constructor(driver: Driver, options: BaseStoreOptions = {}) {
    this.#driver = driver;
    this.backend = driver.backend;
    driver.observe?.((event) =>
      this.events.emit({ ...event, backend: this.backend } as StoreEvent)
    );
    allowManyListeners(this.#closeSignal.signal);
    const limits = driver.limits;
    let prefix = "";
    if (options.prefix !== undefined && options.prefix !== null) {
      if (typeof options.prefix !== "string") {
        throw new InvalidConfigurationError("prefix must be a string");
      }
      try {
        prefix = normalizePrefix(options.prefix, limits.maxKeyBytes - 2);
      } catch (error) {
        throw new InvalidConfigurationError(
          `prefix is not a valid key: ${(error as Error).message}`,
          { cause: error },
        );
      }
      const reason = prefix === "" ? undefined : driver.checkKey?.(prefix);
      if (reason) {
        throw new InvalidConfigurationError(
          `prefix is not a valid key on ${driver.backend}: ${reason}`,
        );
      }
    }
    this.#prefix = prefix;
    this.limits = Object.freeze({
      ...limits,
      maxKeyBytes: limits.maxKeyBytes -
        (prefix === "" ? 0 : utf8Length(prefix) + 1),
    });
  }

  async put(
    key: string,
    value: Uint8Array | string,
    options?: PutOptions,
  ): Promise<bigint> {
    this.#open(options);
    const full = this.#key(key);
    const bytes = toBytes(key, value, this.limits.maxValueBytes);
    const ttl = this.#keyTtl(options?.ttl);
    const signal = options?.signal;
    if (options?.fence === undefined) {
      if (this.#direct("put", signal)) {
        try {
          return await this.#driver.put(full, bytes, { ttl, signal });
        } catch (error) {
          throw this.#wrap("put", error, signal);
        }
      }
      return await this.#run(
        "put",
        signal,
        () => this.#driver.put(full, bytes, { ttl, signal }),
        key,
      );
    }
    const lease = this.#lease(options.fence);
    const lock = options.fence as LockHandle;
    const lost = () =>
      LockHandle.lostError(lock) ??
        new LockLostError(lock.key, "a fenced write found it no longer held");
    if (lease === null) throw lost();
    const outcome = await this.#run(
      "put",
      signal,
      () =>
        this.#driver.commit([{ type: "put", key: full, value: bytes, ttl }], {
          signal,
          fences: [lease],
        }),
    );
    if (outcome.ok) return outcome.lastIndex;
    // Only the fence can fail a put without checks: the lock is gone.
    LockHandle.markLost(lock, "a fenced write found it no longer held");
    throw lost();
  }

  async get(key: string, options?: ReadOptions): Promise<KVPair | null> {
    this.#open(options);
    const full = this.#key(key);
    const cache = this.#cacheOf(full, options);
    if (cache) {
      const entry = cache.get(full);
      return entry === null ? null : this.#pair(entry);
    }
    let entry: Entry | null;
    try {
      entry = await this.#read("get", full, options, key);
    } catch (error) {
      throw this.#wrap("get", error, options?.signal);
    }
    return entry === null ? null : this.#pair(entry);
  }

  async exists(key: string, options?: ReadOptions): Promise<boolean> {
    this.#open(options);
    const full = this.#key(key);
    const cache = this.#cacheOf(full, options);
    if (cache) return cache.get(full) !== null;
    let entry: Entry | null;
    try {
      entry = await this.#read("exists", full, options, key);
    } catch (error) {
      throw this.#wrap("exists", error, options?.signal);
    }
    return entry !== null;
  }

  async delete(key: string, options?: SignalOptions): Promise<void> {
    this.#open(options);
    const full = this.#key(key);
    const signal = options?.signal;
    if (this.#direct("delete", signal)) {
      try {
        return await this.#driver.delete(full, { signal });
      } catch (error) {
        throw this.#wrap("delete", error, signal);
      }
    }
    await this.#run(
      "delete",
      signal,
      () => this.#driver.delete(full, { signal }),
      key,
    );
  }

  async list(prefix: string, options?: ReadOptions): Promise<KVPair[]> {
    this.#open(options);
    const full = this.#tree(prefix);
    const cache = this.#cacheOf(dirOf(full), options, true);
    if (cache) return cache.list(dirOf(full)).map((e) => this.#pair(e));
    const entries = await this.#run(
      "list",
      options?.signal,
      () => this.#driver.list(dirOf(full), this.#readOptions(options)),
      prefix,
    );
    entries.sort((a, b) => compareKeys(a.key, b.key));
    return entries.map((entry) => this.#pair(entry));
  }

  scan(prefix: string, options?: ScanOptions): ScanIterator {
    this.#open(options);
    const dir = dirOf(this.#tree(prefix));
    const plan = planScan(dir, options, { full: (key) => this.#key(key) });
    const read = this.#readOptions(options);
    return new Scan(plan, {
      page: (range) => {
        // A store closed between pages ends the scan with StoreClosedError.
        this.#open(options);
        const cache = this.#cacheOf(range.dir, options, true);
        if (cache) {
          return Promise.resolve(cache.scan(range));
        }
        return this.#run(
          "scan",
          options?.signal,
          async () =>
            this.#driver.scan
              ? await this.#driver.scan(range, read)
              : pageOfList(await this.#driver.list(range.dir, read), range),
        );
      },
      toPair: (entry) => this.#pair(entry),
    }, options?.cursor ?? "");
  }

  async getMany(
    keys: readonly string[],
    options?: ReadOptions,
  ): Promise<(KVPair | null)[]> {
    this.#open(options);
    const full = this.#keys("getMany", keys);
    const read = this.#readOptions(options);
    const batch = this.#driver.getMany?.bind(this.#driver);
    let entries: (Entry | null)[];
    if (batch) {
      // Each key is read once, however often it was asked for.
      const distinct = [...new Set(full)];
      const found = await runChunked(
        "getMany",
        distinct,
        this.#batchKeys,
        String,
        false,
        (chunk) =>
          this.#run("getMany", options?.signal, () => batch(chunk, read)),
      );
      const byKey = new Map(distinct.map((key, i) => [key, found[i]]));
      entries = full.map((key) => byKey.get(key)!);
    } else {
      entries = await runBulk("getMany", full, false, (key) =>
        this.#run(
          "getMany",
          options?.signal,
          () => this.#driver.get(key, read),
        ));
    }
    return entries.map((entry) => entry === null ? null : this.#pair(entry));
  }

  async putMany(
    entries: readonly PutEntry[],
    options?: SignalOptions,
  ): Promise<bigint[]> {
    this.#open(options);
    if (!Array.isArray(entries)) {
      throw new InvalidArgumentError("putMany needs an array of entries");
    }
    // Every entry is checked, and its bytes made, before any I/O.
    const writes = entries.map((entry, i) => {
      if (typeof entry !== "object" || entry === null) {
        throw new InvalidArgumentError(
          `putMany needs entries of the shape { key, value, ttl? }, but entry ${i} is ${
            describe(entry)
          }`,
        );
      }
      return {
        key: this.#key(entry.key),
        value: toBytes(entry.key, entry.value, this.limits.maxValueBytes),
        ttl: this.#keyTtl(entry.ttl),
      };
    });
    const signal = options?.signal;
    const batch = this.#driver.putMany?.bind(this.#driver);
    if (batch) {
      return await runChunked(
        "putMany",
        writes,
        this.#batchKeys,
        (write) => write.key,
        true,
        (chunk) => this.#run("putMany", signal, () => batch(chunk, { signal })),
      );
    }
    return await runBulk("putMany", writes, true, (write) =>
      this.#run(
        "putMany",
        signal,
        () =>
          this.#driver.put(write.key, write.value, { ttl: write.ttl, signal }),
      ));
  }

  async deleteMany(
    keys: readonly string[],
    options?: SignalOptions,
  ): Promise<void> {
    this.#open(options);
    const full = this.#keys("deleteMany", keys);
    const batch = this.#driver.deleteMany?.bind(this.#driver);
    if (batch) {
      const signal = options?.signal;
      await runChunked(
        "deleteMany",
        full,
        this.#batchKeys,
        String,
        true,
        async (chunk) => {
          await this.#run("deleteMany", signal, () => batch(chunk, { signal }));
          return chunk;
        },
      );
      return;
    }
    await runBulk("deleteMany", full, true, (key) =>
      this.#run(
        "deleteMany",
        options?.signal,
        () => this.#driver.delete(key, { signal: options?.signal }),
      ));
  }

  async deleteTree(prefix: string, options?: SignalOptions): Promise<void> {
    this.#open(options);
    const full = this.#tree(prefix);
    const own = full === this.#prefix ? null : full;
    await this.#run(
      "deleteTree",
      options?.signal,
      () =>
        this.#driver.deleteTree(own, dirOf(full), { signal: options?.signal }),
    );
  }

  watch(key: string, options?: SignalOptions): ReadableStream<KVPair | null> {
    this.#open(options);
    const full = this.#key(key);
    const watch = new KeyWatch(this.#watchSetup(options, "watch", key));
    this.#startWatch(
      watch,
      () => this.#driver.watchKey(full, watch, watch.signal),
    );
    return watch.stream;
  }

  watchTree(prefix: string, options?: SignalOptions): ReadableStream<KVPair[]> {
    this.#open(options);
    const full = this.#tree(prefix);
    const watch = new TreeWatch(
      this.#watchSetup(options, "watchTree", prefix),
    );
    this.#startWatch(
      watch,
      () => this.#driver.watchTree(dirOf(full), watch, watch.signal),
    );
    return watch.stream;
  }

  watchEvents(
    prefix: string,
    options?: WatchEventsOptions,
  ): ReadableStream<WatchEvent> {
    this.#open(options);
    const full = this.#tree(prefix);
    const fromIndex = options?.fromIndex;
    if (
      fromIndex !== undefined &&
      (typeof fromIndex !== "bigint" || fromIndex < 0n)
    ) {
      throw new InvalidArgumentError(
        `fromIndex must be a bigint of 0 or more, not ${describe(fromIndex)}`,
      );
    }
    const watch = new EventWatch(
      this.#watchSetup(options, "watchEvents", prefix),
      fromIndex !== undefined,
    );
    const replay = this.#driver.replayTree?.bind(this.#driver);
    this.#startWatch(
      watch,
      () =>
        fromIndex !== undefined && replay
          ? replay(dirOf(full), fromIndex, watch, watch.signal)
          : this.#driver.watchTree(dirOf(full), watch, watch.signal),
    );
    return watch.stream;
  }

  async cacheReads(
    prefix: string,
    options?: SignalOptions,
  ): Promise<CachedReads> {
    this.#open(options);
    const dir = dirOf(this.#tree(prefix));
    const backoff = new Backoff(CACHE_RESTART_BACKOFF);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    const slot: CacheSlot = {
      current: undefined as unknown as ReadCache,
      close: () => {
        closed = true;
        clearTimeout(timer);
        slot.current.stop.abort();
        this.#caches.delete(slot);
      },
    };
    // A cache whose feed went down is dropped and a new one started, after
    // a pause that grows while the new ones fail too.
    const start = () => {
      if (closed || this.#closed) return;
      const cache = new ReadCache(dir, restart);
      slot.current = cache;
      cache.ready.then(() => backoff.reset(), () => {
        if (cache !== first) restart();
      });
      try {
        this.#driver.watchTree(dir, cache, cache.stop.signal);
      } catch (error) {
        cache.error(error);
      }
    };
    const restart = () => {
      if (closed || this.#closed) return;
      timer = setTimeout(start, backoff.next());
      unrefTimer(timer);
    };
    start();
    const first = slot.current;
    this.#caches.add(slot);
    try {
      await this.#run("cacheReads", options?.signal, () => first.ready, prefix);
    } catch (error) {
      slot.close();
      throw error;
    }
    return {
      prefix,
      close: () => {
        slot.close();
        return Promise.resolve();
      },
      [Symbol.asyncDispose]: () => {
        slot.close();
        return Promise.resolve();
      },
    };
  }

  // The cache that may serve a read of `key` (a full key, or a tree's dir
  // with `tree`), when the read allows it.
  #cacheOf(
    key: string,
    options: ReadOptions | undefined,
    tree = false,
  ): ReadCache | undefined {
    if (options?.consistent !== false || this.#caches.size === 0) return;
    for (const { current } of this.#caches) {
      if (tree ? current.coversTree(key) : current.covers(key)) return current;
    }
    return undefined;
  }

  async lock(key: string, options?: LockOptions): Promise<Lock> {
    this.#open(options);
    const { full, value, ttl, deleteOnUnlock } = this.#lockArguments(
      key,
      options,
    );
    // The driver waits until the caller aborts or the store closes.
    const signal = options?.signal
      ? AbortSignal.any([options.signal, this.#closeSignal.signal])
      : this.#closeSignal.signal;
    // Node 20 may garbage-collect a signal that only AbortSignal.any() refers
    // to — a caller's inline AbortSignal.timeout() — and then it never fires:
    // a listener of our own keeps the caller's signal alive while we wait.
    const keepAlive = () => {};
    options?.signal?.addEventListener("abort", keepAlive, { once: true });
    const pending = this.#driver.lock(full, { value, ttl, signal });
    let lease;
    try {
      lease = await this.#run("lock", signal, () => pending, key);
    } catch (error) {
      // A lease that arrives after the caller gave up is not left held.
      pending.then(releaseLate).catch(() => {});
      throw error;
    } finally {
      options?.signal?.removeEventListener("abort", keepAlive);
    }
    return this.#hold(full, lease, ttl, deleteOnUnlock);
  }

  async tryLock(key: string, options?: LockOptions): Promise<Lock | null> {
    this.#open(options);
    const { full, value, ttl, deleteOnUnlock } = this.#lockArguments(
      key,
      options,
    );
    const signal = options?.signal;
    const pending = this.#driver.tryLock(full, { value, ttl, signal });
    let lease;
    try {
      lease = await this.#run("tryLock", signal, () => pending, key);
    } catch (error) {
      // A lease that arrives after the caller gave up is not left held.
      pending.then((late) => late && releaseLate(late)).catch(() => {});
      throw error;
    }
    if (lease === null) return null;
    if (this.#closed) {
      // Closed while the attempt ran: nothing may stay held.
      await releaseLate(lease).catch(() => {});
      throw new StoreClosedError(this.backend);
    }
    return this.#hold(full, lease, ttl, deleteOnUnlock);
  }

  semaphore(key: string, options: SemaphoreOptions): Semaphore {
    this.#open(undefined);
    this.#key(key);
    this.#key(`${key}/permit-0`);
    checkTtl(options?.ttl);
    return semaphore(this, key, options);
  }

  readWriteLock(key: string, options?: ReadWriteLockOptions): ReadWriteLock {
    this.#open(undefined);
    this.#key(key);
    this.#key(`${key}/writer`);
    checkTtl(options?.ttl);
    return readWriteLock(this, key, options);
  }

  // A key's TTL option, checked, and within the backend's longest.
  /** Keys per chunk of a bulk call on a driver with batch calls. */
  get #batchKeys(): number {
    return this.#driver.limits.maxBatchKeys ?? DEFAULT_BATCH_KEYS;
  }

  #keyTtl(ttl: unknown): number | undefined {
    const checked = checkTtl(ttl);
    const max = this.limits.maxTtlMs;
    if (checked !== undefined && max !== undefined && checked > max) {
      throw new InvalidArgumentError(
        `A ttl of ${checked} ms is longer than the ${this.backend} backend's longest, ${max} ms`,
      );
    }
    return checked;
  }

  // The checked arguments of lock() and tryLock().
  #lockArguments(key: string, options: LockOptions | undefined) {
    const full = this.#key(key);
    const value = toBytes(key, options?.value ?? "", this.limits.maxValueBytes);
    const ttl = checkTtl(options?.ttl) ?? DEFAULT_LOCK_TTL_MS;
    const deleteOnUnlock = options?.deleteOnUnlock ?? false;
    if (typeof deleteOnUnlock !== "boolean") {
      throw new InvalidArgumentError("deleteOnUnlock must be a boolean");
    }
    return { full, value, ttl, deleteOnUnlock };
  }

  // Hands out the lock of a freshly taken lease.
  #hold(
    full: string,
    lease: LockLease,
    ttl: number,
    deleteOnUnlock: boolean,
  ): Lock {
    const heldFrom = performance.now();
    const handle = new LockHandle({
      key: this.#userKey(full),
      lease,
      ttl,
      deleteOnUnlock,
      onEnd: (lock) => {
        this.#locks.delete(lock);
        publishHold({
          backend: this.backend,
          key: lock.key,
          heldMs: performance.now() - heldFrom,
          lost: lock.lost.aborted,
        });
      },
      onLost: (error, reason) =>
        this.events.emit({
          type: "lock-lost",
          backend: this.backend,
          key: error.key,
          reason,
          error,
        }),
      onRenewFailed: (attempt, error) =>
        this.events.emit({
          type: "retry",
          backend: this.backend,
          operation: "renew",
          attempt,
          error,
        }),
    });
    this.#locks.add(handle);
    this.#handles.add(handle);
    return handle;
  }

  // The lease behind a lock of this store for a fenced write; `null` when
  // the lock is known not to be held (released, abandoned or lost).
  #lease(lock: unknown): LockLease | null {
    if (!(lock instanceof LockHandle) || !this.#handles.has(lock)) {
      throw new InvalidArgumentError(
        "A fence must be a lock taken from this store (by lock, tryLock or a recipe of it)",
      );
    }
    return LockHandle.leaseOf(lock);
  }

  async atomicPut(
    key: string,
    value: Uint8Array | string,
    previous: KVPair | null,
    options?: WriteOptions,
  ): Promise<KVPair> {
    this.#open(options);
    const full = this.#key(key);
    const bytes = toBytes(key, value, this.limits.maxValueBytes);
    const ttl = this.#keyTtl(options?.ttl);
    const expected = previousIndex(key, previous, true);
    const steps: AtomicStep[] = [
      { type: "check", key: full, lastIndex: expected },
      { type: "put", key: full, value: bytes, ttl },
    ];
    const result = await this.#commit("atomicPut", steps, options?.signal);
    return {
      key: this.#userKey(full),
      value: bytes.slice(),
      lastIndex: result,
    };
  }

  async atomicDelete(
    key: string,
    previous: KVPair,
    options?: SignalOptions,
  ): Promise<void> {
    this.#open(options);
    const full = this.#key(key);
    const expected = previousIndex(key, previous, false);
    await this.#commit("atomicDelete", [
      { type: "check", key: full, lastIndex: expected },
      { type: "delete", key: full },
    ], options?.signal);
  }

  atomic(): AtomicOperation {
    this.#open(undefined);
    return new AtomicBuilder({
      key: (key) => this.#key(key),
      value: (key, value) => toBytes(key, value, this.limits.maxValueBytes),
      ttl: (ttl) => this.#keyTtl(ttl),
      maxOperations: this.limits.maxAtomicOperations,
      maxBytes: this.#driver.limits.maxAtomicBytes,
      lease: (lock) => this.#lease(lock),
      commit: (steps, sums, fences, options) =>
        this.#commitAll(steps, sums, fences, options),
    });
  }

  async increment(
    key: string,
    delta: bigint = 1n,
    options?: WriteOptions,
  ): Promise<bigint> {
    this.#open(options);
    const full = this.#key(key);
    const sum = {
      key: full,
      userKey: key,
      delta: checkDelta(key, delta),
      ttl: this.#keyTtl(options?.ttl),
    };
    if (this.#driver.increment) {
      const signal = options?.signal;
      const outcome = await this.#run(
        "increment",
        signal,
        () =>
          this.#driver.increment!(full, sum.delta, { ttl: sum.ttl, signal }),
      );
      if (outcome.ok) return outcome.value;
      throw outcome.reason === "overflow"
        ? counterOverflow(key, outcome.current, sum.delta)
        : notACounter(key);
    }
    const result = await this.#sum("increment", [], [sum], options?.signal);
    // With no check of the caller's, the commit only ever fails to another
    // writer of the counter, and is then run again: it always succeeds.
    return (result as { values: bigint[] }).values[0];
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  /** Closes the store: `await using store = ...` closes it at scope exit. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    this.#closeSignal.abort(new StoreClosedError(this.backend));
    for (const slot of [...this.#caches]) slot.close();
    for (const watch of [...this.#watches]) watch.close();
    await Promise.allSettled([...this.#locks].map((lock) => lock.unlock()));
    await this.#driver.close();
  }

  async #abandon(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = this.#closing ?? Promise.resolve();
    this.#closeSignal.abort(new StoreClosedError(this.backend));
    for (const lock of [...this.#locks]) lock.abandon();
    for (const slot of [...this.#caches]) slot.close();
    for (const watch of [...this.#watches]) watch.close();
    await this.#driver.abandon();
  }

  async #commitAll(
    steps: readonly AtomicStep[],
    sums: readonly AtomicSum[],
    fences: readonly (LockLease | null)[],
    options: SignalOptions | undefined,
  ): Promise<CommitResult> {
    this.#open(options);
    // A lock known lost fails the commit before any I/O.
    if (fences.includes(null)) return { ok: false };
    const leases = fences as readonly LockLease[];
    if (steps.length === 0 && sums.length === 0 && leases.length === 0) {
      return { ok: true, lastIndex: 0n };
    }
    const result = await this.#sum(
      "atomic",
      steps,
      sums,
      options?.signal,
      leases,
    );
    return result.ok ? { ok: true, lastIndex: result.lastIndex } : result;
  }

  // Commits `steps` with the counters of `sums` added to: the counters are
  // read and the commit made conditional on what was read; a commit lost to
  // another writer of a counter is run again. It resolves `ok: false` only
  // when one of the caller's own checks failed.
  async #sum(
    op: string,
    steps: readonly AtomicStep[],
    sums: readonly AtomicSum[],
    signal: AbortSignal | undefined,
    fences: readonly LockLease[] = [],
  ): Promise<
    { ok: true; lastIndex: bigint; values: bigint[] } | { ok: false }
  > {
    const checks = steps.filter((step) => step.type === "check");
    const backoff = new Backoff(COUNTER_BACKOFF);
    for (;;) {
      const read = await Promise.all(
        sums.map((sum) => this.#counter(sum.key, sum.userKey, signal)),
      );
      const next = sums.map((sum, i) =>
        addToCounter(sum.userKey, read[i].value, sum.delta)
      );
      // Checks come before writes, as the builder hands them over.
      const all: AtomicStep[] = [
        ...checks,
        ...sums.map((sum, i): AtomicStep => ({
          type: "check",
          key: sum.key,
          lastIndex: read[i].index,
        })),
        ...sums.map((sum, i): AtomicStep => ({
          type: "put",
          key: sum.key,
          value: next[i].bytes,
          ttl: sum.ttl,
        })),
        ...steps.filter((step) => step.type !== "check"),
      ];
      const outcome = await this.#run(
        op,
        signal,
        () =>
          this.#driver.commit(
            all,
            fences.length > 0 ? { signal, fences } : { signal },
          ),
      );
      if (outcome.ok) {
        return {
          ok: true,
          lastIndex: outcome.lastIndex,
          values: next.map((n) => n.value),
        };
      }
      if (sums.length === 0 || outcome.fenced) return { ok: false };
      // Without checks or fences of the caller's, only a counter can have
      // failed it; otherwise it was theirs unless a counter moved.
      if (checks.length > 0 || fences.length > 0) {
        const now = await Promise.all(
          sums.map((sum) => this.#counter(sum.key, sum.userKey, signal)),
        );
        if (now.every((counter, i) => counter.index === read[i].index)) {
          return { ok: false };
        }
      }
      await delay(backoff.next(), signal);
    }
  }

  // A counter's value and version (`null`: absent, counting as 0n).
  async #counter(
    key: string,
    userKey: string,
    signal: AbortSignal | undefined,
  ): Promise<{ value: bigint; index: bigint | null }> {
    const entry = await this.#run(
      "increment",
      signal,
      () => this.#driver.get(key, { consistent: true, signal }),
    );
    return {
      value: readCounter(userKey, entry?.value ?? null),
      index: entry?.lastIndex ?? null,
    };
  }

  // Runs a check-then-write commit and turns a failed check into the error
  // that says why: the driver may know the key's state, or it is read.
  async #commit(
    op: string,
    steps: AtomicStep[],
    signal: AbortSignal | undefined,
  ): Promise<bigint> {
    const check = steps[0] as { key: string; lastIndex: bigint | null };
    const outcome = await this.#run(
      op,
      signal,
      () => this.#driver.commit(steps, { signal }),
    );
    if (outcome.ok) return outcome.lastIndex;
    let current = outcome.current;
    if (current === undefined) {
      const entry = await this.#run(
        op,
        signal,
        () => this.#driver.get(check.key, { consistent: true, signal }),
      );
      current = entry?.lastIndex ?? null;
    }
    const key = this.#userKey(check.key);
    if (check.lastIndex === null) throw new KeyExistsError(key);
    if (current === null) throw new KeyNotFoundError(key);
    throw new KeyModifiedError(key);
  }

  #open(options: SignalOptions | undefined): void {
    if (this.#closed) throw new StoreClosedError(this.backend);
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new InvalidArgumentError(
        `signal must be an AbortSignal, not ${describe(signal)}`,
      );
    }
    if (signal) allowManyListeners(signal);
    signal?.throwIfAborted();
  }

  #key(key: string): string {
    const full = joinKey(
      this.#prefix,
      normalizeKey(key, this.limits.maxKeyBytes),
    );
    const reason = this.#driver.checkKey?.(full);
    if (reason) throw new InvalidKeyError(key, reason);
    return full;
  }

  // Every key of a bulk call, checked before any I/O.
  #keys(op: string, keys: readonly string[]): string[] {
    if (!Array.isArray(keys)) {
      throw new InvalidArgumentError(`${op} needs an array of keys`);
    }
    return keys.map((key) => this.#key(key));
  }

  #tree(prefix: string): string {
    const normalized = normalizePrefix(prefix, this.limits.maxKeyBytes);
    if (normalized === "") return this.#prefix;
    const full = joinKey(this.#prefix, normalized);
    const reason = this.#driver.checkKey?.(full);
    if (reason) throw new InvalidKeyError(prefix, reason);
    return full;
  }

  #userKey(full: string): string {
    return this.#prefix === "" ? full : full.slice(this.#prefix.length + 1);
  }

  #pair(entry: Entry): KVPair {
    let value = entry.value;
    // Clients hand out Node Buffers; callers get the same type everywhere.
    if (value.constructor !== Uint8Array) {
      value = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    }
    const pair = {
      key: this.#userKey(entry.key),
      value,
      lastIndex: entry.lastIndex,
    };
    if (entry.expiresAt !== undefined) noteExpiry(pair, entry.expiresAt);
    return pair;
  }

  #readOptions(options: ReadOptions | undefined): DriverReadOptions {
    if (options === undefined) return CONSISTENT_READ;
    return {
      consistent: options?.consistent ?? true,
      signal: options?.signal,
    };
  }

  #watchSetup(
    options: SignalOptions | undefined,
    watch: WatchLagMessage["watch"],
    key: string,
  ): WatchSetup {
    return {
      toPair: (entry) => this.#pair(entry),
      userKey: (full) => this.#userKey(full),
      signal: options?.signal,
      wrapError: (error) => this.#wrap("watch", error, undefined),
      onEnd: (watch) => this.#watches.delete(watch),
      delivered: (lagMs, waiting) =>
        publishWatchLag({ backend: this.backend, watch, key, lagMs, waiting }),
    };
  }

  #startWatch(
    watch: KeyWatch | TreeWatch | EventWatch,
    start: () => void,
  ): void {
    this.#watches.add(watch);
    try {
      start();
    } catch (cause) {
      watch.error(cause);
    }
  }

  // Whether a call can go straight to the driver: no signal to race and no
  // tracer listening. The single-key calls then skip #run's closure and
  // frame, which cost ~8 % of a file: store's random gets and concurrent
  // puts; their caller makes the errors the library's (#wrap leaves those
  // #run made as they are). Both paths call the driver alike, a microtask
  // or two apart.
  #direct(op: string, signal: AbortSignal | undefined): boolean {
    return signal === undefined && tracingChannel(op) === undefined;
  }

  // The driver's get for get and exists: not async, so the direct call is
  // the driver's own promise, with no frame of its own.
  #read(
    op: "get" | "exists",
    full: string,
    options: ReadOptions | undefined,
    key: string,
  ): Promise<Entry | null> {
    const signal = options?.signal;
    if (this.#direct(op, signal)) {
      return this.#driver.get(full, this.#readOptions(options));
    }
    return this.#run(
      op,
      signal,
      () => this.#driver.get(full, this.#readOptions(options)),
      key,
    );
  }

  // Every call to the driver: traced (see tracing.ts), abortable, and with
  // its errors made the library's.

  async #run<T>(
    op: string,
    signal: AbortSignal | undefined,
    call: () => Promise<T>,
    key?: string,
  ): Promise<T> {
    try {
      const channel = tracingChannel(op);
      if (channel === undefined) return await abortable(call(), signal);
      const context: TraceContext = { operation: op, backend: this.backend };
      if (key !== undefined) context.key = key;
      return await channel.tracePromise(
        () => abortable(call(), signal),
        context,
      );
    } catch (error) {
      throw this.#wrap(op, error, signal);
    }
  }

  // Aborts keep their reason; library errors pass; anything else is wrapped,
  // so no raw client error reaches the caller.
  #wrap(op: string, error: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted && error === signal.reason) return error;
    // A call cut off by close() says so, unless it failed for its own reason.
    if (this.#closed && !(error instanceof KeyError)) {
      if (error instanceof StoreClosedError) return error;
      return new StoreClosedError(this.backend, { cause: error });
    }
    if (error instanceof StoreError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new StoreError(`${this.backend} ${op} failed: ${message}`, {
      cause: error,
    });
  }
}

function previousIndex(
  key: string,
  previous: KVPair | null | undefined,
  nullAllowed: boolean,
): bigint | null {
  if (previous === null && nullAllowed) return null;
  if (previous === undefined || previous === null) {
    throw new PreviousNotSpecifiedError(key);
  }
  if (typeof previous !== "object" || typeof previous.lastIndex !== "bigint") {
    throw new InvalidArgumentError(
      `previous must be a pair with a bigint lastIndex (key ${
        JSON.stringify(key)
      })`,
    );
  }
  return previous.lastIndex;
}

/**
 * Drops a store as a crashed process would: its connections go without
 * goodbye, its locks are neither renewed nor released (they expire on the
 * server after their TTL), and its watches end. For tests of what other
 * clients see when one dies.
 *
 * @param store A store opened by this library.
 *
 * @example
 * ```ts ignore
 * await abandon(store);
 * ```
 */
export function abandon(store: Store): Promise<void> {
  if (!(store instanceof BaseStore)) {
    throw new InvalidArgumentError("abandon() needs a store of this library");
  }
  return abandonStore(store);
}

// Releases a lease nobody will hold: its taker gave up or the store closed.
async function releaseLate(lease: LockLease): Promise<void> {
  const timeout = deadline(5_000);
  try {
    await lease.release(false, timeout.signal);
  } finally {
    timeout.dispose();
  }
}
