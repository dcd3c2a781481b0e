/**
 * The table: checking that it has the schema of the item model, and
 * creating it (with its stream and TTL) when asked to.
 *
 * @module
 */

import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
  type TableDescription,
  UpdateTimeToLiveCommand,
} from "@aws-sdk/client-dynamodb";
import { delay } from "../../core/abort.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { errorName, isNotFound } from "./errors.ts";
import { ATTR } from "./items.ts";

/** What the store needs to know of its table. */
export interface TableInfo {
  /** The ARN of the table's enabled stream, if it has one. */
  streamArn?: string;
  /** What its stream records carry (`NEW_AND_OLD_IMAGES`, `KEYS_ONLY`...). */
  streamViewType?: string;
}

/**
 * How often to ask whether a table being created is active. DynamoDB
 * creates an on-demand table in seconds; DynamoDB Local at once.
 */
const TABLE_STATUS_POLL_MS = 250;

/** DynamoDB's rule for table names. */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

/** Throws `InvalidConfigurationError` unless `name` is a valid table name. */
export function checkTableName(name: unknown): string {
  if (typeof name !== "string" || !TABLE_NAME.test(name)) {
    throw new InvalidConfigurationError(
      `The DynamoDB table name ${
        JSON.stringify(name)
      } is not valid: 3 to 255 letters, digits, '_', '-' or '.'`,
    );
  }
  return name;
}

/**
 * Finds the table, creating it when `create` is set, and waits until it is
 * active. A table without the item model's key schema is refused.
 */
export async function openTable(
  client: DynamoDBClient,
  table: string,
  options: { create: boolean; signal: AbortSignal },
): Promise<TableInfo> {
  const { signal } = options;
  let description = await describe(client, table, signal);
  if (description === undefined) {
    if (!options.create) {
      throw new InvalidConfigurationError(
        `The DynamoDB table ${
          JSON.stringify(table)
        } does not exist (set createTable to create it)`,
      );
    }
    description = await create(client, table, signal);
  }
  while (description.TableStatus !== "ACTIVE") {
    if (description.TableStatus === "DELETING") {
      throw new InvalidConfigurationError(
        `The DynamoDB table ${JSON.stringify(table)} is being deleted`,
      );
    }
    await delay(TABLE_STATUS_POLL_MS, signal);
    description = await describe(client, table, signal);
    if (description === undefined) {
      throw new InvalidConfigurationError(
        `The DynamoDB table ${JSON.stringify(table)} disappeared`,
      );
    }
  }
  checkSchema(table, description);
  const stream = description.StreamSpecification;
  return stream?.StreamEnabled && description.LatestStreamArn
    ? {
      streamArn: description.LatestStreamArn,
      streamViewType: stream.StreamViewType,
    }
    : {};
}

async function describe(
  client: DynamoDBClient,
  table: string,
  signal: AbortSignal,
): Promise<TableDescription | undefined> {
  try {
    const output = await client.send(
      new DescribeTableCommand({ TableName: table }),
      { abortSignal: signal },
    );
    return output.Table;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * The table a store works on: pay per request, partition key `pk` and sort
 * key `key` (both strings), and, with `stream`, a stream of new and old
 * images. For creating one by hand, as the tests do.
 *
 * @param table The table's name.
 * @param stream Whether to enable the stream the watches read.
 * @returns The `CreateTable` request.
 */
export function tableDefinition(
  table: string,
  stream: boolean,
): CreateTableCommandInput {
  return {
    TableName: table,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [
      { AttributeName: ATTR.partition, AttributeType: "S" },
      { AttributeName: ATTR.key, AttributeType: "S" },
    ],
    KeySchema: [
      { AttributeName: ATTR.partition, KeyType: "HASH" },
      { AttributeName: ATTR.key, KeyType: "RANGE" },
    ],
    ...(stream
      ? {
        StreamSpecification: {
          StreamEnabled: true,
          StreamViewType: "NEW_AND_OLD_IMAGES",
        },
      }
      : {}),
  };
}

/**
 * Creates the table on demand (pay per request), with a stream of new and
 * old images (watches and lock waiters hear changes from it) and TTL on the
 * `ttl` attribute (DynamoDB then removes tombstones and expired keys).
 */
async function create(
  client: DynamoDBClient,
  table: string,
  signal: AbortSignal,
): Promise<TableDescription> {
  let description: TableDescription | undefined;
  try {
    const output = await client.send(
      new CreateTableCommand(tableDefinition(table, true)),
      { abortSignal: signal },
    );
    description = output.TableDescription;
  } catch (error) {
    // Another client created it first: use theirs.
    if (errorName(error) !== "ResourceInUseException") throw error;
  }
  description ??= await describe(client, table, signal);
  if (!description) {
    throw new InvalidConfigurationError(
      `The DynamoDB table ${JSON.stringify(table)} could not be created`,
    );
  }
  while (description.TableStatus === "CREATING") {
    await delay(TABLE_STATUS_POLL_MS, signal);
    description = await describe(client, table, signal) ?? description;
  }
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: table,
        TimeToLiveSpecification: { Enabled: true, AttributeName: ATTR.ttl },
      }),
      { abortSignal: signal },
    );
  } catch (error) {
    // A concurrent creator already enabled it.
    if (!/already enabled/i.test(String((error as Error).message))) {
      throw error;
    }
  }
  return description;
}

function checkSchema(table: string, description: TableDescription): void {
  const keys = description.KeySchema ?? [];
  const types = new Map(
    (description.AttributeDefinitions ?? []).map((
      d,
    ) => [d.AttributeName, d.AttributeType]),
  );
  const hash = keys.find((k) => k.KeyType === "HASH")?.AttributeName;
  const range = keys.find((k) => k.KeyType === "RANGE")?.AttributeName;
  if (
    hash !== ATTR.partition || range !== ATTR.key ||
    types.get(hash) !== "S" || types.get(range) !== "S"
  ) {
    throw new InvalidConfigurationError(
      `The DynamoDB table ${
        JSON.stringify(table)
      } does not have this store's key schema: partition key "${ATTR.partition}" (S) and sort key "${ATTR.key}" (S)`,
    );
  }
}
