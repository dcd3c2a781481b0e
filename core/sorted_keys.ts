/**
 * A sorted index over the keys of an in-process map, for scans served from
 * memory (the `memory:` database, the read cache): built by the first read
 * of it, kept up to date by binary insertion, and dropped when many keys come
 * and go between reads (a bulk load), so writes never pay for an index nobody
 * reads.
 *
 * @module
 */

import type { ScanRange } from "./driver.ts";
import { compareKeys } from "./keys.ts";

/** Keys added or removed between two reads past which the index is rebuilt. */
const REBUILD_AFTER = 1_000;

/** The keys of a map in UTF-8 byte order (see {@linkcode compareKeys}). */
export class SortedKeys {
  readonly #keys: () => Iterable<string>;
  #sorted: string[] | undefined;
  #changesSinceRead = 0;

  /** @param keys Every key of the map, in any order. */
  constructor(keys: () => Iterable<string>) {
    this.#keys = keys;
  }

  /** The keys, sorted; do not change the array. */
  sorted(): readonly string[] {
    this.#changesSinceRead = 0;
    this.#sorted ??= [...this.#keys()].sort(compareKeys);
    return this.#sorted;
  }

  /** `key` was added to the map (it was not there). */
  added(key: string): void {
    this.#changed(key, true);
  }

  /** `key` was removed from the map. */
  removed(key: string): void {
    this.#changed(key, false);
  }

  /** Forgets every key (the map was cleared or replaced). */
  clear(): void {
    this.#sorted = undefined;
    this.#changesSinceRead = 0;
  }

  /**
   * The positions `[from, to)` of {@linkcode sorted} holding the keys of
   * `range` (under `range.dir`, within its bounds; `dir` itself excluded).
   */
  span(range: Omit<ScanRange, "reverse" | "limit" | "keysOnly">): {
    sorted: readonly string[];
    from: number;
    to: number;
  } {
    const sorted = this.sorted();
    // The range is one run of the index: from the lower bound (or the dir)
    // up to the upper bound or the first key past the dir ("a/" ends
    // before "a0", '0' being the character after '/').
    const lower =
      range.lower !== undefined && compareKeys(range.lower, range.dir) > 0
        ? range.lower
        : range.dir;
    let from = lowerBound(sorted, lower);
    if (sorted[from] === range.dir) from++;
    if (!range.lowerInclusive && sorted[from] === range.lower) from++;
    const dirEnd = range.dir === "" ? undefined : range.dir.slice(0, -1) + "0";
    const upper = range.upper === undefined ||
        (dirEnd !== undefined && compareKeys(dirEnd, range.upper) < 0)
      ? dirEnd
      : range.upper;
    const to = upper === undefined ? sorted.length : lowerBound(sorted, upper);
    return { sorted, from, to: Math.max(from, to) };
  }

  /**
   * One page of `range`: `read` of each of its keys in order (descending
   * when `range.reverse`), skipping the keys it gives `undefined` for (an
   * expired entry), until `range.limit` were found.
   */
  page<T>(range: ScanRange, read: (key: string) => T | undefined): T[] {
    const { sorted, from, to } = this.span(range);
    const found: T[] = [];
    const step = range.reverse ? -1 : 1;
    for (
      let i = range.reverse ? to - 1 : from;
      i >= from && i < to && found.length < range.limit;
      i += step
    ) {
      const item = read(sorted[i]);
      if (item !== undefined) found.push(item);
    }
    return found;
  }

  #changed(key: string, present: boolean): void {
    const sorted = this.#sorted;
    if (!sorted) return;
    if (++this.#changesSinceRead > REBUILD_AFTER) {
      this.#sorted = undefined;
      return;
    }
    const at = lowerBound(sorted, key);
    if (present) sorted.splice(at, 0, key);
    else if (sorted[at] === key) sorted.splice(at, 1);
  }
}

/** The first position in `sorted` whose key is not below `key`. */
export function lowerBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareKeys(sorted[mid], key) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}
