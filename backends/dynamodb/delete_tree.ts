/**
 * `deleteTree`: the tree is read a page at a time (only keys, versions) and
 * each page is replaced by tombstones in batches of 25; the tree's own key
 * is deleted like any key. No page or batch limit leaks through.
 *
 * @module
 */

import type { WriteRequest } from "@aws-sdk/client-dynamodb";
import { ATTR, tombstoneItem } from "./items.ts";
import { batchWrite } from "./batch.ts";
import type { Context } from "./context.ts";
import { treePages } from "./reads.ts";
import { HAS_VALUE, writeItem } from "./writes.ts";

/** Deletes `key` (unless `null`) and every key starting with `dir`. */
export async function deleteTree(
  ctx: Context,
  key: string | null,
  dir: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  await Promise.all([
    key === null ? undefined : deleteKey(ctx, key, signal),
    deleteUnder(ctx, dir, signal),
  ]);
}

async function deleteUnder(
  ctx: Context,
  dir: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const pages = treePages(ctx, dir, {
    consistent: true,
    withValue: true,
    attributes: [ATTR.partition, ATTR.key, ATTR.version],
    signal,
  });
  for await (const page of pages) {
    if (page.length === 0) continue;
    // Reading the page moved the clock past its versions, so each tombstone
    // is above the value it replaces (BatchWriteItem has no conditions to
    // check that).
    const version = ctx.clock.next();
    const now = ctx.now();
    const requests: WriteRequest[] = page.map((item) => ({
      PutRequest: {
        Item: tombstoneItem(item.key.S!, version, now, ctx.retentionMs),
      },
    }));
    await batchWrite(ctx, requests, signal);
  }
}

/** Deletes one key: a tombstone above its version, if it holds a value. */
export async function deleteKey(
  ctx: Context,
  key: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  await writeItem(ctx, {
    build: (version, now) => tombstoneItem(key, version, now, ctx.retentionMs),
    guard: HAS_VALUE,
    signal,
  });
}
