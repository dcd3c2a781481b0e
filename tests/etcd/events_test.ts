// watchEvents with fromIndex on a real etcd: the changes since are replayed
// from etcd's history (each key's net change once, deletes included, no
// unchanged key sent, no reset), live changes follow, and where the history
// is gone (compacted) or not yet there (a future index) the stream starts
// with a reset and the whole tree instead.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openStore, type Store, type WatchEvent } from "../../mod.ts";
import { show, StreamReader, text } from "../../testing/harness.ts";
import { etcdctl, type EtcdService, startEtcd } from "../services/etcd.ts";

let etcd: EtcdService;
let store: Store;

/** Reads events up to and including the next `synced`. */
async function untilSynced(
  reader: StreamReader<WatchEvent>,
): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  while (true) {
    const event = await reader.next();
    events.push(event);
    if (event.type === "synced") return events;
  }
}

/** A compact picture of events: "put k=v", "delete k", "reset", "synced". */
function picture(events: WatchEvent[]): string[] {
  return events.map((event) =>
    event.type === "put"
      ? `put ${event.pair.key}=${text(event.pair)}`
      : event.type === "delete"
      ? `delete ${event.key}`
      : event.type
  );
}

/** The synced index the tree's events reach now. */
async function syncedIndex(prefix: string): Promise<bigint> {
  const reader = new StreamReader(store.watchEvents(prefix));
  const events = await untilSynced(reader);
  await reader.cancel();
  const last = events.at(-1)!;
  assert.equal(last.type, "synced");
  return (last as { lastIndex: bigint }).lastIndex;
}

describe("etcd watchEvents resume", () => {
  before(async () => {
    etcd = await startEtcd();
    store = await openStore(etcd.url, { prefix: "events" });
  });
  after(async () => {
    await store?.close();
    await etcd?.stop();
  });

  test("replays each changed key once, deletes included, and then live changes", async () => {
    await store.put("r/a", "1");
    await store.put("r/b", "2");
    await store.put("r/c", "3");
    const from = await syncedIndex("r");
    await store.put("r/a", "changed");
    await store.put("r/a", "changed twice");
    await store.delete("r/b");
    await store.put("r/d", "4");
    const reader = new StreamReader(
      store.watchEvents("r", { fromIndex: from }),
    );
    const events = await untilSynced(reader);
    // r/c did not change: it is not sent; r/a's last value only.
    assert.deepEqual(
      picture(events),
      ["put r/a=changed twice", "delete r/b", "put r/d=4", "synced"],
      show(events),
    );
    const synced = events.at(-1) as { lastIndex: bigint };
    assert.equal(synced.lastIndex, (await store.get("r/d"))!.lastIndex);
    // A live delete of a key the replay never sent is still passed on.
    await store.delete("r/c");
    assert.deepEqual(picture([await reader.next()]), ["delete r/c"]);
    await reader.cancel();
  });

  test("nothing changed: only synced", async () => {
    await store.put("n/a", "1");
    const from = await syncedIndex("n");
    const reader = new StreamReader(
      store.watchEvents("n", { fromIndex: from }),
    );
    assert.deepEqual(picture(await untilSynced(reader)), ["synced"]);
    await reader.cancel();
  });

  test("fromIndex 0 replays the whole tree as puts, without a reset", async () => {
    await store.put("z/a", "1");
    await store.put("z/b", "2");
    const reader = new StreamReader(store.watchEvents("z", { fromIndex: 0n }));
    assert.deepEqual(picture(await untilSynced(reader)), [
      "put z/a=1",
      "put z/b=2",
      "synced",
    ]);
    await reader.cancel();
  });

  test("history compacted away: reset, then the tree", async () => {
    await store.put("c/a", "1");
    await store.put("c/b", "2");
    const from = await syncedIndex("c");
    await store.delete("c/a");
    const latest = await store.put("c/b", "3");
    etcdctl(etcd.endpoint, ["compact", String(latest)]);
    const reader = new StreamReader(
      store.watchEvents("c", { fromIndex: from }),
    );
    assert.deepEqual(picture(await untilSynced(reader)), [
      "reset",
      "put c/b=3",
      "synced",
    ]);
    await reader.cancel();
  });

  test("an index etcd has not reached: reset, then the tree", async () => {
    await store.put("f/a", "1");
    const from = (await syncedIndex("f")) + 1_000_000n;
    const reader = new StreamReader(
      store.watchEvents("f", { fromIndex: from }),
    );
    assert.deepEqual(picture(await untilSynced(reader)), [
      "reset",
      "put f/a=1",
      "synced",
    ]);
    await reader.cancel();
  });

  test("a replay longer than one value transaction keeps key order", async () => {
    const from = await syncedIndex("m");
    const keys = Array.from(
      { length: 300 },
      (_, i) => `m/${String(i).padStart(3, "0")}`,
    );
    await store.putMany(keys.map((key) => ({ key, value: key })));
    await store.deleteMany(keys.filter((_, i) => i % 7 === 0));
    const reader = new StreamReader(
      store.watchEvents("m", { fromIndex: from }),
    );
    const events = await untilSynced(reader);
    // Keys deleted after being created since `from` were never in the tree
    // at `from`: neither a put nor a delete is owed for them.
    assert.deepEqual(
      picture(events),
      [
        ...keys.filter((_, i) => i % 7 !== 0).map((key) => `put ${key}=${key}`),
        "synced",
      ],
    );
    await reader.cancel();
  });
});
