// The Redis store shares its data with other clients: redis-cli reads the
// exact bytes that were put, writes made with redis-cli are seen (and a
// compare-and-set against a version read before them fails), bookkeeping
// never outlives its key, and versions keep growing across a restart.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KeyModifiedError, LockLostError, type Store } from "../../mod.ts";
import { RedisStore } from "../../backends/redis/mod.ts";
import { abandon } from "../../testing/mod.ts";
import { StreamReader, text } from "../../testing/harness.ts";
import {
  redisCli,
  redisCliBytes,
  type RedisService,
  startRedis,
} from "../services/redis.ts";
import { rmSync } from "node:fs";
import { tempDir } from "../services/process.ts";

/** Names in the database matching `pattern`, as redis-cli lists them. */
function names(port: number, pattern: string): string[] {
  const out = redisCli(port, ["--scan", "--pattern", pattern]);
  return out === "" ? [] : out.split("\n").sort();
}

/**
 * The bookkeeping names of `kind` (`"/v/"`, `"/lock/"`) of the keys matching
 * `pattern`: `KIND{TAG}KEY`, where TAG is three characters naming the key's
 * hash slot.
 */
function bookkeeping(port: number, kind: string, pattern: string): string[] {
  return names(port, `${kind}{???}${pattern}`);
}

/** Whether `name` is the bookkeeping of `kind` of `key`. */
function isBookkeeping(name: string, kind: string, key: string): boolean {
  return name.startsWith(kind) && /^\{[0-9A-Za-z]{3}\}$/.test(
    name.slice(kind.length, kind.length + 5),
  ) && name.slice(kind.length + 5) === key;
}

