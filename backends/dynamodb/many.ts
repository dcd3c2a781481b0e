/**
 * Batch calls: `getMany` as BatchGetItem, `putMany` and `deleteMany` as
 * TransactWriteItems.
 *
 * Versions come from each write's condition (`version < :version`, see
 * `versions.ts`), and BatchWriteItem takes no conditions: a batch of plain
 * puts could land below a version another client wrote, and a key's
 * `lastIndex` would go back. So batch writes are transactions of the very
 * items and conditions a single `put` or `delete` sends, up to 100 a round
 * trip, all at one version (the commit's), which is each key's new
 * `lastIndex`, as a later `get` reports it. A transaction costs twice the
 * write units of single writes; in exchange a chunk is one round trip and
 * keeps every versioning rule. The writes go to the table like any other,
 * so the stream (and every watch) hears them.
 *
 * @module
 */

import {
  BatchGetItemCommand,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { delay } from "../../core/abort.ts";
import { Backoff } from "../../core/backoff.ts";
import type { DriverPut, DriverReadOptions, Entry } from "../../core/driver.ts";
import { StoreError } from "../../core/errors.ts";
import { UNPROCESSED_BACKOFF, UNPROCESSED_RETRIES } from "./batch.ts";
import {
  commit,
  CONFLICT_BACKOFF,
  itemBytes,
  MAX_TRANSACTION_BYTES,
  MAX_TRANSACTION_ITEMS,
  TRANSACTION_RETRIES,
} from "./commit.ts";
import { type Context, retried, tracked } from "./context.ts";
import { deleteKey } from "./delete_tree.ts";
import { cancellationReasons } from "./errors.ts";
import {
  attributeNames,
  attributeValues,
  both,
  dataKey,
  type Item,
  num,
  toEntry,
  tombstoneItem,
  VERSION_IS_LOWER,
} from "./items.ts";
import { observe } from "./reads.ts";
import { HAS_VALUE } from "./writes.ts";

/** BatchGetItem takes at most 100 keys (DynamoDB's limit). */
export const BATCH_GET_LIMIT = 100;

/**
 * The entries of `keys` (distinct), in their order: one BatchGetItem per
 * 100 keys, the keys DynamoDB leaves unprocessed (throttling, or more than
 * its 16 MB a response) asked again after a backoff.
 */
export async function getMany(
  ctx: Context,
  keys: readonly string[],
  options: DriverReadOptions,
): Promise<(Entry | null)[]> {
  const found = new Map<string, Item>();
  const chunks: string[][] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_LIMIT) {
    chunks.push(keys.slice(i, i + BATCH_GET_LIMIT));
  }
  await Promise.all(
    chunks.map((chunk) => getChunk(ctx, chunk, options, found)),
  );
  const now = ctx.now();
  return keys.map((key) => toEntry(found.get(key), now));
}

async function getChunk(
  ctx: Context,
  keys: string[],
  options: DriverReadOptions,
  found: Map<string, Item>,
): Promise<void> {
  const backoff = new Backoff(UNPROCESSED_BACKOFF);
  let pending: Item[] = keys.map(dataKey);
  while (true) {
    const output = await ctx.client.send(
      tracked(
        ctx,
        new BatchGetItemCommand({
          RequestItems: {
            [ctx.table]: { Keys: pending, ConsistentRead: options.consistent },
          },
        }),
      ),
      { abortSignal: options.signal },
    );
    for (const item of output.Responses?.[ctx.table] ?? []) {
      observe(ctx, item);
      const key = item.key?.S;
      if (key !== undefined) found.set(key, item);
    }
    pending = output.UnprocessedKeys?.[ctx.table]?.Keys ?? [];
    if (pending.length === 0) return;
    if (backoff.attempts >= UNPROCESSED_RETRIES) {
      throw new StoreError(
        `DynamoDB left ${pending.length} reads unprocessed after ${UNPROCESSED_RETRIES} retries (the table is throttled)`,
      );
    }
    retried(
      ctx,
      backoff.attempts + 1,
      new StoreError(
        `DynamoDB left ${pending.length} reads unprocessed (the table is throttled)`,
      ),
    );
    await delay(backoff.next(), options.signal);
  }
}

/**
 * Writes every entry, resolving each key's new `lastIndex`: a transaction of
 * conditional puts per run of at most 100 items and 4 MB (DynamoDB's
 * limits: ten values of 400 KB fill one), the runs sent together. A run of
 * one key is a single `put`.
 */
