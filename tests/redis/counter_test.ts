// Redis counters: increment is one script running INCRBY, so it costs one
// round trip whatever the contention, and a counter interoperates with
// redis-cli's INCRBY both ways; what INCRBY refuses (not a number, an
// overflow) is the store's InvalidArgumentError with nothing changed.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { expiresAt, type Store } from "../../mod.ts";
import { RedisStore } from "../../backends/redis/mod.ts";
import { text } from "../../testing/harness.ts";
import { redisCli, type RedisService, startRedis } from "../services/redis.ts";
import { monitored } from "./monitor.ts";

describe("redis: counters", () => {
  let redis: RedisService;
  let store: Store;

  before(async () => {
    redis = await startRedis();
    store = await RedisStore.connect({ url: redis.url });
  });

  after(async () => {
    await store?.close();
    await redis?.stop();
  });

  test("an increment is one script run, with INCRBY inside it", async () => {
    await store.increment("counter/one", 5n);
    const seen = await monitored(redis.port, async () => {
      assert.equal(await store.increment("counter/one", 2n), 7n);
    });
    const top = seen.filter((command) => !command.lua);
    assert.deepEqual(top.map((command) => command.args[0].toLowerCase()), [
      "evalsha",
    ]);
    assert.ok(
      seen.some((command) =>
        command.lua && command.args[0].toLowerCase() === "incrby"
      ),
      "INCRBY ran inside the script",
    );
  });

  test("64 concurrent increments on two handles reach the exact total, one script each", async () => {
    await using other = await RedisStore.connect({ url: redis.url });
    const seen = await monitored(redis.port, async () => {
      await Promise.all(
        Array.from(
          { length: 64 },
          (_, i) => (i % 2 ? store : other).increment("counter/race", 3n),
        ),
      );
    });
    assert.equal(text(await store.get("counter/race")), "192");
    assert.equal(seen.filter((command) => !command.lua).length, 64);
  });

  test("redis-cli INCRBY and the store count on one number, with versions that grow", async () => {
    assert.equal(await store.increment("counter/shared", 10n), 10n);
    const first = (await store.get("counter/shared"))!.lastIndex;
    assert.equal(redisCli(redis.port, ["INCRBY", "counter/shared", "5"]), "15");
    const adopted = (await store.get("counter/shared"))!.lastIndex;
    assert.ok(
      adopted > first,
      "a write behind the store's back gets a version",
    );
    assert.equal(await store.increment("counter/shared", -20n), -5n);
    assert.ok((await store.get("counter/shared"))!.lastIndex > adopted);
    assert.equal(redisCli(redis.port, ["GET", "counter/shared"]), "-5");
  });

  test("what is no counter, and overflows, are refused with nothing changed", async () => {
    redisCli(redis.port, ["SET", "counter/text", "12abc"]);
    await assert.rejects(store.increment("counter/text"), {
      name: "InvalidArgumentError",
      message: /"counter\/text" is not a counter/,
    });
    assert.equal(redisCli(redis.port, ["GET", "counter/text"]), "12abc");
    // The store's grammar, which is INCRBY's: no sign, spaces or leading 0.
    for (const refused of ["+1", " 1", "01", "-0", "1.5"]) {
      await store.put("counter/odd", refused);
      await assert.rejects(store.increment("counter/odd"), {
        name: "InvalidArgumentError",
      }, JSON.stringify(refused));
      assert.equal(text(await store.get("counter/odd")), refused);
    }
    await store.put("counter/high", "9223372036854775806");
    const before = (await store.get("counter/high"))!.lastIndex;
    assert.equal(await store.increment("counter/high"), 2n ** 63n - 1n);
    await assert.rejects(store.increment("counter/high"), {
      name: "InvalidArgumentError",
      message:
        /Adding 1 to counter "counter\/high" \(9223372036854775807\) overflows/,
    });
    assert.equal(text(await store.get("counter/high")), "9223372036854775807");
    assert.ok((await store.get("counter/high"))!.lastIndex > before);
    assert.equal(
      await store.increment("counter/high", -(2n ** 63n) + 1n),
      0n,
    );
  });

  test("a TTL is set as a put sets it, and an increment without one keeps the key", async () => {
    await store.increment("counter/brief", 1n, { ttl: 60_000 });
    const brief = (await store.get("counter/brief"))!;
    assert.ok(expiresAt(brief)! > Date.now() + 30_000);
    assert.ok(Number(redisCli(redis.port, ["PTTL", "counter/brief"])) > 30_000);
    await store.increment("counter/brief", 1n);
    assert.equal(redisCli(redis.port, ["PTTL", "counter/brief"]), "-1");
    assert.equal(text(await store.get("counter/brief")), "2");
  });

  test("a key of another Redis type counts as absent, as reads see it", async () => {
    redisCli(redis.port, ["HSET", "counter/hash", "f", "v"]);
    assert.equal(await store.get("counter/hash"), null);
    assert.equal(await store.increment("counter/hash", 4n), 4n);
    assert.equal(redisCli(redis.port, ["GET", "counter/hash"]), "4");
  });

  test("a watch hears an increment", async () => {
    const reader = store.watch("counter/heard").getReader();
    try {
      assert.equal((await reader.read()).value, null);
      await store.increment("counter/heard", 9n);
      let pair = (await reader.read()).value;
      while (pair === null) pair = (await reader.read()).value;
      assert.equal(text(pair!), "9");
    } finally {
      await reader.cancel();
    }
  });
});
