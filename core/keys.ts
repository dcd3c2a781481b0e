/**
 * Keys: normalisation, validation, hierarchy and ordering.
 *
 * A key is a `/`-separated path. One leading and one trailing `/` are
 * ignored. A key is rejected when it is empty, has an empty, `.` or `..`
 * segment, holds a control character or a lone surrogate, or is longer than
 * the backend's limit in UTF-8 bytes.
 *
 * @module
 */

import { InvalidKeyError } from "./errors.ts";

/**
 * Normalises and validates a key, throwing {@linkcode InvalidKeyError} when it
 * breaks a rule.
 *
 * @param key The key as the caller gave it.
 * @param maxBytes The longest key allowed, in UTF-8 bytes.
 * @returns The key without its leading and trailing `/`.
 *
 * @example
 * ```ts
 * import { normalizeKey } from "./keys.ts";
 *
 * console.log(normalizeKey("/a/b/", 1024)); // "a/b"
 * ```
 */
export function normalizeKey(key: string, maxBytes: number): string {
  const normalized = checkPath(key, maxBytes);
  if (normalized === "") throw new InvalidKeyError(key, "the key is empty");
  return normalized;
}

/**
 * Normalises and validates a tree prefix: like {@linkcode normalizeKey}, but
 * the empty prefix (`""` or `"/"`) is allowed and means the whole store.
 *
 * @param prefix The prefix as the caller gave it.
 * @param maxBytes The longest key allowed, in UTF-8 bytes.
 * @returns The prefix without its leading and trailing `/`.
 *
 * @example
 * ```ts
 * import { normalizePrefix } from "./keys.ts";
 *
 * console.log(normalizePrefix("/", 1024)); // ""
 * ```
 */
export function normalizePrefix(prefix: string, maxBytes: number): string {
  return checkPath(prefix, maxBytes);
}

// One pass over the UTF-16 code units: strips the slashes, checks every rule
// and counts UTF-8 bytes, without allocating more than the result.
function checkPath(key: string, maxBytes: number): string {
  if (typeof key !== "string") {
    throw new InvalidKeyError(String(key), "a key must be a string");
  }
  let start = 0;
  let end = key.length;
  if (end > 0 && key.charCodeAt(0) === SLASH) start = 1;
  if (end > start && key.charCodeAt(end - 1) === SLASH) end--;
  let bytes = 0;
  let segmentStart = start;
  for (let i = start; i <= end; i++) {
    const c = i < end ? key.charCodeAt(i) : SLASH;
    if (c === SLASH) {
      const length = i - segmentStart;
      if (length === 0 && end > start) {
        throw new InvalidKeyError(key, "it has an empty segment");
      }
      if (
        key.charCodeAt(segmentStart) === DOT &&
        (length === 1 || (length === 2 && key.charCodeAt(i - 1) === DOT))
      ) {
        throw new InvalidKeyError(key, "it has a '.' or '..' segment");
      }
      segmentStart = i + 1;
      if (i < end) bytes++;
      continue;
    }
    if (c < 0x20 || c === 0x7f) {
      throw new InvalidKeyError(
        key,
        `it holds the control character U+${
          c.toString(16).toUpperCase().padStart(4, "0")
        }`,
      );
    }
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < end ? key.charCodeAt(i + 1) : 0;
      if (next < 0xdc00 || next > 0xdfff) {
        throw new InvalidKeyError(key, "it holds a lone surrogate");
      }
      bytes += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      throw new InvalidKeyError(key, "it holds a lone surrogate");
    } else bytes += 3;
  }
  if (bytes > maxBytes) {
    throw new InvalidKeyError(
      key,
      `it is ${bytes} bytes long, over the limit of ${maxBytes} bytes`,
    );
  }
  return start === 0 && end === key.length ? key : key.slice(start, end);
}

const SLASH = 0x2f;
const DOT = 0x2e;

/**
 * The length of a string in UTF-8 bytes, without encoding it.
 *
 * @param text A well-formed string.
 * @returns Its UTF-8 length.
 *
 * @example
 * ```ts
 * import { utf8Length } from "./keys.ts";
 *
 * console.log(utf8Length("é")); // 2
 * ```
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Compares two keys in the order of their UTF-8 bytes (which is code point
 * order, and differs from JavaScript's UTF-16 order for characters above
 * U+FFFF).
 *
 * @param a A key.
 * @param b Another key.
 * @returns Negative, zero or positive, as `Array.prototype.sort` wants.
 *
 * @example
 * ```ts
 * import { compareKeys } from "./keys.ts";
 *
 * console.log(["b", "a"].sort(compareKeys)); // ["a", "b"]
 * ```
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      // Surrogates (0xD800-0xDFFF) encode code points above 0xFFFF, so they
      // sort after 0xE000-0xFFFF in UTF-8 although they are smaller in UTF-16.
      if (x >= 0xd800 && y >= 0xd800) return rank(x) - rank(y);
      return x - y;
    }
  }
  return a.length - b.length;
}

function rank(c: number): number {
  return c >= 0xe000 ? c - 0x800 : c + 0x2000;
}

/**
 * Joins a store prefix and a key into the key stored on the server.
 *
 * @param prefix The store's normalised prefix (`""` for none).
 * @param key A normalised key (`""` for the root of the store).
 * @returns `prefix/key`, or whichever part is not empty.
 *
 * @example
 * ```ts
 * import { joinKey } from "./keys.ts";
 *
 * console.log(joinKey("app", "a/b")); // "app/a/b"
 * ```
 */
export function joinKey(prefix: string, key: string): string {
  if (prefix === "") return key;
  if (key === "") return prefix;
  return prefix + "/" + key;
}

/**
 * The string every key strictly under `key` starts with: `key + "/"`, or `""`
 * for the root. Hierarchy is by segment, so the tree under `"app"` is every
 * key starting with `"app/"`, never `"apple"`.
 *
 * @param key A normalised key, or `""` for the root.
 * @returns The directory prefix.
 *
 * @example
 * ```ts
 * import { dirOf } from "./keys.ts";
 *
 * console.log(dirOf("app")); // "app/"
 * ```
 */
export function dirOf(key: string): string {
  return key === "" ? "" : key + "/";
}
