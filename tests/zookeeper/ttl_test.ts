// Keys with a ttl on ZooKeeper: TTL znodes, expired for readers at their
// ttl (the ttl is read from the node's ACL), deleted by the server later,
// and what ZooKeeper cannot do with them.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { InvalidArgumentError, openStore, StoreError } from "../../mod.ts";
import {
  startZookeeper,
  zkCli,
  type ZookeeperService,
} from "../services/zookeeper.ts";
import { lateBound } from "../../testing/harness.ts";

const text = (pair: { value: Uint8Array } | null) =>
  pair === null ? null : new TextDecoder().decode(pair.value);

describe("zookeeper ttl keys", () => {
  // ZooKeeper's own container check interval: expired nodes stay a minute.
  let lazy: ZookeeperService;
  let withoutTtl: ZookeeperService;

  before(async () => {
    [lazy, withoutTtl] = await Promise.all([
      startZookeeper({ containerCheckIntervalMs: 60_000 }),
      startZookeeper({ extendedTypes: false }),
    ]);
  });
  after(async () => {
    await Promise.all([lazy?.stop(), withoutTtl?.stop()]);
  });

  test("readers see a ttl key expire at its ttl, before ZooKeeper deletes it", async () => {
    await using writer = await openStore(`${lazy.url}/expiry`);
    await using reader = await openStore(`${lazy.url}/expiry`);
    const watch = reader.watch("k").getReader();
    assert.equal((await watch.read()).value, null);
    const ttl = 800;
    const started = Date.now();
    await writer.put("k", "soon gone", { ttl });
    const written = Date.now();
    assert.equal(text((await watch.read()).value!), "soon gone");
    const seen = text(await reader.get("k"));
    // Readable until its ttl; a read a loaded machine ran later proves
    // nothing.
    assert.ok(
      seen === "soon gone" || (seen === null && Date.now() - started >= 750),
      `read ${seen}`,
    );
    // The reader's own timer reports the expiry at the ttl: ZooKeeper
    // deletes the node only at its next container check, a minute away
    // (the node is still there below), and even ttl + a 2 s tick would be
    // later than the ttl with the kit's headroom for a late timer.
    const bound = lateBound(ttl);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = await Promise.race([
      watch.read().then((result) => result.value),
      new Promise((resolve) => {
        timer = setTimeout(resolve, bound, "still there");
      }),
    ]);
    clearTimeout(timer);
    assert.equal(
      expired,
      null,
      `the watch hears the expiry within ${bound} ms`,
    );
    // Not before its ttl (a lower bound, which load only raises).
    const took = Date.now() - started;
    assert.ok(took >= ttl - 50, `expired after ${took} ms`);
    const late = Date.now() - written;
    assert.ok(late < bound, `heard ${late} ms after the put (bound ${bound})`);
    assert.equal(await reader.get("k"), null);
    assert.deepEqual(await reader.list(""), []);
    // The node is still there until the container manager runs.
    assert.match(zkCli(lazy.port, "ls", "/expiry"), /\[k\]/);
    // A put without a ttl over it makes a permanent key.
    await writer.put("k", "back for good");
    assert.equal(text((await watch.read()).value!), "back for good");
    assert.doesNotMatch(zkCli(lazy.port, "getAcl", "/expiry/k"), /ttl/);
    await watch.cancel();
  });

  test("a ttl cannot be given to a key that has children", async () => {
    await using store = await openStore(`${lazy.url}/children`);
    await store.put("parent", "p");
    await store.put("parent/child", "c");
    await assert.rejects(
      store.put("parent", "with ttl", { ttl: 5_000 }),
      (error: Error) =>
        error instanceof StoreError && /has children/.test(error.message),
    );
    const pair = await store.get("parent");
    await assert.rejects(
      store.atomicPut("parent", "with ttl", pair, { ttl: 5_000 }),
      /has children/,
    );
    assert.equal(text(await store.get("parent")), "p");
  });

  test("a ttl key that got children cannot be made permanent", async () => {
    await using store = await openStore(`${lazy.url}/children`);
    await store.put("short", "s", { ttl: 60_000 });
    await store.put("short/child", "c");
    await assert.rejects(store.put("short", "forever"), /permanent/);
    assert.equal(text(await store.get("short")), "s");
  });

  test("a ttl longer than ZooKeeper can hold is refused before any write", async () => {
    await using store = await openStore(`${lazy.url}/long`);
    await assert.rejects(
      store.put("k", "v", { ttl: 2 ** 41 }),
      InvalidArgumentError,
    );
    assert.equal(await store.exists("k"), false);
  });

  test("a server without TTL nodes refuses a ttl and says how to enable them", async () => {
    await using store = await openStore(`${withoutTtl.url}/plain`);
    await store.put("kept", "permanent keys work");
    for (
      const write of [
        () => store.put("k", "v", { ttl: 1_000 }),
        () => store.atomicPut("k", "v", null, { ttl: 1_000 }),
        () => store.atomic().put("k", "v", { ttl: 1_000 }).commit(),
      ]
    ) {
      await assert.rejects(write, /extendedTypesEnabled=true/);
    }
    assert.equal(await store.exists("k"), false);
    assert.equal(text(await store.get("kept")), "permanent keys work");
    // Locks need no TTL nodes.
    const lock = await store.lock("lock", { ttl: 2_000 });
    await lock.unlock();
  });
});
