// Scans on Consul walk the tree level by level (`?keys&separator=/`) and
// read only the page's entries (`get-or-empty` transactions): a page costs a
// few requests whatever the tree's size, never a `?recurse` of the tree, and
// still follows the byte order of whole keys. First the walk itself, over a
// model of Consul's answers that counts them and compared with the page cut
// from a full listing; then the backend against the Consul double, which
// logs the requests it gets.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Entry, ScanRange } from "../../core/driver.ts";
import { compareKeys } from "../../core/keys.ts";
import { pageOfList } from "../../core/scan.ts";
import type { KVPair } from "../../mod.ts";
import { ConsulStore } from "../../backends/consul/mod.ts";
import {
  SCAN_READ_KEYS,
  scanPage,
  type ScanReads,
} from "../../backends/consul/scan.ts";
import { type ConsulDouble, startConsulDouble } from "../consul_double/mod.ts";

/** Names whose byte order is not their segment-wise order. */
const TRICKY = [
  "a",
  "a-c",
  "a.x",
  "a/b",
  "a/b/c",
  "a/b-",
  "a/b0",
  "a0",
  "b",
  "b/",
  "b/x",
  "é",
  "\uFB01",
  "\u{1F600}",
  "\u{1F600}/x",
  "日本",
  "日本/語",
];

/** A model of Consul's KV reads over `keys`, counting what it is asked. */
function model(keys: string[], dead = new Set<string>()) {
  const sorted = [...keys].sort(compareKeys);
  const counts = { levels: 0, reads: 0, keysRead: 0, names: 0 };
  const reads: ScanReads = {
    // As agent/consul/state/kvs.go (kvsListKeysTxn) names a level.
    level(prefix) {
      counts.levels++;
      const names: string[] = [];
      for (const key of sorted) {
        if (!key.startsWith(prefix)) continue;
        const at = key.indexOf("/", prefix.length);
        const name = at < 0 ? key : key.slice(0, at + 1);
        if (names[names.length - 1] !== name) names.push(name);
      }
      counts.names += names.length;
      return Promise.resolve(names);
    },
    entries(asked) {
      counts.reads++;
      counts.keysRead += asked.length;
      assert.ok(asked.length <= SCAN_READ_KEYS);
      return Promise.resolve(
        asked.map((key) => dead.has(key) ? null : entry(key)),
      );
    },
  };
  const listed = sorted.filter((key) => !dead.has(key)).map(entry);
  return { reads, counts, listed };
}

function entry(key: string): Entry {
  return { key, value: new TextEncoder().encode(key), lastIndex: 1n };
}

function range(options: Partial<ScanRange> & { dir: string }): ScanRange {
  return {
    lowerInclusive: true,
    reverse: false,
    limit: 1_000_000,
    keysOnly: false,
    ...options,
  };
}

const keysOf = (entries: { key: string }[]) => entries.map((e) => e.key);

