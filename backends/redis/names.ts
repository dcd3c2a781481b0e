/**
 * How the store lays out its data in a Redis database.
 *
 * A key's value lives at exactly the key (`app/db/host`), so `GET` from
 * redis-cli, Traefik or any other client returns the bytes that were put.
 * What the store needs beside it lives under names that begin with `/`,
 * which no key of the store can (a key never starts with a slash), so
 * bookkeeping never collides with a key and never matches the `SCAN` pattern
 * of a tree that other valkeyrie users list.
 *
 * Every bookkeeping name of a key carries the tag of the key's hash slot
 * (`{TAG}`, see `slots.ts`), so the key and its bookkeeping share a slot and
 * one script may touch them all, also on Redis Cluster:
 *
 * - `/v/{TAG}KEY`: the key's version and a SHA-1 of its value (`entries.ts`);
 * - `/lock/{TAG}KEY`: the token of the lock holder on KEY, with the lock's TTL;
 * - `/counter/{TAG}`: the version counter of the slot, shared by every store
 *   on the database;
 * - `/probe/{TAG}TOKEN`: short-lived, to test that keyspace notifications
 *   arrive (the tag picks the node on a cluster).
 *
 * @module
 */

import { normalizeKey } from "../../core/keys.ts";
import { keySlot, slotTag, TAG_LENGTH } from "./slots.ts";

/** Where a key's version companion lives: `/v/{TAG}` + the key. */
export const VERSION_PREFIX = "/v/";

/** Where the token of a key's lock holder lives: `/lock/{TAG}` + the key. */
export const LOCK_PREFIX = "/lock/";

/**
 * Where the version counters live: `/counter/{TAG}`, one per hash slot.
 * Every store on the database shares them, so a key written through stores
 * with different prefixes still gets growing versions.
 */
export const COUNTER_PREFIX = "/counter/";

/** Where keyspace-notification probes write: `/probe/{TAG}` + a token. */
export const PROBE_PREFIX = "/probe/";

/** `{TAG}` of a name's slot: what bookkeeping names start with. */
function tagOf(slot: number): string {
  return `{${slotTag(slot)}}`;
}

/** The length of `{TAG}`. */
const TAG_PART_LENGTH = TAG_LENGTH + 2;

/** The version companion of `key`. */
export function versionKey(key: string): string {
  return VERSION_PREFIX + tagOf(keySlot(key)) + key;
}

/** The lock bookkeeping of `key`. */
export function lockKey(key: string): string {
  return LOCK_PREFIX + tagOf(keySlot(key)) + key;
}

/** The version counter of `key`'s hash slot. */
export function counterKey(key: string): string {
  return COUNTER_PREFIX + tagOf(keySlot(key));
}

/** A probe name in hash slot `slot`. */
export function probeKey(slot: number, token: string): string {
  return PROBE_PREFIX + tagOf(slot) + token;
}

/**
 * The key whose version companion `name` is, or `undefined` when `name` is
 * no companion of the store (not under `/v/`, or not with its key's tag).
 */
export function keyOfCompanion(name: string): string | undefined {
  if (!name.startsWith(VERSION_PREFIX)) return undefined;
  const key = name.slice(VERSION_PREFIX.length + TAG_PART_LENGTH);
  return key !== "" && versionKey(key) === name ? key : undefined;
}

/**
 * A `SCAN MATCH` / `PSUBSCRIBE` pattern for every name starting with
 * `prefix`: the glob characters `*?[]\` of the prefix are escaped, so a key
 * named `p/*` matches only itself, never `p/a`.
 */
export function startsWithPattern(prefix: string): string {
  return escapeGlob(prefix) + "*";
}

/**
 * A `SCAN MATCH` pattern for the version companions of every key starting
 * with `prefix`, whatever their tags.
 */
export function companionsPattern(prefix: string): string {
  return `${VERSION_PREFIX}{${"?".repeat(TAG_LENGTH)}}${escapeGlob(prefix)}*`;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/**
 * The keyspace-notification channel prefix of database `db`: a change of
 * `key` is published on this prefix + `key`.
 */
export function keyspacePrefix(db: number): string {
  return `__keyspace@${db}__:`;
}

/**
 * Whether a Redis name is a key of the store: a valid, normalised key no
 * longer than `maxKeyBytes` (not bookkeeping, not a name the library cannot
 * read back).
 */
export function isStoreKey(name: string, maxKeyBytes: number): boolean {
  // A cheap test first: bookkeeping starts with a slash.
  if (name === "" || name.charCodeAt(0) === 0x2f) return false;
  try {
    return normalizeKey(name, maxKeyBytes) === name;
  } catch {
    return false;
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A Redis name as a string, or `undefined` when it is not UTF-8. */
export function decodeName(name: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(name);
  } catch {
    return undefined;
  }
}
