// The ZooKeeper backend's batch calls: a chunk of writes is one multi while
// it fits in maxBufferSize and is split where it does not, keys under many
// new parents land in one go, ttl writes are the same as put's, and parents
// a deleteMany leaves empty go.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openStore, type Store } from "../../mod.ts";
import { readConfig } from "../../backends/zookeeper/config.ts";
import { openSession } from "../../backends/zookeeper/connect.ts";
import { Nodes } from "../../backends/zookeeper/nodes.ts";
import { Paths } from "../../backends/zookeeper/paths.ts";
import type { Session } from "../../backends/zookeeper/session.ts";
import {
  startZookeeper,
  type ZookeeperService,
} from "../services/zookeeper.ts";

let server: ZookeeperService;
let store: Store;
let session: Session;
let nodes: Nodes;
const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);

describe("zookeeper batch calls", () => {
  before(async () => {
    server = await startZookeeper();
    store = await openStore(`${server.url}/bulk`);
    const config = readConfig([`127.0.0.1:${server.port}`], {
      chroot: "/bulk",
    });
    session = await openSession(config, config.sessionTimeout, undefined);
    nodes = new Nodes(session, new Paths("/bulk"), []);
  });
  after(async () => {
    await session?.close();
    await store?.close();
    await server?.stop();
  });

  test("a chunk of keys under as many new parents lands in one call", async () => {
    // One multi names only its first missing parent: made one at a time,
    // 256 parents would pass the write's 100 attempts.
    const writes = Array.from({ length: 256 }, (_, i) => ({
      key: `fan/${i}/leaf`,
      value: `v${i}`,
    }));
    const indexes = await store.putMany(writes);
    // One multi: every key has its zxid.
    assert.equal(new Set(indexes).size, 1);
    const pairs = await store.getMany(writes.map((write) => write.key));
    pairs.forEach((pair, i) => {
      assert.equal(text(pair), `v${i}`);
      assert.equal(pair!.lastIndex, indexes[i]);
    });
  });

  test("a chunk larger than maxBufferSize is split into multis that fit", async () => {
    const small = await openStore(
      `${server.url}/bulk?maxBufferSize=200000`,
    );
    try {
      const value = "x".repeat(60_000);
      const writes = Array.from({ length: 10 }, (_, i) => ({
        key: `big/${i}`,
        value: `${i}${value}`,
      }));
      const indexes = await small.putMany(writes);
      // Three values per multi at most: more than one multi, fewer than ten.
      const multis = new Set(indexes).size;
      assert.ok(multis >= 4 && multis < 10, `${multis} multis`);
      const pairs = await small.getMany(writes.map((write) => write.key));
      pairs.forEach((pair, i) => {
        assert.equal(text(pair), writes[i].value);
        assert.equal(pair!.lastIndex, indexes[i]);
      });
      await small.deleteMany(writes.map((write) => write.key));
      assert.deepEqual(await small.list("big"), []);
    } finally {
      await small.close();
    }
  });

  test("ttl writes change a key's kind as put does", async () => {
    await store.put("kind/a", "permanent");
    await store.put("kind/b", "expiring", { ttl: 60_000 });
    const indexes = await store.putMany([
      { key: "kind/a", value: "now expiring", ttl: 60_000 },
      { key: "kind/b", value: "now permanent" },
      { key: "kind/c", value: "new", ttl: 60_000 },
    ]);
    const pairs = await store.getMany(["kind/a", "kind/b", "kind/c"]);
    assert.deepEqual(pairs.map(text), ["now expiring", "now permanent", "new"]);
    assert.deepEqual(pairs.map((pair) => pair!.lastIndex), indexes);
    // The node's kind, as ZooKeeper holds it (the TTL is in its ACL).
    const ttls = await Promise.all(
      ["a", "b", "c"].map(async (name) =>
        (await nodes.read(`/bulk/kind/${name}`, false))!.ttl
      ),
    );
    assert.deepEqual(ttls, [60_000, undefined, 60_000]);
  });

  test("deleteMany keeps a deleted key's children and drops empty parents", async () => {
    await store.putMany([
      { key: "del/a", value: "a" },
      { key: "del/a/b", value: "b" },
      { key: "del/c/d/e", value: "e" },
      { key: "del/f", value: "f" },
    ]);
    await store.deleteMany(["del/a", "del/c/d/e", "del/f"]);
    assert.deepEqual((await store.list("del")).map((pair) => pair.key), [
      "del/a/b",
    ]);
    // The parents made for del/c/d/e are gone with it.
    assert.deepEqual(await nodes.children("/bulk/del"), ["a"]);
    await store.deleteMany(["del/a/b"]);
    assert.equal(await nodes.children("/bulk/del"), null);
  });
});
