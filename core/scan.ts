/**
 * Streamed listing: the `scan` iterator every backend shares.
 *
 * A scan reads a tree one page at a time through the driver's `scan`, so
 * the client holds at most one page (`batchSize` pairs) however big the
 * tree. Its cursor is the last key it yielded; a later scan handed that
 * cursor (in any process, on any handle with the same store prefix) goes on
 * right after that key, so keys written or deleted meanwhile are seen or not
 * by their position alone.
 *
 * @module
 */

import { compareKeys } from "./keys.ts";
import { InvalidArgumentError } from "./errors.ts";
import { describe } from "./values.ts";
import type { Entry, ScanRange } from "./driver.ts";
import type { KVPair, ScanIterator, ScanOptions } from "./types.ts";

/** Pairs a scan fetches per round trip when `batchSize` is not given. */
export const DEFAULT_SCAN_BATCH = 256;

/** The largest `batchSize` a scan takes. */
export const MAX_SCAN_BATCH = 10_000;

/** A scan's options, checked, with bounds as full keys. */
export interface ScanPlan {
  /** Every key of the scan starts with this (a driver `dir`). */
  dir: string;
  /** The `start` option as a full key (inclusive), if given. */
  start?: string;
  /** The `end` option as a full key (exclusive), if given. */
  end?: string;
  /** The cursor's key as a full key: resume after it, if given. */
  after?: string;
  /** Whether the keys come in descending order. */
  reverse: boolean;
  /** The most pairs in all (`Infinity`: no limit). */
  limit: number;
  /** Pairs per round trip. */
  batchSize: number;
  /** Whether values may be left out. */
  keysOnly: boolean;
}

/** How `BaseStore` turns the caller's keys into full keys (checked). */
export interface ScanKeys {
  /** Checks a key and turns it into a full key (throws when invalid). */
  full(key: string): string;
}

/**
 * Encodes a key as a cursor: base64url of its UTF-8 bytes, so a cursor is
 * safe in a URL or a file name and never mistaken for a key.
 *
 * @param key The key (as the caller sees it).
 * @returns The cursor.
 *
 * @example
 * ```ts
 * import { decodeCursor, encodeCursor } from "./scan.ts";
 *
 * console.log(decodeCursor(encodeCursor("users/ada"))); // "users/ada"
 * ```
 */
export function encodeCursor(key: string): string {
  const bytes = new TextEncoder().encode(key);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

/**
 * Decodes a cursor made by {@linkcode encodeCursor}.
 *
 * @param cursor The cursor.
 * @returns The key it points after.
 * @throws {InvalidArgumentError} When it is not a cursor.
 */
export function decodeCursor(cursor: string): string {
  const invalid = () =>
    new InvalidArgumentError(
      `cursor ${JSON.stringify(cursor)} is not a cursor of a scan`,
    );
  if (!/^[A-Za-z0-9_-]+$/.test(cursor) || cursor.length % 4 === 1) {
    throw invalid();
  }
  let binary: string;
  try {
    binary = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    throw invalid();
  }
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw invalid();
  }
}

/**
 * Checks a scan's options and turns its bounds into full keys.
 *
 * @param dir The tree's `dir` (the prefix's full key with a `/`, or `""`).
 * @param options The caller's options.
 * @param keys How keys become full keys.
 * @returns The plan.
 * @throws {InvalidArgumentError} On an option of the wrong type or range, a
 * bound or cursor outside the prefix.
 */
export function planScan(
  dir: string,
  options: ScanOptions | undefined,
  keys: ScanKeys,
): ScanPlan {
  if (options !== undefined && (typeof options !== "object" || !options)) {
    throw new InvalidArgumentError(
      `scan options must be an object, not ${describe(options)}`,
    );
  }
  const count = (name: "limit" | "batchSize", max: number) => {
    const value = options?.[name];
    if (value === undefined) return undefined;
    if (!Number.isSafeInteger(value) || value < 1 || value > max) {
      throw new InvalidArgumentError(
        `scan ${name} must be a whole number from 1 to ${max}, not ${
          describe(value)
        }`,
      );
    }
    return value;
  };
  const flag = (name: "reverse" | "keysOnly") => {
    const value = options?.[name] ?? false;
    if (typeof value !== "boolean") {
      throw new InvalidArgumentError(
        `scan ${name} must be a boolean, not ${describe(value)}`,
      );
    }
    return value;
  };
  const bound = (name: "start" | "end" | "cursor") => {
    const value = options?.[name];
    if (value === undefined || value === "") return undefined;
    if (typeof value !== "string") {
      throw new InvalidArgumentError(
        `scan ${name} must be a string, not ${describe(value)}`,
      );
    }
    const full = keys.full(name === "cursor" ? decodeCursor(value) : value);
    if (!full.startsWith(dir) || full === dir) {
      throw new InvalidArgumentError(
        `scan ${name} ${JSON.stringify(value)} is not under the scanned prefix`,
      );
    }
    return full;
  };
  return {
    dir,
    start: bound("start"),
    end: bound("end"),
    after: bound("cursor"),
    reverse: flag("reverse"),
    limit: count("limit", Number.MAX_SAFE_INTEGER) ?? Infinity,
    batchSize: count("batchSize", MAX_SCAN_BATCH) ?? DEFAULT_SCAN_BATCH,
    keysOnly: flag("keysOnly"),
  };
}

