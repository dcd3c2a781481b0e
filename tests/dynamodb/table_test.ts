// The DynamoDB backend's item model on DynamoDB Local: what it stores, what
// it reads, how versions and TTLs are kept, and how it batches.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  BatchWriteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { InvalidArgumentError } from "../../mod.ts";
import { localClient, spyOn, useDynamoDB } from "../services/dynamodb.ts";

const local = useDynamoDB("model");
const open = local.open;

function rawGet(key: string, table = "model") {
  const slash = key.indexOf("/");
  return localClient(local.service).send(
    new GetItemCommand({
      TableName: table,
      Key: {
        pk: { S: slash < 0 ? key : key.slice(0, slash) },
        key: { S: key },
      },
      ConsistentRead: true,
    }),
  );
}

/**
 * Writes items as another tool would (BatchWriteItem, 25 at a time, a few
 * in flight): faster than the store's conditional writes on DynamoDB Local,
 * which takes a few hundred of those a second.
 */
async function seed(client: DynamoDBClient, keys: string[]): Promise<void> {
  const batches: string[][] = [];
  for (let i = 0; i < keys.length; i += 25) batches.push(keys.slice(i, i + 25));
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < batches.length) {
      const batch = batches[next++];
      await client.send(
        new BatchWriteItemCommand({
          RequestItems: {
            model: batch.map((key) => ({
              PutRequest: {
                Item: {
                  pk: { S: key.slice(0, key.indexOf("/")) },
                  key: { S: key },
                  value: { B: new TextEncoder().encode(key) },
                  version: { N: "1" },
                },
              },
            })),
          },
        }),
      );
    }
  }));
}

