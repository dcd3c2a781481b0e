/**
 * Consul's KV entries as the store's entries: raw bytes, `ModifyIndex` as
 * `lastIndex`, and the expiry deadline from the flags. An entry whose
 * deadline has passed is absent, whether or not Consul deleted it yet.
 *
 * @module
 */

import type { Entry } from "../../core/driver.ts";
import { expiryOf } from "./expiry.ts";
import type { ConsulEntry } from "./http.ts";

/** The store's entry for a Consul entry, or `null` when it has expired. */
export function toEntry(entry: ConsulEntry, now = Date.now()): Entry | null {
  const expiresAt = expiryOf(entry.Flags);
  if (expiresAt !== undefined && expiresAt <= now) return null;
  const value = entry.Value;
  const result: Entry = {
    key: entry.Key,
    // A copy: the client's buffers may share memory with others.
    value: value ? new Uint8Array(value) : new Uint8Array(),
    lastIndex: BigInt(entry.ModifyIndex),
  };
  if (expiresAt !== undefined) result.expiresAt = expiresAt;
  return result;
}

/** The live entries among `entries`. */
export function toEntries(entries: ConsulEntry[], now = Date.now()): Entry[] {
  const result: Entry[] = [];
  for (const entry of entries) {
    const converted = toEntry(entry, now);
    if (converted) result.push(converted);
  }
  return result;
}

/** Whether `entry` is a key put with a TTL (held by its TTL session). */
export function hasExpiry(entry: ConsulEntry): boolean {
  return expiryOf(entry.Flags) !== undefined;
}
