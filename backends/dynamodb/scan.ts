/**
 * `scan`: one page of a tree in key order, read with memory bounded by the
 * page.
 *
 * A tree under a `dir` is one partition's sort-key range (see `items.ts`),
 * and DynamoDB sorts string sort keys by their UTF-8 bytes, which is the
 * scan's order. So a page is a Query of `key BETWEEN :low AND :high`, in the
 * scan's direction, with `Limit`, continued from `LastEvaluatedKey` only
 * while DynamoDB's filter drops tombstones and expired keys. The whole
 * keyspace of a store without prefix spans every partition, which no Query
 * can order: that page is a Scan of the table that keeps only the page's
 * best candidates.
 *
 * @module
 */

import {
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
  ScanCommand,
  type ScanCommandInput,
} from "@aws-sdk/client-dynamodb";
import type { DriverReadOptions, Entry, ScanRange } from "../../core/driver.ts";
import { compareKeys } from "../../core/keys.ts";
import { inRange } from "../../core/scan.ts";
import { type Context, tracked } from "./context.ts";
import {
  ATTR,
  attributeNames,
  attributeValues,
  both,
  IS_LIVE,
  type Item,
  num,
  partitionOf,
  readItem,
  str,
} from "./items.ts";
import { observe } from "./reads.ts";

/**
 * The most items a follow-up Query reads beyond what the page still needs.
 * It grows with the dead items (tombstones, expired keys, bounds) seen so
 * far, so a long run of tombstones takes a few round trips rather than one
 * per page's worth, while a page never holds more than this many extra
 * entries.
 */
export const MAX_READ_AHEAD = 1000;

/** What a keys-only page reads: no value (it may be 400 KB an item). */
const KEYS_ONLY = [ATTR.key, ATTR.version, ATTR.expiresAt]
  .map((name) => `#${name}`).join(", ");

/** Where a page lies, as bounds on the sort key. */
interface Bounds {
  /** The partition holding the whole range, if one does. */
  partition?: string;
  /** The lowest key the range may hold, if bounded. */
  low?: string;
  /** Whether `low` itself is out of the range. */
  lowExclusive: boolean;
  /** Above every key of the range (exclusive), if bounded. */
  high?: string;
}

/**
 * One page of `range`: its first `limit` live entries in UTF-8 byte order of
 * their keys (descending when `reverse`).
 */
export async function scanPage(
  ctx: Context,
  range: ScanRange,
  options: DriverReadOptions,
): Promise<Entry[]> {
  const bounds = boundsOf(range);
  if (
    bounds.low !== undefined && bounds.high !== undefined &&
    compareKeys(bounds.low, bounds.high) >= 0
  ) return [];
  return bounds.partition === undefined
    ? await scanTable(ctx, range, bounds, options)
    : await queryPartition(ctx, range, bounds, bounds.partition, options);
}

function boundsOf(range: ScanRange): Bounds {
  const { dir } = range;
  let low: string | undefined;
  let lowExclusive = false;
  let high: string | undefined;
  if (dir !== "") {
    if (!dir.endsWith("/")) {
      throw new Error(`scan of a dir without '/': ${dir}`);
    }
    low = dir;
    // Every key starting with "a/b/" sorts below "a/b0" ('0' follows '/').
    high = dir.slice(0, -1) + "0";
  }
  if (
    range.lower !== undefined &&
    (low === undefined || compareKeys(range.lower, low) > 0)
  ) {
    low = range.lower;
    lowExclusive = !range.lowerInclusive;
  }
  if (
    range.upper !== undefined &&
    (high === undefined || compareKeys(range.upper, high) < 0)
  ) {
    high = range.upper;
  }
  let partition: string | undefined;
  if (dir !== "") partition = partitionOf(dir);
  else if (low !== undefined && high !== undefined) {
    // Keys starting with "p/" are one stretch of the byte order: a range
    // whose both ends start with it lies in partition p alone, so a root
    // scan between two keys of one subtree is still a Query.
    const first = partitionOf(low);
    const subtree = first + "/";
    if (low.startsWith(subtree) && high.startsWith(subtree)) {
      partition = first;
    }
  }
  return { partition, low, lowExclusive, high };
}

/** The entry of an item as the page read it, or `null` when not live. */
function entryOf(item: Item, now: number, keysOnly: boolean): Entry | null {
  // A keys-only page has no value to read: DynamoDB's filter already kept
  // only items holding one, and readItem still checks their expiry.
  const read = keysOnly ? { ...item, value: { B: new Uint8Array() } } : item;
  return readItem(read, now)?.entry ?? null;
}

