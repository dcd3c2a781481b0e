/**
 * Locks on a hidden lock item per key (see `items.ts`), taken with a
 * transaction that also writes the holder's value at the key, so the
 * value's new version is the fencing token.
 *
 * DynamoDB has no server time in conditions, so a held lock cannot expire
 * on the server. Instead its holder writes a new random `heartbeat` on every
 * renewal, and a waiter takes the lock over when it has seen the same
 * heartbeat for the holder's whole lease (measured on its own monotonic
 * clock: no clock needs to agree), or when the holder's `lockedUntil` is
 * more than `maxClockSkew` in the past (a long-dead holder, taken at once).
 * The takeover is conditional on that heartbeat, so a renewal that lands
 * first wins.
 *
 * Waiters hear releases and renewals from the table's stream; without one
 * they re-check with exponential backoff and full jitter. Either way an
 * attempt is a read first and a transaction only when the lock looks free.
 * `tryLock` is the first attempt alone: it cannot watch a heartbeat for a
 * lease, so of the two takeover rules only `lockedUntil`'s applies to it.
 *
 * A fenced commit carries a `ConditionCheck` on the lock item (see
 * `lockFence`): the lease's owner token, and a `lockedUntil` not yet past
 * the rule that lets a contender take the lock at once.
 *
 * @module
 */

