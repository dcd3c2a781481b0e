/**
 * Watches of a key or a tree, from the table's stream or, when the table
 * has none, by polling.
 *
 * With a stream, the watch listens first and reads the current state after
 * the reader is positioned, so no change falls between. Stream records and
 * re-reads can then arrive out of order (a record written before the read
 * but delivered after it); a mirror of the newest version seen of each key,
 * tombstones included, keeps any of them from moving a key backwards.
 * Versions grow on every write and delete, so "newer" is always decidable.
 *
 * Without a stream, or once it is disabled, each watch re-reads its key or
 * tree every `pollInterval`; writes between two polls fold into one change.
 *
 * @module
 */

import { delay } from "../../core/abort.ts";
import type { Entry, KeySink, TreeSink } from "../../core/driver.ts";
import { Backoff } from "../../core/backoff.ts";
import { translateError } from "./errors.ts";
import type { Reporter } from "./events.ts";
import { type Item, readItem } from "./items.ts";
import {
  type StreamChange,
  type StreamFeed,
  StreamGoneError,
  type Subscription,
} from "./stream_feed.ts";

/** Where watches get their data. */
export interface WatchSource {
  /** The table's stream reader; polling when `undefined`. */
  feed?: StreamFeed;
  /** How often a polling watch re-reads, in milliseconds. */
  pollIntervalMs: number;
  /** The raw data item of a key (tombstones too), strongly consistent. */
  readKey(key: string, signal: AbortSignal): Promise<Item | undefined>;
  /** The raw data items under a dir (tombstones too), strongly consistent. */
  readTree(dir: string, signal: AbortSignal): Promise<Item[]>;
  /** The time in milliseconds, for expiry. */
  now(): number;
  /** Where a watch reports its retried reads and its resumptions. */
  report: Reporter;
}

/** Re-reads that fail after the watch started are retried like this. */
const REREAD_BACKOFF = { baseMs: 100, capMs: 5_000 };

interface KnownState {
  version: bigint;
  entry: Entry | null;
}

/**
 * The watched keys' newest known states. A state replaces another only if
 * its version is higher (a removal: not lower), so late records and stale
 * reads are ignored.
 */
class Mirror {
  readonly states = new Map<string, KnownState>();
  /** Keys changed by records while a read was in flight. */
  touched: Set<string> | undefined;

  /** Records a state; returns whether it is news. */
  apply(key: string, version: bigint, entry: Entry | null): boolean {
    this.touched?.add(key);
    const old = this.states.get(key);
    if (old && old.version >= version) return false;
    this.states.set(key, { version, entry });
    return true;
  }

  /** Records that the item is gone at `version`; returns whether it is news. */
  remove(key: string, version: bigint): boolean {
    this.touched?.add(key);
    const old = this.states.get(key);
    if (old && old.version > version) return false;
    const news = old?.entry !== null;
    this.states.set(key, { version, entry: null });
    return news;
  }

  /** Takes a fresh read of every watched item. */
  merge(items: Item[], now: number, scope: (key: string) => boolean): void {
    const touched = this.touched ?? new Set();
    this.touched = undefined;
    const seen = new Set<string>();
    for (const item of items) {
      const state = readItem(item, now);
      if (!state || !scope(state.key)) continue;
      seen.add(state.key);
      this.apply(state.key, state.version, state.entry);
    }
    // Not in the read and not written since it began: removed outright.
    for (const [key, state] of this.states) {
      if (!seen.has(key) && !touched.has(key) && state.entry !== null) {
        this.states.set(key, { version: state.version, entry: null });
      }
    }
  }

  /** The entries holding a value at `now` (an expired one keeps its version). */
  live(now: number): Entry[] {
    const entries: Entry[] = [];
    for (const { entry } of this.states.values()) {
      if (entry && (entry.expiresAt === undefined || entry.expiresAt > now)) {
        entries.push(entry);
      }
    }
    return entries;
  }
}

/** What a watch of a key and a watch of a tree do differently. */
interface Watched {
  /** The key, or the tree's dir (for events). */
  key: string;
  /** Whether a key is watched. */
  has(key: string): boolean;
  /** Reads every watched item. */
  read(signal: AbortSignal): Promise<Item[]>;
  /** Reports one key's change. */
  changed(key: string, entry: Entry | null): void;
  /** Reports everything known (after a read). */
  all(entries: Entry[]): void;
  /** Ends the watch with an error. */
  error(error: unknown): void;
}

