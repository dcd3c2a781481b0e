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
import { compareKeys } from "../../core/keys.ts";
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
  // The keys of #entries in UTF-8 byte order, built by the first scan and
  // kept up to date by binary insertion; dropped when many keys come and go
  // between scans (a bulk load), so writes never pay for an index nobody reads.
  #sorted: string[] | undefined;
  #changesSinceScan = 0;
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
    const sorted = this.#index();
    // The range is one run of the index: from the lower bound (or the dir)
    // up to the upper bound or the first key past the dir ("a/" ends
    // before "a0", '0' being the character after '/').
    const lower =
      range.lower !== undefined && compareKeys(range.lower, range.dir) > 0
        ? range.lower
        : range.dir;
    let from = lowerBound(sorted, lower);
    if (!range.lowerInclusive && sorted[from] === range.lower) from++;
    const dirEnd = range.dir === "" ? undefined : range.dir.slice(0, -1) + "0";
    const upper = range.upper === undefined ||
        (dirEnd !== undefined && compareKeys(dirEnd, range.upper) < 0)
      ? dirEnd
      : range.upper;
    const to = upper === undefined ? sorted.length : lowerBound(sorted, upper);
    const now = Date.now();
    const result: Entry[] = [];
    const step = range.reverse ? -1 : 1;
    for (
      let i = range.reverse ? to - 1 : from;
      i >= from && i < to && result.length < range.limit;
      i += step
    ) {
      const key = sorted[i];
      const stored = this.#entries.get(key)!;
      if (stored.expiresAt !== undefined && stored.expiresAt <= now) continue;
      result.push(
        range.keysOnly
          ? { key, value: new Uint8Array(0), lastIndex: stored.lastIndex }
          : entry(key, stored),
      );
    }
    return result;
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
    this.#sorted = undefined;
    this.#listeners.clear();
    this.locks.clear();
  }

  #index(): string[] {
    this.#changesSinceScan = 0;
    this.#sorted ??= [...this.#entries.keys()].sort(compareKeys);
    return this.#sorted;
  }

  #indexed(key: string, present: boolean): void {
    const sorted = this.#sorted;
    if (!sorted) return;
    if (++this.#changesSinceScan > 1_000) {
      this.#sorted = undefined;
      return;
    }
    const at = lowerBound(sorted, key);
    if (present) sorted.splice(at, 0, key);
    else if (sorted[at] === key) sorted.splice(at, 1);
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
    if (!old) this.#indexed(key, true);
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
    this.#indexed(key, false);
    this.#emit([{ key, entry: null }]);
  }

  #remove(key: string): boolean {
    const old = this.#entries.get(key);
    if (!old) return false;
    clearTimeout(old.timer);
    this.#entries.delete(key);
    this.#indexed(key, false);
    return true;
  }

  #emit(changes: Change[]): void {
    if (changes.length === 0) return;
    for (const listener of [...this.#listeners]) listener(changes);
  }
}

// The first position in `sorted` whose key is not below `key`.
function lowerBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareKeys(sorted[mid], key) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
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
