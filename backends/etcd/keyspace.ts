/**
 * How store keys map to etcd's byte keys: a key is stored as its UTF-8 bytes,
 * a tree is a byte range, and lock bookkeeping lives in a namespace that no
 * valid key can reach.
 *
 * @module
 */

import { Buffer } from "node:buffer";

/**
 * Where lock waiters' keys live. It starts with a NUL byte, which no valid
 * key contains (control characters are rejected), so no user key, tree or
 * prefix can ever be under it.
 */
export const LOCK_NAMESPACE = "\u0000valkeyrie/lock/";

/**
 * Ends a locked key's name in its waiters' keys. A NUL, again, so that the
 * waiters of `a` (`…/a\0…`) are never mistaken for those of `a/b`
 * (`…/a/b\0…`).
 */
const LOCK_KEY_END = "\u0000";

/**
 * The lowest byte a valid key can start with: the space, the first character
 * after the control characters. The whole store of an unprefixed handle is
 * every key from here on, which leaves out the lock namespace.
 */
const FIRST_KEY_BYTE = " ";

/** A key range: `end` excluded; an `end` of one NUL byte means "no end". */
export interface KeyRange {
  key: Buffer;
  end: Buffer;
}

/** The UTF-8 bytes of a key. */
export function keyBytes(key: string): Buffer {
  return Buffer.from(key, "utf8");
}

/** The key a stored byte key names. */
export function keyString(key: Buffer | Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString(
    "utf8",
  );
}

/**
 * Every key starting with `dir`, or every key the driver owns when `dir` is
 * empty (which leaves lock bookkeeping out).
 */
export function treeRange(dir: string): KeyRange {
  if (dir === "") {
    return { key: keyBytes(FIRST_KEY_BYTE), end: Buffer.from([0]) };
  }
  return prefixRange(keyBytes(dir));
}

/** Every key starting with the bytes `prefix`. */
export function prefixRange(prefix: Buffer): KeyRange {
  // etcd's prefix rule: the range ends at the prefix with its last byte that
  // is not 0xff incremented (and what follows it dropped).
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return { key: prefix, end: end.subarray(0, i + 1) };
    }
  }
  return { key: prefix, end: Buffer.from([0]) };
}

/** The prefix under which the waiters for the lock on `key` queue. */
export function lockPrefix(key: string): Buffer {
  return keyBytes(`${LOCK_NAMESPACE}${key}${LOCK_KEY_END}`);
}

/** A waiter's key: the lock's prefix and the waiter's lease. */
export function waiterKey(key: string, lease: string): Buffer {
  return Buffer.concat([lockPrefix(key), keyBytes(BigInt(lease).toString(16))]);
}
