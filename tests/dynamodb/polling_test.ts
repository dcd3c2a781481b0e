// The conformance kit on a DynamoDB table without a stream: watches poll and
// lock waiters back off with jitter, and the whole contract still holds.
import { after, before, describe, test } from "node:test";
import { CreateTableCommand } from "@aws-sdk/client-dynamodb";
import { openStore } from "../../mod.ts";
import { tableDefinition } from "../../backends/dynamodb/table.ts";
import { conformance } from "../../testing/mod.ts";
import {
  type DynamoDBService,
  LOCAL_CREDENTIALS,
  localClient,
  startDynamoDB,
} from "../services/dynamodb.ts";

let dynamodb: DynamoDBService;

before(async () => {
  dynamodb = await startDynamoDB();
  // The store's schema, created by hand without StreamSpecification.
  await localClient(dynamodb).send(
    new CreateTableCommand(tableDefinition("polled", false)),
  );
});

after(async () => {
  await dynamodb?.stop();
});

conformance({ describe, test }, {
  name: "dynamodb without a stream",
  open: (options) =>
    openStore(dynamodb.url("polled"), {
      ...options,
      ...LOCAL_CREDENTIALS,
      // Polling ten times a second keeps the kit quick; the default is 1 s.
      pollInterval: 100,
    }),
});