describe("redis: sharing data with other clients", () => {
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

  test("redis-cli GET returns exactly the bytes that were put", async () => {
    await store.put("interop/text", "héllo wörld");
    assert.equal(redisCli(redis.port, ["GET", "interop/text"]), "héllo wörld");
    const all = new Uint8Array(256).map((_, i) => i);
    await store.put("interop/binary", all);
    // --raw prints the value's bytes, then a newline.
    const printed = redisCliBytes(redis.port, ["GET", "interop/binary"]);
    assert.deepEqual(printed.subarray(0, -1), all);
  });

  test("a key set with redis-cli is read and listed, with a stable version", async () => {
    redisCli(redis.port, ["SET", "cli/only", "from redis-cli"]);
    const first = await store.get("cli/only");
    assert.equal(text(first), "from redis-cli");
    assert.ok(first!.lastIndex > 0n);
    const again = await store.get("cli/only");
    assert.equal(again!.lastIndex, first!.lastIndex, "adopted once");
    assert.deepEqual((await store.list("cli")).map((p) => p.key), [
      "cli/only",
    ]);
  });

  test("a compare-and-set against a version read before a redis-cli SET fails", async () => {
    await store.put("behind/back", "v1");
    const read = (await store.get("behind/back"))!;
    redisCli(redis.port, ["SET", "behind/back", "changed by redis-cli"]);
    // No reader saw the foreign value: the script itself notices it.
    await assert.rejects(
      store.atomicPut("behind/back", "v3", read),
      KeyModifiedError,
    );
    await assert.rejects(
      store.atomicDelete("behind/back", read),
      KeyModifiedError,
    );
    assert.deepEqual(
      await store.atomic().check("behind/back", read.lastIndex).put(
        "behind/back",
        "v4",
      ).commit(),
      { ok: false },
    );
    const now = (await store.get("behind/back"))!;
    assert.equal(text(now), "changed by redis-cli");
    assert.ok(now.lastIndex > read.lastIndex, "the foreign write is newer");
    const written = await store.atomicPut("behind/back", "v5", now);
    assert.ok(written.lastIndex > now.lastIndex);
  });

  test("a watch hears writes, deletes and expiries made with redis-cli", async () => {
    const watch = new StreamReader(store.watch("cli/watched"));
    assert.equal(await watch.next(), null);
    redisCli(redis.port, ["SET", "cli/watched", "one"]);
    assert.equal(text(await watch.next()), "one");
    redisCli(redis.port, ["DEL", "cli/watched"]);
    assert.equal(await watch.next(), null);
    redisCli(redis.port, ["SET", "cli/watched", "brief", "PX", "300"]);
    assert.equal(text(await watch.next()), "brief");
    assert.equal(await watch.next(), null, "the expiry is heard");
    await watch.cancel();
  });

  test("keys of other Redis types and names that are not keys are not listed", async () => {
    redisCli(redis.port, ["HSET", "odd/hash", "field", "value"]);
    redisCli(redis.port, ["SET", "odd//empty-segment", "x"]);
    redisCli(redis.port, ["SET", "odd/trailing/", "x"]);
    await store.put("odd/plain", "p");
    assert.equal(await store.get("odd/hash"), null);
    assert.deepEqual((await store.list("odd")).map((p) => p.key), [
      "odd/plain",
    ]);
  });

  test("a key's version companion goes with the key, also when it expires", async () => {
    await store.put("layout/kept", "v");
    const [companion, key] = names(redis.port, "*layout/kept");
    assert.equal(key, "layout/kept");
    assert.ok(isBookkeeping(companion, "/v/", "layout/kept"), companion);
    assert.match(
      redisCli(redis.port, ["GET", companion]),
      /^[0-9]+ [0-9a-f]{40}$/,
    );
    await store.delete("layout/kept");
    assert.deepEqual(names(redis.port, "*layout/kept"), []);
    const putAt = Date.now();
    await store.put("layout/brief", "v", { ttl: 60_000 });
    const ttls = [
      Number(redisCli(redis.port, ["PTTL", "layout/brief"])),
      Number(redisCli(redis.port, [
        "PTTL",
        bookkeeping(redis.port, "/v/", "layout/brief")[0],
      ])),
    ];
    // The 60 s given, less what has passed since the put began: however long
    // a loaded machine took to run redis-cli, the two cannot disagree.
    const since = Date.now() - putAt;
    for (const ttl of ttls) {
      assert.ok(
        ttl > 60_000 - since - 5 && ttl <= 60_000,
        `${ttl} after ${since} ms`,
      );
    }
    await store.put("layout/brief", "v", { ttl: 200 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.deepEqual(names(redis.port, "*layout/brief"), []);
  });

  test("deleteTree leaves nothing of the tree behind, not even orphaned companions", async () => {
    for (const key of ["tree/a", "tree/b/c", "tree/d"]) {
      await store.put(key, key);
    }
    // Another client deletes a key behind the store's back: its companion
    // stays until the tree is deleted.
    redisCli(redis.port, ["DEL", "tree/d"]);
    const companions = bookkeeping(redis.port, "/v/", "tree/*");
    assert.equal(companions.length, 3, "tree/d's companion stays");
    const lock = await store.lock("tree/locked", { ttl: 5_000 });
    await store.deleteTree("tree");
    assert.deepEqual(names(redis.port, "tree*"), []);
    assert.deepEqual(names(redis.port, "/v/*tree*"), []);
    // A held lock is not broken by deleting its tree; unlocking removes it.
    const [record, ...others] = names(redis.port, "/lock/*tree*");
    assert.ok(isBookkeeping(record, "/lock/", "tree/locked"), record);
    assert.deepEqual(others, []);
    assert.equal(lock.lost.aborted, false);
    await lock.unlock();
    assert.deepEqual(names(redis.port, "/lock/*tree*"), []);
  });

  test("a dead holder's lock bookkeeping expires with its TTL", async () => {
    const holder = await RedisStore.connect({ url: redis.url });
    // Long enough that the holder's renewals (every 500 ms) keep it while
    // redis-cli, which blocks this process, runs twice on a loaded machine.
    const ttl = 1_500;
    await holder.lock("dead/lock", { ttl });
    const [record] = bookkeeping(redis.port, "/lock/", "dead/lock");
    const pttl = Number(redisCli(redis.port, ["PTTL", record]));
    assert.ok(pttl > 0 && pttl <= ttl, `${pttl}`);
    await abandon(holder);
    // Gone with its TTL, which Redis keeps exactly: the wait is a bound, long
    // enough for a loaded machine, far shorter than the 20 s default TTL.
    const deadline = Date.now() + 10_000;
    while (bookkeeping(redis.port, "/lock/", "dead/*").length > 0) {
      assert.ok(Date.now() < deadline, "the bookkeeping expires");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  test("a lock whose bookkeeping another client deletes is reported lost", async () => {
    const lock = await store.lock("lost/lock", { ttl: 600 });
    const [record] = bookkeeping(redis.port, "/lock/", "lost/lock");
    redisCli(redis.port, ["DEL", record]);
    const reason = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("not lost")), 3_000);
      lock.lost.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve(lock.lost.reason);
      }, { once: true });
    });
    assert.ok(reason instanceof LockLostError, String(reason));
    // Unlocking a lost lock says so.
    await assert.rejects(lock.unlock(), LockLostError);
  });
});

describe("redis: versions across a restart", () => {
  test("versions keep growing after a persisted server restarts, and watches resume", async () => {
    const dir = tempDir("redis-persisted");
    const args = ["--appendonly", "yes", "--appendfsync", "always"];
    let redis = await startRedis({ dir, args, keepDir: true });
    const port = redis.port;
    const store = await RedisStore.connect({ url: redis.url });
    try {
      await store.put("restart/k", "before");
      const before = (await store.get("restart/k"))!;
      await store.put("restart/gone", "x");
      const gone = (await store.get("restart/gone"))!;
      const watch = new StreamReader(store.watch("restart/k"));
      assert.equal(text(await watch.next()), "before");
      await redis.kill();
      redis = await startRedis({ dir, port, args, keepDir: true });
      const reread = (await store.get("restart/k"))!;
      assert.equal(reread.lastIndex, before.lastIndex, "the data survived");
      await store.put("restart/k", "after");
      const after = (await store.get("restart/k"))!;
      assert.ok(after.lastIndex > before.lastIndex);
      assert.equal(text(await watch.next()), "after");
      await store.delete("restart/gone");
      await store.put("restart/gone", "x");
      const reborn = (await store.get("restart/gone"))!;
      assert.ok(reborn.lastIndex > gone.lastIndex, "re-created after restart");
      await watch.cancel();
    } finally {
      await store.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
