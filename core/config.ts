/**
 * A backend's settings as one schema: each setting's kind, meaning, default
 * and bounds, declared once. From it {@linkcode ConfigReader} checks and
 * reads a configuration (numbers and booleans given as URL query strings are
 * accepted, an unknown setting is an error: a typo must not be silently
 * ignored), and `scripts/settings.ts` writes the backend's options interface
 * and the settings table of its page.
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

/** What a number setting must be besides positive (see {@linkcode positiveNumber}). */
export interface NumberRule {
  /** It must be a whole number. */
  integer?: boolean;
  /** The smallest value allowed (default: anything above 0; `0` allows 0). */
  min?: number;
  /** The largest value allowed. */
  max?: number;
  /**
   * It is a duration in milliseconds that a timer waits for: at most
   * {@linkcode MAX_TIMER_MS} (a timer given more fires at once).
   */
  timer?: boolean;
}

/** What every setting of a schema says of itself. */
export interface SettingBase {
  /** What it is, for the options interface and the docs table (Markdown). */
  readonly doc: string;
  /** The default as the docs say it, when it is not one plain value. */
  readonly defaultDoc?: string;
  /** The options interface declares it required (the backend checks it). */
  readonly required?: boolean;
}

/** A string setting, perhaps one of a few values. */
export interface StringSetting extends SettingBase {
  /** The kind. */
  readonly kind: "string";
  /** Its value when not given. */
  readonly default?: string;
  /** The values allowed, when only a few are. */
  readonly choices?: readonly string[];
}

/** A number setting, positive unless its rule says otherwise. */
export interface NumberSetting extends SettingBase, NumberRule {
  /** The kind. */
  readonly kind: "number";
  /** Its value when not given. */
  readonly default?: number;
}

/** A boolean setting (`true`/`false`/`1`/`0` from a URL). */
export interface BooleanSetting extends SettingBase {
  /** The kind. */
  readonly kind: "boolean";
  /** Its value when not given. */
  readonly default?: boolean;
}

/** A setting of another type: a list, a client, a function. */
export interface ValueSetting extends SettingBase {
  /** The kind. */
  readonly kind: "value";
  /** Its TypeScript type, as the options interface declares it. */
  readonly type: string;
  /** What it must be, for the message when `check` refuses it. */
  readonly expected: string;
  /**
   * Whether a value is one (default: any object). A type guard gives the
   * setting its type once read.
   */
  readonly check?: (value: unknown) => boolean;
}

/** One setting of a backend. */
export type Setting =
  | StringSetting
  | NumberSetting
  | BooleanSetting
  | ValueSetting;

/** A backend's own settings, by name. */
export type SettingsSchema = Readonly<Record<string, Setting>>;

/** The value a setting yields once read. */
export type SettingValue<T extends Setting> = T extends
  { kind: "string"; choices: readonly (infer C)[] } ? C
  : T extends { kind: "string" } ? string
  : T extends { kind: "number" } ? number
  : T extends { kind: "boolean" } ? boolean
  : T extends { check: (value: unknown) => value is infer V } ? V
  : unknown;

/**
 * The settings a schema yields once read: a setting with a default always
 * has a value.
 */
export type SettingsOf<S extends SettingsSchema> = {
  -readonly [K in keyof S]: S[K] extends { default: unknown }
    ? SettingValue<S[K]>
    : SettingValue<S[K]> | undefined;
};

/**
 * The settings every backend takes, with what they mean. `ConfigReader`
 * checks them itself; {@linkcode StoreOptions} is written from this.
 */
export const COMMON_SETTINGS = {
  prefix: {
    kind: "string",
    doc:
      "A namespace: every key is stored under `prefix/`. It must be a valid key. Keys in pairs, `list` and watches are reported without it.",
    defaultDoc: "none",
  },
  connectTimeout: {
    kind: "number",
    timer: true,
    default: DEFAULT_CONNECT_TIMEOUT_MS,
    doc:
      "How long opening may wait for the server, in milliseconds, before `NotReachableError`.",
  },
  tls: {
    kind: "value",
    type: "TlsOptions | boolean",
    expected:
      "true, false or { ca, cert, key, servername, rejectUnauthorized }",
    defaultDoc: "off (a TLS scheme such as `rediss:` turns it on)",
    doc:
      "TLS: `true` for the system's CAs, or the CA, client certificate and key to use.",
  },
  username: {
    kind: "string",
    defaultDoc: "none",
    doc: "The user name for the server's authentication.",
  },
  password: {
    kind: "string",
    defaultDoc: "none",
    doc: "The password for the server's authentication.",
  },
  signal: {
    kind: "value",
    type: "AbortSignal",
    expected: "an AbortSignal",
    check: (value): value is AbortSignal => value instanceof AbortSignal,
    defaultDoc: "none",
    doc: "Aborts opening.",
  },
} as const satisfies SettingsSchema;

/**
 * Checks a number setting: finite, above 0 (or from `rule.min`) and within
 * `rule`. Every backend's number checks go through it, so they all say the
 * same thing:
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
    typeof value === "number" && Number.isFinite(value) &&
    (min === undefined ? value > 0 : value >= min) &&
    (!integer || Number.isInteger(value)) &&
    (max === undefined || value <= max)
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
    `The ${backend} setting ${JSON.stringify(name)} must be a ${
      min !== undefined && min <= 0 ? "" : "positive "
    }${integer ? "whole number" : "number"}${
      rule.timer ? " of milliseconds" : ""
    }${range}, not ${describe(value)}`,
  );
}

/**
 * Checks a backend's configuration against its schema and reads it with
 * the right types and the defaults.
 *
 * @example
 * ```ts
 * import { ConfigReader } from "./config.ts";
 *
 * const config = new ConfigReader("redis", { db: "2" }, {
 *   db: { kind: "number", min: 0, integer: true, default: 0, doc: "The database." },
 * });
 * console.log(config.get("db")); // 2
 * ```
 */
