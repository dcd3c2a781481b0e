/**
 * BatchWriteItem for any number of items: 25 a request (DynamoDB's limit),
 * a few requests in flight, and the items DynamoDB left unprocessed
 * (throttling, a busy partition) sent again after a backoff with jitter.
 *
 * @module
 */

import {
  BatchWriteItemCommand,
  type WriteRequest,
} from "@aws-sdk/client-dynamodb";
import { delay } from "../../core/abort.ts";
import { StoreError } from "../../core/errors.ts";
import { Backoff } from "../../core/backoff.ts";
import { type Context, retried, tracked } from "./context.ts";

/** DynamoDB takes at most 25 writes in one BatchWriteItem. */
export const BATCH_WRITE_LIMIT = 25;

/**
 * Batches in flight at once: enough to hide the round trip, few enough not
 * to throttle a small on-demand table by themselves.
 */
export const BATCH_CONCURRENCY = 4;

/**
 * How many times items left unprocessed are sent again before the batch
 * fails. With the backoff below that is about half a minute of throttling.
 */
export const UNPROCESSED_RETRIES = 15;

/** AWS's advice for unprocessed items: back off exponentially, with jitter. */
export const UNPROCESSED_BACKOFF = { baseMs: 50, capMs: 5_000 };

/**
 * Writes every request (puts and deletes, each key at most once), however
 * many there are.
 */
export async function batchWrite(
  ctx: Context,
  requests: WriteRequest[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const chunks: WriteRequest[][] = [];
  for (let i = 0; i < requests.length; i += BATCH_WRITE_LIMIT) {
    chunks.push(requests.slice(i, i + BATCH_WRITE_LIMIT));
  }
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) await writeChunk(ctx, chunks[next++], signal);
  };
  await Promise.all(
    Array.from(
      { length: Math.min(BATCH_CONCURRENCY, chunks.length) },
      worker,
    ),
  );
}

async function writeChunk(
  ctx: Context,
  chunk: WriteRequest[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const backoff = new Backoff(UNPROCESSED_BACKOFF);
  let pending = chunk;
  while (true) {
    const output = await ctx.client.send(
      tracked(
        ctx,
        new BatchWriteItemCommand({ RequestItems: { [ctx.table]: pending } }),
      ),
      { abortSignal: signal },
    );
    pending = output.UnprocessedItems?.[ctx.table] ?? [];
    if (pending.length === 0) return;
    if (backoff.attempts >= UNPROCESSED_RETRIES) {
      throw new StoreError(
        `DynamoDB left ${pending.length} writes unprocessed after ${UNPROCESSED_RETRIES} retries (the table is throttled)`,
      );
    }
    retried(
      ctx,
      backoff.attempts + 1,
      new StoreError(
        `DynamoDB left ${pending.length} writes unprocessed (the table is throttled)`,
      ),
    );
    await delay(backoff.next(), signal);
  }
}
