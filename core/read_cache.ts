/**
 * A read cache kept by the change feed: `store.cacheReads(prefix)` follows
 * the tree with the driver's own tree watch and, once it holds the whole
 * tree, serves `get`, `exists`, `list` and `scan` under the prefix from
 * memory when they ask for `consistent: false`. Reads that ask for
 * consistency (the default) still go to the server.
 *
 * What a cached read can miss is bounded by the watch's latency: a write of
 * another handle is visible once its change arrived. When the feed goes
 * down (a driver that says so through `stale()`, or a watch that failed)
 * the cache is dropped and its owner starts a new one: reads go to the
 * server until that one holds the whole tree again.
 *
 * @module
 */

import type { Entry, ScanRange, TreeSink } from "./driver.ts";
import { SortedKeys } from "./sorted_keys.ts";

/** One cached tree, fed as a tree watch's sink. */
export class ReadCache implements TreeSink {
  /** Every cached key starts with this (a driver `dir`). */
  readonly dir: string;
  readonly #entries = new Map<string, Entry>();
  // Sorted on the first list or scan, then kept up to date by the feed.
  readonly #index = new SortedKeys(() => this.#entries.keys());
  #synced = false;
  #failed: unknown;
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;
  #rejectReady!: (error: unknown) => void;
  /** Aborted when the cache is dropped: ends the driver's watch. */
  readonly stop: AbortController = new AbortController();
  readonly #onLost: () => void;

  /**
   * @param dir The tree's `dir`.
   * @param onLost Called once if the cache stops serving after it was
   * ready (the feed went down or failed): the owner starts a new one.
   */
  constructor(dir: string, onLost: () => void) {
    this.dir = dir;
    this.#onLost = onLost;
    this.#ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A cache dropped before it synced is no unhandled rejection.
    this.#ready.catch(() => {});
  }

  /** Resolves once the cache holds the whole tree; rejects if it never will. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Whether reads of `key` (a full key) can be served now. */
  covers(key: string): boolean {
    return this.#synced && key.startsWith(this.dir) && key !== this.dir;
  }

  /** Whether a listing of `dir` (a driver `dir`) can be served now. */
  coversTree(dir: string): boolean {
    return this.#synced && dir.startsWith(this.dir);
  }

  /** The live entry at `key`, or `null`. */
  get(key: string): Entry | null {
    const entry = this.#entries.get(key);
    if (!entry) return null;
    return entry.expiresAt !== undefined && entry.expiresAt <= Date.now()
      ? null
      : entry;
  }

  /** The live entries under `dir`, in key order. */
  list(dir: string): Entry[] {
    return this.scan({
      dir,
      lowerInclusive: true,
      reverse: false,
      limit: Infinity,
      keysOnly: false,
    });
  }

  /** One page of a scan of the cached tree. */
  scan(range: ScanRange): Entry[] {
    const now = Date.now();
    return this.#index.page(range, (key) => {
      const entry = this.#entries.get(key)!;
      return entry.expiresAt !== undefined && entry.expiresAt <= now
        ? undefined
        : entry;
    });
  }

  reset(entries: Entry[]): void {
    this.#entries.clear();
    this.#index.clear();
    for (const entry of entries) this.#entries.set(entry.key, entry);
    this.#synced = true;
    this.#resolveReady();
  }

  put(entry: Entry): void {
    const old = this.#entries.get(entry.key);
    if (old && old.lastIndex >= entry.lastIndex) return;
    this.#entries.set(entry.key, entry);
    if (!old) this.#index.added(entry.key);
  }

  delete(key: string): void {
    if (this.#entries.delete(key)) this.#index.removed(key);
  }

  /**
   * The feed is down: serve nothing until the driver has read the tree
   * again (its next `reset`).
   */
  stale(): void {
    this.#drop();
  }

  error(error: unknown): void {
    this.#failed = error;
    this.#rejectReady(error);
    this.#drop();
  }

  #drop(): void {
    const wasSynced = this.#synced;
    this.#synced = false;
    this.#entries.clear();
    this.#index.clear();
    this.stop.abort();
    if (wasSynced) this.#onLost();
  }

  /** Why the cache stopped for good, if it did. */
  get failure(): unknown {
    return this.#failed;
  }
}
