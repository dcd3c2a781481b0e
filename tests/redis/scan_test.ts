// The Redis backend's own scan and batch calls: a page walks the tree with
// SCAN but reads only its own keys, sees keys written by other clients in
// byte order (and still fills a page when one of its names is no string),
// and on a cluster merges the masters in order; batch calls send one
// pipeline per server.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import type { KVPair, ScanOptions, Store } from "../../mod.ts";
import { RedisStore } from "../../backends/redis/mod.ts";
import { compareKeys } from "../../core/keys.ts";
import { text } from "../../testing/harness.ts";
import {
  redisCli,
  type RedisClusterService,
  type RedisService,
  startRedis,
  startRedisCluster,
} from "../services/redis.ts";
import { monitored } from "./monitor.ts";

async function scanAll(
  store: Store,
  prefix: string,
  options: ScanOptions,
): Promise<KVPair[]> {
  const pairs: KVPair[] = [];
  for await (const pair of store.scan(prefix, options)) pairs.push(pair);
  return pairs;
}

/** The pipelines the store makes while `work` runs: how many commands each. */
async function pipelines(work: () => Promise<void>): Promise<number[]> {
  const made: { length: number }[] = [];
  const original = Redis.prototype.pipeline;
  Redis.prototype.pipeline = function (
    this: Redis,
    ...args: Parameters<Redis["pipeline"]>
  ) {
    const pipeline = original.apply(this, args);
    made.push(pipeline);
    return pipeline;
  };
  try {
    await work();
  } finally {
    Redis.prototype.pipeline = original;
  }
  return made.map((pipeline) => pipeline.length);
}

