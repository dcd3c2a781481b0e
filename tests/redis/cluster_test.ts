// The Redis store on Redis Cluster: three masters with a replica each, on
// loopback. The conformance kit runs with every key under one {hashtag};
// then the store spreads keys over every master, lists, deletes and watches
// trees across them, refuses an atomic() over several hash slots before any
// I/O, runs every script on names of one slot (also for keys with braces),
// follows a key whose slot moves to another master, carries on when a
// master dies and its replica takes over, and says so when no node is left.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import {
  InvalidArgumentError,
  InvalidConfigurationError,
  type Lock,
  NotReachableError,
  openStore,
  type Store,
} from "../../mod.ts";
import { RedisStore } from "../../backends/redis/mod.ts";
import { slotTag } from "../../backends/redis/slots.ts";
import { DEFAULT_CONNECT_TIMEOUT_MS } from "../../core/config.ts";
import { conformance } from "../../testing/mod.ts";
import { StreamReader, text } from "../../testing/harness.ts";
import {
  confinedUserAcl,
  redisCli,
  type RedisClusterService,
  startRedis,
  startRedisCluster,
} from "../services/redis.ts";

/**
 * The kit's atomic() cases change several keys at once, which Redis Cluster
 * runs only within one hash slot: every key of the kit goes under this
 * hashtag (the kit's own prefixes inside it), as a user would do.
 */
const KIT_HASHTAG = "{kit}";

