// waitReplicas: a write is acknowledged only once the replicas have it
// (Redis's WAIT after each write). A master with one replica on loopback;
// the replica is paused (SIGSTOP) to play one that does not confirm.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { InvalidConfigurationError, openStore, StoreError } from "../../mod.ts";
import {
  redisCli,
  type RedisService,
  startRedis,
  startReplica,
} from "../services/redis.ts";

/** How long a write waits for the replica in these tests. */
const WAIT_MS = 200;

describe("redis: writes that wait for replicas (waitReplicas)", () => {
  let master: RedisService;
  let replica: RedisService;

  before(async () => {
    master = await startRedis();
    replica = await startReplica(master.port);
  });

  after(async () => {
    replica?.resume();
    await Promise.all([replica?.stop(), master?.stop()]);
  });

  test("every kind of write waits for the replica, and is there when acknowledged", async () => {
    await using store = await openStore(master.url, {
      waitReplicas: 1,
      waitTimeout: 5_000,
      prefix: "wait",
    });
    await store.put("a", "1");
    await store.putMany([{ key: "b", value: "2" }, { key: "c", value: "3" }]);
    await store.increment("n", 5n);
    await store.atomic().put("d", "4").delete("c").commit();
    await store.delete("b");
    const lock = await store.lock("held", { value: "me" });
    // Acknowledged means the replica has it, without waiting for it.
    const on = (key: string) => redisCli(replica.port, ["GET", `wait/${key}`]);
    assert.equal(on("a"), "1");
    assert.equal(on("b"), "");
    assert.equal(on("c"), "");
    assert.equal(on("d"), "4");
    assert.equal(on("n"), "5");
    assert.equal(on("held"), "me");
    await lock.unlock();
    await store.deleteTree("");
    assert.equal(on("a"), "");
  });

  test("a write the replica does not confirm fails, saying it was applied on the master", async () => {
    await using waiting = await openStore(master.url, {
      waitReplicas: 1,
      waitTimeout: WAIT_MS,
      prefix: "unconfirmed",
    });
    await using plain = await openStore(master.url, { prefix: "unconfirmed" });
    replica.pause();
    try {
      const error = await waiting.put("k", "v").then(() => undefined, (e) => e);
      assert.ok(error instanceof StoreError, String(error));
      assert.match(error.message, /applied on the Redis master/);
      assert.match(error.message, /0 of the 1 replicas/);
      assert.match(error.message, new RegExp(`${WAIT_MS} ms`));
      // It was applied: the master has it.
      assert.equal(redisCli(master.port, ["GET", "unconfirmed/k"]), "v");
      // A store without waitReplicas is not held up by the replica.
      await plain.put("other", "x");

      // A lock the replica does not confirm is given back.
      const failed = await waiting.lock("mutex", { value: "w" }).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(failed instanceof StoreError, String(failed));
      assert.match(failed.message, /lock was applied on the Redis master/);
      const taken = await plain.tryLock("mutex", { value: "p" });
      assert.ok(taken, "the unconfirmed lock was released");
      await taken.unlock();
    } finally {
      replica.resume();
    }
    // With the replica back, the same store's writes are confirmed again.
    await waiting.put("k", "again");
    assert.equal(redisCli(replica.port, ["GET", "unconfirmed/k"]), "again");
  });

  test("bad waitReplicas settings are refused before connecting", async () => {
    for (
      const [options, message] of [
        [{ waitReplicas: 0 }, /"waitReplicas" must be a positive whole number/],
        [
          { waitReplicas: 1.5 },
          /"waitReplicas" must be a positive whole number/,
        ],
        [{ waitReplicas: "two" }, /waitReplicas/],
        [{ waitTimeout: 100 }, /"waitTimeout" needs "waitReplicas"/],
        [
          { waitReplicas: 1, waitTimeout: 2 ** 31 },
          /"waitTimeout" must be a positive whole number of milliseconds/,
        ],
      ] as const
    ) {
      const error = await openStore(master.url, options).then(
        () => undefined,
        (e) => e,
      );
      assert.ok(error instanceof InvalidConfigurationError, String(error));
      assert.match(error.message, message);
    }
  });
});