describe("redis: native scan and batch calls on one server", () => {
  let redis: RedisService;
  let store: Store;
  const keys = Array.from(
    { length: 5_000 },
    (_, i) => `big/k${String(i).padStart(4, "0")}`,
  );

  before(async () => {
    redis = await startRedis();
    store = await RedisStore.connect({ url: redis.url });
  });

  after(async () => {
    await store?.close();
    await redis?.stop();
  });

  test("putMany sends one pipeline of one script per key", async () => {
    const chunk = keys.slice(0, 256);
    const made = await pipelines(async () => {
      await store.putMany(chunk.map((key) => ({ key, value: `v:${key}` })));
    });
    assert.deepEqual(made, [256]);
    const made2 = await pipelines(async () => {
      await store.putMany(
        keys.slice(256).map((key) => ({ key, value: `v:${key}` })),
      );
    });
    assert.equal(made2.length, Math.ceil((keys.length - 256) / 256));
    assert.equal((await store.list("big")).length, keys.length);
  });

  test("a page of 10 from 5,000 keys reads the values of those 10 only", async () => {
    let page: KVPair[] = [];
    const seen = await monitored(redis.port, async () => {
      page = [];
      for await (const pair of store.scan("big", { batchSize: 10 })) {
        page.push(pair);
        if (page.length === 10) break;
      }
    });
    assert.deepEqual(page.map((pair) => pair.key), keys.slice(0, 10));
    const commands = seen.filter((command) => !command.lua);
    const scans = commands.filter((c) => c.args[0].toLowerCase() === "scan");
    // 10 000 names (keys and companions) at 1 000 per step: the whole tree.
    assert.ok(scans.length >= 10, `${scans.length} SCAN steps`);
    const scripts = commands.filter((c) =>
      ["evalsha", "eval"].includes(c.args[0].toLowerCase())
    );
    assert.equal(scripts.length, 1, "one read of the page");
    const named = scripts[0].args.slice(3, 3 + Number(scripts[0].args[2]));
    assert.deepEqual(
      named.filter((name) => !name.startsWith("/")),
      keys.slice(0, 10),
    );
    const others = commands.filter((c) =>
      !["scan", "evalsha", "eval"].includes(c.args[0].toLowerCase())
    );
    assert.deepEqual(others, [], "nothing but SCAN and the page's read");
    const gets = seen.filter((c) =>
      c.lua && c.args[0].toLowerCase() === "get" && !c.args[1].startsWith("/")
    );
    assert.deepEqual(gets.map((c) => c.args[1]), keys.slice(0, 10));
  });

  test("pages in reverse and between bounds are the right slices", async () => {
    const last: string[] = [];
    for await (const pair of store.scan("big", { reverse: true, limit: 25 })) {
      last.push(pair.key);
    }
    assert.deepEqual(last, keys.slice(-25).reverse());
    let middle: KVPair[] = [];
    const seen = await monitored(redis.port, async () => {
      middle = await scanAll(store, "big", {
        start: "big/k1234",
        end: "big/k1300",
        batchSize: 9,
        keysOnly: true,
      });
    });
    // Every key between the bounds starts with what the bounds share.
    const patterns = new Set(
      seen.filter((c) => c.args[0].toLowerCase() === "scan").map((c) =>
        c.args[c.args.findIndex((arg) => arg.toLowerCase() === "match") + 1]
      ),
    );
    assert.deepEqual([...patterns], ["big/k1*"]);
    assert.deepEqual(
      middle.map((pair) => pair.key),
      keys.slice(1234, 1300),
    );
    for (const pair of middle) assert.equal(pair.value.length, 0);
  });

  test("bounds that share half of a character scan what they share before it", async () => {
    const emoji = ["sur/a\u{1F600}x", "sur/a\u{1F600}z", "sur/a\u{1F601}"];
    for (const key of [...emoji, "sur/a\u{1F602}"]) await store.put(key, key);
    // Both bounds start with the high surrogate of U+1F600..U+1F602.
    const pairs = await scanAll(store, "sur", {
      start: "sur/a\u{1F600}y",
      end: "sur/a\u{1F602}",
    });
    assert.deepEqual(pairs.map((pair) => pair.key), emoji.slice(1));
  });

  test("getMany reads a chunk in one script run, deleteMany unlinks it in one command", async () => {
    const asked = [...keys.slice(100, 200), "big/absent", ...keys.slice(0, 5)]
      .reverse();
    let pairs: (KVPair | null)[] = [];
    const seen = await monitored(redis.port, async () => {
      pairs = await store.getMany(asked);
    });
    assert.deepEqual(
      pairs.map((pair) => pair?.key ?? null),
      asked.map((key) => key === "big/absent" ? null : key),
    );
    assert.deepEqual(
      pairs.map(text),
      asked.map((key) => key === "big/absent" ? null : `v:${key}`),
    );
    // One script run for the chunk.
    const scripts = seen.filter((c) =>
      !c.lua && ["evalsha", "eval"].includes(c.args[0].toLowerCase())
    );
    assert.equal(scripts.length, 1, JSON.stringify(seen.map((c) => c.args[0])));
    const gone = keys.slice(0, 256);
    const deletes = await monitored(redis.port, async () => {
      await store.deleteMany(gone);
    });
    // One deleting command for the chunk (whatever else the server ran).
    const top = deletes.filter((c) =>
      !c.lua && ["unlink", "del"].includes(c.args[0].toLowerCase())
    );
    assert.equal(top.length, 1, JSON.stringify(deletes.map((c) => c.args[0])));
    assert.equal(top[0].args[0].toLowerCase(), "unlink");
    assert.equal(top[0].args.length, 1 + 2 * gone.length, "keys, companions");
    assert.equal((await store.list("big")).length, keys.length - 256);
    assert.equal(redisCli(redis.port, ["EXISTS", gone[7]]), "0");
  });

  test("a batch sent after the server lost its scripts sends them in full", async () => {
    redisCli(redis.port, ["SCRIPT", "FLUSH"]);
    const batch = Array.from({ length: 50 }, (_, i) => `flushed/k${i}`);
    const indexes = await store.putMany(
      batch.map((key) => ({ key, value: key })),
    );
    const pairs = await store.getMany(batch);
    assert.deepEqual(pairs.map(text), batch);
    assert.deepEqual(pairs.map((pair) => pair!.lastIndex), indexes);
    redisCli(redis.port, ["SCRIPT", "FLUSH"]);
    const page = await scanAll(store, "flushed", { batchSize: 100 });
    assert.deepEqual(page.map((pair) => pair.key), [...batch].sort());
  });

  test("keys other clients wrote are scanned in byte order, as list sees them, and a page is filled past a name that is no string", async () => {
    for (const key of ["mix/a", "mix/c", "mix/e", "mix/\u{1F600}"]) {
      await store.put(key, `store ${key}`);
    }
    for (const key of ["mix/b", "mix/d", "mix/\uFFFD", "mix/é"]) {
      redisCli(redis.port, ["SET", key, `cli ${key}`]);
    }
    // A hash between c and d; names that are no keys of the store.
    redisCli(redis.port, ["HSET", "mix/c-hash", "field", "value"]);
    redisCli(redis.port, ["SET", "mix//empty-segment", "x"]);
    redisCli(redis.port, ["SET", "mix/trailing/", "x"]);
    const listed = await store.list("mix");
    const expected = [
      "mix/a",
      "mix/b",
      "mix/c",
      "mix/d",
      "mix/e",
      "mix/é",
      "mix/\uFFFD",
      "mix/\u{1F600}",
    ];
    assert.deepEqual(listed.map((pair) => pair.key), expected);
    assert.deepEqual([...expected].sort(compareKeys), expected);
    // Pages of two: the second page's candidates are c and the hash, so it
    // is filled with d only if the hash's hole is refilled; a short page
    // would end the scan there.
    const forward = await scanAll(store, "mix", { batchSize: 2 });
    assert.deepEqual(forward.map((pair) => pair.key), expected);
    forward.forEach((pair, i) => {
      assert.equal(pair.lastIndex, listed[i].lastIndex, pair.key);
      assert.equal(text(pair), text(listed[i]), pair.key);
    });
    const backward = await scanAll(store, "mix", {
      batchSize: 3,
      reverse: true,
    });
    assert.deepEqual(
      backward.map((pair) => pair.key),
      [...expected].reverse(),
    );
    const one = await scanAll(store, "mix", { batchSize: 1, start: "mix/c" });
    assert.deepEqual(one.map((pair) => pair.key), expected.slice(2));
  });
});