export async function putMany(
  ctx: Context,
  writes: readonly DriverPut[],
  signal: AbortSignal | undefined,
): Promise<bigint[]> {
  const runs = transactionRuns(writes, (w) => itemBytes(w.key, w.value));
  const versions = await Promise.all(runs.map(async (run) => {
    const outcome = await commit(
      ctx,
      run.map(({ key, value, ttl }) => ({ type: "put", key, value, ttl })),
      { signal },
    );
    // Puts without checks or fences have nothing to fail on.
    if (!outcome.ok) throw new StoreError("DynamoDB refused an unguarded put");
    return run.map(() => outcome.lastIndex);
  }));
  return versions.flat();
}

/**
 * Deletes every key: a transaction of the tombstones a single `delete`
 * writes, each conditional on its key holding a value and on the version
 * growing. DynamoDB cancels a transaction whole when one condition fails,
 * and says which (with the item as it was), so keys found without a value
 * are dropped and the rest sent again: absent keys cost a round trip, not a
 * tombstone each (which would also reach every watch as a change).
 */
export async function deleteMany(
  ctx: Context,
  keys: readonly string[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const runs = transactionRuns(keys, (key) => itemBytes(key));
  await Promise.all(runs.map((run) => deleteRun(ctx, run, signal)));
}

async function deleteRun(
  ctx: Context,
  keys: readonly string[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const condition = both(HAS_VALUE.expression, VERSION_IS_LOWER);
  const names = attributeNames(condition);
  const backoff = new Backoff(CONFLICT_BACKOFF);
  let pending = keys;
  // Rounds that drop keys always progress; only the others are bounded.
  let retries = 0;
  let round = 0;
  while (retries < TRANSACTION_RETRIES) {
    if (pending.length === 0) return;
    // DynamoDB wants at least two items in a transaction; one is a delete.
    if (pending.length === 1) return await deleteKey(ctx, pending[0], signal);
    const version = ctx.clock.next();
    const now = ctx.now();
    round++;
    try {
      await ctx.client.send(
        tracked(
          ctx,
          new TransactWriteItemsCommand({
            TransactItems: pending.map((key) => ({
              Put: {
                TableName: ctx.table,
                Item: tombstoneItem(key, version, now, ctx.retentionMs),
                ConditionExpression: condition,
                ExpressionAttributeNames: names,
                ExpressionAttributeValues: attributeValues(
                  { ":version": num(version) },
                  condition,
                ),
                ReturnValuesOnConditionCheckFailure: "ALL_OLD",
              },
            })),
          }),
        ),
        { abortSignal: signal },
      );
      return;
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw error;
      let explained = false;
      let conflict = false;
      // Keys sent again for a version to pick higher (not merely the keys
      // left after the absent ones were dropped).
      let again = false;
      const next: string[] = [];
      for (const [i, key] of pending.entries()) {
        const reason = reasons[i];
        if (reason?.Code === "ConditionalCheckFailed") {
          explained = true;
          // Nothing to delete: absent, or already a tombstone.
          if (!HAS_VALUE.holds(reason.Item ?? null, now)) continue;
          // A value above our version: a writer with a clock ahead.
          const old = reason.Item?.version?.N;
          if (old !== undefined) ctx.clock.observe(BigInt(old));
          again = true;
        } else if (reason?.Code === "TransactionConflict") {
          explained = conflict = true;
        } else if (reason?.Code && reason.Code !== "None") {
          throw new StoreError(
            `DynamoDB cancelled the transaction: ${reason.Code}${
              reason.Message ? ` (${reason.Message})` : ""
            } on key ${JSON.stringify(key)}`,
            { cause: error },
          );
        }
        next.push(key);
      }
      if (!explained) throw error;
      if (next.length === pending.length) retries++;
      pending = next;
      if ((conflict || again) && retries < TRANSACTION_RETRIES) {
        retried(ctx, round, error);
      }
      if (conflict) await delay(backoff.next(), signal);
    }
  }
  throw new StoreError(
    `DynamoDB cancelled the transaction ${TRANSACTION_RETRIES} times (conflicting writers)`,
  );
}

/**
 * Splits `items` into runs in their order, each within a transaction's 100
 * items and 4 MB.
 */
function transactionRuns<T>(
  items: readonly T[],
  bytesOf: (item: T) => number,
): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = bytesOf(item);
    if (
      run.length === MAX_TRANSACTION_ITEMS ||
      (run.length > 0 && bytes + size > MAX_TRANSACTION_BYTES)
    ) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(item);
    bytes += size;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}
