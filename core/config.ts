/**
 * Reading a backend's configuration: every setting is checked, numbers given
 * as URL query strings are accepted, and an unknown setting is an error (a
 * typo must not be silently ignored).
 *
 * @module
 */

import { InvalidConfigurationError } from "./errors.ts";
import { describe } from "./values.ts";
import type { FactoryConfig } from "./registry.ts";
import type { TlsOptions } from "./types.ts";

/**
 * How long connecting may take before `NotReachableError`, when the caller
 * gives no `connectTimeout` (the contract's default).
 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** The kinds of setting {@linkcode ConfigReader} can check. */
export type SettingKind = "string" | "number" | "boolean" | "object";

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
    if (
      timeout !== undefined &&
      (typeof timeout !== "number" || !(timeout > 0))
    ) {
      throw this.#error("connectTimeout", "a positive number", timeout);
    }
    const signal = this.#config.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw this.#error("signal", "an AbortSignal", signal);
    }
    void this.tls; // checks its shape now, not at first use
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

  /** TLS settings: `undefined` when off, `{}` when on with defaults. */
  get tls(): TlsOptions | undefined {
    const tls = this.#config.tls;
    if (tls === undefined || tls === false) return undefined;
    if (tls === true) return {};
    if (typeof tls !== "object" || tls === null) {
      throw this.#error("tls", "a boolean or an object", tls);
    }
    return tls as TlsOptions;
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
