/**
 * Counters: `increment` and `atomic().sum` on every backend, on top of the
 * driver's compare-and-set. A counter is stored as the decimal ASCII text of
 * a signed 64-bit integer (`"42"`, `"-7"`), so `redis-cli GET` prints it and
 * Redis's `INCRBY` reads it; a missing key counts as `0n`.
 *
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";

/** The smallest value a counter holds (−2⁶³). */
export const COUNTER_MIN = -(2n ** 63n);
/** The largest value a counter holds (2⁶³ − 1). */
export const COUNTER_MAX = 2n ** 63n - 1n;

const DECIMAL = /^(?:0|-?[1-9][0-9]{0,18})$/;
const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * Checks a delta given to `increment` or `sum`.
 *
 * @param key The key, for the message.
 * @param delta The delta.
 * @returns The delta.
 */
export function checkDelta(key: string, delta: unknown): bigint {
  if (typeof delta !== "bigint") {
    throw new InvalidArgumentError(
      `The delta for counter ${
        JSON.stringify(key)
      } must be a bigint, not ${typeof delta}`,
    );
  }
  if (delta < COUNTER_MIN || delta > COUNTER_MAX) {
    throw new InvalidArgumentError(
      `The delta for counter ${
        JSON.stringify(key)
      } is outside the signed 64-bit range`,
    );
  }
  return delta;
}

/**
 * Reads a stored counter: `0n` for a missing key, else its decimal text.
 *
 * @param key The key, for the message.
 * @param value The stored bytes, or `null` when the key is absent.
 * @returns The number.
 */
export function readCounter(key: string, value: Uint8Array | null): bigint {
  if (value === null) return 0n;
  let text: string | undefined;
  try {
    text = decoder.decode(value);
  } catch {
    text = undefined;
  }
  if (text === undefined || !DECIMAL.test(text)) throw notACounter(key);
  const number = BigInt(text);
  if (number < COUNTER_MIN || number > COUNTER_MAX) {
    throw new InvalidArgumentError(
      `The value of ${
        JSON.stringify(key)
      } is outside the signed 64-bit range of a counter`,
    );
  }
  return number;
}

/**
 * Adds `delta` to a counter's value, refusing an overflow.
 *
 * @param key The key, for the message.
 * @param current The counter's value.
 * @param delta What to add.
 * @returns The sum and its stored form.
 */
export function addToCounter(
  key: string,
  current: bigint,
  delta: bigint,
): { value: bigint; bytes: Uint8Array } {
  const value = current + delta;
  if (value < COUNTER_MIN || value > COUNTER_MAX) {
    throw counterOverflow(key, current, delta);
  }
  return { value, bytes: encoder.encode(value.toString()) };
}

/**
 * The error for a value that is not a counter (also when a server said so).
 *
 * @param key The key, for the message.
 * @returns The error to throw.
 */
export function notACounter(key: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `The value of ${
      JSON.stringify(key)
    } is not a counter (the decimal text of a signed 64-bit integer)`,
  );
}

/**
 * The error for a sum outside the signed 64-bit range.
 *
 * @param key The key, for the message.
 * @param current The counter's value.
 * @param delta What was to be added.
 * @returns The error to throw.
 */
export function counterOverflow(
  key: string,
  current: bigint,
  delta: bigint,
): InvalidArgumentError {
  return new InvalidArgumentError(
    `Adding ${delta} to counter ${
      JSON.stringify(key)
    } (${current}) overflows a signed 64-bit integer`,
  );
}
