// The unstorage driver, through unstorage's own createStorage: items, raw
// items, keys, clear, TTL, mounts and watch.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createStorage } from "unstorage";
import { valkeyrieDriver } from "../../adapters/unstorage/mod.ts";
import { openStore } from "../../mod.ts";

const until = async (check: () => boolean, ms = 5_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe("unstorage driver", () => {
  test("stores items at /-separated keys under the base, values as given", async () => {
    await using store = await openStore("memory:");
    const driver = valkeyrieDriver({ store, base: "app" });
    const storage = createStorage({ driver });
    await storage.setItem("config:db:host", "10.0.0.5");
    await storage.setItem("config:db:port", 5432);
    await storage.setItem("flags", { dark: true });
    assert.equal(await storage.getItem("config:db:host"), "10.0.0.5");
    assert.equal(await storage.getItem("config/db/port"), 5432);
    assert.deepEqual(await storage.getItem("flags"), { dark: true });
    assert.equal(await storage.hasItem("config:db:host"), true);
    assert.equal(await storage.getItem("missing"), null);
    assert.deepEqual((await store.list("")).map((p) => p.key), [
      "app/config/db/host",
      "app/config/db/port",
      "app/flags",
    ]);
    assert.deepEqual((await storage.getKeys("config")).sort(), [
      "config:db:host",
      "config:db:port",
    ]);
    assert.deepEqual(await storage.getKeys("config", { maxDepth: 1 }), []);
    await storage.removeItem("flags");
    assert.equal(await storage.hasItem("flags"), false);
    await storage.setItem("other", "x");
    // unstorage's clear(base) reaches only mounts under base: ask the driver.
    await driver.clear("config");
    assert.deepEqual(await storage.getKeys(""), ["other"]);
    await storage.clear();
    assert.deepEqual(await store.list(""), []);
  });

  test("keeps raw items as bytes and escapes odd segments", async () => {
    await using store = await openStore("memory:");
    const storage = createStorage({ driver: valkeyrieDriver({ store }) });
    await storage.setItemRaw("bin:.hidden:50%", new Uint8Array([0, 1, 255]));
    assert.deepEqual(
      await storage.getItemRaw("bin:.hidden:50%"),
      new Uint8Array([0, 1, 255]),
    );
    assert.deepEqual((await store.list("")).map((p) => p.key), [
      "bin/%2Ehidden/50%25",
    ]);
    assert.deepEqual(await storage.getKeys(), ["bin:.hidden:50%"]);
  });

  test("honours a ttl in seconds", async () => {
    await using store = await openStore("memory:");
    const storage = createStorage({ driver: valkeyrieDriver({ store }) });
    // A second: the read right after the write cannot be late for it on a
    // loaded machine; the one after the sleep (which load only lengthens)
    // comes past it and the memory store's 50 ms granularity.
    await storage.setItem("short", "v", { ttl: 1 });
    assert.equal(await storage.getItem("short"), "v");
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    assert.equal(await storage.getItem("short"), null);
  });

  test("watch reports updates and removals, also of another handle's writes", async () => {
    await using store = await openStore("memory:unstorage-watch");
    await using other = await openStore("memory:unstorage-watch");
    const storage = createStorage({
      driver: valkeyrieDriver({ store, base: "w" }),
    });
    const events: string[] = [];
    const unwatch = await storage.watch((event, key) =>
      events.push(`${event} ${key}`)
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    await other.put("w/a/b", "1");
    await until(() => events.length === 1);
    await other.put("w/a/b", "2");
    await until(() => events.length === 2);
    await other.delete("w/a/b");
    await until(() => events.length === 3);
    await other.put("elsewhere", "not under the base");
    assert.deepEqual(events, ["update a:b", "update a:b", "remove a:b"]);
    await unwatch();
    await other.put("w/after", "x");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(events.length, 3);
  });

  test("opens and disposes a store given by URL", async () => {
    const driver = valkeyrieDriver({ store: "memory:unstorage-url" });
    const storage = createStorage({ driver });
    await storage.setItem("k", "v");
    const store = await driver.getInstance();
    assert.equal(await store.exists("k"), true);
    await storage.dispose();
    await assert.rejects(store.get("k"), { name: "StoreClosedError" });
  });

  test("wrong options fail when the driver is made, naming the option", async () => {
    await using store = await openStore("memory:");
    const bad: [unknown, RegExp][] = [
      [undefined, /takes an options object/],
      [{}, /store must be a Store or a store URL/],
      [{ store: 42 }, /store must be a Store or a store URL.*number 42/],
      [{ store: {} }, /an object without a store's calls/],
      [{ store: "not a url" }, /valkeyrieDriver: store: /],
      [{ store, base: 1 }, /base must be a string/],
      [{ store, ttl: 0 }, /ttl must be a positive number of seconds/],
      [{ store, ttl: "60" }, /ttl must be a positive number/],
      [{ store, ttl: Infinity }, /ttl must be a positive number/],
      [{ store, openOptions: {} }, /openOptions apply to a store URL/],
      [{ store: "memory:", openOptions: 3 }, /openOptions must be an object/],
      [{ store, bsae: "x" }, /unknown option "bsae"/],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => valkeyrieDriver(options as never),
        { name: "InvalidConfigurationError", message },
        JSON.stringify(options),
      );
    }
    // Nothing was written by the refused ones.
    assert.deepEqual(await store.list(""), []);
  });
});
