/**
 * Watches over an in-process change feed, for backends whose every writer
 * lives in this process (`memory:`, and `file:`, which one process opens at
 * a time): the database tells its listeners each commit's changes once they
 * are visible, and these turn that into the sinks' calls.
 *
 * @module
 */

import type { Entry, KeySink, TreeSink } from "./driver.ts";

/** One key's change in a commit: its new entry, or `null` when deleted. */
export interface LocalChange {
  /** The full key. */
  key: string;
  /** The entry now, or `null` when the key is gone. */
  entry: Entry | null;
}

/** Hears the changes of each commit, once it is visible. */
export type LocalChangeListener = (changes: readonly LocalChange[]) => void;

/** What a database offers its watches. */
export interface LocalFeed {
  /** A key's entry now (synchronous, so no commit falls between). */
  get(key: string): Entry | null;
  /** The entries under `dir`, now or once read. */
  list(dir: string): Entry[] | Promise<Entry[]>;
  /** Subscribes to commits; returns the unsubscribe. */
  listen(listener: LocalChangeListener): () => void;
}

/**
 * Reports `key`'s state to `sink`, then its every change, until `signal`
 * aborts.
 *
 * @param feed The database.
 * @param key The full key.
 * @param sink Where the states go.
 * @param signal Ends the watch.
 *
 * @example
 * ```ts ignore
 * watchKeyLocally(database, "app/k", sink, signal);
 * ```
 */
export function watchKeyLocally(
  feed: LocalFeed,
  key: string,
  sink: KeySink,
  signal: AbortSignal,
): void {
  // Reading and subscribing in one synchronous run: no commit can fall
  // between them.
  sink.state(feed.get(key));
  const stop = feed.listen((changes) => {
    for (const change of changes) {
      if (change.key === key) sink.state(copy(change.entry));
    }
  });
  signal.addEventListener("abort", stop, { once: true });
}

/**
 * Reports the tree under `dir` to `sink`, then its every change, until
 * `signal` aborts. A list that yields to the event loop is not a gap:
 * changes heard meanwhile are replayed on top of it (the tree watch drops
 * ones it already has).
 *
 * @param feed The database.
 * @param dir The tree's directory (`""` or ending in `/`).
 * @param sink Where the tree and its changes go.
 * @param signal Ends the watch.
 *
 * @example
 * ```ts ignore
 * watchTreeLocally(database, "app/", sink, signal);
 * ```
 */
export function watchTreeLocally(
  feed: LocalFeed,
  dir: string,
  sink: TreeSink,
  signal: AbortSignal,
): void {
  let buffered: LocalChange[] | undefined = [];
  const apply = (change: LocalChange) => {
    if (!change.key.startsWith(dir)) return;
    if (change.entry) sink.put(copy(change.entry)!);
    else sink.delete(change.key);
  };
  const stop = feed.listen((changes) => {
    if (buffered) buffered.push(...changes);
    else for (const change of changes) apply(change);
  });
  signal.addEventListener("abort", stop, { once: true });
  const start = (entries: Entry[]) => {
    if (signal.aborted) return;
    sink.reset(entries);
    const replay = buffered!;
    buffered = undefined;
    for (const change of replay) apply(change);
  };
  let listed;
  try {
    listed = feed.list(dir);
  } catch (error) {
    sink.error(error);
    return;
  }
  if (Array.isArray(listed)) start(listed);
  else listed.then(start, (error) => sink.error(error));
}

// Listeners share a commit's entries: each watch hands out its own bytes.
function copy(entry: Entry | null): Entry | null {
  return entry && { ...entry, value: entry.value.slice() };
}
