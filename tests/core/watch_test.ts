// core/watch.ts on its own: what drivers report and what readers get, for
// the cases a backend's feed may produce (duplicates, stale reads, bursts,
// late expiry, errors) but the memory backend never does.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Entry } from "../../core/driver.ts";
import { StoreError } from "../../core/errors.ts";
import {
  EventWatch,
  KeyWatch,
  TreeWatch,
  WATCH_BUFFER_LIMIT,
} from "../../core/watch.ts";
import type { KVPair, WatchEvent } from "../../core/types.ts";
import { EVENT_TIMEOUT_MS, StreamReader } from "../../testing/harness.ts";

const entry = (key: string, lastIndex: number, expiresAt?: number): Entry => ({
  key,
  value: new TextEncoder().encode(`${key}@${lastIndex}`),
  lastIndex: BigInt(lastIndex),
  ...(expiresAt === undefined ? {} : { expiresAt }),
});

function setup(signal?: AbortSignal) {
  const ended: unknown[] = [];
  return {
    ended,
    setup: {
      toPair: (e: Entry): KVPair => ({
        key: e.key.replace(/^p\//, ""),
        value: e.value,
        lastIndex: e.lastIndex,
      }),
      userKey: (full: string) => full.replace(/^p\//, ""),
      signal,
      wrapError: (error: unknown) =>
        error instanceof StoreError
          ? error
          : new StoreError(`wrapped: ${error}`),
      onEnd: (watch: unknown) => ended.push(watch),
    },
  };
}

describe("KeyWatch", () => {
  test("reports the first state, then only changes", async () => {
    const { setup: s } = setup();
    const watch = new KeyWatch(s);
    const reader = new StreamReader(watch.stream);
    watch.state(null);
    watch.state(null);
    watch.state(entry("p/k", 1));
    watch.state(entry("p/k", 1));
    watch.state(entry("p/k", 3));
    watch.state(entry("p/k", 2)); // a stale re-read
    watch.state(null);
    watch.state(entry("p/k", 5));
    const chunks = [];
    for (let i = 0; i < 5; i++) chunks.push(await reader.next(100));
    assert.deepEqual(chunks.map((c) => c?.lastIndex ?? null), [
      null,
      1n,
      3n,
      null,
      5n,
    ]);
    assert.equal(chunks[1]?.key, "k", "pairs go through toPair");
    assert.equal(await reader.maybe(50), undefined, "nothing more");
    await reader.cancel();
  });

  test("reports an expiry on time when the driver does not", async () => {
    const { setup: s } = setup();
    const watch = new KeyWatch(s);
    const reader = new StreamReader(watch.stream);
    const expiresAt = Date.now() + 80;
    watch.state(entry("p/k", 1, expiresAt));
    assert.equal((await reader.next(100))?.lastIndex, 1n);
    // Only the watch's own timer can report it: a watch without one never
    // does, so waiting the kit's event timeout tells the two apart however
    // late a loaded machine runs the timer.
    assert.equal(await reader.next(EVENT_TIMEOUT_MS), null);
    // Not before its expiry, counted from expiresAt itself (timers and
    // Date.now() may disagree by a millisecond or so).
    assert.ok(Date.now() >= expiresAt - 20, "reported before its expiry");
    watch.state(null); // the driver's late delete changes nothing
    watch.state(entry("p/k", 2, Date.now() + 10_000));
    assert.equal((await reader.next(100))?.lastIndex, 2n);
    watch.state(entry("p/k", 3)); // rewritten without TTL: no expiry timer
    assert.equal((await reader.next(100))?.lastIndex, 3n);
    await reader.cancel();
  });

  test("cancel, abort and close end the driver's feed and deregister", async () => {
    const controller = new AbortController();
    const a = setup(controller.signal);
    const aborted = new KeyWatch(a.setup);
    const reason = new Error("stop");
    controller.abort(reason);
    assert.equal(aborted.signal.aborted, true);
    assert.equal(await new StreamReader(aborted.stream).failure(100), reason);
    assert.equal(a.ended.length, 1);

    const b = setup();
    const cancelled = new KeyWatch(b.setup);
    await cancelled.stream.cancel();
    assert.equal(cancelled.signal.aborted, true);
    cancelled.state(entry("p/k", 1)); // after the end: ignored, no throw
    assert.equal(b.ended.length, 1);

    const c = setup();
    const closed = new KeyWatch(c.setup);
    closed.state(null);
    closed.close();
    const reader = new StreamReader(closed.stream);
    assert.equal(await reader.next(100), null, "queued chunks are still read");
    assert.equal(await reader.ends(100), true);
    assert.equal(closed.signal.aborted, true);
  });

  test("a driver error ends the stream with a StoreError", async () => {
    const { setup: s } = setup();
    const watch = new KeyWatch(s);
    watch.error(new Error("socket closed"));
    const error = await new StreamReader(watch.stream).failure(100);
    assert.ok(error instanceof StoreError);
    assert.match((error as Error).message, /socket closed/);
  });

  test("a reader that never reads stops the watch instead of growing", async () => {
    const { setup: s } = setup();
    const watch = new KeyWatch(s);
    for (let i = 1; i <= WATCH_BUFFER_LIMIT + 5; i++) {
      watch.state(entry("p/k", i));
    }
    assert.equal(watch.signal.aborted, true, "the driver's feed is stopped");
    const reader = new StreamReader(watch.stream);
    const error = await reader.failure(1_000);
    assert.match((error as Error).message, /fell more than/);
  });
});

describe("TreeWatch", () => {
  test("waits for the first reset, then sends sorted snapshots", async () => {
    const { setup: s } = setup();
    const watch = new TreeWatch(s);
    const reader = new StreamReader(watch.stream);
    watch.put(entry("p/b", 1)); // before reset: the reset decides
    assert.equal(await reader.maybe(30), undefined);
    watch.reset([
      entry("p/z", 2),
      entry("p/a", 1),
      entry("p/😀", 3),
      entry("p/\uffff", 4),
    ]);
    const first = await reader.next(100);
    assert.deepEqual(first.map((p) => p.key), ["a", "z", "\uffff", "😀"]);
    watch.delete("p/a");
    watch.put(entry("p/m", 5));
    assert.deepEqual((await reader.next(100)).map((p) => p.key), [
      "m",
      "z",
      "\uffff",
      "😀",
    ]);
    await reader.cancel();
  });

  test("folds what arrives while the reader is away into one snapshot", async () => {
    const { setup: s } = setup();
    const watch = new TreeWatch(s);
    const reader = new StreamReader(watch.stream);
    watch.reset([]);
    assert.deepEqual(await reader.next(100), []);
    for (let i = 0; i < 1000; i++) watch.put(entry(`p/k${i % 10}`, i + 1));
    watch.delete("p/k0");
    await new Promise((resolve) => setTimeout(resolve, 20));
    const folded = await reader.next(100);
    assert.equal(folded.length, 9);
    assert.equal(folded[0].lastIndex, 992n);
    assert.equal(await reader.maybe(50), undefined, "one snapshot, not 1001");
    await reader.cancel();
  });

  test("ignores stale puts, deletes of absent keys and unchanged resets", async () => {
    const { setup: s } = setup();
    const watch = new TreeWatch(s);
    const reader = new StreamReader(watch.stream);
    watch.reset([entry("p/a", 5)]);
    await reader.next(100);
    watch.put(entry("p/a", 4));
    watch.put(entry("p/a", 5));
    watch.delete("p/none");
    watch.reset([entry("p/a", 5)]);
    assert.equal(await reader.maybe(50), undefined);
    watch.reset([entry("p/a", 6)]);
    assert.equal((await reader.next(100))[0].lastIndex, 6n);
    await reader.cancel();
  });

  test("drops expired entries on time, one timer for the earliest", async () => {
    const { setup: s } = setup();
    const watch = new TreeWatch(s);
    const reader = new StreamReader(watch.stream);
    const now = Date.now();
    watch.reset([
      entry("p/late", 1, now + 250),
      entry("p/soon", 2, now + 60),
      entry("p/never", 3),
    ]);
    assert.equal((await reader.next(100)).length, 3);
    // Reported by the watch's timers alone (see above): the kit's event
    // timeout, not a guess at how late a loaded machine runs them.
    assert.deepEqual((await reader.next(EVENT_TIMEOUT_MS)).map((p) => p.key), [
      "late",
      "never",
    ]);
    assert.ok(Date.now() >= now + 60 - 20, "soon dropped before its expiry");
    assert.deepEqual((await reader.next(EVENT_TIMEOUT_MS)).map((p) => p.key), [
      "never",
    ]);
    assert.ok(Date.now() >= now + 250 - 20, "late dropped before its expiry");
    await reader.cancel();
  });
});

describe("EventWatch replaying history", () => {
  const shown = (event: WatchEvent) =>
    event.type === "put"
      ? `put ${event.pair.key}@${event.pair.lastIndex}`
      : event.type === "delete"
      ? `delete ${event.key}`
      : event.type === "synced"
      ? `synced ${event.lastIndex}`
      : "reset";

  test("passes on replayed changes, every delete, then a later reset as a reset", async () => {
    const { setup: s } = setup();
    const watch = new EventWatch(s, true);
    const reader = new StreamReader(watch.stream);
    watch.replaying();
    watch.put(entry("p/a", 5));
    // Never seen by this watch (unchanged before the index), yet gone.
    watch.delete("p/b");
    watch.replayed(9n);
    const events: string[] = [];
    for (let i = 0; i < 3; i++) events.push(shown(await reader.next(100)));
    assert.deepEqual(events, ["put a@5", "delete b", "synced 9"]);
    // A live delete of a key the replay did not send is passed on too.
    watch.delete("p/c");
    assert.equal(shown(await reader.next(100)), "delete c");
    // The history was lost later: the view cannot be diffed, so reset.
    watch.reset([entry("p/a", 5), entry("p/d", 11)]);
    const after: string[] = [];
    for (let i = 0; i < 4; i++) after.push(shown(await reader.next(100)));
    assert.deepEqual(after, ["reset", "put a@5", "put d@11", "synced 11"]);
    // From then on it is an ordinary watch: a delete of an unseen key is
    // nothing to pass on.
    watch.delete("p/zz");
    watch.put(entry("p/e", 12));
    assert.equal(shown(await reader.next(100)), "put e@12");
    await reader.cancel();
  });

  test("a reset instead of a replay starts with reset once", async () => {
    const { setup: s } = setup();
    const watch = new EventWatch(s, true);
    const reader = new StreamReader(watch.stream);
    watch.reset([entry("p/a", 3)]);
    const events: string[] = [];
    for (let i = 0; i < 3; i++) events.push(shown(await reader.next(100)));
    assert.deepEqual(events, ["reset", "put a@3", "synced 3"]);
    // A later re-read diffs against the view, as without fromIndex.
    watch.reset([entry("p/b", 4)]);
    const later: string[] = [];
    for (let i = 0; i < 3; i++) later.push(shown(await reader.next(100)));
    assert.deepEqual(later, ["put b@4", "delete a", "synced 4"]);
    await reader.cancel();
  });

  test("close still hands over the events reported before it", async () => {
    const { setup: s } = setup();
    const watch = new EventWatch(s, false);
    watch.reset([]);
    watch.put(entry("p/a", 1));
    watch.close();
    const reader = new StreamReader(watch.stream);
    assert.equal(shown(await reader.next(100)), "synced 0");
    assert.equal(shown(await reader.next(100)), "put a@1");
    assert.equal(await reader.ends(100), true);
  });
});

describe("watch lag", () => {
  test("each change the reader takes is reported with what still waits", async () => {
    const delivered: { lagMs: number; waiting: number }[] = [];
    const { setup: base } = setup();
    const s = {
      ...base,
      delivered: (lagMs: number, waiting: number) =>
        delivered.push({ lagMs, waiting }),
    };
    const key = new KeyWatch(s);
    key.state(null);
    key.state(entry("p/k", 1));
    key.state(entry("p/k", 2));
    const reader = new StreamReader(key.stream);
    assert.equal(await reader.next(100), null);
    // The first state is no change.
    assert.equal(delivered.length, 0);
    await reader.next(100);
    await reader.next(100);
    assert.deepEqual(delivered.map((d) => d.waiting), [1, 0]);
    assert.ok(delivered.every((d) => d.lagMs >= 0));
    await reader.cancel();

    delivered.length = 0;
    const tree = new TreeWatch(s);
    const snapshots = new StreamReader(tree.stream);
    tree.reset([entry("p/a", 1)]);
    await snapshots.next(100);
    assert.equal(delivered.length, 0, "the first tree is no change");
    tree.put(entry("p/b", 2));
    tree.put(entry("p/c", 3));
    await snapshots.next(100);
    assert.equal(delivered.length, 1, "one snapshot, one sample");
    await snapshots.cancel();

    delivered.length = 0;
    const events = new EventWatch(s, false);
    const read = new StreamReader(events.stream);
    events.reset([entry("p/a", 1)]);
    await read.next(100); // put a (the tree)
    await read.next(100); // synced
    assert.equal(delivered.length, 0, "the tree sent on sync is no change");
    events.delete("p/a");
    await read.next(100);
    assert.equal(delivered.length, 1);
    await read.cancel();
  });
});
