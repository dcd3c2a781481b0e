/**
 * One page of a scan on Consul, read level by level instead of listing the
 * tree.
 *
 * Consul's KV store has no ranged, limited read: `?recurse` answers a whole
 * prefix. But `?keys&separator=/` answers one level of it: the keys right
 * under the prefix and each sub-prefix (`"a/b/"`) once
 * (https://developer.hashicorp.com/consul/api-docs/kv#read-key). Every key
 * under a sub-prefix sorts next to it among the level's names compared as
 * whole strings (it starts with the sub-prefix, and anything that sorts
 * between two of its keys starts with it too), so walking the names in
 * byte order, and a sub-prefix's own level when its turn comes, visits the
 * keys in byte order of whole keys: `"a-c"` before the keys under `"a/"`
 * (`-` sorts below `/`), where a segment-wise walk would put `"a/b"`
 * first. Only sub-prefixes that can
 * hold a key of the range are walked, and the walk stops at the page's
 * `limit` live keys, whose entries are read by `get-or-empty` operations of
 * read-only transactions, up to 64 at a time.
 *
 * @module
 */

import type { Entry, ScanRange } from "../../core/driver.ts";
import { compareKeys } from "../../core/keys.ts";
import { inRange } from "../../core/scan.ts";

/** What the walk reads from Consul. */
export interface ScanReads {
  /** One level under `prefix` (`?keys&separator=/`), `[]` when empty. */
  level(prefix: string): Promise<string[]>;
  /**
   * The live entries of `keys`, one per key in order (`null` when the key
   * is gone or expired since its level was read).
   */
  entries(keys: readonly string[]): Promise<(Entry | null)[]>;
}

/** The most keys whose entries one transaction reads (Consul's 64 operations). */
export const SCAN_READ_KEYS = 64;

/** The page of `range`, read through `reads`. */
export async function scanPage(
  range: ScanRange,
  reads: ScanReads,
): Promise<Entry[]> {
  const page: Entry[] = [];
  if (
    range.lower !== undefined && range.upper !== undefined &&
    compareKeys(range.lower, range.upper) >= 0
  ) {
    return page;
  }
  // Keys are read only as many as the page still lacks: a key found gone
  // or expired makes the next read take one more.
  let batch: string[] = [];
  const flush = async () => {
    const entries = await reads.entries(batch);
    batch = [];
    for (const entry of entries) if (entry) page.push(entry);
  };
  for await (const key of keysOf(range, reads)) {
    batch.push(key);
    if (batch.length >= Math.min(range.limit - page.length, SCAN_READ_KEYS)) {
      await flush();
      if (page.length >= range.limit) break;
    }
  }
  if (batch.length > 0) await flush();
  return page;
}

/** One level being walked: its prefix and its names left, in walk order. */
interface Level {
  prefix: string;
  names: string[];
  at: number;
}

// The keys of the range, in its order, as Consul names them: a walk that
// holds the levels on the path from `dir` down to the current one.
async function* keysOf(
  range: ScanRange,
  reads: ScanReads,
): AsyncGenerator<string> {
  const open = async (prefix: string): Promise<Level> => {
    const names = (await reads.level(prefix)).filter((name) =>
      isSubPrefix(name, prefix)
        ? mayHold(range, name)
        : name.startsWith(prefix) && inRange(range, name)
    );
    names.sort(compareKeys);
    if (range.reverse) names.reverse();
    return { prefix, names, at: 0 };
  };
  const path: Level[] = [await open(range.dir)];
  while (path.length > 0) {
    const level = path[path.length - 1];
    if (level.at === level.names.length) {
      path.pop();
      continue;
    }
    const name = level.names[level.at++];
    if (isSubPrefix(name, level.prefix)) path.push(await open(name));
    else yield name;
  }
}

// A level's name ending in "/" is a sub-prefix, except the prefix itself:
// a key written as "a/b/" by another client shows under "a/b/" as a key.
function isSubPrefix(name: string, prefix: string): boolean {
  return name.endsWith("/") && name !== prefix && name.startsWith(prefix);
}

/** Whether some key starting with `prefix` may lie in `range`. */
function mayHold(range: ScanRange, prefix: string): boolean {
  // The prefix sorts below every other key that starts with it, and
  // anything between two such keys starts with it too: some of them lie
  // below the upper bound only if the prefix does, and above the lower
  // bound if the prefix does or the bound itself starts with the prefix.
  if (range.upper !== undefined && compareKeys(prefix, range.upper) >= 0) {
    return false;
  }
  const lower = range.lower;
  return lower === undefined || compareKeys(lower, prefix) < 0 ||
    lower.startsWith(prefix);
}
