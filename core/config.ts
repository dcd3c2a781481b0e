/**
 * Reading a backend's configuration: every setting is checked, numbers given
 * as URL query strings are accepted, and an unknown setting is an error (a
 * typo must not be silently ignored).
 *
 * @module
 */

import { MAX_TIMER_MS } from "./abort.ts";
import { InvalidConfigurationError } from "./errors.ts";
import { describe } from "./values.ts";
import type { FactoryConfig } from "./registry.ts";
import { type TlsConnectionOptions, tlsConnectionOptions } from "./tls.ts";
import type { TlsOptions } from "./types.ts";

/**
 * How long connecting may take before `NotReachableError`, when the caller
 * gives no `connectTimeout` (the contract's default).
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** The kinds of setting {@linkcode ConfigReader} can check. */
export type SettingKind = "string" | "number" | "boolean" | "object";

/** What a number setting must be besides positive (see {@linkcode positiveNumber}). */
export interface NumberRule {
  /** It must be a whole number. */
  integer?: boolean;
  /** The smallest value allowed (default: anything above 0). */
  min?: number;
  /** The largest value allowed. */
  max?: number;
  /**
   * It is a duration in milliseconds that a timer waits for: at most
   * {@linkcode MAX_TIMER_MS} (a timer given more fires at once).
   */
  timer?: boolean;
}

/**
 * Checks a number setting: finite, above 0 and within `rule`. Every backend's
 * number checks go through it, so they all say the same thing:
 * `The <backend> setting "<name>" must be a positive number ..., not <value>`.
 *
 * @param backend The backend's name, for the message.
 * @param name The setting.
 * @param value Its value.
 * @param rule Whole numbers only, bounds, a timer's limit.
 * @returns The value.
 * @throws {InvalidConfigurationError} When it breaks the rule.
 *
 * @example
 * ```ts
 * import { positiveNumber } from "./config.ts";
 *
 * console.log(positiveNumber("etcd", "requestTimeout", 5_000, { timer: true })); // 5000
 * ```
 */
export function positiveNumber(
  backend: string,
  name: string,
  value: unknown,
  rule: NumberRule = {},
): number {
  const max = rule.timer
    ? Math.min(rule.max ?? MAX_TIMER_MS, MAX_TIMER_MS)
    : rule.max;
  const { min, integer } = rule;
  if (
    typeof value === "number" && Number.isFinite(value) && value > 0 &&
    (!integer || Number.isInteger(value)) &&
    (min === undefined || value >= min) && (max === undefined || value <= max)
  ) {
    return value;
  }
  const range = min !== undefined && max !== undefined
    ? ` from ${min} to ${max}`
    : max !== undefined
    ? ` up to ${max}`
    : min !== undefined
    ? ` from ${min}`
    : "";
  throw new InvalidConfigurationError(
    `The ${backend} setting ${JSON.stringify(name)} must be a positive ${
      integer ? "whole number" : "number"
    }${rule.timer ? " of milliseconds" : ""}${range}, not ${describe(value)}`,
  );
}

/** Settings every backend accepts. */
const COMMON = new Set([
  "connectTimeout",
  "prefix",
  "signal",
  "tls",
  "username",
  "password",
  "url",
]);

/**
 * Checks a backend's configuration and reads it with the right types.
 *
 * @example
 * ```ts
 * import { ConfigReader } from "./config.ts";
 *
 * const config = new ConfigReader("redis", { db: "2" }, { db: "number" });
 * console.log(config.number("db")); // 2
 * ```
 */
export class ConfigReader {
  readonly #backend: string;
  readonly #config: Record<string, unknown>;
  readonly #kinds: Record<string, SettingKind>;
  readonly #tls: TlsConnectionOptions | undefined;

