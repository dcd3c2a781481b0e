/**
 * How the store lays out its data in a Redis database.
 *
 * A key's value lives at exactly the key (`app/db/host`), so `GET` from
 * redis-cli, Traefik or any other client returns the bytes that were put.
 * What the store needs beside it lives under names that begin with `/`,
 * which no key of the store can (a key never starts with a slash), so
 * bookkeeping never collides with a key and never matches the `SCAN` pattern
 * of a tree that other valkeyrie users list:
 *
 * - `/v/KEY`: the key's version and a SHA-1 of its value (see `entries.ts`);
 * - `/lock/KEY`: the token of the lock holder on KEY, with the lock's TTL;
 * - `/counter`: the database's version counter, shared by every store on it;
 * - `/probe/TOKEN`: short-lived, to test that keyspace notifications arrive.
 *
 * @module
 */

import { normalizeKey } from "../../core/keys.ts";

/** Where a key's version companion lives: `/v/` + the key. */
export const VERSION_PREFIX = "/v/";

/** Where the token of a key's lock holder lives: `/lock/` + the key. */
export const LOCK_PREFIX = "/lock/";

/**
 * The one version counter of a database. Every store on the database shares
 * it, so a key written through stores with different prefixes still gets
 * growing versions.
 */
export const COUNTER_KEY = "/counter";

/** Where keyspace-notification probes write: `/probe/` + a random token. */
export const PROBE_PREFIX = "/probe/";

/** The version companion of `key`. */
export function versionKey(key: string): string {
  return VERSION_PREFIX + key;
}

/** The lock bookkeeping of `key`. */
export function lockKey(key: string): string {
  return LOCK_PREFIX + key;
}

/**
 * A `SCAN MATCH` / `PSUBSCRIBE` pattern for every name starting with
 * `prefix`: the glob characters `*?[]\` of the prefix are escaped, so a key
 * named `p/*` matches only itself, never `p/a`.
 */
export function startsWithPattern(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, "\\$&") + "*";
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
