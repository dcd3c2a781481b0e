/**
 * Reads: one key with GetItem, a tree with a Query of its partition's
 * sort-key range, page after page (DynamoDB returns at most 1 MB a page).
 * Only the whole table (`list("")` of a store without prefix) is a Scan.
 *
 * @module
 */

import {
  GetItemCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
} from "@aws-sdk/client-dynamodb";
import type { Entry } from "../../core/driver.ts";
import { type Context, tracked } from "./context.ts";
import {
  attributeNames,
  attributeValues,
  dataKey,
  IS_LIVE,
  type Item,
  num,
  partitionOf,
  readItem,
  str,
} from "./items.ts";

/** The raw data item of `key` (also a tombstone), or `undefined`. */
export async function getItem(
  ctx: Context,
  key: string,
  options: { consistent: boolean; signal?: AbortSignal },
): Promise<Item | undefined> {
  const output = await ctx.client.send(
    tracked(
      ctx,
      new GetItemCommand({
        TableName: ctx.table,
        Key: dataKey(key),
        ConsistentRead: options.consistent,
      }),
    ),
    { abortSignal: options.signal },
  );
  if (output.Item) observe(ctx, output.Item);
  return output.Item;
}

/** Options of {@linkcode treePages}. */
export interface TreeOptions {
  /** Strongly consistent reads. */
  consistent: boolean;
  /** Only live values (DynamoDB filters tombstones and expired keys out). */
  liveOnly?: boolean;
  /** Only items with a value, live or expired (what `deleteTree` removes). */
  withValue?: boolean;
  /** Read only these attributes. */
  attributes?: string[];
  /** Aborts between and during pages. */
  signal?: AbortSignal;
}

/**
 * The data items whose key starts with `dir`, a page at a time: a Query of
 * the partition of `dir`, or a Scan of the table for `dir === ""` (lock items
 * have no value, and are left out by the filters and by `readItem`).
 */
export async function* treePages(
  ctx: Context,
  dir: string,
  options: TreeOptions,
): AsyncGenerator<Item[]> {
  const filter = options.liveOnly
    ? IS_LIVE
    : options.withValue
    ? "attribute_exists(#value)"
    : dir === ""
    ? "attribute_exists(#version)"
    : undefined;
  const projection = options.attributes?.map((name) => `#${name}`).join(", ");
  const keyCondition = dir === ""
    ? undefined
    : "#pk = :partition AND begins_with(#key, :dir)";
  const values = attributeValues(
    {
      ":partition": str(partitionOf(dir)),
      ":dir": str(dir),
      ":now": num(ctx.now()),
    },
    keyCondition,
    filter,
  );
  const names = attributeNames(keyCondition, filter, projection);
  const base = {
    TableName: ctx.table,
    ConsistentRead: options.consistent,
    FilterExpression: filter,
    ProjectionExpression: projection,
    ExpressionAttributeNames: Object.keys(names).length ? names : undefined,
    ExpressionAttributeValues: values,
  };
  let start: Item | undefined;
  do {
    options.signal?.throwIfAborted();
    const output = keyCondition === undefined
      ? await ctx.client.send(
        tracked(
          ctx,
          new ScanCommand(
            { ...base, ExclusiveStartKey: start } as ScanCommandInput,
          ),
        ),
        { abortSignal: options.signal },
      )
      : await ctx.client.send(
        tracked(
          ctx,
          new QueryCommand(
            {
              ...base,
              KeyConditionExpression: keyCondition,
              ExclusiveStartKey: start,
            } as QueryCommandInput,
          ),
        ),
        { abortSignal: options.signal },
      );
    const items = output.Items ?? [];
    for (const item of items) observe(ctx, item);
    yield items;
    start = output.LastEvaluatedKey;
  } while (start);
}

/** Every live entry whose key starts with `dir`. */
export async function listEntries(
  ctx: Context,
  dir: string,
  options: { consistent: boolean; signal?: AbortSignal },
): Promise<Entry[]> {
  const entries: Entry[] = [];
  for await (
    const page of treePages(ctx, dir, { ...options, liveOnly: true })
  ) {
    const now = ctx.now();
    for (const item of page) {
      const entry = readItem(item, now)?.entry;
      if (entry) entries.push(entry);
    }
  }
  return entries;
}

/** Every data item whose key starts with `dir`, tombstones too. */
export async function listItems(
  ctx: Context,
  dir: string,
  options: { consistent: boolean; signal?: AbortSignal },
): Promise<Item[]> {
  const items: Item[] = [];
  for await (const page of treePages(ctx, dir, options)) items.push(...page);
  return items;
}

/**
 * Moves this process's clock past an item's version: versions written by
 * other clients then need no retry of this process's next write.
 */
export function observe(ctx: Context, item: Item): void {
  const version = item.version?.N;
  if (version !== undefined) ctx.clock.observe(BigInt(version));
}
