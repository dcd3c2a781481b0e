/**
 * A database of the engine as the store uses it: reads of the visible
 * state, writes grouped into commits, durability, change events, and the
 * reclaiming of expired keys.
 *
 * Writes issued while no commit runs are collected until the end of the
 * current tick (a microtask), then applied in one engine transaction and
 * made durable with one sync; writes issued while a commit syncs wait for
 * it and go together into the next one. Each caller's promise resolves only
 * after its commit is durable, and readers see a commit only then, so
 * nothing a reader saw can be lost by a crash.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { StoreClosedError, StoreError } from "../core/errors.ts";
import { timerDelay, unrefTimer } from "../core/abort.ts";
import type { Entry } from "../core/driver.ts";
import type { LocalChange, LocalChangeListener } from "../core/local_feed.ts";
import {
  type Engine,
  type EngineDb,
  type EngineStats,
  type IntegrityReport,
  loadEngine,
} from "./engine.ts";
import type { Host } from "./host.ts";

/**
 * The page cache's size when none is given: 256 MiB of 4 KiB pages. It
 * fills only as pages are read, so a small database uses little of it.
 */
export const DEFAULT_CACHE_PAGES = 65_536;
/** Output of one list call into the engine before yielding (1 MiB). */
const LIST_BATCH_BYTES = 1 << 20;
/** Non-durable commits are made durable at least this often. */
const CHECKPOINT_MS = 1_000;
/** Expired keys are reclaimed this long after they expire, in one commit. */
const SWEEP_DELAY_MS = 250;
/** Expired keys one reclaiming commit deletes at most. */
const SWEEP_BATCH = 1_000;

/** How a {@linkcode Database} is opened. */
export interface DatabaseOptions {
  /** The page cache's size in 4 KiB pages. */
  cachePages?: number;
  /**
   * Sync every commit (default `true`). Without, commits are visible at once
   * and made durable within a second; a crash may lose that second, never
   * more, and never leaves a damaged file.
   */
  durable?: boolean;
  /**
   * The engine to open it with (default: {@linkcode loadEngine}'s, the first
   * engine this process loaded or else the module beside `engine.ts`).
   */
  engine?: Engine;
  /**
   * Hears what fails in the background, where no caller waits for it: a
   * checkpoint's sync of non-durable commits (the database then refuses
   * writes, as after a failed commit) or a sweep of expired keys.
   */
  onError?: (error: unknown, source: BackgroundWork) => void;
}

/** The work a database does on its own, for {@linkcode DatabaseOptions.onError}. */
export type BackgroundWork = "checkpoint" | "expiry sweep";

/** A change: the key's new entry, or `null` when deleted or expired. */
export type Change = LocalChange;

/** Hears the changes of each commit, once it is visible. */
export type ChangeListener = LocalChangeListener;

/** What a write does, inside the commit it is grouped into. */
export interface WriteTxn {
  /** Starts an operation: its writes share a new revision, returned. */
  op(): number;
  /** The revision of `key` now (including earlier writes of the commit). */
  revision(key: string): bigint | null;
  /** Writes `value` at `key` with revision `revision` (from `op()`). */
  put(key: string, value: Uint8Array, revision: number, ttl?: number): void;
  /** Deletes `key`. */
  delete(key: string): void;
  /** Deletes `key` (unless `null`) and every key starting with `dir`. */
  deleteTree(key: string | null, dir: string): void;
}

/** Queued work: writes for the next commit, or work to run between commits. */
interface Job {
  run?: (tx: WriteTxn) => unknown;
  exclusive?: () => Promise<unknown> | unknown;
  /** A plain put (with `value`) or delete of one key. */
  key?: string;
  value?: Uint8Array;
  ttl?: number;
}

interface Queued extends Job {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** One open database file. */
export class Database {
  readonly #db: EngineDb;
  readonly #host: Host;
  readonly #durable: boolean;
  readonly #queue: Queued[] = [];
  #scheduled = false;
  #running = false;
  #drained: (() => void) | undefined;
  readonly #listeners = new Set<ChangeListener>();
  /**
   * Listeners that subscribed while a commit that collects no changes (it
   * began with no listener) was between its writes and its end: they read
   * the state before it, so they are told its changes once it is done.
   */
  #late: Set<ChangeListener> | undefined;
  #failure: unknown;
  #closed = false;
  #closing: Promise<void> | undefined;
  #sweepTimer: ReturnType<typeof setTimeout> | undefined;
  #sweepAt = Infinity;
  #checkpointTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #onError: DatabaseOptions["onError"];
  /** A run of plain writes of more bytes than this is applied in key order. */
  readonly #sortAbove: number;

