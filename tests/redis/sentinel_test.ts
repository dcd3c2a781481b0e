// The Redis store behind Sentinel: one master, one replica and three
// sentinels on loopback. The master is killed; the store follows the
// failover to the promoted replica, the writes acknowledged and replicated
// before the kill are still there, watches resume, and a held lock is either
// kept or reported lost.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Lock, Store } from "../../mod.ts";
import { RedisStore } from "../../backends/redis/mod.ts";
import {
  redisCli,
  type RedisService,
  type SentinelGroup,
  type SentinelService,
  startSentinelGroup,
} from "../services/redis.ts";
import { StreamReader, text } from "../../testing/harness.ts";

const MASTER = "kit-master";
/** Sentinel's own timings, short so that a failover takes seconds. */
const DOWN_AFTER_MS = 1_000;
const FAILOVER_TIMEOUT_MS = 3_000;
/** How long the whole failover may take on a loaded machine. */
const FAILOVER_BOUND_MS = 30_000;
const LOCK_TTL_MS = 3_000;

describe("redis: Sentinel failover", () => {
  let group: SentinelGroup;
  let master: RedisService;
  let replica: RedisService;
  let sentinels: readonly SentinelService[];

  before(async () => {
    group = await startSentinelGroup({
      master: MASTER,
      downAfterMs: DOWN_AFTER_MS,
      failoverTimeoutMs: FAILOVER_TIMEOUT_MS,
    });
    ({ master, replica, sentinels } = group);
  });

  after(async () => {
    await group?.stop();
  });

  test("the store carries on after the master dies", async () => {
    const url = group.url;
    const store: Store = await RedisStore.connect({ url });
    const other: Store = await RedisStore.connect({ url });
    try {
      for (let i = 0; i < 5; i++) await store.put(`acked/${i}`, `value ${i}`);
      const before = await store.list("acked");
      // Acknowledged by the replica too.
      assert.equal(redisCli(master.port, ["WAIT", "1", "5000"]), "1");

      const key = new StreamReader(store.watch("failover/watched"));
      const tree = new StreamReader(store.watchTree("failover"));
      assert.equal(await key.next(), null);
      assert.deepEqual(await tree.next(), []);
      const lock: Lock = await store.lock("held/lock", {
        value: "holder",
        ttl: LOCK_TTL_MS,
      });
      // The lock's bookkeeping reached the replica as well.
      assert.equal(redisCli(master.port, ["WAIT", "1", "5000"]), "1");

      const killed = Date.now();
      await master.kill();
      // Writes wait for the new master, then succeed.
      await store.put("failover/watched", "after failover", {
        signal: AbortSignal.timeout(FAILOVER_BOUND_MS),
      });
      const tookMs = Date.now() - killed;
      const promoted = redisCli(sentinels[0].port, [
        "SENTINEL",
        "GET-MASTER-ADDR-BY-NAME",
        MASTER,
      ]).split("\n");
      assert.equal(promoted[1], String(replica.port), "the replica leads");
      console.log(`failover: writes resumed ${tookMs} ms after the kill`);

      assert.deepEqual(await store.list("acked"), before, "acked writes kept");
      assert.equal(
        text(await key.until((p) => p !== null, FAILOVER_BOUND_MS)),
        "after failover",
        "the key watch resumed",
      );
      const snapshot = await tree.until(
        (pairs) => pairs.length === 1,
        FAILOVER_BOUND_MS,
      );
      assert.equal(snapshot[0].key, "failover/watched", "the tree resumed");
      await store.put("failover/watched", "later");
      assert.equal(
        text(await key.next()),
        "later",
        "and goes on hearing changes",
      );

      // Past its TTL the lock is either still held (renewed on the new
      // master) or reported lost; never both, never neither.
      await new Promise((resolve) => setTimeout(resolve, LOCK_TTL_MS + 500));
      if (lock.lost.aborted) {
        console.log("failover: the held lock was reported lost");
        await (await other.lock("held/lock", {
          signal: AbortSignal.timeout(LOCK_TTL_MS * 2),
        })).unlock();
      } else {
        console.log("failover: the held lock was kept");
        await assert.rejects(
          other.lock("held/lock", { signal: AbortSignal.timeout(500) }),
          (error: Error) => error.name === "TimeoutError",
        );
        assert.equal(text(await other.get("held/lock")), "holder");
        await lock.unlock();
      }
      await key.cancel();
      await tree.cancel();
    } finally {
      await store.close();
      await other.close();
    }
  });
});
