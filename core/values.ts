/**
 * Values and options: turning what callers pass into bytes and checked
 * numbers before any I/O.
 *
 * @module
 */

import { InvalidArgumentError, ValueTooLargeError } from "./errors.ts";

const encoder = new TextEncoder();

/**
 * Turns a value into bytes (a string becomes UTF-8) and checks its size.
 *
 * The bytes are copied, so a caller changing its array afterwards does not
 * change what is stored.
 *
 * @param key The key, for the error message.
 * @param value The value as given.
 * @param maxBytes The largest value allowed.
 * @returns A private copy of the bytes.
 *
 * @example
 * ```ts
 * import { toBytes } from "./values.ts";
 *
 * console.log(toBytes("k", "hi", 1024)); // Uint8Array [104, 105]
 * ```
 */
export function toBytes(
  key: string,
  value: Uint8Array | string,
  maxBytes: number,
): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === "string") {
    // A UTF-8 string is at most 3 bytes per UTF-16 unit: skip encoding
    // hopeless strings, so a huge one fails fast.
    if (value.length > maxBytes) checkSize(key, value.length, maxBytes);
    if (!value.isWellFormed()) {
      throw new InvalidArgumentError(
        `The value for key ${
          JSON.stringify(key)
        } is a string with a lone surrogate, which UTF-8 cannot hold`,
      );
    }
    bytes = encoder.encode(value);
  } else if (value instanceof Uint8Array) {
    bytes = value.slice();
  } else {
    throw new InvalidArgumentError(
      `The value for key ${
        JSON.stringify(key)
      } must be a Uint8Array or a string, not ${describe(value)}`,
    );
  }
  checkSize(key, bytes.length, maxBytes);
  return bytes;
}

function checkSize(key: string, size: number, maxBytes: number): void {
  if (size > maxBytes) throw new ValueTooLargeError(key, size, maxBytes);
}

/**
 * Checks a TTL option: absent, or a positive finite number of milliseconds.
 *
 * @param ttl The option as given.
 * @returns The TTL, or `undefined` for none.
 *
 * @example
 * ```ts
 * import { checkTtl } from "./values.ts";
 *
 * console.log(checkTtl(1500)); // 1500
 * ```
 */
export function checkTtl(ttl: unknown): number | undefined {
  if (ttl === undefined) return undefined;
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) {
    throw new InvalidArgumentError(
      `ttl must be a positive number of milliseconds, not ${describe(ttl)}`,
    );
  }
  return ttl;
}

/**
 * A short description of a value for error messages.
 *
 * @param value Anything.
 * @returns Its type, or its JSON for numbers and short strings.
 *
 * @example
 * ```ts
 * import { describe } from "./values.ts";
 *
 * console.log(describe(null)); // "null"
 * ```
 */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "string") {
    return value.length <= 40 ? JSON.stringify(value) : "a long string";
  }
  if (typeof value === "object") {
    const name = (value as { constructor?: { name?: string } }).constructor
      ?.name;
    return name && name !== "Object" ? `a ${name}` : "a plain object";
  }
  return `a ${typeof value}`;
}