import {
  DeleteItemCommand,
  GetItemCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import { abortable, delay } from "../../core/abort.ts";
import { StoreError } from "../../core/errors.ts";
import { waitForLock } from "../../core/lock.ts";
import type {
  DriverLockOptions,
  DriverTryLockOptions,
  LockLease,
} from "../../core/driver.ts";
import { Backoff } from "../../core/backoff.ts";
import { type Context, retried, tracked } from "./context.ts";
import { cancellationReasons, failedConditionItem } from "./errors.ts";
import {
  attributeNames,
  attributeValues,
  epochSeconds,
  type Item,
  lockItem,
  lockKey,
  num,
  str,
  tombstoneItem,
  valueItem,
  VERSION_IS_LOWER,
} from "./items.ts";
import type { StreamFeed } from "./stream_feed.ts";
import { VERSION_RETRIES } from "./writes.ts";

/** What locks need from the store. */
export interface LockSource {
  /** The table. */
  ctx: Context;
  /** The stream reader, to hear releases; backoff when `undefined`. */
  feed?: StreamFeed;
  /**
   * How far clients' clocks may disagree, in milliseconds: a lock whose
   * `lockedUntil` is further in the past than this is taken at once.
   */
  maxClockSkewMs: number;
}

/**
 * Without a stream, a waiter re-checks after a random delay below a ceiling
 * that doubles from 50 ms to 1 s: a released lock is noticed within a
 * second, and many waiters do not re-check in step.
 */
const POLL_BACKOFF = { baseMs: 50, capMs: 1_000 };

/**
 * With a stream, a waiter re-checks at least this often even if it hears
 * nothing: a safety net for a late stream, not the way it learns.
 */
const STREAM_RECHECK_MS = 5_000;

/** Waiters whose transactions collided back off with jitter. */
const CONFLICT_BACKOFF = { baseMs: 20, capMs: 500 };

/**
 * The `lockedUntil` at or below which a holder counts as long dead by the
 * clock reading `now`: a contender takes such a lock at once, and a fence
 * refuses it (the one rule for both, so they can never disagree).
 */
function staleBefore(source: LockSource, now: number): number {
  return now - source.maxClockSkewMs;
}

/** What a fenced commit checks of a lease: its lock item and owner token. */
export interface LockFence {
  /** The locked key (its lock item's sort key). */
  readonly key: string;
  /** The owner token written when the lease took the lock. */
  readonly owner: string;
  /** The transaction item that checks the hold, by the clock `now`. */
  check(now: number): TransactWriteItem;
}

/**
 * The fence of every lease handed out here, with the version clock of the
 * store handle it is of (each handle has its own).
 */
const leaseFences = new WeakMap<
  LockLease,
  { clock: Context["clock"]; fence: LockFence }
>();

/**
 * The fence on `lease`, or `undefined` when the lease is not one of this
 * store handle's locks (it then cannot be held here: the commit is fenced).
 */
export function fenceOf(ctx: Context, lease: LockLease): LockFence | undefined {
  const entry = leaseFences.get(lease);
  return entry?.clock === ctx.clock ? entry.fence : undefined;
}

/**
 * The fence of a lease of `owner`: a `ConditionCheck` on the lock item, in
 * the same TransactWriteItems as the commit's steps, so DynamoDB evaluates
 * it atomically with them.
 *
 * `#owner = :owner` proves the lease still holds the lock: the owner token
 * is random per acquisition, every takeover (by heartbeat or by
 * `lockedUntil`) is a transaction that replaces it, and a release deletes
 * the item (a comparison with a missing attribute is false, so the key's
 * value staying behind does not count). Takeovers and releases are
 * serialised with this commit, so none can have happened before it applies.
 * Renewals keep the owner and only push `lockedUntil` on, so they never
 * break a fence. `#lockedUntil > :stale` also refuses a lease whose holder
 * stopped renewing so long ago that a contender may take it at once
 * ({@linkcode staleBefore}: the takeover rule itself, by the committer's
 * clock), even before one has: such a lease has expired. The other takeover
 * rule (a heartbeat unchanged for a lease, on a waiter's own monotonic
 * clock) cannot be checked by the server and needs no check: it only takes
 * effect through a takeover, which changes the owner.
 */
function lockFence(
  source: LockSource,
  key: string,
  owner: string,
): LockFence {
  const held = "#owner = :owner AND #lockedUntil > :stale";
  return {
    key,
    owner,
    check: (now) => ({
      ConditionCheck: {
        TableName: source.ctx.table,
        Key: lockKey(key),
        ConditionExpression: held,
        ExpressionAttributeNames: attributeNames(held),
        ExpressionAttributeValues: {
          ":owner": str(owner),
          ":stale": num(staleBefore(source, now)),
        },
      },
    }),
  };
}

/** A lock as a waiter saw it. */
interface Sighting {
  heartbeat: string;
  /** When this waiter first saw this heartbeat (`performance.now()`). */
  since: number;
  leaseMs: number;
  lockedUntil: number;
}

/** Waits until the lock on `key` is held, writing `value` at `key`. */
export async function acquireLock(
  source: LockSource,
  key: string,
  options: DriverLockOptions,
): Promise<LockLease> {
  const { ctx, feed } = source;
  const { signal } = options;
  const owner = crypto.randomUUID();
  const backoff = new Backoff(POLL_BACKOFF);
  const conflicts = new Backoff(CONFLICT_BACKOFF);
  let seen: Sighting | undefined;
  let first = true;
  let tries = 0;

  // How long until the lock seen may be taken over (<= 0: now).
  const left = (sighting: Sighting) =>
    Math.min(
      sighting.lockedUntil - staleBefore(source, ctx.now()),
      sighting.since + sighting.leaseMs - performance.now(),
    );
  const see = (item: Item | null | undefined) => {
    const heartbeat = item?.owner ? item.heartbeat?.S : undefined;
    if (heartbeat === undefined) seen = undefined;
    else if (heartbeat !== seen?.heartbeat) {
      seen = {
        heartbeat,
        since: performance.now(),
        leaseMs: Number(item!.leaseMs?.N ?? 0),
        lockedUntil: Number(item!.lockedUntil?.N ?? 0),
      };
    }
  };

  const attempt = async (): Promise<LockLease | number> => {
    if (!first && seen && left(seen) > 0) {
      // Nothing says it is free yet: a read is cheaper than a transaction.
      see(await readLock(ctx, key, signal));
      if (seen && left(seen) > 0) return left(seen);
    }
    first = false;
    const takeover = seen && left(seen) <= 0 ? seen.heartbeat : undefined;
    const result = await take(source, key, owner, takeover, options);
    tries++;
    switch (result.type) {
      case "taken":
        return result.lease;
      case "conflict":
        retried(ctx, tries, result.error);
        return conflicts.next();
      case "version":
        retried(ctx, tries, result.error);
        return 0;
      case "held":
        see(result.item);
        return seen ? Math.max(1, left(seen)) : 0;
    }
  };

  // The uncontended case needs no stream: one transaction and done.
  const quick = await attempt();
  if (typeof quick !== "number") return quick;

  // Contended: listen to the stream (if any), then wait. waitForLock
  // attempts again first, so a release before the stream listened is seen.
  const pulse = new Pulse();
  let streaming = feed !== undefined && !feed.gone;
  const subscription = streaming
    ? feed!.subscribe({
      changes: (changes) => {
        if (changes.some((c) => c.lock && c.key === key)) pulse.notify();
      },
      resync: () => pulse.notify(),
      error: () => {
        // Without the stream, waiting goes on with backoff. (The reader
        // reported its failure as an event: see StreamFeed.)
        streaming = false;
        pulse.notify();
      },
    })
    : undefined;
  try {
    if (subscription) {
      await abortable(subscription.ready, signal).catch((error) => {
        if (signal?.aborted) throw error;
        // The reader could not start (it reported why as an event, or had
        // when the stream went): waiting goes on with backoff.
        streaming = false;
      });
    }
    return await waitForLock<LockLease>({
      signal,
      maxWaitMs: streaming ? STREAM_RECHECK_MS : POLL_BACKOFF.capMs,
      attempt,
      changed: (stop) =>
        streaming ? pulse.wait(stop) : delay(backoff.next(), stop),
    });
  } finally {
    subscription?.close();
  }
}

/**
 * Takes the lock on `key` if it is free now, writing `value` at `key`, or
 * resolves `null` when someone holds it: the first attempt of
 * {@linkcode acquireLock} without the waiting. A holder is taken over only
 * by the `lockedUntil` rule (a heartbeat cannot be watched for a lease
 * without waiting), so a dead holder's lock counts as held until its
 * `lockedUntil` is `maxClockSkew` past. A refused attempt is a transaction
 * DynamoDB cancelled whole, so nothing is left behind: no item written, no
 * stream listened to.
 */
export async function tryAcquireLock(
  source: LockSource,
  key: string,
  options: DriverTryLockOptions,
): Promise<LockLease | null> {
  const { signal } = options;
  signal?.throwIfAborted();
  const owner = crypto.randomUUID();
  const conflicts = new Backoff(CONFLICT_BACKOFF);
  let takeover: string | undefined;
  // Only a version to pick higher, a collision or a long-dead holder to
  // take over send the transaction again; a live holder is null at once.
  for (let attempt = 0; attempt < VERSION_RETRIES; attempt++) {
    const result = await take(source, key, owner, takeover, options);
    switch (result.type) {
      case "taken":
        return result.lease;
      case "conflict":
        if (attempt + 1 < VERSION_RETRIES) {
          retried(source.ctx, attempt + 1, result.error);
        }
        await delay(conflicts.next(), signal);
        continue;
      case "version":
        if (attempt + 1 < VERSION_RETRIES) {
          retried(source.ctx, attempt + 1, result.error);
        }
        continue;
      case "held": {
        const item = result.item;
        // An owner without a heartbeat (not written by this library) cannot
        // be taken over conditionally: held.
        const heartbeat = item?.heartbeat?.S;
        if (heartbeat === undefined) return null;
        const lockedUntil = Number(item!.lockedUntil?.N ?? 0);
        if (lockedUntil > staleBefore(source, source.ctx.now())) return null;
        // Dead long ago: taken over, conditional on this very heartbeat (a
        // renewal or another contender landing first wins).
        takeover = heartbeat;
        continue;
      }
    }
  }
  throw new StoreError(
    `Could not try the lock on ${
      JSON.stringify(key)
    }: ${VERSION_RETRIES} attempts collided`,
  );
}

type TakeResult =
  | { type: "taken"; lease: LockLease }
  | { type: "held"; item: Item | null }
  // A collision with another transaction, or a version to pick higher: the
  // cancellation, for the retry it is reported as.
  | { type: "conflict"; error: unknown }
  | { type: "version"; error: unknown };

/**
 * One transaction: the lock item if free (or if its heartbeat is still
 * `takeover`), and the holder's value at the key above its version.
 */
async function take(
  source: LockSource,
  key: string,
  owner: string,
  takeover: string | undefined,
  options: DriverLockOptions,
): Promise<TakeResult> {
  const { ctx } = source;
  const version = ctx.clock.next();
  const now = ctx.now();
  const heartbeat = crypto.randomUUID();
  const free = takeover === undefined
    ? "attribute_not_exists(#owner)"
    : "attribute_not_exists(#owner) OR #heartbeat = :seen";
  try {
    await ctx.client.send(
      tracked(
        ctx,
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Put: {
                TableName: ctx.table,
                Item: lockItem(
                  key,
                  owner,
                  heartbeat,
                  options.ttl,
                  now,
                  ctx.retentionMs,
                ),
                ConditionExpression: free,
                ExpressionAttributeNames: attributeNames(free),
                ExpressionAttributeValues: takeover === undefined
                  ? undefined
                  : { ":seen": str(takeover) },
                ReturnValuesOnConditionCheckFailure: "ALL_OLD",
              },
            },
            {
              Put: {
                TableName: ctx.table,
                Item: valueItem(
                  key,
                  options.value,
                  version,
                  undefined,
                  ctx.retentionMs,
                ),
                ConditionExpression: VERSION_IS_LOWER,
                ExpressionAttributeNames: attributeNames(VERSION_IS_LOWER),
                ExpressionAttributeValues: { ":version": num(version) },
                ReturnValuesOnConditionCheckFailure: "ALL_OLD",
              },
            },
          ],
        }),
      ),
      { abortSignal: options.signal },
    );
  } catch (error) {
    const reasons = cancellationReasons(error);
    if (!reasons) throw error;
    const [lock, data] = reasons;
    if (lock?.Code === "ConditionalCheckFailed") {
      return { type: "held", item: lock.Item ?? null };
    }
    if (data?.Code === "ConditionalCheckFailed") {
      const old = data.Item?.version?.N;
      if (old !== undefined) ctx.clock.observe(BigInt(old));
      return { type: "version", error };
    }
    if (reasons.some((r) => r.Code === "TransactionConflict")) {
      return { type: "conflict", error };
    }
    throw error;
  }
  return {
    type: "taken",
    lease: lease(source, key, owner, version, options.ttl),
  };
}