export class ConfigReader<S extends SettingsSchema = SettingsSchema> {
  readonly #backend: string;
  readonly #config: Record<string, unknown>;
  readonly #schema: S;
  /** Each setting given, checked and converted once, by name. */
  readonly #values = new Map<string, unknown>();
  readonly #tls: TlsConnectionOptions | undefined;

  /**
   * Checks every setting given: common or one of `schema`, of its kind and
   * within its bounds.
   *
   * @param backend The backend's name, for messages.
   * @param config The configuration as given (URL settings merged in by the
   * registry).
   * @param schema The backend's own settings.
   */
  constructor(
    backend: string,
    config: FactoryConfig | object,
    schema: S,
  ) {
    this.#backend = backend;
    this.#config = config as Record<string, unknown>;
    this.#schema = schema;
    for (const [name, value] of Object.entries(this.#config)) {
      if (value === undefined || name === "url") continue;
      const setting = schema[name] ??
        (COMMON_SETTINGS as SettingsSchema)[name];
      if (!setting) {
        throw new InvalidConfigurationError(
          `Unknown ${backend} setting ${JSON.stringify(name)} (known: ${
            [...Object.keys(COMMON_SETTINGS), ...Object.keys(schema)].join(
              ", ",
            )
          })`,
        );
      }
      if (name !== "tls") this.#values.set(name, this.#read(name, setting));
    }
    // Checked now, before anything connects.
    const tls = this.#config.tls;
    this.#tls = tls === undefined || tls === false
      ? undefined
      : tlsConnectionOptions(backend, tls === true ? {} : tls as TlsOptions);
  }

  /**
   * A setting of the schema: its value, or its default.
   *
   * @param name The setting.
   * @returns Its value (checked in the constructor).
   */
  get<K extends keyof S & string>(name: K): SettingsOf<S>[K] {
    return this.#value(name, this.#schema[name]) as SettingsOf<S>[K];
  }

  /**
   * Whether the caller gave a setting (a default does not count).
   *
   * @param name The setting.
   * @returns `true` when given.
   */
  has(name: keyof S & string): boolean {
    return this.#config[name] !== undefined;
  }

  /** The connect timeout in milliseconds (default 10 000). */
  get connectTimeout(): number {
    return this.#value(
      "connectTimeout",
      COMMON_SETTINGS.connectTimeout,
    ) as number;
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

  // A setting's value as the constructor read it, or its default.
  #value(name: string, setting: Setting): unknown {
    if (this.#values.has(name)) return this.#values.get(name);
    return "default" in setting ? setting.default : undefined;
  }

  // Checks and converts a given setting (a URL's "250" becomes 250).
  #read(name: string, setting: Setting): unknown {
    const value = this.#config[name];
    switch (setting.kind) {
      case "string":
        if (typeof value !== "string") {
          throw this.#error(name, "a string", value);
        }
        if (setting.choices && !setting.choices.includes(value)) {
          throw this.#error(
            name,
            setting.choices.map((c) => JSON.stringify(c)).join(", ")
              .replace(/, ([^,]*)$/, " or $1"),
            value,
          );
        }
        return value;
      case "number": {
        const number = typeof value === "string" && value.trim() !== ""
          ? Number(value)
          : value;
        if (typeof number !== "number" || !Number.isFinite(number)) {
          throw this.#error(name, "a number", value);
        }
        return positiveNumber(this.#backend, name, number, setting);
      }
      case "boolean":
        if (typeof value === "boolean") return value;
        if (value === "true" || value === "1") return true;
        if (value === "false" || value === "0") return false;
        throw this.#error(name, "a boolean", value);
      case "value":
        if (
          setting.check
            ? setting.check(value)
            : typeof value === "object" && value !== null
        ) {
          return value;
        }
        throw this.#error(name, setting.expected, value);
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

/**
 * A setting's default as the docs say it.
 *
 * @param setting The setting.
 * @returns The default, in Markdown (`none` when there is none).
 */
export function defaultText(setting: Setting): string {
  if (setting.defaultDoc !== undefined) return setting.defaultDoc;
  if (!("default" in setting) || setting.default === undefined) return "none";
  return `\`${JSON.stringify(setting.default)}\``;
}

/**
 * What values a setting takes, as the docs say it: its type and bounds.
 *
 * @param setting The setting.
 * @returns The type in Markdown.
 */
export function typeText(setting: Setting): string {
  switch (setting.kind) {
    case "string":
      return setting.choices
        ? setting.choices.map((c) => `\`"${c}"\``).join(" \\| ")
        : "string";
    case "boolean":
      return "boolean";
    case "value":
      return `\`${setting.type.replaceAll("|", "\\|")}\``;
    case "number": {
      const what = setting.integer ? "whole number" : "number";
      const unit = setting.timer ? " (ms)" : "";
      // A timer's own bound (2^31 - 1 ms) holds for every timer: not repeated.
      const { max } = setting;
      const min = setting.min ?? (setting.integer ? 1 : undefined);
      const n = (value: number) => value.toLocaleString("en-US");
      const range = min !== undefined && max !== undefined
        ? ` ${n(min)}–${n(max)}`
        : max !== undefined
        ? ` ≤ ${n(max)}`
        : min !== undefined
        ? ` ≥ ${n(min)}`
        : " > 0";
      return `${what}${unit},${range}`;
    }
  }
}