  private constructor(db: EngineDb, host: Host, options: DatabaseOptions) {
    this.#db = db;
    this.#host = host;
    this.#durable = options.durable ?? true;
    this.#onError = options.onError;
    this.#sortAbove = (options.cachePages ?? DEFAULT_CACHE_PAGES) * 1024;
  }

  /**
   * Opens the database in `host` (an empty file becomes a new database).
   *
   * @param host The file.
   * @param options Cache size, durability, and who hears background errors.
   * @returns The database.
   */
  static async open(
    host: Host,
    options: DatabaseOptions = {},
  ): Promise<Database> {
    const engine = options.engine ?? await loadEngine();
    const db = engine.open(host, options.cachePages ?? DEFAULT_CACHE_PAGES);
    const database = new Database(db, host, options);
    database.#armSweep();
    return database;
  }

  /** The live entry at `key`, or `null`. */
  get(key: string): Entry | null {
    this.#open();
    return this.#db.get(key, Date.now());
  }

  /**
   * Every live entry whose key starts with `dir`, sorted. A long list is
   * read in batches from one snapshot, yielding to the event loop between
   * them, so commits go on meanwhile and the list stays consistent.
   */
  async list(dir: string): Promise<Entry[]> {
    this.#open();
    const now = Date.now();
    let page = this.#db.scan(dir, undefined, now, LIST_BATCH_BYTES);
    if (!page.more) return page.entries;
    const snapshot = this.#db.snapshot();
    const all = page.entries;
    try {
      while (page.more) {
        await new Promise((resolve) => setImmediate(resolve));
        this.#open();
        const after = all[all.length - 1].key;
        page = this.#db.scan(dir, after, now, LIST_BATCH_BYTES, snapshot);
        for (const entry of page.entries) all.push(entry);
      }
    } finally {
      if (!this.#closed) this.#db.release(snapshot);
    }
    return all;
  }

  /**
   * Up to `limit` live entries whose key starts with `dir`, in key order,
   * after `after` (or from the first, when it is undefined): one page of a
   * scan, read in batches of at most 1 MiB from one snapshot.
   */
  page(dir: string, after: string | undefined, limit: number): Entry[] {
    this.#open();
    const now = Date.now();
    let page = this.#db.scan(dir, after, now, LIST_BATCH_BYTES, 0, limit);
    if (!page.more || page.entries.length >= limit) return page.entries;
    const snapshot = this.#db.snapshot();
    const all = page.entries;
    try {
      while (page.more && all.length < limit) {
        const last = all[all.length - 1].key;
        page = this.#db.scan(
          dir,
          last,
          now,
          LIST_BATCH_BYTES,
          snapshot,
          limit - all.length,
        );
        for (const entry of page.entries) all.push(entry);
      }
    } finally {
      this.#db.release(snapshot);
    }
    return all;
  }

  /**
   * Up to `limit` live entries in key order after `from` (a range scan; the
   * store's `list` is by prefix, this serves benchmarks and tools).
   */
  range(from: string, limit: number): Entry[] {
    this.#open();
    return this.#db.scan("", from, Date.now(), LIST_BATCH_BYTES, 0, limit)
      .entries;
  }

  /**
   * Runs `run` inside the next commit; resolves with what it returned once
   * that commit is durable.
   */
  write<T>(run: (tx: WriteTxn) => T): Promise<T> {
    return this.#enqueue({ run }) as Promise<T>;
  }

  /**
   * Writes `value` at `key` in the next commit, as its own operation;
   * resolves the key's new revision once that commit is durable. Plain
   * puts and deletes that follow each other in a commit are applied in key
   * order (their revisions still follow the order they were issued in), so
   * a large group touches each page once.
   */
  put(key: string, value: Uint8Array, ttl?: number): Promise<bigint> {
    return this.#enqueue({ key, value, ttl }) as Promise<bigint>;
  }

  /** Deletes `key` in the next commit, as its own operation (see `put`). */
  delete(key: string): Promise<void> {
    return this.#enqueue({ key }) as Promise<void>;
  }

  /** Hears every commit's changes; returns the function that stops it. */
  listen(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    this.#late?.add(listener);
    return () => {
      this.#listeners.delete(listener);
      this.#late?.delete(listener);
    };
  }

  /** Runs the integrity check between commits. */
  verify(): Promise<IntegrityReport> {
    return this.#enqueue({ exclusive: () => this.#db.verify() }) as Promise<
      IntegrityReport
    >;
  }

  /** Numbers about the database. */
  stats(): EngineStats {
    this.#open();
    return this.#db.stats();
  }