/**
 * The range of the next page of a scan that has yielded up to `after`.
 *
 * @param plan The scan.
 * @param after The last key yielded (full), if any.
 * @param limit The most entries the page may hold.
 * @returns The driver's range, or `undefined` when nothing can be left.
 */
export function nextRange(
  plan: ScanPlan,
  after: string | undefined,
  limit: number,
): ScanRange | undefined {
  let lower = plan.start;
  let lowerInclusive = true;
  let upper = plan.end;
  if (after !== undefined) {
    if (!plan.reverse) {
      if (lower === undefined || compareKeys(after, lower) >= 0) {
        lower = after;
        lowerInclusive = false;
      }
    } else if (upper === undefined || compareKeys(after, upper) < 0) {
      upper = after;
    }
  }
  if (lower !== undefined && upper !== undefined) {
    const order = compareKeys(lower, upper);
    if (order >= 0) return undefined;
  }
  return {
    dir: plan.dir,
    lower,
    lowerInclusive,
    upper,
    reverse: plan.reverse,
    limit,
    keysOnly: plan.keysOnly,
  };
}

/**
 * Whether `key` lies in `range` (a check on what a driver returned).
 *
 * @param range The range asked.
 * @param key A full key.
 * @returns Whether it belongs.
 */
export function inRange(range: ScanRange, key: string): boolean {
  if (!key.startsWith(range.dir) || key === range.dir) return false;
  if (range.lower !== undefined) {
    const order = compareKeys(key, range.lower);
    if (order < 0 || (order === 0 && !range.lowerInclusive)) return false;
  }
  return range.upper === undefined || compareKeys(key, range.upper) < 0;
}

/** How a scan reads its pages; given by `BaseStore`. */
export interface ScanSource {
  /** Reads one page (checks the store is open, wraps errors). */
  page(range: ScanRange): Promise<Entry[]>;
  /** Turns a driver entry into the caller's pair (prefix taken off). */
  toPair(entry: Entry): KVPair;
}

/**
 * The iterator `scan` returns: it fetches a page when the last one is used
 * up, and ends when a page comes back short or the limit is reached.
 */
export class Scan implements ScanIterator {
  #plan: ScanPlan;
  #source: ScanSource;
  #page: Entry[] = [];
  #at = 0;
  #yielded = 0;
  #after: string | undefined;
  #cursor: string;
  #exhausted = false;
  #keysOnly: boolean;
  #finished = false;
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * @param plan The checked options.
   * @param source How pages are read.
   * @param cursor The cursor the scan was given ("" for none).
   */
  constructor(plan: ScanPlan, source: ScanSource, cursor: string) {
    this.#plan = plan;
    this.#source = source;
    this.#after = plan.after;
    this.#keysOnly = plan.keysOnly;
    this.#cursor = cursor;
  }

  /** After the last pair yielded; the given cursor (or "") before the first. */
  get cursor(): string {
    return this.#cursor;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next pair; calls made at once are served in turn. */
  next(): Promise<IteratorResult<KVPair, undefined>> {
    const result = this.#queue.then(() => this.#next());
    this.#queue = result.catch(() => {});
    return result;
  }

  /** Ends the scan and frees its page (what `break` calls). */
  return(): Promise<IteratorResult<KVPair, undefined>> {
    this.#finish();
    return Promise.resolve({ done: true, value: undefined });
  }

  async #next(): Promise<IteratorResult<KVPair, undefined>> {
    if (this.#finished) return { done: true, value: undefined };
    if (this.#at === this.#page.length) {
      const left = this.#plan.limit - this.#yielded;
      if (this.#exhausted || left <= 0) {
        this.#finish();
        return { done: true, value: undefined };
      }
      const size = Math.min(this.#plan.batchSize, left);
      const range = nextRange(this.#plan, this.#after, size);
      if (range === undefined) {
        this.#finish();
        return { done: true, value: undefined };
      }
      let page: Entry[];
      try {
        page = await this.#source.page(range);
      } catch (error) {
        this.#finish();
        throw error;
      }
      if (page.length < size) this.#exhausted = true;
      // The driver keeps to the range and the limit (Driver.scan's contract).
      this.#page = page;
      this.#at = 0;
      if (this.#page.length === 0) {
        this.#finish();
        return { done: true, value: undefined };
      }
    }
    const entry = this.#page[this.#at++];
    const pair = this.#source.toPair(entry);
    if (this.#keysOnly) pair.value = new Uint8Array(0);
    this.#yielded++;
    this.#after = entry.key;
    this.#cursor = encodeCursor(pair.key);
    return { done: false, value: pair };
  }

  #finish(): void {
    this.#finished = true;
    this.#page = [];
    this.#at = 0;
  }
}

/**
 * One page of a scan read through a driver's `list`, for drivers without a
 * native `scan`: the whole tree is listed, sorted and cut to the range.
 *
 * @param entries What `list(range.dir)` returned.
 * @param range The page wanted.
 * @returns The page.
 */
export function pageOfList(entries: Entry[], range: ScanRange): Entry[] {
  const inside = entries.filter((entry) => inRange(range, entry.key));
  inside.sort((a, b) => compareKeys(a.key, b.key));
  if (range.reverse) inside.reverse();
  return inside.slice(0, range.limit);
}
