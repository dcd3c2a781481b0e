// The DynamoDB backend's native scan and batch calls, proved by the
// requests the store sends (counted through the SDK's middleware): a page is
// a bounded Query of the tree's sort-key range, a root scan merges every
// partition in byte order, and a chunk of 100 keys is one batch request.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import type { DynamoDBStore } from "../../backends/dynamodb/mod.ts";
import { compareKeys } from "../../core/keys.ts";
import {
  localClient,
  readWithin,
  type SpiedRequest,
  spyOn,
  useDynamoDB,
} from "../services/dynamodb.ts";

const local = useDynamoDB("scans");

const decoder = new TextDecoder();
const TREE_KEYS = 2000;

/** A store whose every DynamoDB request is recorded. */
async function spiedStore(
  options: { table?: string; prefix?: string } = {},
  hook?: (request: SpiedRequest, send: () => Promise<void>) => Promise<void>,
): Promise<{ store: DynamoDBStore; requests: SpiedRequest[] }> {
  const client = localClient(local.service);
  const requests = spyOn(client, hook);
  const store = await local.open({ client, watchMode: "polling", ...options });
  return { store, requests };
}

function named(requests: SpiedRequest[], command: string): SpiedRequest[] {
  return requests.filter((r) => r.command === command);
}

async function keysOf(
  store: DynamoDBStore,
  prefix: string,
  options: Parameters<DynamoDBStore["scan"]>[1],
): Promise<string[]> {
  const keys: string[] = [];
  for await (const pair of store.scan(prefix, options)) keys.push(pair.key);
  return keys;
}

const padded = (i: number) => `big/k${String(i).padStart(5, "0")}`;

