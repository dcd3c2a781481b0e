// Watches and lock waits of the Redis store live on keyspace notifications:
// the store turns them on when it may, says exactly what to configure when
// it may not, checks them with a probe when it cannot read the setting, and
// resumes (re-reading what it missed) when its notification connection is
// killed.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { StoreError } from "../../mod.ts";
import { RedisStore } from "../../backends/redis/mod.ts";
import { redisCli, type RedisService, startRedis } from "../services/redis.ts";
import { StreamReader, text } from "../../testing/harness.ts";

/** Creates an ACL user that may do everything but CONFIG. */
function userWithoutConfig(port: number, name: string): void {
  redisCli(port, [
    "ACL",
    "SETUSER",
    name,
    "on",
    ">secret",
    "~*",
    "&*",
    "+@all",
    "-config",
  ]);
}

describe("redis: keyspace notifications", () => {
  let redis: RedisService;

  before(async () => {
    redis = await startRedis();
  });

  after(async () => {
    await redis?.stop();
  });

  test("a watch turns the server's notifications on, keeping what was on", async () => {
    redisCli(redis.port, ["CONFIG", "SET", "notify-keyspace-events", "El"]);
    await using store = await RedisStore.connect({ url: redis.url });
    const watch = new StreamReader(store.watch("on/key"));
    assert.equal(await watch.next(), null);
    const flags = redisCli(redis.port, [
      "CONFIG",
      "GET",
      "notify-keyspace-events",
    ]).split("\n")[1];
    for (const flag of "KEg$xel") assert.ok(flags.includes(flag), flags);
    await store.put("on/key", "heard");
    assert.equal(text(await watch.next()), "heard");
    await watch.cancel();
  });

  test("a watch resumes after its connection is killed, with what changed meanwhile", async () => {
    await using store = await RedisStore.connect({ url: redis.url });
    await store.put("resume/key", "before");
    const key = new StreamReader(store.watch("resume/key"));
    const tree = new StreamReader(store.watchTree("resume"));
    assert.equal(text(await key.next()), "before");
    assert.deepEqual((await tree.next()).map(text), ["before"]);
    // One connection kills the subscriber and writes in the same
    // transaction: the write's notification can only be lost.
    redisCli(redis.port, [], {
      input: [
        "MULTI",
        "CLIENT KILL TYPE pubsub",
        "SET resume/key during",
        "SET resume/other during",
        "EXEC",
      ].join("\n"),
    });
    assert.equal(text(await key.next()), "during");
    const snapshot = await tree.next();
    assert.deepEqual(snapshot.map((pair) => pair.key), [
      "resume/key",
      "resume/other",
    ]);
    await store.put("resume/key", "after");
    assert.equal(text(await key.next()), "after");
    await key.cancel();
    await tree.cancel();
  });

  test("a lock waiter does not poll: it tries again on the release it hears", async () => {
    await using a = await RedisStore.connect({ url: redis.url });
    await using b = await RedisStore.connect({ url: redis.url });
    const held = await a.lock("storm/lock", { ttl: 60_000 });
    redisCli(redis.port, ["CONFIG", "RESETSTAT"]);
    const waitStarted = Date.now();
    const waiting = b.lock("storm/lock", {
      signal: AbortSignal.timeout(20_000),
    });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await held.unlock();
    const lock = await waiting;
    // Heard, not found by the safety net: the waiter's tries all came after
    // waitStarted, and without the release's notification the next one would
    // come 5 s after the last (LOCK_RECHECK_MS in backends/redis/lock.ts),
    // or when the 60 s TTL ran out. Counted from waitStarted, a loaded
    // machine's late release cannot make this fail.
    const took = Date.now() - waitStarted;
    assert.ok(took < 5_000, `the release is heard (${took} ms of waiting)`);
    // Scripts run: the waiter's first try, its try once listening, the
    // holder's release, and the waiter's try after hearing it. A load that
    // slows the waiter only makes fewer.
    const stats = redisCli(redis.port, ["INFO", "commandstats"]);
    const calls = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1]);
    assert.ok(calls <= 5, `${calls} scripts in 2 s of waiting`);
    await lock.unlock();
  });

  test("without CONFIG and with notifications off, a watch fails saying what to set", async () => {
    redisCli(redis.port, ["CONFIG", "SET", "notify-keyspace-events", ""]);
    userWithoutConfig(redis.port, "noconfig");
    await using store = await RedisStore.connect({
      url: redis.url,
      username: "noconfig",
      password: "secret",
    });
    const error = await new StreamReader(store.watch("off/key")).failure();
    assert.ok(error instanceof StoreError, String(error));
    assert.match(error.message, /notify-keyspace-events/);
    assert.match(error.message, /"Kg\$xe"/);
    const tree = await new StreamReader(store.watchTree("off")).failure();
    assert.ok(tree instanceof StoreError);
  });

  test("without notifications, a lock waiter still gets a released lock", async () => {
    redisCli(redis.port, ["CONFIG", "SET", "notify-keyspace-events", ""]);
    userWithoutConfig(redis.port, "noconfig");
    const options = {
      url: redis.url,
      username: "noconfig",
      password: "secret",
    };
    await using a = await RedisStore.connect(options);
    await using b = await RedisStore.connect(options);
    const held = await a.lock("off/lock", { ttl: 60_000 });
    const waitStarted = Date.now();
    const waiting = b.lock("off/lock", { signal: AbortSignal.timeout(20_000) });
    // Long enough for the waiter to find notifications off and settle into
    // polling; the holder's TTL is far longer.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await held.unlock();
    const lock = await waiting;
    // Noticed by polling every 500 ms, not by a waiter that counted on
    // notifications and tries again only 5 s after its last try (after
    // waitStarted), nor by the 60 s TTL running out.
    const took = Date.now() - waitStarted;
    assert.ok(took < 5_000, `noticed by polling after ${took} ms of waiting`);
    await lock.unlock();
  });

  test("without CONFIG but with notifications on, a probe finds them and watches work", async () => {
    redisCli(redis.port, ["CONFIG", "SET", "notify-keyspace-events", "AK"]);
    userWithoutConfig(redis.port, "noconfig");
    await using store = await RedisStore.connect({
      url: redis.url,
      username: "noconfig",
      password: "secret",
    });
    const watch = new StreamReader(store.watch("probed/key"));
    assert.equal(await watch.next(), null);
    await store.put("probed/key", "heard");
    assert.equal(text(await watch.next()), "heard");
    await watch.cancel();
    const probes = redisCli(redis.port, ["--scan", "--pattern", "/probe/*"]);
    assert.equal(probes, "", "the probe key is gone");
  });
});