/** Watches one key: reports its state first, then every change. */
export function watchKey(
  source: WatchSource,
  key: string,
  sink: KeySink,
  signal: AbortSignal,
): void {
  run(source, {
    key,
    has: (k) => k === key,
    read: async (s) => {
      const item = await source.readKey(key, s);
      return item ? [item] : [];
    },
    changed: (_, entry) => sink.state(entry),
    all: (entries) => sink.state(entries[0] ?? null),
    error: (error) => sink.error(error),
  }, signal);
}

/** Watches every key under `dir`: the tree first, then every change. */
export function watchTree(
  source: WatchSource,
  dir: string,
  sink: TreeSink,
  signal: AbortSignal,
): void {
  run(source, {
    key: dir,
    has: (k) => k.startsWith(dir),
    read: (s) => source.readTree(dir, s),
    changed: (key, entry) => entry ? sink.put(entry) : sink.delete(key),
    all: (entries) => sink.reset(entries),
    error: (error) => sink.error(error),
  }, signal);
}

function run(source: WatchSource, watched: Watched, signal: AbortSignal) {
  const mirror = new Mirror();
  let started = false;
  let reading: Promise<void> | undefined;
  let readAgain = false;
  let subscription: Subscription | undefined;
  const resumed = () =>
    source.report.emit({ type: "watch-resume", key: watched.key });

  const fail = (error: unknown) => {
    if (!signal.aborted) {
      watched.error(translateError(error, { op: "watch" }) ?? error);
    }
  };

  // Reads everything watched and reports it; concurrent requests fold into
  // one more read after the current one.
  const reread = (): Promise<void> => {
    if (reading) {
      readAgain = true;
      return reading;
    }
    reading = (async () => {
      const backoff = new Backoff(REREAD_BACKOFF);
      do {
        readAgain = false;
        mirror.touched = new Set();
        let items: Item[];
        try {
          items = await watched.read(signal);
        } catch (error) {
          mirror.touched = undefined;
          if (signal.aborted) return;
          // The first read fails the watch; later ones resume by themselves.
          if (!started) throw error;
          readAgain = true;
          source.report.retry("watch", backoff.attempts + 1, error);
          // Only the watch's end stops the delay early, and the loop.
          await delay(backoff.next(), signal).catch(() => {});
          continue;
        }
        if (signal.aborted) return;
        const now = source.now();
        mirror.merge(items, now, watched.has);
        started = true;
        watched.all(mirror.live(now));
        if (backoff.attempts > 0) {
          backoff.reset();
          resumed();
        }
      } while (readAgain && !signal.aborted);
    })().finally(() => {
      reading = undefined;
    });
    return reading;
  };

  const onChanges = (changes: readonly StreamChange[]) => {
    let resync = false;
    const now = source.now();
    for (const change of changes) {
      if (change.lock || !watched.has(change.key)) continue;
      const image = change.removed ? change.oldImage : change.newImage;
      const state = image ? readItem(image, now) : undefined;
      if (!state) {
        // The stream does not carry the image this needs: read the item.
        resync = true;
        continue;
      }
      const news = change.removed
        ? mirror.remove(state.key, state.version)
        : mirror.apply(state.key, state.version, state.entry);
      if (news && started) {
        watched.changed(state.key, change.removed ? null : state.entry);
      }
    }
    if (resync) reread().catch(fail);
  };

  signal.addEventListener("abort", () => subscription?.close(), {
    once: true,
  });

  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    subscription?.close();
    subscription = undefined;
    await reread();
    while (!signal.aborted) {
      await delay(source.pollIntervalMs, signal);
      await reread();
    }
  };
  const pollOrFail = (error: unknown) => {
    if (signal.aborted) return;
    // The stream was turned off: the watch goes on by polling.
    if (error instanceof StreamGoneError) poll().catch(pollOrFail);
    else fail(error);
  };

  (async () => {
    if (source.feed && !source.feed.gone) {
      subscription = source.feed.subscribe({
        changes: onChanges,
        resync: () => void reread().catch(fail),
        resumed,
        error: pollOrFail,
      });
      if (signal.aborted) subscription.close();
      await subscription.ready;
      await reread();
      return;
    }
    await poll();
  })().catch(pollOrFail);
}