function underHashtag(prefix: string | undefined): string {
  const inner = (prefix ?? "").replace(/^\//, "").replace(/\/$/, "");
  return inner === "" ? KIT_HASHTAG : `${KIT_HASHTAG}/${inner}`;
}

/**
 * "At once": without retrying until the connectTimeout (10 s by default),
 * which a retrying store would wait out in full.
 */
const AT_ONCE_MS = DEFAULT_CONNECT_TIMEOUT_MS;

/** How long a failover may take on a loaded machine. */
const FAILOVER_BOUND_MS = 30_000;
const LOCK_TTL_MS = 3_000;

let cluster: RedisClusterService;

before(async () => {
  cluster = await startRedisCluster({ masters: 3, replicas: 1 });
});

after(async () => {
  await cluster?.stop();
});

conformance({ describe, test }, {
  name: "redis cluster",
  open: (options) =>
    openStore(cluster.url, { prefix: underHashtag(options?.prefix) }),
  openUnreachable: (connectTimeout) =>
    openStore("redis://127.0.0.1:1,127.0.0.1:2", { connectTimeout }),
});

/** `count` keys under `dir`, spread over the slots of every master. */
function spread(dir: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${dir}/k${i}`);
}

/** The ports of the masters holding `keys`, as the servers say. */
function mastersOf(keys: string[]): Set<number> {
  return new Set(keys.map((key) => cluster.ownerOf(cluster.slotOf(key)).port));
}

describe("redis: Redis Cluster", () => {
  test("several hosts that are no cluster, a database but 0, and waitReplicas are configuration errors", async () => {
    const servers = await Promise.all([startRedis(), startRedis()]);
    try {
      const started = Date.now();
      const error = await openStore(
        `redis://${servers.map((s) => `127.0.0.1:${s.port}`).join(",")}`,
      ).then(() => undefined, (e) => e);
      assert.ok(error instanceof InvalidConfigurationError, String(error));
      assert.match(error.message, /not a Redis Cluster/);
      assert.match(error.message, /master=/);
      assert.ok(Date.now() - started < AT_ONCE_MS, "at once");
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
    const node = cluster.masters()[0];
    const error = await openStore(`redis://127.0.0.1:${node.port}/3`).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(error instanceof InvalidConfigurationError, String(error));
    assert.match(error.message, /only database 0/);
    // Writes that wait for replicas are for one master with its replicas.
    const waiting = await openStore(cluster.url, { waitReplicas: 1 }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(waiting instanceof InvalidConfigurationError, String(waiting));
    assert.match(waiting.message, /not Redis Cluster/);
  });

  test("an ACL user with the documented rules does the whole job, probing notifications; a wrong password fails at once", async () => {
    // ACL users are local to each node: every node gets one. An operator
    // turns notifications on, which the user may not (it probes them).
    for (const node of cluster.nodes) {
      redisCli(node.port, ["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
      redisCli(node.port, confinedUserAcl("app", "app-secret", "app"));
    }
    const url = cluster.url.replace("redis://", "redis://app:app-secret@");
    await using store = await openStore(url, { prefix: "app" });
    const tree = new StreamReader(store.watchTree(""));
    assert.deepEqual(await tree.next(), []);
    const keys = spread("acl", 6);
    for (const key of keys) await store.put(key, "v", { ttl: 60_000 });
    await tree.until((pairs) => pairs.length === keys.length);
    const pair = (await store.get(keys[0]))!;
    await store.atomicPut(keys[0], "w", pair);
    await (await store.lock("jobs/nightly")).unlock();
    assert.equal((await store.list("")).length, keys.length + 1);
    await store.deleteTree("");
    await tree.until((pairs) => pairs.length === 0);
    await tree.cancel();

    const started = Date.now();
    const error = await openStore(
      cluster.url.replace("redis://", "redis://app:wrong@"),
    ).then(() => undefined, (e) => e);
    assert.ok(error instanceof InvalidConfigurationError, String(error));
    assert.match(error.message, /WRONGPASS/);
    assert.ok(Date.now() - started < AT_ONCE_MS, "at once");
  });

  test("a store opened on one node finds the cluster and uses every master", async () => {
    const node = cluster.masters()[1];
    await using store = await openStore(`redis://127.0.0.1:${node.port}`);
    const keys = spread("spread", 30);
    assert.equal(mastersOf(keys).size, 3, "the keys live on every master");
    for (const key of keys) await store.put(key, `value of ${key}`);
    for (const key of keys) {
      assert.equal(
        redisCli(cluster.ownerOf(cluster.slotOf(key)).port, ["GET", key]),
        `value of ${key}`,
        "raw value at the key, on its master",
      );
    }
    const listed = await store.list("spread");
    assert.deepEqual(listed.map((pair) => pair.key), [...keys].sort());
    const lock = await store.lock("spread/k7", { value: "holder" });
    assert.equal(text(await store.get("spread/k7")), "holder");
    await lock.unlock();
    await store.deleteTree("spread");
    assert.deepEqual(await store.list("spread"), []);
    for (const master of cluster.masters()) {
      assert.equal(
        redisCli(master.port, ["--scan", "--pattern", "*spread*"]),
        "",
        `nothing of the tree is left on ${master.port}`,
      );
    }
  });

  test("a tree watch hears keys of every master", async () => {
    await using store = await RedisStore.connect({ url: cluster.url });
    await using writer = await RedisStore.connect({ url: cluster.url });
    const keys = spread("watched", 6);
    assert.equal(mastersOf(keys).size, 3);
    const tree = new StreamReader(store.watchTree("watched"));
    assert.deepEqual(await tree.next(), []);
    for (const key of keys) {
      await writer.put(key, "v");
      const snapshot = await tree.until((pairs) =>
        pairs.some((pair) => pair.key === key)
      );
      assert.ok(snapshot.length <= keys.length);
    }
    const one = new StreamReader(store.watch(keys[4]));
    assert.equal(text(await one.next()), "v");
    await writer.delete(keys[4]);
    assert.equal(await one.next(), null);
    await writer.deleteTree("watched");
    assert.deepEqual(await tree.until((pairs) => pairs.length === 0), []);
    await one.cancel();
    await tree.cancel();
  });

  test("atomic() over several hash slots is refused before any I/O, under one {hashtag} it commits", async () => {
    await using store = await RedisStore.connect({ url: cluster.url });
    assert.notEqual(cluster.slotOf("cross/a"), cluster.slotOf("cross/b"));
    const scriptsRun = () =>
      cluster.masters().reduce((sum, master) => {
        const stats = redisCli(master.port, ["INFO", "commandstats"]);
        const calls = [...stats.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)];
        return sum + calls.reduce((n, match) => n + Number(match[1]), 0);
      }, 0);
    const before = scriptsRun();
    const error = await store.atomic().check("cross/a", null).put(
      "cross/a",
      "1",
    ).put("cross/b", "2").commit().then(() => undefined, (e) => e);
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.match(error.message, /hash slot/);
    assert.match(error.message, /\{hashtag\}/);
    assert.equal(scriptsRun(), before, "no script ran");
    assert.equal(await store.exists("cross/a"), false);

    const a = "{user42}/cross/a";
    const b = "{user42}/cross/b";
    assert.equal(cluster.slotOf(a), cluster.slotOf(b));
    const result = await store.atomic().check(a, null).put(a, "1").put(b, "2")
      .commit();
    assert.equal(result.ok, true);
    const pair = (await store.get(a))!;
    assert.equal(result.ok && result.lastIndex, pair.lastIndex);
    assert.equal(text(await store.get(b)), "2");
    const stale = await store.atomic().check(a, pair.lastIndex - 1n).delete(b)
      .commit();
    assert.deepEqual(stale, { ok: false });
    await store.deleteTree("{user42}");
  });

  test("a fenced write whose lock lies in another hash slot is refused before any I/O, under one {hashtag} it is fenced", async () => {
    await using store = await RedisStore.connect({ url: cluster.url });
    assert.notEqual(cluster.slotOf("fence/lock"), cluster.slotOf("fence/data"));
    const lock = await store.lock("fence/lock", { ttl: 5_000 });
    const scriptsRun = () =>
      cluster.masters().reduce((sum, master) => {
        const stats = redisCli(master.port, ["INFO", "commandstats"]);
        const calls = [...stats.matchAll(/cmdstat_eval(?:sha)?:calls=(\d+)/g)];
        return sum + calls.reduce((n, match) => n + Number(match[1]), 0);
      }, 0);
    const before = scriptsRun();
    const error = await store.put("fence/data", "x", { fence: lock }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(error instanceof InvalidArgumentError, String(error));
    assert.match(error.message, /hash slot/);
    assert.match(error.message, /\{hashtag\}/);
    const atomic = await store.atomic().checkLock(lock).put("fence/data", "x")
      .commit().then(() => undefined, (e) => e);
    assert.ok(atomic instanceof InvalidArgumentError, String(atomic));
    assert.equal(scriptsRun(), before, "no script ran");
    assert.equal(await store.exists("fence/data"), false);
    // A fence alone is checked in its own slot.
    assert.equal((await store.atomic().checkLock(lock).commit()).ok, true);
    await lock.unlock();
    await store.delete("fence/lock");

    const tagged = await store.lock("{user42}/fence/lock", { ttl: 5_000 });
    await store.put("{user42}/fence/data", "1", { fence: tagged });
    assert.equal(text(await store.get("{user42}/fence/data")), "1");
    await tagged.unlock();
    assert.equal(
      (await store.atomic().checkLock(tagged).put("{user42}/fence/data", "2")
        .commit()).ok,
      false,
    );
    assert.equal(text(await store.get("{user42}/fence/data")), "1");
    await store.deleteTree("{user42}");
  });

  test("the tag of every hash slot is three characters the server puts in that slot", async () => {
    const checker = new Redis({
      host: "127.0.0.1",
      port: cluster.nodes[0].port,
    });
    try {
      const pipeline = checker.pipeline();
      const tags: string[] = [];
      for (let slot = 0; slot < 16_384; slot++) {
        tags.push(slotTag(slot));
        pipeline.cluster("KEYSLOT", `/v/{${tags[slot]}}any{other}key`);
      }
      const replies = (await pipeline.exec())!;
      replies.forEach(([error, slot], expected) => {
        assert.equal(error, null);
        assert.equal(slot, expected, `the tag ${tags[expected]}`);
        assert.match(tags[expected], /^[0-9A-Za-z]{3}$/);
      });
    } finally {
      checker.disconnect();
    }
  });

  test("every script touches names of one hash slot, also for keys with braces", async () => {
    const keys = [
      "plain",
      "a/b/c",
      "{user1}/profile",
      "{user1}/settings",
      "x/{tag}/y",
      "{}/empty-tag",
      "a{}b{c}d",
      "}{reversed",
      "{{nested}}",
      "{unclosed",
      "closed}",
      "{a}{b}",
      "ключ/{é}/ü",
      "emoji/😀/{🔑}",
      ...spread("many", 40),
    ];
    // The server is the judge of slots: it names every script's keys.
    const monitors = await Promise.all(
      cluster.masters().map(async (master) => {
        const connection = new Redis({ host: "127.0.0.1", port: master.port });
        const monitor = await connection.monitor();
        connection.disconnect();
        const seen: string[][] = [];
        monitor.on("monitor", (_time: string, args: string[]) => {
          seen.push(args.map(unescapeMonitor));
        });
        return { master, monitor, seen };
      }),
    );
    await using store = await RedisStore.connect({ url: cluster.url });
    await using other = await RedisStore.connect({ url: cluster.url });
    for (const key of keys) {
      const watch = new StreamReader(store.watch(key));
      assert.equal(await watch.next(), null);
      await store.put(key, "one", { ttl: 60_000 });
      const one = (await store.get(key))!;
      const two = await store.atomicPut(key, "two", one);
      await store.atomicDelete(key, two);
      await store.atomicPut(key, "three", null);
      // Written behind the store's back: adopted on the next read.
      redisCli(cluster.ownerOf(cluster.slotOf(key)).port, ["SET", key, "cli"]);
      const adopted = (await other.get(key))!;
      assert.equal(text(adopted), "cli");
      const lock = await store.lock(key, { ttl: 5_000 });
      await lock.unlock();
      assert.equal(
        (await store.atomic().check(key, lock.lastIndex).put(key, "four")
          .commit()).ok,
        true,
      );
      await watch.until((pair) => text(pair) === "four");
      await watch.cancel();
    }
    assert.equal(
      (await store.atomic().put("{user1}/profile", "p").delete(
        "{user1}/settings",
      ).commit()).ok,
      true,
    );
    assert.equal((await store.list("")).length >= keys.length - 1, true);
    for (const key of keys) await store.delete(key);
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const { monitor } of monitors) monitor.disconnect();

    const checker = new Redis({
      host: "127.0.0.1",
      port: cluster.nodes[0].port,
    });
    try {
      let scripts = 0;
      for (const { master, seen } of monitors) {
        for (const args of seen) {
          const command = args[0]?.toLowerCase();
          let names: string[];
          if (command === "evalsha" || command === "eval") {
            names = args.slice(3, 3 + Number(args[2]));
            scripts++;
          } else if (command === "unlink" || command === "del") {
            names = args.slice(1);
          } else continue;
          const slots = new Set(
            await Promise.all(
              names.map((name) => checker.cluster("KEYSLOT", name)),
            ),
          );
          assert.equal(
            slots.size,
            1,
            `${command} on ${master.port} touched slots ${[...slots]}: ${
              JSON.stringify(names)
            }`,
          );
        }
      }
      assert.ok(scripts > keys.length * 8, `${scripts} scripts seen`);
    } finally {
      checker.disconnect();
    }
  });

  test("a watch follows its key when the key's slot moves to another master", async () => {
    await using store = await RedisStore.connect({ url: cluster.url });
    const key = "resharded/key";
    await store.put(key, "before");
    const before = (await store.get(key))!;
    const watch = new StreamReader(store.watch(key));
    assert.equal(text(await watch.next()), "before");
    const slot = cluster.slotOf(key);
    const from = cluster.ownerOf(slot);
    const to = cluster.masters().find((master) => master !== from)!;
    cluster.moveSlot(slot, to);
    assert.equal(cluster.ownerOf(slot), to);
    assert.equal(redisCli(to.port, ["GET", key]), "before", "the key moved");
    const moved = (await store.get(key))!;
    assert.equal(moved.lastIndex, before.lastIndex, "its version moved too");
    await store.put(key, "after");
    const after = (await store.get(key))!;
    assert.ok(after.lastIndex > before.lastIndex, "versions keep growing");
    assert.equal(
      text(
        await watch.until((pair) => pair !== null && text(pair) === "after"),
      ),
      "after",
    );
    await store.delete(key);
    assert.equal(await watch.next(), null);
    await watch.cancel();
  });

  test("when a master dies its replica takes over: writes, watches and locks carry on", async () => {
    const store: Store = await RedisStore.connect({ url: cluster.url });
    const other: Store = await RedisStore.connect({ url: cluster.url });
    try {
      const key = "failover/watched";
      const victim = cluster.ownerOf(cluster.slotOf(key));
      // Keys on the victim, acknowledged by its replica too.
      const acked = spread("acked", 30).filter((name) =>
        cluster.ownerOf(cluster.slotOf(name)) === victim
      );
      for (const name of acked) await store.put(name, name);
      const keyWatch = new StreamReader(store.watch(key));
      const tree = new StreamReader(store.watchTree("failover"));
      assert.equal(await keyWatch.next(), null);
      assert.deepEqual(await tree.next(), []);
      const [lockKey, ...kept] = acked;
      const lock: Lock = await store.lock(lockKey, {
        value: "holder",
        ttl: LOCK_TTL_MS,
      });
      assert.equal(redisCli(victim.port, ["WAIT", "1", "5000"]), "1");

      const killed = Date.now();
      await victim.kill();
      await store.put(key, "after failover", {
        signal: AbortSignal.timeout(FAILOVER_BOUND_MS),
      });
      console.log(
        `cluster failover: writes resumed ${
          Date.now() - killed
        } ms after the kill`,
      );
      // The put went to the promoted replica; the node the helper asks for
      // the slot table may hear of the promotion a gossip round later (a CI
      // run read the old owner there), so it is asked until it has, within
      // the failover bound.
      const heardBy = Date.now() + FAILOVER_BOUND_MS;
      let leader = cluster.ownerOf(cluster.slotOf(key));
      while (leader === victim && Date.now() < heardBy) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        leader = cluster.ownerOf(cluster.slotOf(key));
      }
      assert.notEqual(leader, victim, "a replica took over");

      const listed = await store.list("acked");
      for (const name of kept) {
        assert.equal(
          text(listed.find((pair) => pair.key === name) ?? null),
          name,
          "acknowledged writes are kept",
        );
      }
      assert.equal(
        text(await keyWatch.until((p) => p !== null, FAILOVER_BOUND_MS)),
        "after failover",
        "the key watch resumed",
      );
      const snapshot = await tree.until(
        (pairs) => pairs.length === 1,
        FAILOVER_BOUND_MS,
      );
      assert.equal(snapshot[0].key, key, "the tree watch resumed");
      await other.put(key, "later");
      assert.equal(text(await keyWatch.next()), "later", "and hears on");

      // Past its TTL the lock is either still held (renewed on the new
      // master) or reported lost; never both, never neither.
      await new Promise((resolve) => setTimeout(resolve, LOCK_TTL_MS + 500));
      if (lock.lost.aborted) {
        console.log("cluster failover: the held lock was reported lost");
        await (await other.lock(lockKey, {
          signal: AbortSignal.timeout(LOCK_TTL_MS * 2),
        })).unlock();
      } else {
        console.log("cluster failover: the held lock was kept");
        await assert.rejects(
          other.lock(lockKey, { signal: AbortSignal.timeout(500) }),
          (error: Error) => error.name === "TimeoutError",
        );
        assert.equal(text(await other.get(lockKey)), "holder");
        await lock.unlock();
      }
      await keyWatch.cancel();
      await tree.cancel();
    } finally {
      await store.close();
      await other.close();
    }
  });

  test("when no node answers, a call fails with NotReachableError instead of waiting on", async () => {
    await using store = await RedisStore.connect({ url: cluster.url });
    await store.put("outage/key", "before");
    await Promise.all(cluster.nodes.map((node) => node.kill()));
    const started = Date.now();
    const error = await store.put("outage/key", "during").then(
      () => undefined,
      (e) => e,
    );
    const took = Date.now() - started;
    assert.ok(error instanceof NotReachableError, String(error));
    // The store gives up after about ten seconds, as for a single server.
    assert.ok(took < 20_000, `gave up after ${took} ms`);
    console.log(`cluster outage: the call failed after ${took} ms`);
  });
});

/**
 * An argument as `MONITOR` printed it (`sdscatrepr`), after ioredis took the
 * quotes away and unescaped `\"`: the other escapes undone, bytes as
 * latin1 characters turned back into the UTF-8 text they were.
 */
function unescapeMonitor(arg: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < arg.length; i++) {
    const char = arg[i];
    if (char !== "\\") {
      bytes.push(...new TextEncoder().encode(char));
      continue;
    }
    const next = arg[++i];
    if (next === "x") {
      bytes.push(parseInt(arg.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      const escapes: Record<string, number> = {
        n: 10,
        r: 13,
        t: 9,
        a: 7,
        b: 8,
      };
      bytes.push(escapes[next] ?? next.charCodeAt(0));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
