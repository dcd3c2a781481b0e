/**
 * The adapters' option checks: a Keyv adapter or an unstorage driver made
 * with wrong options fails when it is made, naming the option, instead of
 * with a `TypeError` at its first call.
 *
 * @module
 */

import {
  InvalidConfigurationError,
  parseStoreUrl,
  type Store,
} from "../mod.ts";
import { describe } from "../core/values.ts";

const STORE_CALLS = ["get", "put", "exists", "scan", "getMany", "close"];

/** Whether `value` is a store (has the calls the adapters make). */
function isStore(value: unknown): value is Store {
  if (typeof value !== "object" || value === null) return false;
  const store = value as Record<string, unknown>;
  return STORE_CALLS.every((call) => typeof store[call] === "function");
}

/**
 * Checks an adapter's `store` argument: a {@linkcode Store}, or a store URL
 * (string or `URL`) that parses.
 *
 * @param where Who asks, for the message ("valkeyrieDriver: store").
 * @param store The argument.
 * @returns Whether it is a URL (the adapter then opens and owns the store).
 */
export function checkStoreArgument(where: string, store: unknown): boolean {
  if (typeof store === "string" || store instanceof URL) {
    try {
      parseStoreUrl(store);
    } catch (error) {
      throw new InvalidConfigurationError(
        `${where}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return true;
  }
  if (isStore(store)) return false;
  throw new InvalidConfigurationError(
    `${where} must be a Store or a store URL (such as "memory:" or ` +
      `"redis://127.0.0.1:6379"), not ${
        typeof store === "object" && store !== null
          ? "an object without a store's calls"
          : typeof store === "number" || typeof store === "boolean"
          ? `the ${typeof store} ${store}`
          : describe(store)
      }`,
  );
}

/**
 * Checks that `options` is an object holding only `known` options, so a
 * misspelt one is an error instead of being ignored.
 *
 * @param where Who asks, for the message.
 * @param options The options.
 * @param known Their names.
 */
export function checkOptionNames(
  where: string,
  options: unknown,
  known: readonly string[],
): void {
  if (typeof options !== "object" || options === null) {
    throw new InvalidConfigurationError(
      `${where} takes an options object (${known.join(", ")}), not ${
        describe(options)
      }`,
    );
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new InvalidConfigurationError(
        `${where}: unknown option "${name}" (the options are ${
          known.join(", ")
        })`,
      );
    }
  }
}

/**
 * Checks an optional option's type: `undefined`, or one `check` accepts.
 *
 * @param where Who asks and which option, for the message.
 * @param value The option's value.
 * @param what What it must be, for the message.
 * @param check Whether a given value is right.
 */
export function checkOption(
  where: string,
  value: unknown,
  what: string,
  check: (value: unknown) => boolean,
): void {
  if (value !== undefined && !check(value)) {
    throw new InvalidConfigurationError(
      `${where} must be ${what}, not ${describe(value)}`,
    );
  }
}