async function readLock(
  ctx: Context,
  key: string,
  signal: AbortSignal | undefined,
): Promise<Item | undefined> {
  const output = await ctx.client.send(
    tracked(
      ctx,
      new GetItemCommand({
        TableName: ctx.table,
        Key: lockKey(key),
        ConsistentRead: true,
      }),
    ),
    { abortSignal: signal },
  );
  return output.Item;
}

/** The held lock: renewal writes a new heartbeat while `owner` holds it. */
function lease(
  source: LockSource,
  key: string,
  owner: string,
  version: bigint,
  ttl: number,
): LockLease {
  const { ctx } = source;
  // Renewals and the release are the store's keepAlive and unlock calls.
  const renewing: Context = { ...ctx, op: "keepAlive" };
  const releasing: Context = { ...ctx, op: "unlock" };
  const ownerIs = "#owner = :owner";
  // Kept alive by renew alone (core calls it): no pause() to offer.
  const held: LockLease = {
    lastIndex: version,
    renew: async (signal) => {
      const now = ctx.now();
      const update =
        "SET #heartbeat = :heartbeat, #lockedUntil = :until, #ttl = :ttl";
      try {
        await ctx.client.send(
          tracked(
            renewing,
            new UpdateItemCommand({
              TableName: ctx.table,
              Key: lockKey(key),
              UpdateExpression: update,
              ConditionExpression: ownerIs,
              ExpressionAttributeNames: attributeNames(update, ownerIs),
              ExpressionAttributeValues: attributeValues(
                {
                  ":heartbeat": str(crypto.randomUUID()),
                  ":until": num(now + ttl),
                  ":ttl": { N: epochSeconds(now + ttl + ctx.retentionMs) },
                  ":owner": str(owner),
                },
                update,
                ownerIs,
              ),
            }),
          ),
          { abortSignal: signal },
        );
        return true;
      } catch (error) {
        if (failedConditionItem(error) !== undefined) return false;
        throw error;
      }
    },
    release: async (deleteKey, signal) => {
      if (!deleteKey) {
        await deleteLock(releasing, key, owner, signal);
        return;
      }
      await releaseAndDelete(releasing, key, owner, signal);
    },
  };
  leaseFences.set(held, {
    clock: ctx.clock,
    fence: lockFence(source, key, owner),
  });
  return held;
}

