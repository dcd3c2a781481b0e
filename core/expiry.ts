/**
 * When a pair's key expires, as its backend reported it with the read: kept
 * beside the pair (not on it), so pairs keep the contract's shape and a key
 * without a TTL costs nothing.
 *
 * @module
 */

import type { KVPair } from "./types.ts";

const expiries = new WeakMap<KVPair, number>();

/** Records when the key of a pair just read expires (for BaseStore). */
export function noteExpiry(pair: KVPair, expiresAt: number): void {
  expiries.set(pair, expiresAt);
}

/**
 * When the key of `pair` expires, in milliseconds since the epoch, as the
 * backend reported it when the pair was read; `undefined` for a key without
 * a TTL, and on etcd, which keeps TTLs in leases it does not report with a
 * read.
 *
 * @param pair A pair read from a store (`get`, `list`, `scan`, watches).
 * @returns The expiry time, or `undefined`.
 *
 * @example
 * ```ts
 * import { expiresAt, openStore } from "@valkeyrie/valkeyrie";
 *
 * await using store = await openStore("memory:expiry-example");
 * await store.put("session", "x", { ttl: 60_000 });
 * const left = expiresAt((await store.get("session"))!)! - Date.now();
 * console.log(left > 0 && left <= 60_000); // true
 * ```
 */
export function expiresAt(pair: KVPair): number | undefined {
  return expiries.get(pair);
}