  /** Finishes queued writes, makes everything durable and closes the file. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#enqueue({ exclusive: () => {} }).catch(() => {});
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    clearTimeout(this.#checkpointTimer);
    try {
      if (this.#failure === undefined) this.#db.close();
      else this.#db.drop();
    } finally {
      this.#host.close();
    }
  }

  /** Drops the database without writing anything, as a crash would. */
  crash(): void {
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    clearTimeout(this.#checkpointTimer);
    for (const item of this.#queue.splice(0)) {
      item.reject(new StoreError("The database was dropped"));
    }
    this.#db.drop();
    this.#host.close();
  }

  #open(): void {
    if (this.#closed) throw new StoreClosedError("file");
  }

  #enqueue(job: Job): Promise<unknown> {
    if (this.#closed) return Promise.reject(new StoreClosedError("file"));
    return new Promise((resolve, reject) => {
      this.#queue.push({
        run: job.run,
        exclusive: job.exclusive,
        key: job.key,
        value: job.value,
        ttl: job.ttl,
        resolve,
        reject,
      });
      if (!this.#scheduled && !this.#running) {
        this.#scheduled = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const first = this.#queue[0];
        if (first.exclusive) {
          this.#queue.shift();
          try {
            first.resolve(await first.exclusive());
          } catch (error) {
            first.reject(error);
          }
          continue;
        }
        let n = 1;
        while (n < this.#queue.length && !this.#queue[n].exclusive) n++;
        await this.#commit(this.#queue.splice(0, n));
      }
    } finally {
      this.#running = false;
    }
  }

  async #commit(batch: Queued[]): Promise<void> {
    const changes: Change[] = [];
    const written: string[] = [];
    const results: unknown[] = [];
    let needsSync: boolean;
    let expiring = false;
    try {
      if (this.#failure !== undefined) throw this.#failure;
      const now = Date.now();
      const db = this.#db;
      const collect = this.#listeners.size > 0;
      // Without listeners only the keys are kept, for one that comes while
      // the commit syncs (see #late).
      if (!collect) this.#late = new Set();
      db.begin();
      // Operations are numbered here; the engine learns each revision with
      // the writes and the last one at commit.
      let revision = db.revision();
      const tx: WriteTxn = {
        op: () => ++revision,
        revision: (key) => db.revisionOf(key, now),
        put: (key, value, revision, ttl) => {
          const expires = ttl === undefined ? 0 : now + ttl;
          db.put(key, value, revision, expires, now);
          if (expires !== 0) expiring = true;
          if (!collect) {
            written.push(key);
            return;
          }
          const entry: Entry = { key, value, lastIndex: BigInt(revision) };
          if (expires !== 0) entry.expiresAt = expires;
          changes.push({ key, entry });
        },
        delete: (key) => {
          if (db.delete(key, now)) {
            if (collect) changes.push({ key, entry: null });
            else written.push(key);
          }
        },
        deleteTree: (key, dir) => {
          for (const deleted of db.deleteTree(key ?? "", dir, now, true)) {
            if (collect) changes.push({ key: deleted, entry: null });
            else written.push(deleted);
          }
        },
      };
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i];
        if (item.key !== undefined) {
          let end = i + 1;
          while (end < batch.length && batch[end].key !== undefined) end++;
          this.#applyPlain(tx, batch, i, end, results);
          i = end - 1;
        } else if (item.run === sweep) {
          for (const key of db.sweep(now, SWEEP_BATCH)) {
            changes.push({ key, entry: null });
          }
          expiring = true;
          results.push(undefined);
        } else {
          results.push(item.run!(tx));
        }
      }
      needsSync = db.commit(this.#durable, revision);
    } catch (error) {
      this.#fail(error, batch);
      return;
    }
    if (needsSync) {
      try {
        await this.#host.syncAsync();
        this.#db.synced(true);
      } catch (error) {
        this.#syncFailed(
          "The commit could not be synced to disk",
          error,
          batch,
        );
        return;
      }
    } else if (!this.#durable) {
      this.#scheduleCheckpoint();
    }
    const late = this.#late;
    this.#late = undefined;
    if (late !== undefined && late.size > 0 && written.length > 0) {
      this.#tellLate(late, written);
    }
    if (changes.length > 0) {
      for (const listener of [...this.#listeners]) {
        // A listener's failure is its own; the commit and its callers stand.
        try {
          listener(changes);
        } catch { /* the listener reports its errors itself */ }
      }
    }
    for (let i = 0; i < batch.length; i++) batch[i].resolve(results[i]);
    if (expiring) this.#armSweep();
  }

