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
 * A tree watch resumed from an index replays the stream: a reader of its own
 * reads every record the stream still holds (up to 24 hours of the table's
 * writes) and passes on those of versions above the index less twice
 * `maxClockSkew`. Versions are the writers' clocks (see versions.ts), so a
 * change committed after the index was reported may carry a version up to
 * that much below it; the margin keeps it from being skipped, at the price
 * of changes from just before the index coming again (in order per key).
 * Where the stream may not hold everything above that floor (enabled
 * later, the index more than a day old or in the future), the watch starts
 * over with the tree, as any watch does.
 *
 * @module
 */

import { delay } from "../../core/abort.ts";
import type {
  Entry,
  KeySink,
  ReplaySink,
  TreeSink,
} from "../../core/driver.ts";
import { Backoff } from "../../core/backoff.ts";
import { translateError } from "./errors.ts";
import type { Reporter } from "./events.ts";
import { type Item, readItem } from "./items.ts";
import { MICROS_PER_MS } from "./versions.ts";
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
  /** A new reader of the whole stream, for a resumed tree watch. */
  replayFeed?: () => StreamFeed;
  /** How far clients' clocks may disagree, in milliseconds. */
  maxClockSkewMs: number;
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

/**
 * How old a change may be for the stream to still surely hold it: DynamoDB
 * Streams trims records after 24 hours; ten minutes less leaves room for
 * the replay's own reading.
 */
const STREAM_HISTORY_MS = 24 * 60 * 60 * 1000 - 10 * 60 * 1000;

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
  run(source, treeWatched(source, dir, sink), signal);
}

/**
 * Watches every key under `dir`, first replaying from the stream the
 * changes after `from` (see the module's notes), or starting with the tree
 * where the stream may not hold them.
 */
export function replayTree(
  source: WatchSource,
  dir: string,
  from: bigint,
  sink: ReplaySink,
  signal: AbortSignal,
): void {
  const replayFeed = source.replayFeed;
  if (!replayFeed) return watchTree(source, dir, sink, signal);
  const skew = BigInt(source.maxClockSkewMs) * MICROS_PER_MS;
  const floor = from - 2n * skew;
  run(source, treeWatched(source, dir, sink), signal, {
    feed: replayFeed(),
    floor,
    sink,
    covered: (createdMs) => {
      const now = BigInt(Math.floor(source.now())) * MICROS_PER_MS;
      const created = createdMs === undefined
        ? undefined
        : BigInt(Math.floor(createdMs)) * MICROS_PER_MS;
      // A change above the floor was written at most one skew before it:
      // after the stream began, within the stream's history, and `from`
      // no later than a clock could be now.
      return created !== undefined && created + skew <= floor &&
        floor - skew >=
          now - BigInt(STREAM_HISTORY_MS) * MICROS_PER_MS &&
        from <= now + skew;
    },
    from,
  });
}

function treeWatched(
  source: WatchSource,
  dir: string,
  sink: TreeSink,
): Watched {
  return {
    key: dir,
    has: (k) => k.startsWith(dir),
    read: (s) => source.readTree(dir, s),
    changed: (key, entry) => entry ? sink.put(entry) : sink.delete(key),
    all: (entries) => sink.reset(entries),
    error: (error) => sink.error(error),
  };
}

/** How a resumed tree watch replays. */
interface Replay {
  /** Its own reader, from the stream's oldest records. */
  feed: StreamFeed;
  /** Records of versions up to this are not passed on. */
  floor: bigint;
  sink: ReplaySink;
  /** Whether the stream, enabled at `createdMs`, holds every change above the floor. */
  covered(createdMs: number | undefined): boolean;
  /** The index asked for: the replay's `synced` is at least this. */
  from: bigint;
}

function run(
  source: WatchSource,
  watched: Watched,
  signal: AbortSignal,
  replay?: Replay,
) {
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

  // A replay's records wait until the stream is known to hold them all.
  let held: (readonly StreamChange[])[] | undefined = replay ? [] : undefined;
  let floor = replay?.floor;
  const onChanges = (changes: readonly StreamChange[]) => {
    if (held) {
      held.push(changes);
      return;
    }
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
      if (floor !== undefined && state.version <= floor) continue;
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

  const listener = {
    changes: onChanges,
    resync: () => void reread().catch(fail),
    resumed,
    error: pollOrFail,
  };
  const live = async () => {
    if (source.feed && !source.feed.gone) {
      subscription = source.feed.subscribe(listener);
      if (signal.aborted) subscription.close();
      await subscription.ready;
      await reread();
      return;
    }
    await poll();
  };
  const replayed = async ({ feed, sink, covered, from }: Replay) => {
    let caughtUp = false;
    subscription = feed.subscribe({
      ...listener,
      caughtUp: () => {
        caughtUp = true;
        if (!held && !signal.aborted) sink.replayed(from);
      },
    });
    if (signal.aborted) subscription.close();
    await subscription.ready;
    if (signal.aborted) return;
    if (!covered(feed.createdMs)) {
      // The stream may lack some of the changes: start over with the tree.
      subscription.close();
      held = undefined;
      floor = undefined;
      return live();
    }
    sink.replaying();
    started = true;
    const waiting = held ?? [];
    held = undefined;
    for (const changes of waiting) onChanges(changes);
    if (caughtUp) sink.replayed(from);
  };
  (replay ? replayed(replay) : live()).catch(pollOrFail);
}
