// Faults DynamoDB Local never produces on its own, made visible to the
// store by the SDK's middleware on the real server: an expired shard
// iterator, stream records trimmed away, and a transaction cancelled by a
// conflicting one.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  TrimmedDataAccessException,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBStore } from "../../backends/dynamodb/mod.ts";
import {
  LOCAL_CREDENTIALS,
  localClient,
  readWithin,
  type SpiedRequest,
  spyOn,
  useDynamoDB,
} from "../services/dynamodb.ts";

const local = useDynamoDB("faults");

const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A store whose stream requests go through `hook`. */
async function withStreamHook(
  hook: (request: SpiedRequest, send: () => Promise<void>) => Promise<void>,
): Promise<{ store: DynamoDBStore; requests: SpiedRequest[] }> {
  const streamsClient = new DynamoDBStreamsClient({
    endpoint: local.service.endpoint,
    region: "us-east-1",
    credentials: { ...LOCAL_CREDENTIALS },
  });
  const requests = spyOn(streamsClient, hook);
  const store = await local.open({ streamsClient, streamPollInterval: 50 });
  return { store, requests };
}

async function nextValue(
  reader: ReadableStreamDefaultReader<{ value: Uint8Array } | null>,
): Promise<string | null> {
  const value = await readWithin(reader);
  return value ? decoder.decode(value.value) : null;
}

describe("DynamoDB faults", () => {
  test("an expired shard iterator resumes after the last record, losing nothing", async () => {
    let expire = false;
    const { store, requests } = await withStreamHook(async (request, send) => {
      if (request.command === "GetRecordsCommand" && expire) {
        expire = false;
        // Writes land while the reader has no valid iterator.
        await store.put("expired/k", "2");
        await store.put("expired/k", "3");
        throw new ExpiredIteratorException({
          message: "Iterator expired",
          $metadata: {},
        });
      }
      await send();
    });
    const reader = store.watch("expired/k").getReader();
    assert.equal(await nextValue(reader), null);
    await store.put("expired/k", "1");
    assert.equal(await nextValue(reader), "1");
    expire = true;
    assert.equal(await nextValue(reader), "2");
    assert.equal(await nextValue(reader), "3");
    const resumed = requests.filter((r) =>
      r.command === "GetShardIteratorCommand" &&
      r.input.ShardIteratorType === "AFTER_SEQUENCE_NUMBER"
    );
    assert.equal(resumed.length, 1);
    await reader.cancel();
  });

  test("records trimmed away make watches re-read what they watch", async () => {
    let trim = false;
    const { store, requests } = await withStreamHook(async (request, send) => {
      if (request.command === "GetRecordsCommand" && trim) {
        trim = false;
        await store.put("trimmed/k", "lost from the stream");
        await sleep(100);
        throw new TrimmedDataAccessException({
          message: "Records trimmed",
          $metadata: {},
        });
      }
      await send();
    });
    const reader = store.watch("trimmed/k").getReader();
    assert.equal(await nextValue(reader), null);
    // The write lands while the reader loses its place; it resumes at the
    // tip, past the write's record: only a re-read can see the write.
    trim = true;
    assert.equal(await nextValue(reader), "lost from the stream");
    assert.ok(requests.some((r) =>
      r.command === "GetShardIteratorCommand" &&
      r.input.ShardIteratorType === "LATEST"
    ));
    await reader.cancel();
  });

  test("a transaction cancelled by a conflicting one is sent again", async () => {
    const client = localClient(local.service);
    let conflicts = 2;
    const requests = spyOn(client, async (request, send) => {
      if (request.command === "TransactWriteItemsCommand" && conflicts > 0) {
        conflicts--;
        throw new TransactionCanceledException({
          message: "Transaction cancelled [TransactionConflict, None]",
          $metadata: {},
          CancellationReasons: [{ Code: "TransactionConflict" }, {
            Code: "None",
          }],
        });
      }
      await send();
    });
    const store = await local.open({ client });
    const result = await store.atomic().put("conflict/a", "a").put(
      "conflict/b",
      "b",
    ).commit();
    assert.equal(result.ok, true);
    assert.equal(
      requests.filter((r) => r.command === "TransactWriteItemsCommand").length,
      3,
    );
    assert.equal(decoder.decode((await store.get("conflict/b"))!.value), "b");
  });
});
