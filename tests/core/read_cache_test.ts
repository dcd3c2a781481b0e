// store.cacheReads (core/read_cache.ts): reads with consistent: false under
// the cached tree are served from memory (no driver call: no trace), kept
// current by the tree feed (another handle's writes, deletes and expiries),
// in the same order and bounds as the server's; consistent reads and other
// trees still go to the server; close() and closing the store stop it; and
// on etcd a dropped connection drops the cache until it is whole again.
import assert from "node:assert/strict";
import { tracingChannel } from "node:diagnostics_channel";
import { after, before, describe, test } from "node:test";
import {
  InvalidKeyError,
  NotReachableError,
  openStore,
  StoreClosedError,
} from "../../mod.ts";
import { eventually, text } from "../../testing/harness.ts";
import { type EtcdService, startEtcd } from "../services/etcd.ts";
import { startTcpProxy, type TcpProxy } from "../services/tcp_proxy.ts";

/** Counts the backend calls of one operation (its traces). */
function calls(operation: string) {
  let count = 0;
  const handlers = {
    start: () => count++,
    end() {},
    asyncStart() {},
    asyncEnd() {},
    error() {},
  };
  const channel = tracingChannel(`valkeyrie:${operation}`);
  channel.subscribe(handlers);
  return {
    get count() {
      return count;
    },
    stop: () => channel.unsubscribe(handlers),
  };
}

const fast = { consistent: false } as const;

describe("cacheReads on memory:", () => {
  test("cached reads make no backend call and follow another handle's writes", async () => {
    await using a = await openStore("memory:read-cache-1");
    await using b = await openStore("memory:read-cache-1");
    await b.put("c/x", "1");
    await b.put("c/y", "2");
    await b.put("other/z", "3");
    await using _cache = await a.cacheReads("c");
    const gets = calls("get");
    const lists = calls("list");
    try {
      assert.equal(text(await a.get("c/x", fast)), "1");
      assert.equal(await a.exists("c/nope", fast), false);
      assert.deepEqual((await a.list("c", fast)).map(text), ["1", "2"]);
      assert.equal(gets.count, 0);
      assert.equal(lists.count, 0);
      // Consistent reads, and reads of another tree, still go to the server.
      assert.equal(text(await a.get("c/x")), "1");
      assert.equal(text(await a.get("other/z", fast)), "3");
      assert.equal(gets.count, 2);
      await b.put("c/x", "changed");
      await b.delete("c/y");
      await b.put("c/new", "n");
      await eventually(
        "the changes reach the cache",
        5_000,
        async () =>
          text(await a.get("c/x", fast)) === "changed" &&
          !(await a.exists("c/y", fast)) &&
          text(await a.get("c/new", fast)) === "n",
      );
      assert.equal(gets.count, 2);
      // The pair's version is the server's.
      assert.equal(
        (await a.get("c/x", fast))!.lastIndex,
        (await a.get("c/x"))!.lastIndex,
      );
    } finally {
      gets.stop();
      lists.stop();
    }
  });

  test("scans from the cache keep order, bounds, reverse and cursors", async () => {
    await using store = await openStore("memory:read-cache-2");
    const keys = ["s/a", "s/a-c", "s/a/b", "s/b", "s/😀", "s/\uffff"];
    for (const key of keys) await store.put(key, key);
    await using _cache = await store.cacheReads("s");
    const scans = calls("scan");
    try {
      for (
        const options of [{}, { reverse: true }, { start: "s/a-c", end: "s/b" }]
      ) {
        const fromServer = [];
        for await (const p of store.scan("s", { ...options, batchSize: 2 })) {
          fromServer.push(p.key);
        }
        const before = scans.count;
        const fromCache = [];
        for await (
          const p of store.scan("s", { ...options, ...fast, batchSize: 2 })
        ) {
          fromCache.push(p.key);
        }
        assert.deepEqual(fromCache, fromServer, JSON.stringify(options));
        assert.equal(scans.count, before, "no backend call");
      }
    } finally {
      scans.stop();
    }
  });

  test("an expired key is gone from the cache at its TTL", async () => {
    await using store = await openStore("memory:read-cache-3");
    await using _cache = await store.cacheReads("");
    await store.put("t/short", "x", { ttl: 200 });
    await eventually(
      "cached",
      5_000,
      async () => (await store.get("t/short", fast)) !== null,
    );
    await eventually(
      "expired",
      5_000,
      async () => (await store.get("t/short", fast)) === null,
    );
  });

  test("close() and closing the store stop it; bad prefixes are refused", async () => {
    const store = await openStore("memory:read-cache-4");
    await store.put("k/a", "1");
    const cache = await store.cacheReads("k");
    await cache.close();
    const gets = calls("get");
    try {
      await store.get("k/a", fast);
      assert.equal(gets.count, 1, "served by the server again");
    } finally {
      gets.stop();
    }
    await assert.rejects(store.cacheReads("a//b"), InvalidKeyError);
    await store.cacheReads("k");
    await store.close();
    await assert.rejects(store.get("k/a", fast), StoreClosedError);
  });
});

describe("cacheReads on etcd, through a proxy that cuts the link", () => {
  let etcd: EtcdService;
  let proxy: TcpProxy;
  before(async () => {
    etcd = await startEtcd();
    proxy = await startTcpProxy(etcd.port);
  });
  after(async () => {
    await proxy?.close();
    await etcd?.stop();
  });

  test("a dropped connection drops the cache: nothing stale is served, and it comes back whole", async () => {
    await using store = await openStore(`etcd://127.0.0.1:${proxy.port}`, {
      requestTimeout: 1_000,
    });
    await using direct = await openStore(etcd.url);
    await direct.put("cut/k", "before");
    await using _cache = await store.cacheReads("cut");
    assert.equal(text(await store.get("cut/k", fast)), "before");
    await proxy.cut();
    await direct.put("cut/k", "while cut");
    // The cache knows its feed is down: the read goes to the server, which
    // cannot be reached, rather than answering "before".
    await eventually("the cache is dropped", 10_000, async () => {
      const read = await store.get("cut/k", fast).then(
        (pair) => text(pair),
        (error) => error,
      );
      if (read === "before") return false;
      assert.ok(read instanceof NotReachableError, String(read));
      return true;
    });
    await proxy.resume();
    await eventually(
      "cached again, current",
      30_000,
      async () =>
        text(await store.get("cut/k", fast).catch(() => null)) === "while cut",
    );
    const gets = calls("get");
    try {
      await eventually("served from memory again", 30_000, async () => {
        const before = gets.count;
        await store.get("cut/k", fast);
        return gets.count === before;
      });
    } finally {
      gets.stop();
    }
  });
});
