/**
 * The data of `memory:` stores: one database per name, shared by every handle
 * of this process that opens that name, dropped when the last handle closes.
 *
 * @module
 */

import { timerDelay, unrefTimer } from "../../core/abort.ts";
import type {
  LocalChange,
  LocalChangeListener,
} from "../../core/local_feed.ts";
import { LocalLockTable } from "../../core/local_locks.ts";
import { SortedKeys } from "../../core/sorted_keys.ts";
import type {
  AtomicStep,
  CommitOutcome,
  Entry,
  ScanRange,
} from "../../core/driver.ts";

interface Stored {
  value: Uint8Array;
  lastIndex: bigint;
  expiresAt?: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** A change: the key's new entry, or `null` when it was deleted or expired. */
export type Change = LocalChange;

/** Hears every change of a database, in commit order. */
export type ChangeListener = LocalChangeListener;

/** One in-process database. */
export class MemoryDatabase {
  #entries = new Map<string, Stored>();
  // The keys of #entries in UTF-8 byte order, for scans.
  #index = new SortedKeys(() => this.#entries.keys());
  #revision = 0n;
  #listeners = new Set<ChangeListener>();
  /** The locks of this database's handles. */
  readonly locks: LocalLockTable = new LocalLockTable();
  /** How many handles have it open. */
  handles = 0;

  /** The entry at `key`, or `null` when absent or expired. */
  get(key: string): Entry | null {
    const stored = this.#live(key);
    return stored ? entry(key, stored) : null;
  }

  /** Every live entry whose key starts with `dir`. */
  list(dir: string): Entry[] {
    const now = Date.now();
    const result: Entry[] = [];
    for (const [key, stored] of this.#entries) {
      if (!key.startsWith(dir)) continue;
      if (stored.expiresAt !== undefined && stored.expiresAt <= now) continue;
      result.push(entry(key, stored));
    }
    return result;
  }

  /** One page of a scan, read from the sorted index. */
  scan(range: ScanRange): Entry[] {
    const now = Date.now();
    return this.#index.page(range, (key) => {
      const stored = this.#entries.get(key)!;
      if (stored.expiresAt !== undefined && stored.expiresAt <= now) return;
      return range.keysOnly
        ? { key, value: new Uint8Array(0), lastIndex: stored.lastIndex }
        : entry(key, stored);
    });
  }

  /**
   * Applies the steps if every check passes: the whole commit gets one new
   * revision, which is the `lastIndex` of every key it writes.
   */
  commit(steps: readonly AtomicStep[]): CommitOutcome {
    for (const step of steps) {
      if (step.type !== "check") continue;
      const current = this.#live(step.key)?.lastIndex ?? null;
      if (current !== step.lastIndex) {
        return { ok: false, key: step.key, current };
      }
    }
    const revision = ++this.#revision;
    const changes: Change[] = [];
    for (const step of steps) {
      if (step.type === "put") {
        changes.push(this.#put(step.key, step.value, revision, step.ttl));
      } else if (step.type === "delete") {
        if (this.#remove(step.key)) {
          changes.push({ key: step.key, entry: null });
        }
      }
    }
    this.#emit(changes);
    return { ok: true, lastIndex: revision };
  }

  /** Deletes `key` (if given) and every key starting with `dir`. */
  deleteTree(key: string | null, dir: string): void {
    const changes: Change[] = [];
    for (const name of [...this.#entries.keys()]) {
      if (name === key || name.startsWith(dir)) {
        if (this.#remove(name)) changes.push({ key: name, entry: null });
      }
    }
    this.#emit(changes);
  }

  /** Starts hearing changes; returns the function that stops it. */
  listen(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Frees timers once no handle is left. */
  drop(): void {
    for (const stored of this.#entries.values()) clearTimeout(stored.timer);
    this.#entries.clear();
    this.#index.clear();
    this.#listeners.clear();
    this.locks.clear();
  }

  #live(key: string): Stored | undefined {
    const stored = this.#entries.get(key);
    if (stored?.expiresAt !== undefined && stored.expiresAt <= Date.now()) {
      return undefined;
    }
    return stored;
  }

  #put(key: string, value: Uint8Array, revision: bigint, ttl?: number): Change {
    const old = this.#entries.get(key);
    clearTimeout(old?.timer);
    const stored: Stored = { value, lastIndex: revision };
    if (ttl !== undefined) {
      stored.expiresAt = Date.now() + ttl;
      stored.timer = setTimeout(
        () => this.#expire(key, stored),
        timerDelay(ttl),
      );
      unrefTimer(stored.timer);
    }
    this.#entries.set(key, stored);
    if (!old) this.#index.added(key);
    return { key, entry: entry(key, stored) };
  }

  #expire(key: string, stored: Stored): void {
    if (this.#entries.get(key) !== stored) return;
    const left = stored.expiresAt! - Date.now();
    if (left > 0) {
      // Early: the TTL is beyond a timer's reach.
      stored.timer = setTimeout(
        () => this.#expire(key, stored),
        timerDelay(left),
      );
      unrefTimer(stored.timer);
      return;
    }
    this.#entries.delete(key);
    this.#index.removed(key);
    this.#emit([{ key, entry: null }]);
  }

  #remove(key: string): boolean {
    const old = this.#entries.get(key);
    if (!old) return false;
    clearTimeout(old.timer);
    this.#entries.delete(key);
    this.#index.removed(key);
    return true;
  }

  #emit(changes: Change[]): void {
    if (changes.length === 0) return;
    for (const listener of [...this.#listeners]) listener(changes);
  }
}

// Every entry handed out gets its own copy of the bytes: callers may change
// what they receive without changing the database.
function entry(key: string, stored: Stored): Entry {
  const result: Entry = {
    key,
    value: stored.value.slice(),
    lastIndex: stored.lastIndex,
  };
  if (stored.expiresAt !== undefined) result.expiresAt = stored.expiresAt;
  return result;
}

const named = new Map<string, MemoryDatabase>();

/**
 * Opens the database called `name` (shared by every handle of that name), or
 * a private one when `name` is empty.
 */
export function openDatabase(name: string): MemoryDatabase {
  let database = name === "" ? undefined : named.get(name);
  if (!database) {
    database = new MemoryDatabase();
    if (name !== "") named.set(name, database);
  }
  database.handles++;
  return database;
}

/** Closes one handle of the database; the last one drops its data. */
export function closeDatabase(name: string, database: MemoryDatabase): void {
  if (--database.handles > 0) return;
  database.drop();
  if (named.get(name) === database) named.delete(name);
}