describe("the DynamoDB item model", () => {
  test("each key is one item a plain client reads: the key as text, the bytes as put", async () => {
    const store = await open({ prefix: "app" });
    const bytes = new Uint8Array([0, 255, 1, 128]);
    await store.put("raw/a/b", bytes);
    const pair = (await store.get("raw/a/b"))!;
    const { Item } = await rawGet("app/raw/a/b");
    assert.equal(Item?.pk.S, "app");
    assert.equal(Item?.key.S, "app/raw/a/b");
    assert.deepEqual(Item?.value.B, bytes);
    assert.equal(Item?.version.N, String(pair.lastIndex));
    assert.equal(Item?.expiresAt, undefined);
  });

  test(
    "list of a small subtree in a table of thousands of items reads only that subtree",
    { timeout: 120_000 },
    async () => {
      const client = localClient(local.service);
      const store = await open({ client });
      // 5,000 items in one partition ("big") and 1,000 in others; the subtree
      // "big/small" holds 10 of them.
      const keys = [
        ...Array.from({ length: 4_990 }, (_, i) => `big/k${i}`),
        ...Array.from({ length: 10 }, (_, i) => `big/small/k${i}`),
        ...Array.from({ length: 1_000 }, (_, i) => `other${i % 10}/k${i}`),
      ];
      await seed(client, keys);
      const requests = spyOn(client, async (request, send) => {
        request.input = { ...request.input, ReturnConsumedCapacity: "TOTAL" };
        await send();
      });
      const small = await store.list("big/small");
      assert.equal(small.length, 10);
      assert.deepEqual(requests.map((r) => r.command), ["QueryCommand"]);
      const read = requests[0].output as {
        ScannedCount: number;
        ConsumedCapacity: { CapacityUnits: number };
      };
      assert.equal(read.ScannedCount, 10, "items read");
      assert.ok(read.ConsumedCapacity.CapacityUnits <= 1, "one read unit");
      // The contrast: the whole partition.
      requests.length = 0;
      assert.equal((await store.list("big")).length, 5_000);
      const scanned = requests.reduce(
        (sum, r) => sum + (r.output?.ScannedCount as number),
        0,
      );
      assert.equal(scanned, 5_000);
      assert.ok(requests.every((r) => r.command === "QueryCommand"));
    },
  );

  test("lastIndex never restarts: a deleted key's tombstone keeps its version", async () => {
    const store = await open();
    await store.put("versions/k", "one");
    const first = (await store.get("versions/k"))!.lastIndex;
    // A writer whose clock runs an hour ahead writes the key.
    const ahead = first + 3_600_000_000n;
    await localClient(local.service).send(
      new PutItemCommand({
        TableName: "model",
        Item: {
          pk: { S: "versions" },
          key: { S: "versions/k" },
          value: { B: new Uint8Array([1]) },
          version: { N: String(ahead) },
        },
      }),
    );
    await store.delete("versions/k");
    const tombstone = (await rawGet("versions/k")).Item!;
    assert.equal(tombstone.value, undefined, "the tombstone has no value");
    assert.ok(BigInt(tombstone.version.N!) > ahead);
    assert.equal(await store.get("versions/k"), null);
    assert.deepEqual(await store.list("versions"), []);
    // A fresh handle, whose own clock knows nothing of that writer.
    const other = await open();
    await other.put("versions/k", "again");
    const again = (await other.get("versions/k"))!.lastIndex;
    assert.ok(again > BigInt(tombstone.version.N!), `${again} after delete`);
    await other.delete("versions/k");
  });

  test("a ttl sets expiresAt in ms and DynamoDB's ttl in epoch seconds, a retention later", async () => {
    const store = await open({ tombstoneRetention: 60_000 });
    const before = Date.now();
    await store.put("ttl/k", "v", { ttl: 30_000 });
    const item = (await rawGet("ttl/k")).Item!;
    const expiresAt = Number(item.expiresAt.N);
    assert.ok(expiresAt >= before + 30_000 && expiresAt <= Date.now() + 30_000);
    assert.equal(Number(item.ttl.N), Math.ceil((expiresAt + 60_000) / 1000));
    await store.put("ttl/k", "forever");
    const permanent = (await rawGet("ttl/k")).Item!;
    assert.equal(permanent.expiresAt, undefined);
    assert.equal(permanent.ttl, undefined);
    await store.delete("ttl/k");
  });

  test(
    "deleteTree sends the writes DynamoDB left unprocessed again until all are done",
    { timeout: 120_000 },
    async () => {
      const client = localClient(local.service);
      const store = await open({ client });
      await seed(
        client,
        Array.from({ length: 300 }, (_, i) => `throttled/k${i}`),
      );
      assert.equal((await store.list("throttled")).length, 300);
      // DynamoDB under throttling: it takes only the first 10 writes of each
      // batch and hands the rest back as unprocessed.
      let held = 0;
      const requests = spyOn(client, async (request, send) => {
        if (request.command !== "BatchWriteItemCommand") return await send();
        const items = request.input.RequestItems as Record<
          string,
          WriteRequest[]
        >;
        const writes = items.model;
        const rest = writes.slice(10);
        held += rest.length;
        request.input = {
          ...request.input,
          RequestItems: { model: writes.slice(0, 10) },
        };
        await send();
        request.output = {
          ...request.output,
          UnprocessedItems: rest.length ? { model: rest } : {},
        };
      });
      await store.deleteTree("throttled");
      assert.deepEqual(await store.list("throttled"), []);
      const batches = requests.filter((r) =>
        r.command === "BatchWriteItemCommand"
      );
      assert.ok(
        held > 0 && batches.length >= 300 / 10,
        `${batches.length} batches`,
      );
      for (const batch of batches) {
        const writes =
          (batch.input.RequestItems as Record<string, unknown[]>).model;
        assert.ok(writes.length <= 10);
      }
    },
  );

  test("concurrent transactions on the same keys all commit, all or nothing", async () => {
    const client = localClient(local.service);
    const store = await open({ client });
    const requests = spyOn(client);
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          store.atomic().put("tx/a", `${i}`).put("tx/b", `${i}`).commit(),
      ),
    );
    assert.ok(results.every((result) => result.ok));
    // Those that arrived after a higher version were cancelled and sent
    // again above it. How many conflict depends on scheduling (a loaded
    // machine may serialise all twenty), so this counts no conflicts; the
    // checks below hold either way.
    assert.ok(requests.length >= 20, `${requests.length} transactions`);
    const a = (await store.get("tx/a"))!;
    const b = (await store.get("tx/b"))!;
    assert.deepEqual(a.value, b.value, "both keys from the same commit");
    assert.equal(a.lastIndex, b.lastIndex);
    const last = results.reduce(
      (max, r) => r.ok && r.lastIndex > max ? r.lastIndex : max,
      0n,
    );
    assert.equal(a.lastIndex, last, "the last commit's version");
  });

  test("the largest value fits with the longest key and a ttl", async () => {
    const store = await open();
    const key = "x".repeat(store.limits.maxKeyBytes);
    const value = new Uint8Array(store.limits.maxValueBytes).fill(7);
    await store.put(key, value, { ttl: 60_000 });
    assert.deepEqual((await store.get(key))?.value, value);
    await store.atomic().check(key, (await store.get(key))!.lastIndex).put(
      key,
      value,
      { ttl: 60_000 },
    ).commit();
    await store.delete(key);
  });

  test("an atomic operation over DynamoDB's 4 MB is refused before any request", async () => {
    const client = localClient(local.service);
    const store = await open({ client });
    const requests = spyOn(client);
    const op = store.atomic();
    const value = new Uint8Array(store.limits.maxValueBytes);
    // Refused as the step that passes maxAtomicBytes is added.
    assert.throws(() => {
      for (let i = 0; i < 11; i++) op.put(`big-tx/k${i}`, value);
    }, InvalidArgumentError);
    assert.deepEqual(requests, []);
  });
});