/** Deletes the lock item if `owner` still holds it. */
async function deleteLock(
  ctx: Context,
  key: string,
  owner: string,
  signal: AbortSignal,
): Promise<void> {
  const ownerIs = "#owner = :owner";
  try {
    await ctx.client.send(
      tracked(
        ctx,
        new DeleteItemCommand({
          TableName: ctx.table,
          Key: lockKey(key),
          ConditionExpression: ownerIs,
          ExpressionAttributeNames: attributeNames(ownerIs),
          ExpressionAttributeValues: { ":owner": str(owner) },
        }),
      ),
      { abortSignal: signal },
    );
  } catch (error) {
    // Someone else holds it now, or it is gone: nothing to release.
    if (failedConditionItem(error) === undefined) throw error;
  }
}

/**
 * Releases and deletes the key in one transaction, so the key is deleted
 * only while `owner` still holds the lock, never under another holder.
 */
async function releaseAndDelete(
  ctx: Context,
  key: string,
  owner: string,
  signal: AbortSignal,
): Promise<void> {
  const ownerIs = "#owner = :owner";
  const conflicts = new Backoff(CONFLICT_BACKOFF);
  for (let attempt = 0; attempt < VERSION_RETRIES; attempt++) {
    const version = ctx.clock.next();
    const now = ctx.now();
    try {
      await ctx.client.send(
        tracked(
          ctx,
          new TransactWriteItemsCommand({
            TransactItems: [
              {
                Delete: {
                  TableName: ctx.table,
                  Key: lockKey(key),
                  ConditionExpression: ownerIs,
                  ExpressionAttributeNames: attributeNames(ownerIs),
                  ExpressionAttributeValues: { ":owner": str(owner) },
                },
              },
              {
                Put: {
                  TableName: ctx.table,
                  Item: tombstoneItem(key, version, now, ctx.retentionMs),
                  ConditionExpression: VERSION_IS_LOWER,
                  ExpressionAttributeNames: attributeNames(VERSION_IS_LOWER),
                  ExpressionAttributeValues: { ":version": num(version) },
                  ReturnValuesOnConditionCheckFailure: "ALL_OLD",
                },
              },
            ],
          }),
        ),
        { abortSignal: signal },
      );
      return;
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw error;
      const [lock, data] = reasons;
      if (lock?.Code === "ConditionalCheckFailed") return;
      const higher = data?.Code === "ConditionalCheckFailed";
      if (!higher && !reasons.some((r) => r.Code === "TransactionConflict")) {
        throw error;
      }
      if (attempt + 1 < VERSION_RETRIES) retried(ctx, attempt + 1, error);
      if (higher) {
        const old = data.Item?.version?.N;
        if (old !== undefined) ctx.clock.observe(BigInt(old));
      } else await delay(conflicts.next(), signal);
    }
  }
  throw new StoreError(
    `Could not release the lock on ${JSON.stringify(key)} and delete it`,
  );
}

/** Wakes whoever waits when the stream says a lock item changed. */
class Pulse {
  #waiters = new Set<() => void>();

  notify(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  wait(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#waiters.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      this.#waiters.add(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  }
}
