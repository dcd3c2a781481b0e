/**
 * The item model: how keys, values, versions, expiry and locks are laid out
 * in the table, and the condition expressions over them.
 *
 * One item per key. The partition key `pk` is the key's first segment and
 * the sort key `key` is the whole key, so the tree under any key is one
 * partition's sort-key range: `list("a/b")` is a Query of `pk = "a"` and
 * `begins_with(key, "a/b/")`, reading only that subtree, never a Scan.
 *
 * | attribute   | type | what                                                  |
 * | ----------- | ---- | ----------------------------------------------------- |
 * | `pk`        | S    | partition key: the first segment of `key`             |
 * | `key`       | S    | sort key: the full key (with the store's prefix)      |
 * | `value`     | B    | the raw bytes; absent in a tombstone                  |
 * | `version`   | N    | `lastIndex`; grows on every write, also deletes       |
 * | `expiresAt` | N    | expiry in ms since the epoch (keys put with a `ttl`)  |
 * | `ttl`       | N    | DynamoDB's TTL attribute (epoch seconds)              |
 *
 * Lock items live in partitions `"/lock/" + first segment` (no key's first
 * segment contains `/`), with `key`, `owner`, `heartbeat`, `leaseMs` and
 * `lockedUntil`, so they never show in a data partition's Query. A Scan
 * (only `list("")` of a store without prefix) skips them: they have no
 * `value`.
 *
 * @module
 */

import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type { Entry } from "../../core/driver.ts";

/** An item as the SDK's low-level client reads and writes it. */
export type Item = Record<string, AttributeValue>;

/** The partition of lock items of keys whose first segment is `s`: `"/lock/" + s`. */
export const LOCK_PARTITION_PREFIX = "/lock/";

/** Names of the table's attributes. */
export const ATTR = {
  partition: "pk",
  key: "key",
  value: "value",
  version: "version",
  expiresAt: "expiresAt",
  ttl: "ttl",
  owner: "owner",
  heartbeat: "heartbeat",
  leaseMs: "leaseMs",
  lockedUntil: "lockedUntil",
} as const;

/** The first segment of a key: its partition. */
export function partitionOf(key: string): string {
  const slash = key.indexOf("/");
  return slash < 0 ? key : key.slice(0, slash);
}

/** The primary key of the data item of `key`. */
export function dataKey(key: string): Item {
  return { pk: { S: partitionOf(key) }, key: { S: key } };
}

/** The primary key of the lock item of `key`. */
export function lockKey(key: string): Item {
  return {
    pk: { S: LOCK_PARTITION_PREFIX + partitionOf(key) },
    key: { S: key },
  };
}

/** Whether an item's partition holds lock items. */
export function isLockPartition(partition: string): boolean {
  return partition.startsWith(LOCK_PARTITION_PREFIX);
}

/** DynamoDB's TTL attribute wants whole seconds; never earlier than `ms`. */
export function epochSeconds(ms: number): string {
  return String(Math.ceil(ms / 1000));
}

/**
 * The data item of a key holding `value` at `version`. A key put with a TTL
 * carries `expiresAt` (read-time checks, ms precision) and DynamoDB's `ttl`
 * a retention later, so the expired item keeps its version as long as a
 * tombstone would.
 */
export function valueItem(
  key: string,
  value: Uint8Array,
  version: bigint,
  expiresAt: number | undefined,
  retentionMs: number,
): Item {
  const item: Item = {
    ...dataKey(key),
    value: { B: value },
    version: { N: String(version) },
  };
  if (expiresAt !== undefined) {
    item.expiresAt = { N: String(expiresAt) };
    item.ttl = { N: epochSeconds(expiresAt + retentionMs) };
  }
  return item;
}

/**
 * A deleted key: no value, its last version kept until DynamoDB's TTL
 * removes it after the retention.
 */
export function tombstoneItem(
  key: string,
  version: bigint,
  now: number,
  retentionMs: number,
): Item {
  return {
    ...dataKey(key),
    version: { N: String(version) },
    ttl: { N: epochSeconds(now + retentionMs) },
  };
}

/**
 * The lock item of `key`, held by `owner`. `heartbeat` changes on every
 * renewal: a waiter that sees the same heartbeat for a whole `leaseMs` knows
 * the holder is gone without trusting anyone's clock. `lockedUntil` (the
 * holder's clock) lets a waiter take a long-dead lock at once.
 */
