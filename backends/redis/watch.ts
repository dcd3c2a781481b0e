/**
 * Watches of a key and of a tree, fed by keyspace notifications.
 *
 * A notification says only that a key changed, not to what, so a watch
 * re-reads after each one. Reads are one at a time per watch, and
 * notifications that arrive during a read fold into one more read after it:
 * every read starts after the changes it answers for, so the last state a
 * watch reports is the final one, and a burst of writes costs a few reads,
 * not one per write. A tree watch re-reads only the keys it heard about, in
 * batches, and lists the whole tree only at the start and after the
 * notification connection was re-established.
 *
 * @module
 */

import { StoreError } from "../../core/errors.ts";
import type { Entry, KeySink, TreeSink } from "../../core/driver.ts";
import { serial } from "../../core/serial.ts";
import type { Notifications } from "./notifications.ts";
import { translateError } from "./errors.ts";
import { isStoreKey } from "./names.ts";

/** What watches read through. */
export interface WatchSource {
  /** The store's notifications. */
  readonly notifications: Notifications;
  /** The longest key of the store (other names are not its keys). */
  readonly maxKeyBytes: number;
  /** Reads keys: their entries, `null` where absent. */
  read(keys: readonly string[]): Promise<(Entry | null)[]>;
  /** Every entry whose key starts with `dir`. */
  list(dir: string): Promise<Entry[]>;
}

/**
 * The most keys a tree watch re-reads in one round trip; more changed keys
 * take more round trips, each reported as it comes.
 */
const REREAD_BATCH = 512;

/** Reports `key`'s state to `sink` now and after every change. */
export function watchKey(
  source: WatchSource,
  key: string,
  sink: KeySink,
  signal: AbortSignal,
): void {
  const reread = serial(async () => {
    const [entry] = await source.read([key]);
    if (!signal.aborted) sink.state(entry);
  }, { onError: (error) => sink.error(readFailed(key, error)) });
  source.notifications.listenKey(key, {
    changed: reread,
    resync: reread,
    error: (error) => sink.error(error),
  }, signal).then(reread, (error) => sink.error(error));
}

/** Reports the tree under `dir` to `sink` now and after every change. */
export function watchTree(
  source: WatchSource,
  dir: string,
  sink: TreeSink,
  signal: AbortSignal,
): void {
  const heard = new Set<string>();
  let relist = true;
  const pump = serial(async () => {
    if (relist) {
      relist = false;
      // What is heard from here on is read again after the listing.
      heard.clear();
      const entries = await source.list(dir);
      if (signal.aborted) return;
      sink.reset(entries);
    }
    while (heard.size > 0 && !signal.aborted) {
      const keys: string[] = [];
      for (const key of heard) {
        keys.push(key);
        if (keys.length === REREAD_BATCH) break;
      }
      for (const key of keys) heard.delete(key);
      const entries = await source.read(keys);
      if (signal.aborted) return;
      // One synchronous run: the sink folds it into one snapshot.
      keys.forEach((key, i) => {
        const entry = entries[i];
        if (entry) sink.put(entry);
        else sink.delete(key);
      });
    }
  }, { onError: (error) => sink.error(readFailed(dir, error)) });
  source.notifications.listenTree(dir, {
    changed: (key) => {
      if (!isStoreKey(key, source.maxKeyBytes)) return;
      heard.add(key);
      pump();
    },
    resync: () => {
      relist = true;
      pump();
    },
    error: (error) => sink.error(error),
  }, signal).then(pump, (error) => sink.error(error));
}

function readFailed(what: string, error: unknown): StoreError {
  const translated = translateError(error, { op: "watch", key: what });
  if (translated) return translated;
  return new StoreError(
    `The redis watch of ${JSON.stringify(what)} stopped: a read failed: ${
      error instanceof Error ? error.message : String(error)
    }`,
    { cause: error },
  );
}