describe("redis: native scan and batch calls on a cluster", () => {
  let cluster: RedisClusterService;
  let store: Store;
  const keys = Array.from(
    { length: 400 },
    (_, i) => `spread/k${String(i).padStart(3, "0")}`,
  );

  before(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    store = await RedisStore.connect({ url: cluster.url });
  });

  after(async () => {
    await store?.close();
    await cluster?.stop();
  });

  test("batch calls send one pipeline per master", async () => {
    const owners = new Set(
      keys.map((key) => cluster.ownerOf(cluster.slotOf(key)).port),
    );
    assert.equal(owners.size, 3, "the keys live on every master");
    const chunks = Math.ceil(keys.length / 256);
    let indexes: bigint[] = [];
    const puts = await pipelines(async () => {
      indexes = await store.putMany(
        keys.map((key) => ({ key, value: `v:${key}` })),
      );
    });
    assert.ok(puts.length <= 3 * chunks, `${puts.length} pipelines`);
    assert.equal(
      puts.reduce((a, b) => a + b, 0),
      keys.length,
      "one script per key",
    );
    for (const key of keys.slice(0, 20)) {
      assert.equal(
        redisCli(cluster.ownerOf(cluster.slotOf(key)).port, ["GET", key]),
        `v:${key}`,
      );
    }
    const asked = [...keys, "spread/absent"].reverse();
    let pairs: (KVPair | null)[] = [];
    const reads = await pipelines(async () => {
      pairs = await store.getMany(asked);
    });
    assert.ok(reads.length <= 3 * chunks, `${reads.length} pipelines`);
    assert.deepEqual(
      pairs.map(text),
      asked.map((key) => key === "spread/absent" ? null : `v:${key}`),
    );
    pairs.forEach((pair, i) => {
      if (pair) assert.equal(pair.lastIndex, indexes[keys.indexOf(asked[i])]);
    });
  });

  test("a scan merges the masters' keys in order, also keys other clients wrote", async () => {
    const raw = ["spread/k0005x", "spread/k2000", "spread/a"];
    for (const key of raw) {
      redisCli(cluster.ownerOf(cluster.slotOf(key)).port, [
        "SET",
        key,
        `cli ${key}`,
      ]);
    }
    const all = [...keys, ...raw].sort(compareKeys);
    let forward: KVPair[] = [];
    const made = await pipelines(async () => {
      forward = await scanAll(store, "spread", { batchSize: 7 });
    });
    assert.deepEqual(forward.map((pair) => pair.key), all);
    // Each page's read: at most one pipeline per master (none when its keys
    // live on one master), and once more for the first page, whose two raw
    // keys are adopted on their masters; a pipeline per slot would be about
    // seven per page.
    const pages = Math.ceil(all.length / 7) + 1;
    assert.ok(made.length <= 3 * (pages + 1), `${made.length} pipelines`);
    const backward = await scanAll(store, "spread", {
      batchSize: 11,
      reverse: true,
      end: "spread/k300",
    });
    assert.deepEqual(
      backward.map((pair) => pair.key),
      all.filter((key) => compareKeys(key, "spread/k300") < 0).reverse(),
    );
    const listed = await store.list("spread");
    assert.deepEqual(
      forward.map((pair) => [pair.key, pair.lastIndex]),
      listed.map((pair) => [pair.key, pair.lastIndex]),
    );
  });

  test("deleteMany unlinks keys and companions on every master", async () => {
    await store.deleteMany(keys);
    assert.deepEqual(
      (await store.list("spread")).map((pair) => pair.key),
      ["spread/a", "spread/k0005x", "spread/k2000"],
    );
    for (const master of cluster.masters()) {
      assert.equal(
        redisCli(master.port, [
          "--scan",
          "--pattern",
          "/v/{???}spread/k[0-9][0-9][0-9]",
        ]),
        "",
        `no companion left on ${master.port}`,
      );
    }
  });
  test("commands a master refuses after its slot moved are sent again to the new owner", async () => {
    const batch = Array.from({ length: 60 }, (_, i) => `moved/k${i}`);
    const key = batch[0];
    const slot = cluster.slotOf(key);
    const from = cluster.ownerOf(slot);
    await store.put(key, "before");
    // The store's client learns of the move only when a master says so.
    cluster.moveSlot(slot, cluster.masters().find((m) => m !== from)!);
    const refused: string[] = [];
    const original = Redis.prototype.pipeline;
    Redis.prototype.pipeline = function (
      this: Redis,
      ...args: Parameters<Redis["pipeline"]>
    ) {
      const pipeline = original.apply(this, args);
      const exec = pipeline.exec.bind(pipeline);
      pipeline.exec = async () => {
        const results = await exec();
        for (const [error] of results ?? []) {
          if (error) refused.push(error.message);
        }
        return results;
      };
      return pipeline;
    };
    let indexes: bigint[];
    try {
      indexes = await store.putMany(batch.map((k) => ({ key: k, value: k })));
    } finally {
      Redis.prototype.pipeline = original;
    }
    assert.ok(
      refused.some((message) => message.startsWith("MOVED ")),
      `refused: ${JSON.stringify(refused)}`,
    );
    assert.equal(
      redisCli(cluster.ownerOf(slot).port, ["GET", key]),
      key,
      "written on the new owner",
    );
    const pairs = await store.getMany(batch);
    assert.deepEqual(pairs.map(text), batch);
    assert.deepEqual(pairs.map((pair) => pair!.lastIndex), indexes);
    await store.deleteMany(batch);
    assert.deepEqual(await store.list("moved"), []);
  });
});