export function lockItem(
  key: string,
  owner: string,
  heartbeat: string,
  leaseMs: number,
  now: number,
  retentionMs: number,
): Item {
  return {
    ...lockKey(key),
    owner: { S: owner },
    heartbeat: { S: heartbeat },
    leaseMs: { N: String(leaseMs) },
    lockedUntil: { N: String(now + leaseMs) },
    ttl: { N: epochSeconds(now + leaseMs + retentionMs) },
  };
}

/** What a data item says about its key. */
export interface ItemState {
  /** The full key. */
  key: string;
  /** The item's version (also of a tombstone or an expired value). */
  version: bigint;
  /** The live entry, or `null` for a tombstone or an expired value. */
  entry: Entry | null;
}

/** Reads a data item; `undefined` if it is not one (a lock item). */
export function readItem(item: Item, now: number): ItemState | undefined {
  const key = item.key?.S;
  const version = item.version?.N;
  if (key === undefined || version === undefined) return undefined;
  const state: ItemState = { key, version: BigInt(version), entry: null };
  const value = item.value?.B;
  if (value === undefined) return state;
  const expiresAt = item.expiresAt?.N === undefined
    ? undefined
    : Number(item.expiresAt.N);
  if (expiresAt !== undefined && expiresAt <= now) return state;
  state.entry = { key, value, lastIndex: state.version };
  if (expiresAt !== undefined) state.entry.expiresAt = expiresAt;
  return state;
}

/** The live entry of a data item, or `null`. */
export function toEntry(item: Item | undefined, now: number): Entry | null {
  return item ? readItem(item, now)?.entry ?? null : null;
}

/**
 * The write only lands above the item's current version, so versions grow
 * whatever order concurrent writers arrive in. Uses `:version`.
 */
export const VERSION_IS_LOWER =
  "attribute_not_exists(#version) OR #version < :version";

/** The key holds a value that has not expired. Uses `:now`. */
export const IS_LIVE =
  "attribute_exists(#value) AND (attribute_not_exists(#expiresAt) OR #expiresAt > :now)";

/** The key holds no live value (absent, deleted or expired). Uses `:now`. */
export const IS_ABSENT = "attribute_not_exists(#value) OR #expiresAt <= :now";

/**
 * The condition of a check step: absent (`null`), or live at `expected`
 * (uses `:now` and `:expected`).
 */
export function checkCondition(expected: bigint | null): string {
  return expected === null ? IS_ABSENT : `#version = :expected AND ${IS_LIVE}`;
}

/**
 * Both conditions. Each is parenthesised once: DynamoDB rejects redundant
 * parentheses.
 */
export function both(a: string, b: string): string {
  return `(${a}) AND (${b})`;
}

/** Whether a check holds for the item as DynamoDB returned it. */
export function checkHolds(
  expected: bigint | null,
  item: Item | null | undefined,
  now: number,
): boolean {
  const live = item ? toEntry(item, now) : null;
  return expected === null ? live === null : live?.lastIndex === expected;
}

/** The `lastIndex` a check saw: the live version, or `null`. */
export function liveVersion(
  item: Item | null | undefined,
  now: number,
): bigint | null {
  return item ? toEntry(item, now)?.lastIndex ?? null : null;
}

/**
 * The `ExpressionAttributeNames` of expressions: every `#name` placeholder
 * stands for the attribute of the same name (several, like `key`, `value`
 * and `ttl`, are DynamoDB reserved words). DynamoDB rejects unused names, so
 * only those that appear are given.
 */
export function attributeNames(
  ...expressions: Array<string | undefined>
): Record<string, string> {
  const names: Record<string, string> = {};
  for (const expression of expressions) {
    if (!expression) continue;
    for (const [placeholder, name] of expression.matchAll(/#(\w+)/g)) {
      names[placeholder] = name;
    }
  }
  return names;
}

/**
 * The `ExpressionAttributeValues` of expressions: those of `values` whose
 * `:name` appears (DynamoDB rejects unused values too).
 */
export function attributeValues(
  values: Record<string, AttributeValue>,
  ...expressions: Array<string | undefined>
): Record<string, AttributeValue> | undefined {
  const used: Record<string, AttributeValue> = {};
  let any = false;
  for (const expression of expressions) {
    if (!expression) continue;
    for (const [placeholder] of expression.matchAll(/:\w+/g)) {
      const value = values[placeholder];
      if (value === undefined) {
        throw new Error(`No value for ${placeholder} in ${expression}`);
      }
      used[placeholder] = value;
      any = true;
    }
  }
  return any ? used : undefined;
}

/** A number attribute value. */
export function num(value: number | bigint): AttributeValue {
  return { N: String(value) };
}

/** A string attribute value. */
export function str(value: string): AttributeValue {
  return { S: value };
}