describe("the Consul scan walk", () => {
  test("visits keys in byte order of whole keys, both ways, within any bounds", async () => {
    const keys = TRICKY.map((name) => `t/${name}`).concat(["t", "tx", "s/a"]);
    const { reads, listed } = model(keys);
    const bounds = [undefined, ...keys, "t/a/", "t/b/", "t/a/b/", "t/zz"];
    let checked = 0;
    for (const lower of bounds) {
      for (const upper of bounds) {
        for (const reverse of [false, true]) {
          for (const limit of [1, 2, 5, 100]) {
            for (const lowerInclusive of [true, false]) {
              const r = range({
                dir: "t/",
                lower,
                upper,
                reverse,
                limit,
                lowerInclusive,
              });
              assert.deepEqual(
                keysOf(await scanPage(r, reads)),
                keysOf(pageOfList(listed, r)),
                JSON.stringify(r),
              );
              checked++;
            }
          }
        }
      }
    }
    assert.ok(checked > 4000);
    // The same at the root of a driver without a prefix.
    for (const reverse of [false, true]) {
      const r = range({ dir: "", reverse });
      assert.deepEqual(
        keysOf(await scanPage(r, reads)),
        keysOf(pageOfList(listed, r)),
      );
    }
    assert.deepEqual(
      keysOf(await scanPage(range({ dir: "t/", limit: 6 }), reads)),
      ["t/a", "t/a-c", "t/a.x", "t/a/b", "t/a/b-", "t/a/b/c"],
    );
  });

  test("a page of a large tree reads a few levels and only the page's entries", async () => {
    // 40 × 100 keys two levels down, and some beside them.
    const keys: string[] = [];
    for (let d = 0; d < 40; d++) {
      for (let k = 0; k < 100; k++) {
        keys.push(`big/d${String(d).padStart(2, "0")}/k${k}`);
      }
    }
    keys.push("big/top", "big/d07-x", "other/k");
    const { reads, counts, listed } = model(keys);
    const cases: Array<[Partial<ScanRange>, number]> = [
      [{}, 2],
      [{ reverse: true }, 2],
      [{ lower: "big/d17/k5", lowerInclusive: false }, 2],
      [{ upper: "big/d31/k2", reverse: true }, 2],
      // Crossing from one sub-tree into the next ("big/d07-x" sorts before
      // the keys under "big/d07/", so it is not among them).
      [{ lower: "big/d07/k95" }, 3],
    ];
    for (const [bounds, levels] of cases) {
      counts.levels =
        counts.reads =
        counts.keysRead =
        counts.names =
          0;
      const r = range({ dir: "big/", limit: 10, ...bounds });
      assert.deepEqual(
        keysOf(await scanPage(r, reads)),
        keysOf(pageOfList(listed, r)),
      );
      assert.equal(counts.levels, levels, JSON.stringify(bounds));
      assert.equal(counts.reads, 1);
      assert.equal(counts.keysRead, 10);
      // The root level and at most three sub-trees' names, not the tree's.
      assert.ok(counts.names <= 42 + 3 * 100, `${counts.names} names`);
    }
  });

  test("keys gone or expired since their level was read are passed over, and the page still fills", async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `g/${1000 + i}`);
    const dead = new Set(keys.filter((_, i) => i % 3 !== 0));
    const { reads, counts, listed } = model(keys, dead);
    const r = range({ dir: "g/", limit: 25 });
    const page = await scanPage(r, reads);
    assert.equal(page.length, 25);
    assert.deepEqual(keysOf(page), keysOf(pageOfList(listed, r)));
    // Each read asks only for what the page still lacks, so none reads
    // past the page's last key: the 25th live key is the 73rd.
    assert.equal(counts.keysRead, 73);
    assert.ok(counts.reads > 1);
    const short = await scanPage(range({ dir: "g/", limit: 100 }), reads);
    assert.equal(short.length, 67, "a short page: nothing more in range");
  });
});

async function all(
  store: ConsulStore,
  prefix: string,
  options?: Parameters<ConsulStore["scan"]>[1],
): Promise<KVPair[]> {
  const pairs: KVPair[] = [];
  for await (const pair of store.scan(prefix, options)) pairs.push(pair);
  return pairs;
}

