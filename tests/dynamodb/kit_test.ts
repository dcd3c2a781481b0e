// The conformance kit on AWS's DynamoDB Local, opened by URL as users do,
// with watches and lock waiters on the table's stream.
import { after, before, describe, test } from "node:test";
import { openStore } from "../../mod.ts";
import { conformance } from "../../testing/mod.ts";
import { type DynamoDBService, startDynamoDB } from "../services/dynamodb.ts";

// DynamoDB Local takes any credentials; the SDK needs some to sign with.
const credentials = { accessKeyId: "local", secretAccessKey: "local" };

let dynamodb: DynamoDBService;

before(async () => {
  dynamodb = await startDynamoDB();
});

after(async () => {
  await dynamodb?.stop();
});

conformance({ describe, test }, {
  name: "dynamodb",
  open: (options) =>
    openStore(dynamodb.url("conformance"), {
      ...options,
      ...credentials,
      createTable: true,
    }),
  openUnreachable: (connectTimeout) =>
    openStore(
      "dynamodb://unreachable?endpoint=http%3A%2F%2F127.0.0.1%3A1&region=us-east-1",
      { ...credentials, connectTimeout },
    ),
});