async function queryPartition(
  ctx: Context,
  range: ScanRange,
  bounds: Bounds,
  partition: string,
  options: DriverReadOptions,
): Promise<Entry[]> {
  const keyCondition = "#pk = :partition AND #key BETWEEN :low AND :high";
  const projection = range.keysOnly ? KEYS_ONLY : undefined;
  const names = attributeNames(keyCondition, IS_LIVE, projection);
  const base = {
    TableName: ctx.table,
    KeyConditionExpression: keyCondition,
    FilterExpression: IS_LIVE,
    ProjectionExpression: projection,
    ExpressionAttributeNames: names,
    ConsistentRead: options.consistent,
    ScanIndexForward: !range.reverse,
  };
  // BETWEEN includes both ends, and the page starts at one of them: when it
  // is out of the range (a cursor, the exclusive upper bound of a reverse
  // scan) the first Query reads one more, rather than a second Query for
  // the page's last entry.
  const startExclusive = range.reverse || bounds.lowExclusive;
  let readAhead = startExclusive ? 1 : 0;
  let dead = 0;
  const entries: Entry[] = [];
  let start: Item | undefined;
  do {
    options.signal?.throwIfAborted();
    const output: QueryCommandOutput = await ctx.client.send(
      tracked(
        ctx,
        new QueryCommand(
          {
            ...base,
            ExpressionAttributeValues: attributeValues(
              {
                ":partition": str(partition),
                ":low": str(bounds.low!),
                ":high": str(bounds.high!),
                ":now": num(ctx.now()),
              },
              keyCondition,
              IS_LIVE,
            ),
            Limit: range.limit - entries.length + readAhead,
            ExclusiveStartKey: start,
          } as QueryCommandInput,
        ),
      ),
      { abortSignal: options.signal },
    );
    const now = ctx.now();
    let taken = 0;
    for (const item of output.Items ?? []) {
      observe(ctx, item);
      if (entries.length === range.limit) continue;
      const entry = entryOf(item, now, range.keysOnly);
      if (entry && inRange(range, entry.key)) {
        entries.push(entry);
        taken++;
      }
    }
    dead += (output.ScannedCount ?? 0) - taken;
    readAhead = Math.min(dead, MAX_READ_AHEAD);
    start = output.LastEvaluatedKey;
  } while (start && entries.length < range.limit);
  return entries;
}

/**
 * The page of a range no partition holds alone: a Scan of the whole table
 * (DynamoDB filters it to live keys in the bounds), keeping the best
 * `limit` candidates in at most twice that many entries.
 */
async function scanTable(
  ctx: Context,
  range: ScanRange,
  bounds: Bounds,
  options: DriverReadOptions,
): Promise<Entry[]> {
  const limits = [
    bounds.low === undefined
      ? undefined
      : bounds.lowExclusive
      ? "#key > :low"
      : "#key >= :low",
    bounds.high === undefined ? undefined : "#key < :high",
  ].filter((c) => c !== undefined).join(" AND ");
  const filter = limits ? both(IS_LIVE, limits) : IS_LIVE;
  const projection = range.keysOnly ? KEYS_ONLY : undefined;
  const order = range.reverse
    ? (a: Entry, b: Entry) => compareKeys(b.key, a.key)
    : (a: Entry, b: Entry) => compareKeys(a.key, b.key);
  let best: Entry[] = [];
  const keepBest = () => {
    best.sort(order);
    if (best.length > range.limit) best = best.slice(0, range.limit);
  };
  let start: Item | undefined;
  do {
    options.signal?.throwIfAborted();
    const output = await ctx.client.send(
      tracked(
        ctx,
        new ScanCommand(
          {
            TableName: ctx.table,
            FilterExpression: filter,
            ProjectionExpression: projection,
            ExpressionAttributeNames: attributeNames(filter, projection),
            ExpressionAttributeValues: attributeValues(
              {
                ":low": str(bounds.low ?? ""),
                ":high": str(bounds.high ?? ""),
                ":now": num(ctx.now()),
              },
              filter,
            ),
            ConsistentRead: options.consistent,
            ExclusiveStartKey: start,
          } as ScanCommandInput,
        ),
      ),
      { abortSignal: options.signal },
    );
    const now = ctx.now();
    for (const item of output.Items ?? []) {
      observe(ctx, item);
      const entry = entryOf(item, now, range.keysOnly);
      if (entry && inRange(range, entry.key)) best.push(entry);
    }
    if (best.length >= 2 * range.limit) keepBest();
    start = output.LastEvaluatedKey;
  } while (start);
  keepBest();
  return best;
}
