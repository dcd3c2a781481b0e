// What the ZooKeeper backend stores is what other ZooKeeper clients see:
// zkCli.sh reads the values at the keys' paths, its nodes are keys of the
// store, and the backend's own parents and bookkeeping are told apart.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { openStore, type Store } from "../../mod.ts";
import {
  startZookeeper,
  zkCli,
  zkCliAsync,
  type ZookeeperService,
} from "../services/zookeeper.ts";
import { waitUntil } from "../services/process.ts";

let server: ZookeeperService;
let store: Store;
const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);
const cli = (...command: string[]) => zkCli(server.port, ...command);
/** The TTL of the expiry tests' nodes. */
const TTL_MS = 4_000;
/** ZooKeeper deletes an expired TTL node within this (its check runs every 100 ms here). */
const DELETED_WITHIN_MS = TTL_MS + 10_000;

describe("zookeeper interop with zkCli.sh", () => {
  before(async () => {
    server = await startZookeeper();
    store = await openStore(`${server.url}/interop`);
  });
  after(async () => {
    await store?.close();
    await server?.stop();
  });

  test("a value put by the store is the znode's data at the key's path", async () => {
    await store.put("app/config/db", "host=10.0.0.5");
    assert.equal(cli("get", "/interop/app/config/db"), "host=10.0.0.5");
    const pair = await store.get("app/config/db");
    const stat = cli("stat", "/interop/app/config/db");
    assert.match(
      stat,
      new RegExp(`mZxid = 0x${pair!.lastIndex.toString(16)}\\b`),
    );
  });

  test("a znode created by zkCli is a key, and one without data is a parent", async () => {
    cli("create", "/interop/made", "by zkCli");
    cli("create", "/interop/made/dir");
    cli("create", "/interop/made/dir/leaf", "leaf");
    assert.equal(text(await store.get("made")), "by zkCli");
    assert.equal(await store.exists("made/dir"), false);
    assert.deepEqual(
      (await store.list("made")).map((pair) => pair.key),
      ["made/dir/leaf"],
    );
  });

  test("parents the store creates have null data; an empty value is empty", async () => {
    await store.put("deep/a/b", "leaf");
    assert.equal(cli("get", "/interop/deep"), "null");
    assert.equal(await store.exists("deep"), false);
    await store.put("deep", "");
    assert.equal(cli("get", "/interop/deep"), "");
    assert.equal(text(await store.get("deep")), "");
    // Deleting the leaf removes the parent that only held it, not the key.
    await store.delete("deep/a/b");
    assert.equal(cli("ls", "/interop/deep"), "[]");
    // Deleting a key with children keeps its node as a parent.
    await store.put("deep/c", "c");
    await store.delete("deep");
    assert.equal(cli("get", "/interop/deep"), "null");
    assert.equal(text(await store.get("deep/c")), "c");
  });

  test("only characters ZooKeeper forbids are escaped, and the escape itself", async () => {
    const names = ["plain ~!*", "emoji😀", "\ufb01", "currency¤", "café"];
    for (const name of names) await store.put(`names/${name}`, name);
    assert.equal(
      cli("ls", "/interop/names"),
      "[café, currency¤A4;, emoji¤1F600;, plain ~!*, \ufb01]",
    );
    assert.equal(cli("get", "/interop/names/emoji¤1F600;"), "emoji😀");
    assert.deepEqual(
      new Set((await store.list("names")).map((pair) => pair.key)),
      new Set(names.map((name) => `names/${name}`)),
    );
  });

  test("a zkCli node whose name is not an escape the store makes is not a key", async () => {
    cli("create", "/interop/odd");
    cli("create", "/interop/odd/a¤b", "x");
    cli("create", "/interop/odd/fine", "y");
    assert.deepEqual(
      (await store.list("odd")).map((pair) => pair.key),
      ["odd/fine"],
    );
  });

  test("at the root of ZooKeeper's tree, `zookeeper` is ZooKeeper's own", async () => {
    await using top = await openStore(server.url);
    await top.put("zookeeper/mine", "mine");
    assert.equal(cli("get", "/¤7A;ookeeper/mine"), "mine");
    assert.equal(text(await top.get("zookeeper/mine")), "mine");
    const keys = (await top.list("")).map((pair) => pair.key);
    assert.ok(keys.includes("zookeeper/mine"));
    assert.ok(!keys.some((key) => key.startsWith("zookeeper/quota")));
    await top.deleteTree("zookeeper");
    assert.match(
      cli("ls", "/zookeeper"),
      /config/,
      "ZooKeeper's node is intact",
    );
  });

  test("a ttl key is a TTL znode whose ACL records its ttl", async () => {
    await store.put("ttl/kept", "v", { ttl: 60_000 });
    const acl = cli("getAcl", "/interop/ttl/kept");
    assert.match(acl, /'digest,'valkeyrie-ttl:60000\n: ($|\n)/);
    assert.match(acl, /'world,'anyone\n: cdrwa/);
    await store.put("ttl/kept", "now permanent");
    assert.doesNotMatch(cli("getAcl", "/interop/ttl/kept"), /valkeyrie-ttl/);
  });

  // TTLs of seconds: zkCli is a JVM that can take over a second to start
  // and to exit on a loaded machine, and the node must outlive it.
  test("ZooKeeper deletes an expired ttl key itself", async () => {
    await store.put("ttl/gone", "v", { ttl: TTL_MS });
    assert.match(cli("ls", "/interop/ttl"), /gone/);
    await waitUntil(
      "the expired key's znode deleted",
      DELETED_WITHIN_MS,
      () => !/gone/.test(cli("ls", "/interop/ttl")),
    );
    assert.equal(await store.get("ttl/gone"), null);
  });

  test("a TTL node zkCli made is readable until ZooKeeper deletes it", async () => {
    cli("create", "-t", String(TTL_MS), "/interop/foreign", "v");
    assert.equal(text(await store.get("foreign")), "v");
    await waitUntil(
      "zkCli's TTL node deleted",
      DELETED_WITHIN_MS,
      async () => (await store.get("foreign")) === null,
    );
    assert.doesNotMatch(cli("ls", "/interop"), /foreign/);
  });

  test("lock contenders live in a hidden container node that goes once unused", async () => {
    const lock = await store.lock("jobs/nightly", { value: "holder" });
    // zkCli runs without blocking this process's event loop here: its JVM
    // takes seconds to start on a loaded machine, and the lock's session
    // (with its contender node) must be kept alive meanwhile.
    assert.equal(
      await zkCliAsync(server.port, "get", "/interop/jobs/nightly"),
      "holder",
    );
    assert.match(
      await zkCliAsync(server.port, "ls", "/interop/¤locks/jobs¤2F;nightly"),
      /^\[lock-/,
    );
    assert.ok(
      !(await store.list("")).some((pair) => pair.key.includes("locks")),
    );
    await lock.unlock();
    // ZooKeeper's container manager (every 100 ms here) removes it.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.doesNotMatch(cli("ls", "/interop"), /¤locks/);
  });
});
