/**
 * `atomic()`: checks and writes all or nothing. One key (what `atomicPut`
 * and `atomicDelete` send) is one conditional PutItem; several keys are one
 * TransactWriteItems, where a key's check becomes the condition of its
 * write (DynamoDB allows each item once per transaction) and every write
 * gets the same version, the commit's `lastIndex`.
 *
 * A fenced commit is always a TransactWriteItems, with one `ConditionCheck`
 * per fence on the lock item (see `lockFence` in `lock.ts`): DynamoDB then
 * checks the hold atomically with the steps, never a read before them. The
 * cancellation reasons come one per item, in order, so a failed fence is
 * told from a failed check by its position.
 *
 * @module
 */

import {
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import { delay } from "../../core/abort.ts";
import { StoreError } from "../../core/errors.ts";
import { utf8Length } from "../../core/keys.ts";
import type {
  AtomicStep,
  CommitOutcome,
  DriverCommitOptions,
  LockLease,
} from "../../core/driver.ts";
import { Backoff } from "../../core/backoff.ts";
import { type Context, retried, tracked } from "./context.ts";
import { cancellationReasons } from "./errors.ts";
import {
  attributeNames,
  attributeValues,
  both,
  checkCondition,
  checkHolds,
  dataKey,
  type Item,
  liveVersion,
  num,
  tombstoneItem,
  valueItem,
  VERSION_IS_LOWER,
} from "./items.ts";
import { fenceOf, type LockFence } from "./lock.ts";
import { getItem } from "./reads.ts";
import { checkGuard, HAS_VALUE, writeItem } from "./writes.ts";

/** TransactWriteItems takes at most 100 items (DynamoDB's limit since 2022). */
export const MAX_TRANSACTION_ITEMS = 100;

/** The items of one transaction may total at most 4 MB (DynamoDB's limit). */
export const MAX_TRANSACTION_BYTES = 4 * 1024 * 1024;

/** What an item costs besides its key and value: attribute names, numbers. */
const ITEM_OVERHEAD_BYTES = 100;

/** What a fence's ConditionCheck costs besides its key: the owner token. */
const FENCE_OVERHEAD_BYTES = 200;

/**
 * The bytes of keys and values one atomic() may carry (`maxAtomicBytes`):
 * the 4 MB, less what each of the 100 items may add to what core counts —
 * a second copy of its key (partition and sort key, 1 KiB at most) and its
 * attributes or a fence's owner token.
 */
export const MAX_ATOMIC_BYTES = MAX_TRANSACTION_BYTES -
  MAX_TRANSACTION_ITEMS *
    (1024 + Math.max(ITEM_OVERHEAD_BYTES, FENCE_OVERHEAD_BYTES + 1024));

/**
 * How many times a cancelled transaction is sent again: after a conflict
 * with another transaction on the same items, or a version to pick higher.
 */
export const TRANSACTION_RETRIES = 10;

/** Conflicting transactions back off with jitter before trying again. */
export const CONFLICT_BACKOFF = { baseMs: 20, capMs: 1_000 };

/** What one operation does to one key. */
interface KeyPlan {
  key: string;
  /** The checked version (`null`: absent); `undefined` when not checked. */
  check?: bigint | null;
  write?: KeyWrite;
}

type KeyWrite = { type: "put"; value: Uint8Array; ttl?: number } | {
  type: "delete";
};

/** The item a write leaves: the value, or a tombstone keeping the version. */
function itemOf(
  ctx: Context,
  key: string,
  write: KeyWrite,
  version: bigint,
  now: number,
): Item {
  return write.type === "put"
    ? valueItem(
      key,
      write.value,
      version,
      write.ttl === undefined ? undefined : now + write.ttl,
      ctx.retentionMs,
    )
    : tombstoneItem(key, version, now, ctx.retentionMs);
}

/**
 * Applies the steps all together, or none when a check or a fence fails.
 * Each fence is one more transaction item; core counts it as one step, and
 * a step is at most one item, so `maxAtomicOperations` (100) keeps the
 * transaction within DynamoDB's 100 items.
 */
export async function commit(
  ctx: Context,
  steps: readonly AtomicStep[],
  options: DriverCommitOptions,
): Promise<CommitOutcome> {
  const { signal } = options;
  const plans = plan(steps);
  const fences = fencesOf(ctx, options.fences ?? []);
  if (fences === undefined) return { ok: false, fenced: true };
  if (plans.length === 1 && fences.length === 0) {
    return await commitOne(ctx, plans[0], signal);
  }
  return await transact(ctx, plans, fences, signal);
}

/**
 * The fences of `leases`, one per lock item (DynamoDB allows each item once
 * per transaction), or `undefined` when one cannot be held: a lease of
 * another table, or two leases of one key (two owners cannot both hold it).
 */
function fencesOf(
  ctx: Context,
  leases: readonly LockLease[],
): LockFence[] | undefined {
  const byKey = new Map<string, LockFence>();
  for (const lease of leases) {
    const fence = fenceOf(ctx, lease);
    if (fence === undefined) return undefined;
    const other = byKey.get(fence.key);
    if (other && other.owner !== fence.owner) return undefined;
    byKey.set(fence.key, fence);
  }
  return [...byKey.values()];
}

function plan(steps: readonly AtomicStep[]): KeyPlan[] {
  const plans = new Map<string, KeyPlan>();
  for (const step of steps) {
    let keyPlan = plans.get(step.key);
    if (!keyPlan) plans.set(step.key, keyPlan = { key: step.key });
    if (step.type === "check") keyPlan.check = step.lastIndex;
    else if (step.type === "put") {
      keyPlan.write = { type: "put", value: step.value, ttl: step.ttl };
    } else keyPlan.write = { type: "delete" };
  }
  return [...plans.values()];
}

/**
 * What the item of `key` (holding `value`, if given) counts towards
 * {@linkcode MAX_TRANSACTION_BYTES}: the key twice (partition and sort key)
 * and the attributes.
 */
export function itemBytes(key: string, value?: Uint8Array): number {
  return 2 * utf8Length(key) + ITEM_OVERHEAD_BYTES + (value?.length ?? 0);
}

async function commitOne(
  ctx: Context,
  { key, check, write }: KeyPlan,
  signal: AbortSignal | undefined,
): Promise<CommitOutcome> {
  if (!write) {
    const item = await getItem(ctx, key, { consistent: true, signal });
    const now = ctx.now();
    return checkHolds(check!, item, now)
      ? { ok: true, lastIndex: 0n }
      : { ok: false, key, current: liveVersion(item, now) };
  }
  const outcome = await writeItem(ctx, {
    build: (version, now) => itemOf(ctx, key, write, version, now),
    guard: check !== undefined
      ? checkGuard(check)
      : write.type === "delete"
      ? HAS_VALUE
      : undefined,
    signal,
  });
  if (outcome.ok) return { ok: true, lastIndex: outcome.version };
  // An unchecked delete of a key without value: nothing to do.
  if (check === undefined) return { ok: true, lastIndex: 0n };
  return { ok: false, key, current: liveVersion(outcome.item, ctx.now()) };
}

async function transact(
  ctx: Context,
  plans: KeyPlan[],
  fences: LockFence[],
  signal: AbortSignal | undefined,
): Promise<CommitOutcome> {
  const backoff = new Backoff(CONFLICT_BACKOFF);
  for (let attempt = 0; attempt < TRANSACTION_RETRIES; attempt++) {
    const version = ctx.clock.next();
    const now = ctx.now();
    try {
      await ctx.client.send(
        tracked(
          ctx,
          new TransactWriteItemsCommand({
            // The steps' items first, then the fences': reasons come back in
            // this order.
            TransactItems: [
              ...plans.map((p) => action(ctx, p, version, now)),
              ...fences.map((fence) => fence.check(now)),
            ],
          }),
        ),
        { abortSignal: signal },
      );
      return { ok: true, lastIndex: version };
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw error;
      // A failed fence first: the lease is gone, whatever else failed (a
      // retry cannot help, and a check failing too is beside the point).
      if (
        reasons.slice(plans.length).some((reason) =>
          reason.Code === "ConditionalCheckFailed"
        )
      ) {
        return { ok: false, fenced: true };
      }
      let conflict = false;
      let retry = false;
      for (const [i, reason] of reasons.entries()) {
        const keyPlan = plans[i];
        const where = keyPlan
          ? `key ${JSON.stringify(keyPlan.key)}`
          : `the lock of ${JSON.stringify(fences[i - plans.length]?.key)}`;
        if (keyPlan && reason.Code === "ConditionalCheckFailed") {
          if (
            keyPlan.check !== undefined &&
            !checkHolds(keyPlan.check, reason.Item, now)
          ) {
            return {
              ok: false,
              key: keyPlan.key,
              current: liveVersion(reason.Item, now),
            };
          }
          const old = reason.Item?.version?.N;
          if (old !== undefined) ctx.clock.observe(BigInt(old));
          retry = true;
        } else if (reason.Code === "TransactionConflict") {
          conflict = true;
        } else if (reason.Code && reason.Code !== "None") {
          throw new StoreError(
            `DynamoDB cancelled the transaction: ${reason.Code}${
              reason.Message ? ` (${reason.Message})` : ""
            } on ${where}`,
            { cause: error },
          );
        }
      }
      if (!retry && !conflict) throw error;
      if (attempt + 1 < TRANSACTION_RETRIES) retried(ctx, attempt + 1, error);
      if (conflict) await delay(backoff.next(), signal);
    }
  }
  throw new StoreError(
    `DynamoDB cancelled the transaction ${TRANSACTION_RETRIES} times (conflicting writers)`,
  );
}

function action(
  ctx: Context,
  { key, check, write }: KeyPlan,
  version: bigint,
  now: number,
): TransactWriteItem {
  const values = {
    ":version": num(version),
    ":now": num(now),
    ...(typeof check === "bigint" ? { ":expected": num(check) } : {}),
  };
  const guard = check === undefined ? undefined : checkCondition(check);
  if (!write) {
    return {
      ConditionCheck: {
        TableName: ctx.table,
        Key: dataKey(key),
        ConditionExpression: guard,
        ExpressionAttributeNames: attributeNames(guard),
        ExpressionAttributeValues: attributeValues(values, guard),
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    };
  }
  const condition = guard ? both(guard, VERSION_IS_LOWER) : VERSION_IS_LOWER;
  return {
    Put: {
      TableName: ctx.table,
      Item: itemOf(ctx, key, write, version, now),
      ConditionExpression: condition,
      ExpressionAttributeNames: attributeNames(condition),
      ExpressionAttributeValues: attributeValues(values, condition),
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    },
  };
}