  /**
   * Checks that every setting is common or one of `kinds`, with its kind.
   *
   * @param backend The backend's name, for messages.
   * @param config The configuration as given (URL parameters merged in by
   * the caller when wanted).
   * @param kinds The backend's own settings and their kinds.
   */
  constructor(
    backend: string,
    config: FactoryConfig | Record<string, unknown>,
    kinds: Record<string, SettingKind>,
  ) {
    this.#backend = backend;
    this.#config = config as Record<string, unknown>;
    this.#kinds = kinds;
    for (const [name, value] of Object.entries(this.#config)) {
      if (value === undefined) continue;
      const kind = kinds[name];
      if (!kind && !COMMON.has(name)) {
        throw new InvalidConfigurationError(
          `Unknown ${backend} setting ${JSON.stringify(name)} (known: ${
            [...COMMON, ...Object.keys(kinds)].filter((n) => n !== "url")
              .join(", ")
          })`,
        );
      }
      if (kind) this.#read(name, kind);
    }
    const timeout = this.#config.connectTimeout;
    if (timeout !== undefined) {
      positiveNumber(backend, "connectTimeout", timeout, { timer: true });
    }
    const signal = this.#config.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw this.#error("signal", "an AbortSignal", signal);
    }
    // Checked now, before anything connects.
    const tls = this.#config.tls;
    this.#tls = tls === undefined || tls === false
      ? undefined
      : tlsConnectionOptions(backend, tls === true ? {} : tls as TlsOptions);
    for (const name of ["username", "password"]) {
      const value = this.#config[name];
      if (value !== undefined && typeof value !== "string") {
        throw this.#error(name, "a string", value);
      }
    }
  }

  /** The connect timeout in milliseconds (default 10 000). */
  get connectTimeout(): number {
    return (this.#config.connectTimeout as number | undefined) ??
      DEFAULT_CONNECT_TIMEOUT_MS;
  }

  /** The signal that aborts opening, if any. */
  get signal(): AbortSignal | undefined {
    return this.#config.signal as AbortSignal | undefined;
  }

  /** The store prefix, if any (checked by the store). */
  get prefix(): string | undefined {
    return this.#config.prefix as string | undefined;
  }

  /** The user name, if any. */
  get username(): string | undefined {
    return this.#config.username as string | undefined;
  }

  /** The password, if any. */
  get password(): string | undefined {
    return this.#config.password as string | undefined;
  }

  /**
   * TLS settings, checked (an unknown field is an error) and ready for the
   * backend's TLS client: `undefined` when off.
   */
  get tls(): TlsConnectionOptions | undefined {
    return this.#tls;
  }

  /**
   * A number setting that must be positive (see {@linkcode positiveNumber}).
   *
   * @param name The setting.
   * @param fallback Its value when not set.
   * @param rule Whole numbers only, bounds, a timer's limit.
   * @returns Its value, or `fallback`.
   */
  positive(name: string, fallback: number, rule: NumberRule = {}): number {
    return positiveNumber(
      this.#backend,
      name,
      this.number(name) ?? fallback,
      rule,
    );
  }

  /**
   * A string setting.
   *
   * @param name The setting.
   * @returns Its value, if set.
   */
  string(name: string): string | undefined {
    return this.#read(name, "string") as string | undefined;
  }

  /**
   * A number setting (a numeric string from a URL is accepted).
   *
   * @param name The setting.
   * @returns Its value, if set.
   */
  number(name: string): number | undefined {
    return this.#read(name, "number") as number | undefined;
  }

  /**
   * A boolean setting (`"true"`/`"false"` from a URL are accepted).
   *
   * @param name The setting.
   * @returns Its value, if set.
   */
  boolean(name: string): boolean | undefined {
    return this.#read(name, "boolean") as boolean | undefined;
  }

  /**
   * An object setting, handed over as it is.
   *
   * @param name The setting.
   * @returns Its value, if set.
   */
  object<T extends object>(name: string): T | undefined {
    return this.#read(name, "object") as T | undefined;
  }

  #read(name: string, kind: SettingKind): unknown {
    const value = this.#config[name];
    if (value === undefined) return undefined;
    switch (kind) {
      case "string":
        if (typeof value === "string") return value;
        throw this.#error(name, "a string", value);
      case "number": {
        const number = typeof value === "string" && value.trim() !== ""
          ? Number(value)
          : value;
        if (typeof number === "number" && Number.isFinite(number)) {
          return number;
        }
        throw this.#error(name, "a number", value);
      }
      case "boolean":
        if (typeof value === "boolean") return value;
        if (value === "true" || value === "1") return true;
        if (value === "false" || value === "0") return false;
        throw this.#error(name, "a boolean", value);
      case "object":
        if (typeof value === "object" && value !== null) return value;
        throw this.#error(name, "an object", value);
    }
  }

  #error(name: string, wanted: string, value: unknown) {
    return new InvalidConfigurationError(
      `The ${this.#backend} setting ${
        JSON.stringify(name)
      } must be ${wanted}, not ${describe(value)}`,
    );
  }
}
