/**
 * Writes of one item: a PutItem whose condition keeps versions growing
 * (`version < :version`), plus the caller's own condition (a check of
 * `atomicPut`/`atomicDelete`). On a failed condition DynamoDB returns the
 * item as it was (`ReturnValuesOnConditionCheckFailure: "ALL_OLD"`), which
 * tells a failed check (not found, modified) from a version to pick higher.
 *
 * @module
 */

import { type AttributeValue, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { StoreError } from "../../core/errors.ts";
import { type Context, retried, tracked } from "./context.ts";
import { failedConditionItem } from "./errors.ts";
import {
  attributeNames,
  attributeValues,
  both,
  checkCondition,
  checkHolds,
  type Item,
  num,
  VERSION_IS_LOWER,
} from "./items.ts";

/**
 * How many times a write picks a higher version before giving up. Each retry
 * starts above the version DynamoDB returned, so a second attempt fails only
 * if yet another write landed in between.
 */
export const VERSION_RETRIES = 16;

/** The outcome of a conditional write. */
export type WriteOutcome =
  | { ok: true; version: bigint }
  | {
    ok: false;
    /** The item as it was (`null`: there was none). */
    item: Item | null;
  };

/** A write of one item. */
export interface ItemWrite {
  /** The item to write at `version` (`now`: the time of the attempt). */
  build(version: bigint, now: number): Item;
  /**
   * The caller's condition, if any (with `:now` and `:expected` bound by
   * `values`), and how to evaluate it on the item DynamoDB returns.
   */
  guard?: {
    expression: string;
    values(now: number): Record<string, AttributeValue>;
    holds(item: Item | null, now: number): boolean;
  };
  /** Aborts the write. */
  signal?: AbortSignal;
}

/** A guard that `key` is at `expected` (`null`: absent), as `atomicPut` checks. */
export function checkGuard(expected: bigint | null): ItemWrite["guard"] {
  return {
    expression: checkCondition(expected),
    values: (now) => ({
      ":now": num(now),
      ...(expected === null ? {} : { ":expected": num(expected) }),
    }),
    holds: (item, now) => checkHolds(expected, item, now),
  };
}

/** A guard that the key holds a value (live or expired): what `delete` removes. */
export const HAS_VALUE: NonNullable<ItemWrite["guard"]> = {
  expression: "attribute_exists(#value)",
  values: () => ({}),
  holds: (item) => item?.value !== undefined,
};

/**
 * Writes one item above the key's current version. Resolves `ok: false`
 * (with the item as it was) when the guard fails.
 */
export async function writeItem(
  ctx: Context,
  write: ItemWrite,
): Promise<WriteOutcome> {
  const { guard } = write;
  const condition = guard
    ? both(guard.expression, VERSION_IS_LOWER)
    : VERSION_IS_LOWER;
  for (let attempt = 0; attempt < VERSION_RETRIES; attempt++) {
    const version = ctx.clock.next();
    const now = ctx.now();
    // The write's own id tells a retry of this very request (which the SDK
    // makes on a lost answer) from another writer's equal write: two
    // handles may pick the same version in the same millisecond.
    const item: Item = { ...write.build(version, now), writeId: writeId() };
    try {
      await ctx.client.send(
        tracked(
          ctx,
          new PutItemCommand({
            TableName: ctx.table,
            Item: item,
            ConditionExpression: condition,
            ExpressionAttributeNames: attributeNames(condition),
            ExpressionAttributeValues: attributeValues(
              { ":version": num(version), ...guard?.values(now) },
              condition,
            ),
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        ),
        { abortSignal: write.signal },
      );
      return { ok: true, version };
    } catch (error) {
      const old = failedConditionItem(error);
      if (old === undefined) throw error;
      // The SDK retried a write whose first attempt had landed.
      if (old !== null && sameWrite(old, item)) return { ok: true, version };
      if (guard && !guard.holds(old, now)) return { ok: false, item: old };
      // Only the version was too low: a writer with a clock ahead of ours.
      if (old?.version?.N) ctx.clock.observe(BigInt(old.version.N));
      if (attempt + 1 < VERSION_RETRIES) retried(ctx, attempt + 1, error);
    }
  }
  throw new StoreError(
    `Could not write above the current version after ${VERSION_RETRIES} attempts`,
  );
}

function sameWrite(old: Item, item: Item): boolean {
  return old.writeId?.S !== undefined && old.writeId.S === item.writeId?.S;
}

/** 96 random bits: a write's id, unique among all writes of a key. */
function writeId(): { S: string } {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return {
    S: Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""),
  };
}