describe("scans on Consul", () => {
  let consul: ConsulDouble;
  let store: ConsulStore;
  const big: string[] = [];

  before(async () => {
    consul = await startConsulDouble({
      sessionTtlMinMs: 1_000,
      recordRequests: true,
    });
    store = await ConsulStore.connect({
      endpoints: [consul.address],
      sessionTtlMin: 1_000,
    });
    // 3000 keys in 30 sub-trees, and some beside them.
    for (let d = 0; d < 30; d++) {
      for (let k = 0; k < 100; k++) {
        big.push(
          `big/d${String(d).padStart(2, "0")}/k${String(k).padStart(3, "0")}`,
        );
      }
    }
    big.push("big/d05-x", "big/top");
    await store.putMany(big.map((key) => ({ key, value: key })));
    big.sort(compareKeys);
  });

  after(async () => {
    await store.close();
    await consul.close();
  });

  // The requests `run` makes, from the double's log.
  async function requests<T>(run: () => Promise<T>): Promise<[T, string[]]> {
    consul.requestLog.length = 0;
    const result = await run();
    return [result, consul.requestLog.splice(0)];
  }

  test("a page of 10 from a tree of 3000 keys takes a few requests, none of them a recurse", async () => {
    const cases: Array<[Parameters<ConsulStore["scan"]>[1], string[]]> = [
      [{ limit: 10 }, big.slice(0, 10)],
      [{ limit: 10, reverse: true }, big.slice(-10).reverse()],
      [
        { limit: 10, start: "big/d17/k050" },
        big.slice(
          big.indexOf("big/d17/k050"),
          big.indexOf("big/d17/k050") + 10,
        ),
      ],
      [
        { limit: 10, end: "big/d05-x", reverse: true },
        big.slice(big.indexOf("big/d05-x") - 10, big.indexOf("big/d05-x"))
          .reverse(),
      ],
    ];
    for (const [options, expected] of cases) {
      const [pairs, log] = await requests(() => all(store, "big", options));
      assert.deepEqual(pairs.map((p) => p.key), expected);
      assert.equal(
        new TextDecoder().decode(pairs[0].value),
        expected[0],
        "values are read",
      );
      assert.ok(log.length <= 4, log.join("\n"));
      assert.ok(log.every((line) => !/[?&]recurse/.test(line)), log.join("\n"));
      assert.equal(
        log.filter((line) => line.startsWith("PUT /v1/txn")).length,
        1,
      );
      assert.ok(
        log.filter((line) => line.startsWith("GET /v1/kv/")).every((line) =>
          /[?&]keys/.test(line) && /separator=(%2F|\/)/.test(line)
        ),
        log.join("\n"),
      );
    }
  });

  test("the whole tree in pages matches list, reverse too, and keysOnly leaves values out", async () => {
    const listed = await store.list("big");
    assert.deepEqual(listed.map((p) => p.key), big);
    const [pairs, log] = await requests(() =>
      all(store, "big", { batchSize: 500 })
    );
    assert.deepEqual(pairs, listed);
    assert.ok(log.every((line) => !/[?&]recurse/.test(line)));
    const reversed = await all(store, "big", { batchSize: 700, reverse: true });
    assert.deepEqual(reversed, [...listed].reverse());
    const keysOnly = await all(store, "big/d03", { keysOnly: true });
    assert.equal(keysOnly.length, 100);
    assert.ok(keysOnly.every((p) => p.value.length === 0));
  });

  test("byte order of whole keys: a-c before a/b, and characters beyond U+FFFF last", async () => {
    // "b/" is not a key this library writes (it would be "b").
    const names = TRICKY.filter((name) => !name.endsWith("/"));
    await store.putMany(
      names.map((name) => ({ key: `o/${name}`, value: name })),
    );
    const written = names.map((name) => `o/${name}`).sort(compareKeys);
    assert.deepEqual((await all(store, "o")).map((p) => p.key), written);
    for (const batchSize of [1, 2, 3]) {
      assert.deepEqual(
        (await all(store, "o", { batchSize })).map((p) => p.key),
        written,
      );
      assert.deepEqual(
        (await all(store, "o", { batchSize, reverse: true })).map((p) => p.key),
        [...written].reverse(),
      );
    }
    assert.deepEqual(
      (await all(store, "o", { start: "o/a/b", end: "o/a0" })).map((p) =>
        p.key
      ),
      ["o/a/b", "o/a/b-", "o/a/b/c", "o/a/b0"],
    );
    assert.deepEqual(
      (await all(store, "o", { start: "o/a.x", end: "o/a/b0", reverse: true }))
        .map((p) => p.key),
      ["o/a/b/c", "o/a/b-", "o/a/b", "o/a.x"],
    );
  });

  test("keys whose TTL ran out but that Consul still holds are passed over", async () => {
    await store.putMany([
      ...Array.from({ length: 5 }, (_, i) => ({
        key: `x/k${i}`,
        value: "soon gone",
        ttl: 150,
      })),
      ...Array.from({ length: 5 }, (_, i) => ({
        key: `x/k${i + 5}`,
        value: "stays",
      })),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Consul deletes them only when their sessions end, seconds later.
    const raw = await fetch(`${consul.url}/v1/kv/x/?keys`);
    assert.equal((await raw.json()).length, 10);
    assert.deepEqual(
      (await all(store, "x", { limit: 3 })).map((p) => p.key),
      ["x/k5", "x/k6", "x/k7"],
    );
    assert.deepEqual(
      (await all(store, "x", { batchSize: 2 })).map((p) => p.key),
      ["x/k5", "x/k6", "x/k7", "x/k8", "x/k9"],
    );
  });

  test("a stale scan asks Consul for stale reads", async () => {
    const [pairs, log] = await requests(() =>
      all(store, "big/d01", { limit: 3, consistent: false })
    );
    assert.equal(pairs.length, 3);
    assert.ok(log.length > 0);
    assert.ok(log.every((line) => /[?&]stale/.test(line)), log.join("\n"));
    const [, consistent] = await requests(() =>
      all(store, "big/d01", { limit: 3 })
    );
    assert.ok(
      consistent.every((line) => /[?&]consistent/.test(line)),
      consistent.join("\n"),
    );
  });
});