describe("DynamoDB native scan", () => {
  test("a page of 10 from a tree of 2000 keys is one Query of 10 items", async () => {
    const { store, requests } = await spiedStore();
    await store.putMany(
      Array.from({ length: TREE_KEYS }, (_, i) => ({
        key: padded(i),
        value: `v${i}`,
      })),
    );
    // Neighbours in the same partition, on both sides of the tree.
    await store.put("big", "the tree's own key");
    await store.put("big0", "after the tree");
    requests.length = 0;

    const first = store.scan("big", { limit: 10 });
    const pairs = [];
    for await (const pair of first) pairs.push(pair);
    assert.deepEqual(
      pairs.map((p) => p.key),
      Array.from({ length: 10 }, (_, i) => padded(i)),
    );
    assert.equal(decoder.decode(pairs[3].value), "v3");
    let queries = named(requests, "QueryCommand");
    assert.equal(queries.length, 1);
    assert.equal(requests.length, 1, "no Scan, no other read");
    assert.equal(queries[0].input.Limit, 10);
    assert.equal(queries[0].input.ScanIndexForward, true);
    assert.equal(queries[0].output!.ScannedCount, 10);

    // The next page starts after the cursor's key: it reads that key again
    // at most, within the same Query.
    requests.length = 0;
    const next = await keysOf(store, "big", {
      limit: 10,
      cursor: first.cursor,
    });
    assert.deepEqual(
      next,
      Array.from({ length: 10 }, (_, i) => padded(10 + i)),
    );
    queries = named(requests, "QueryCommand");
    assert.equal(queries.length, 1);
    assert.equal(queries[0].input.Limit, 11);
    assert.ok((queries[0].output!.ScannedCount as number) <= 11);
  });

  test("reverse pages are Queries backwards from the upper bound", async () => {
    const { store, requests } = await spiedStore();
    const keys = await keysOf(store, "big", {
      reverse: true,
      limit: 5,
      end: padded(1500),
    });
    assert.deepEqual(keys, [1499, 1498, 1497, 1496, 1495].map(padded));
    const queries = named(requests, "QueryCommand");
    assert.equal(queries.length, 1);
    assert.equal(queries[0].input.ScanIndexForward, false);
    assert.ok((queries[0].output!.ScannedCount as number) <= 6);

    // The last keys of the tree, not "big0" beyond it.
    requests.length = 0;
    const last = await keysOf(store, "big", { reverse: true, limit: 3 });
    assert.deepEqual(last, [1999, 1998, 1997].map(padded));
    assert.equal(named(requests, "QueryCommand").length, 1);
  });

  test("keysOnly pages leave the values out of what DynamoDB returns", async () => {
    const { store, requests } = await spiedStore();
    const pairs = [];
    for await (
      const pair of store.scan("big", { keysOnly: true, limit: 4 })
    ) pairs.push(pair);
    assert.deepEqual(pairs.map((p) => p.key), [0, 1, 2, 3].map(padded));
    assert.ok(pairs.every((p) => p.value.length === 0 && p.lastIndex > 0n));
    const [query] = named(requests, "QueryCommand");
    assert.ok(query.input.ProjectionExpression);
    const items = query.output!.Items as Array<Record<string, unknown>>;
    assert.ok(items.every((item) => !("value" in item)));
  });

  test("a run of tombstones and expired keys is skipped in a few Queries", async () => {
    const { store, requests } = await spiedStore({ table: "tombstones" });
    await store.putMany(
      Array.from({ length: 1200 }, (_, i) => ({
        key: `t/k${String(i).padStart(5, "0")}`,
        value: "x",
        ...(i >= 1000 && i < 1100 ? { ttl: 200 } : {}),
      })),
    );
    // Keys 10 to 999 deleted, 1000 to 1099 expired: 1090 dead in a row.
    await store.deleteMany(
      Array.from(
        { length: 990 },
        (_, i) => `t/k${String(10 + i).padStart(5, "0")}`,
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    requests.length = 0;
    const keys = await keysOf(store, "t", { limit: 15 });
    assert.deepEqual(
      keys,
      [
        ...Array.from({ length: 10 }, (_, i) => i),
        ...Array.from({ length: 5 }, (_, i) => 1100 + i),
      ].map((i) => `t/k${String(i).padStart(5, "0")}`),
    );
    const queries = named(requests, "QueryCommand");
    // The read-ahead grows with the dead items seen: a handful of round
    // trips, not one per 5 items (over 200).
    assert.ok(queries.length <= 12, `${queries.length} Queries`);
    const limits = queries.map((q) => q.input.Limit as number);
    assert.equal(limits[0], 15);
    assert.ok(limits.at(-1)! > 100, `Limits ${limits}`);
    const scanned = queries.reduce(
      (sum, q) => sum + (q.output!.ScannedCount as number),
      0,
    );
    assert.ok(scanned <= 15 + 1090 + 1000, `${scanned} items read`);
  });

  test("a root scan merges every partition in UTF-8 byte order", async () => {
    const { store, requests } = await spiedStore({ table: "rootscan" });
    // Partitions interleave: "a" < "a!" < "a/x" < "a0" by bytes, and "é"
    // (two bytes) sorts above "z", though "\uFFFD" and "😀" are UTF-16
    // neighbours the other way round.
    const keys = [
      "b",
      "a!",
      "a/x",
      "a",
      "a0/y",
      "é",
      "a/é",
      "z/1",
      "\uFFFD",
      "😀/1",
      "a/x/deep",
    ];
    await store.putMany(keys.map((key) => ({ key, value: key })));
    const sorted = [...keys].sort(compareKeys);
    for (const batchSize of [1, 2, 3, 100]) {
      assert.deepEqual(await keysOf(store, "", { batchSize }), sorted);
      assert.deepEqual(
        await keysOf(store, "", { batchSize, reverse: true }),
        [...sorted].reverse(),
      );
    }
    assert.deepEqual(await keysOf(store, "", { start: "a0", limit: 3 }), [
      "a0/y",
      "b",
      "z/1",
    ]);
    assert.deepEqual(
      await keysOf(store, "", { end: "a/x", reverse: true, limit: 2 }),
      // "a/é" sorts above "a/x": 0xC3 follows 'x'.
      ["a!", "a"],
    );
    assert.ok(named(requests, "ScanCommand").length > 0);

    // Bounds inside one subtree keep a root scan to its partition.
    requests.length = 0;
    assert.deepEqual(
      await keysOf(store, "", { start: "a/a", end: "a/z" }),
      ["a/x", "a/x/deep"],
    );
    assert.equal(named(requests, "ScanCommand").length, 0);
    assert.equal(named(requests, "QueryCommand").length, 1);
  });
});

describe("DynamoDB native batch calls", () => {
  const keys = Array.from({ length: 100 }, (_, i) => `batch/k${i}`);

  test("putMany of 100 keys is one transaction at each key's lastIndex", async () => {
    const { store, requests } = await spiedStore();
    const indexes = await store.putMany(
      keys.map((key, i) => ({ key, value: `v${i}` })),
    );
    const writes = requests.filter((r) => r.command !== "DescribeTableCommand");
    assert.deepEqual(writes.map((r) => r.command), [
      "TransactWriteItemsCommand",
    ]);
    const items = writes[0].input.TransactItems as unknown[];
    assert.equal(items.length, 100);
    for (const [i, key] of keys.entries()) {
      const pair = await store.get(key);
      assert.equal(decoder.decode(pair!.value), `v${i}`);
      assert.equal(pair!.lastIndex, indexes[i]);
    }
    // Above the versions written before, as a single put would be.
    const again = await store.putMany([{ key: keys[0], value: "w" }, {
      key: keys[1],
      value: "w",
    }]);
    assert.ok(again[0] > indexes[0] && again[1] > indexes[1]);
  });

  test("putMany of large values splits into transactions under 4 MB", async () => {
    const { store, requests } = await spiedStore();
    const big = Array.from({ length: 12 }, (_, i) => ({
      key: `large/k${i}`,
      value: new Uint8Array(store.limits.maxValueBytes).fill(i),
    }));
    const indexes = await store.putMany(big);
    const writes = named(requests, "TransactWriteItemsCommand");
    assert.deepEqual(
      writes.map((w) => (w.input.TransactItems as unknown[]).length),
      [10, 2],
    );
    const pairs = await store.getMany(big.map((b) => b.key));
    pairs.forEach((pair, i) => {
      assert.equal(pair!.lastIndex, indexes[i]);
      assert.equal(pair!.value.length, store.limits.maxValueBytes);
      assert.equal(pair!.value[0], i);
    });
  });

  test("getMany of 100 keys is one BatchGetItem, in the order asked", async () => {
    const { store, requests } = await spiedStore();
    const asked = [...keys.slice(2, 97), "batch/absent1", "batch/absent2"]
      .reverse();
    asked.push(keys[0], keys[1], "batch/absent3");
    assert.equal(asked.length, 100);
    const pairs = await store.getMany(asked);
    const reads = requests.filter((r) => r.command !== "DescribeTableCommand");
    assert.deepEqual(reads.map((r) => r.command), ["BatchGetItemCommand"]);
    for (const [i, key] of asked.entries()) {
      if (key.startsWith("batch/absent")) assert.equal(pairs[i], null, key);
      else assert.equal(pairs[i]!.key, key);
    }
    assert.equal(decoder.decode(pairs[97]!.value), "w");
    assert.equal(
      decoder.decode(pairs.find((p) => p?.key === "batch/k50")!.value),
      "v50",
    );
  });

  test("keys DynamoDB leaves unprocessed are asked again, only those", async () => {
    let throttle = true;
    const { store, requests } = await spiedStore({}, async (request, send) => {
      await send();
      if (request.command !== "BatchGetItemCommand" || !throttle) return;
      throttle = false;
      // As DynamoDB answers a throttled batch: some items, the rest to ask.
      const output = request.output as {
        Responses: Record<string, Array<Record<string, { S?: string }>>>;
        UnprocessedKeys?: Record<string, { Keys: unknown[] }>;
      };
      const [table] = Object.keys(output.Responses);
      const items = output.Responses[table];
      const held = items.splice(0, 30);
      output.UnprocessedKeys = {
        [table]: {
          Keys: held.map((item) => ({ pk: item.pk, key: item.key })),
        },
      };
    });
    const pairs = await store.getMany(keys);
    assert.deepEqual(pairs.map((p) => p?.key), keys);
    const batches = named(requests, "BatchGetItemCommand");
    assert.equal(batches.length, 2);
    const retried = batches[1].input.RequestItems as Record<
      string,
      { Keys: unknown[] }
    >;
    assert.equal(Object.values(retried)[0].Keys.length, 30);
  });

  test("deleteMany leaves tombstones only for keys that held a value", async () => {
    const { store, requests } = await spiedStore();
    const gone = [...keys.slice(0, 60), "batch/never-there"];
    await store.deleteMany(gone);
    const writes = named(requests, "TransactWriteItemsCommand");
    // The first is cancelled by the absent key, the second lands.
    assert.equal(writes.length, 2);
    assert.equal((writes[1].input.TransactItems as unknown[]).length, 60);
    assert.deepEqual(
      (await store.getMany(gone)).filter((p) => p !== null),
      [],
    );
    assert.equal((await store.list("batch")).length, 40);
    const raw = await localClient(local.service).send(
      new GetItemCommand({
        TableName: "scans",
        Key: { pk: { S: "batch" }, key: { S: "batch/never-there" } },
        ConsistentRead: true,
      }),
    );
    assert.equal(raw.Item, undefined, "no tombstone for an absent key");
  });

  test("a tree watch on the stream hears batch writes", async () => {
    const store = await local.open({ streamPollInterval: 50 });
    const reader = store.watchTree("heard").getReader();
    const snapshot = async () =>
      (await readWithin(reader)).map((p) =>
        `${p.key}=${decoder.decode(p.value)}`
      );
    assert.deepEqual(await snapshot(), []);
    await store.putMany([{ key: "heard/a", value: "1" }, {
      key: "heard/b",
      value: "2",
    }]);
    let seen = await snapshot();
    while (seen.length < 2) seen = await snapshot();
    assert.deepEqual(seen, ["heard/a=1", "heard/b=2"]);
    await store.deleteMany(["heard/a", "heard/b"]);
    while (seen.length > 0) seen = await snapshot();
    await reader.cancel();
  });
});