  // Plain puts and deletes of batch[start..end]: numbered in the order
  // issued. A run whose bytes could fill a quarter of the page cache is
  // applied in key order (a stable sort keeps the order of writes to one
  // key), so each page is copied, and spilled, at most once; a smaller one
  // cannot spill, and sorting it cost a third of a 200,000-key putMany. Adds
  // the results to `results`, in the order issued: a put's revision, a
  // delete's nothing.
  #applyPlain(
    tx: WriteTxn,
    batch: Queued[],
    start: number,
    end: number,
    results: unknown[],
  ): void {
    const n = end - start;
    // Revisions in the order issued: the k-th operation has first + k.
    const first = tx.op();
    for (let k = 1; k < n; k++) tx.op();
    const keys = new Array<string>(n);
    let sorted = true;
    let bytes = 0;
    for (let k = 0; k < n; k++) {
      const item = batch[start + k];
      keys[k] = item.key!;
      bytes += item.key!.length + (item.value?.length ?? 0);
      if (sorted && k > 0 && keys[k - 1] > keys[k]) sorted = false;
    }
    const order = Array.from({ length: n }, (_, k) => k);
    if (!sorted && bytes > this.#sortAbove) {
      order.sort((a, b) => {
        const x = keys[a];
        const y = keys[b];
        return x < y ? -1 : x > y ? 1 : a - b;
      });
    }
    for (let i = 0; i < n; i++) {
      const k = order[i];
      const item = batch[start + k];
      if (item.value) tx.put(keys[k], item.value, first + k, item.ttl);
      else tx.delete(keys[k]);
    }
    for (let k = 0; k < n; k++) {
      results.push(batch[start + k].value ? BigInt(first + k) : undefined);
    }
  }

  // A failed commit leaves the engine refusing writes (its state in memory
  // may be half-changed); reads go on, and reopening recovers the file.
  // The changes of a commit that collected none, for listeners that came
  // while it was under way: its keys as they are now.
  #tellLate(late: Set<ChangeListener>, written: string[]): void {
    const now = Date.now();
    const changes: Change[] = [...new Set(written)].map((key) => ({
      key,
      entry: this.#db.get(key, now),
    }));
    for (const listener of late) {
      try {
        listener(changes);
      } catch { /* the listener reports its errors itself */ }
    }
  }

  // What was acknowledged may not be on disk: the engine forgets the
  // unsynced commit, and every write from now on says so.
  #syncFailed(what: string, error: unknown, batch: Queued[]): void {
    try {
      this.#db.synced(false);
    } catch { /* the engine is now refusing writes */ }
    this.#fail(
      new StoreError(
        `${what}: ${
          error instanceof Error ? error.message : String(error)
        }; the database refuses writes until it is reopened`,
        { cause: error },
      ),
      batch,
    );
  }

  #fail(error: unknown, batch: Queued[]): void {
    this.#late = undefined;
    if (this.#failure === undefined) {
      const message = error instanceof Error ? error.message : String(error);
      this.#failure = /refuses writes/.test(message) ? error : new StoreError(
        `A commit failed (${message}); the database refuses writes until it is reopened`,
        { cause: error },
      );
    }
    for (const item of batch) item.reject(this.#failure);
  }

  #scheduleCheckpoint(): void {
    if (this.#checkpointTimer !== undefined) return;
    this.#checkpointTimer = setTimeout(() => {
      this.#checkpointTimer = undefined;
      if (this.#closed) return;
      this.#enqueue({
        exclusive: async () => {
          if (this.#failure !== undefined) return;
          try {
            this.#db.begin();
            this.#db.commit(true);
            await this.#host.syncAsync();
            this.#db.synced(true);
          } catch (error) {
            this.#syncFailed(
              "A checkpoint could not sync the last commits to disk",
              error,
              [],
            );
            throw this.#failure;
          }
        },
      }).catch((error) => this.#report(error, "checkpoint"));
    }, CHECKPOINT_MS);
    unrefTimer(this.#checkpointTimer);
  }

  #report(error: unknown, source: BackgroundWork): void {
    try {
      this.#onError?.(error, source);
    } catch { /* the listener reports its errors itself */ }
  }

  // One timer, at the earliest expiry (plus a delay, so keys expiring
  // together are reclaimed by one commit).
  #armSweep(): void {
    if (this.#closed || this.#failure !== undefined) return;
    let next: number;
    try {
      next = this.#db.nextExpiry();
    } catch {
      // A damaged expiry index: reads still check expiry themselves, and
      // the next write that touches the page reports the damage.
      return;
    }
    if (next === 0) return;
    const at = next + SWEEP_DELAY_MS;
    if (at >= this.#sweepAt && this.#sweepTimer !== undefined) return;
    clearTimeout(this.#sweepTimer);
    this.#sweepAt = at;
    this.#sweepTimer = setTimeout(() => {
      this.#sweepTimer = undefined;
      this.#sweepAt = Infinity;
      if (this.#closed) return;
      this.#enqueue({ run: sweep }).catch((error) =>
        this.#report(error, "expiry sweep")
      );
      // A sweep that comes early (an expiry beyond a timer's reach) deletes
      // nothing and arms the timer again.
    }, timerDelay(at - Date.now()));
    unrefTimer(this.#sweepTimer);
  }
}

// Marks the queued item that reclaims expired keys.
function sweep(): void {}
