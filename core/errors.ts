/**
 * The errors every backend throws. Each one extends {@linkcode StoreError},
 * has its `name` set, and carries the backend's own error in `cause`.
 *
 * @module
 */

/**
 * The base class of every error the library throws.
 *
 * @example Telling library errors from others
 * ```ts
 * import { StoreError } from "./errors.ts";
 *
 * try {
 *   throw new StoreError("something failed");
 * } catch (err) {
 *   if (err instanceof StoreError) console.log(err.name);
 * }
 * ```
 */
export class StoreError extends Error {
  /** The class's name, written out so it survives minification. */
  override name: string = "StoreError";
  /** A stable code for the kind of error (`"KEY_NOT_FOUND"`, ...). */
  readonly code: string = "STORE_ERROR";
  /**
   * Creates a store error.
   *
   * @param message What went wrong, in sentence case without a trailing period.
   * @param options The underlying error in `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** Keys longer than this are shortened in messages. */
const KEY_IN_MESSAGE_CHARS = 200;

/**
 * `key` quoted for a message: a key of ten million characters must not make
 * a ten-megabyte message, so a long one is cut and its length given.
 */
function quoteKey(key: string): string {
  if (typeof key !== "string") return String(key);
  if (key.length <= KEY_IN_MESSAGE_CHARS) return JSON.stringify(key);
  return `${
    JSON.stringify(key.slice(0, KEY_IN_MESSAGE_CHARS))
  }… (${key.length} characters)`;
}

/**
 * The mark every library error carries, by a registered symbol: it is the
 * same in two loaded copies of the package, where `instanceof` is not.
 */
const BRAND: unique symbol = Symbol.for("@valkeyrie/valkeyrie.StoreError");

/**
 * Whether `error` is an error of this library (of any loaded copy of it),
 * by its brand rather than by `instanceof`. Its `code` then tells its kind.
 *
 * @param error Anything caught.
 * @returns Whether it is a {@linkcode StoreError}.
 *
 * @example
 * ```ts
 * import { isStoreError, KeyNotFoundError } from "./errors.ts";
 *
 * const error: unknown = new KeyNotFoundError("a/b");
 * if (isStoreError(error)) console.log(error.code); // "KEY_NOT_FOUND"
 * ```
 */
export function isStoreError(error: unknown): error is StoreError {
  return typeof error === "object" && error !== null &&
    (error as { [BRAND]?: boolean })[BRAND] === true;
}

/**
 * An error about one key.
 *
 * @example
 * ```ts
 * import { KeyError } from "./errors.ts";
 *
 * const err = new KeyError("a/b", "trouble with the key");
 * console.log(err.key);
 * ```
 */
export class KeyError extends StoreError {
  /** Always `"KeyError"`. */
  override name: string = "KeyError";
  /** Always `"KEY_ERROR"`. */
  override readonly code: string = "KEY_ERROR";
  /** The key, as the caller gave it (normalised where it was valid). */
  readonly key: string;
  /**
   * Creates an error about `key`.
   *
   * @param key The key.
   * @param message What went wrong.
   * @param options The underlying error in `cause`.
   */
  constructor(key: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.key = key;
  }
}

/**
 * The key does not exist (or has expired) where the operation needed it.
 *
 * @example
 * ```ts
 * import { KeyNotFoundError } from "./errors.ts";
 *
 * const err = new KeyNotFoundError("a");
 * console.log(err.message);
 * ```
 */
export class KeyNotFoundError extends KeyError {
  /** Always `"KeyNotFoundError"`. */
  override name: string = "KeyNotFoundError";
  /** Always `"KEY_NOT_FOUND"`. */
  override readonly code: string = "KEY_NOT_FOUND";
  /**
   * Creates the error for `key`.
   *
   * @param key The key.
   * @param options The underlying error in `cause`.
   */
  constructor(key: string, options?: ErrorOptions) {
    super(key, `Key not found: ${quoteKey(key)}`, options);
  }
}

/**
 * The key exists where the operation wanted to create it.
 *
 * @example
 * ```ts
 * import { KeyExistsError } from "./errors.ts";
 *
 * console.log(new KeyExistsError("a").message);
 * ```
 */
export class KeyExistsError extends KeyError {
  /** Always `"KeyExistsError"`. */
  override name: string = "KeyExistsError";
  /** Always `"KEY_EXISTS"`. */
  override readonly code: string = "KEY_EXISTS";
  /**
   * Creates the error for `key`.
   *
   * @param key The key.
   * @param options The underlying error in `cause`.
   */
  constructor(key: string, options?: ErrorOptions) {
    super(key, `Key already exists: ${quoteKey(key)}`, options);
  }
}

/**
 * The key's `lastIndex` is not the one the operation expected.
 *
 * @example
 * ```ts
 * import { KeyModifiedError } from "./errors.ts";
 *
 * console.log(new KeyModifiedError("a").message);
 * ```
 */
export class KeyModifiedError extends KeyError {
  /** Always `"KeyModifiedError"`. */
  override name: string = "KeyModifiedError";
  /** Always `"KEY_MODIFIED"`. */
  override readonly code: string = "KEY_MODIFIED";
  /**
   * Creates the error for `key`.
   *
   * @param key The key.
   * @param options The underlying error in `cause`.
   */
  constructor(key: string, options?: ErrorOptions) {
    super(
      key,
      `Key was modified since it was read: ${quoteKey(key)}`,
      options,
    );
  }
}

/**
 * A call that needs the previous pair was made without one.
 *
 * @example
 * ```ts
 * import { PreviousNotSpecifiedError } from "./errors.ts";
 *
 * console.log(new PreviousNotSpecifiedError("a").message);
 * ```
 */
export class PreviousNotSpecifiedError extends KeyError {
  /** Always `"PreviousNotSpecifiedError"`. */
  override name: string = "PreviousNotSpecifiedError";
  /** Always `"PREVIOUS_NOT_SPECIFIED"`. */
  override readonly code: string = "PREVIOUS_NOT_SPECIFIED";
  /**
   * Creates the error for `key`.
   *
   * @param key The key.
   */
  constructor(key: string) {
    super(key, `Previous pair not specified for key ${quoteKey(key)}`);
  }
}

/**
 * The key is not a valid key (see the key rules in the README).
 *
 * @example
 * ```ts
 * import { InvalidKeyError } from "./errors.ts";
 *
 * console.log(new InvalidKeyError("a//b", "it has an empty segment").message);
 * ```
 */
export class InvalidKeyError extends KeyError {
  /** Always `"InvalidKeyError"`. */
  override name: string = "InvalidKeyError";
  /** Always `"INVALID_KEY"`. */
  override readonly code: string = "INVALID_KEY";
  /**
   * Creates the error for `key`.
   *
   * @param key The key as given.
   * @param reason Why it is invalid.
   */
  constructor(key: string, reason: string) {
    super(key, `Invalid key ${quoteKey(key)}: ${reason}`);
  }
}

/**
 * The value is larger than the backend's `limits.maxValueBytes`.
 *
 * @example
 * ```ts
 * import { ValueTooLargeError } from "./errors.ts";
 *
 * console.log(new ValueTooLargeError("a", 2048, 1024).message);
 * ```
 */
export class ValueTooLargeError extends KeyError {
  /** Always `"ValueTooLargeError"`. */
  override name: string = "ValueTooLargeError";
  /** Always `"VALUE_TOO_LARGE"`. */
  override readonly code: string = "VALUE_TOO_LARGE";
  /** The value's size in bytes. */
  readonly size: number;
  /** The largest size the backend accepts. */
  readonly limit: number;
  /**
   * Creates the error for `key`.
   *
   * @param key The key.
   * @param size The value's size in bytes.
   * @param limit The largest size allowed.
   */
  constructor(key: string, size: number, limit: number) {
    super(
      key,
      `Value of ${size} bytes for key ${
        quoteKey(key)
      } exceeds the limit of ${limit} bytes`,
    );
    this.size = size;
    this.limit = limit;
  }
}

/**
 * An argument other than a key is invalid: a value that is neither bytes nor
 * a string, a TTL that is not a positive number, an atomic operation that
 * names a key twice.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "./errors.ts";
 *
 * console.log(new InvalidArgumentError("ttl must be a positive number").message);
 * ```
 */
export class InvalidArgumentError extends StoreError {
  /** Always `"InvalidArgumentError"`. */
  override name: string = "InvalidArgumentError";
  /** Always `"INVALID_ARGUMENT"`. */
  override readonly code: string = "INVALID_ARGUMENT";
}

/**
 * The server could not be reached (within `connectTimeout` when connecting).
 *
 * @example
 * ```ts
 * import { NotReachableError } from "./errors.ts";
 *
 * console.log(new NotReachableError("redis at 127.0.0.1:1 is not reachable").name);
 * ```
 */
export class NotReachableError extends StoreError {
  /** Always `"NotReachableError"`. */
  override name: string = "NotReachableError";
  /** Always `"NOT_REACHABLE"`. */
  override readonly code: string = "NOT_REACHABLE";
}

/**
 * A lock was lost while it was held, or could not be proven held.
 *
 * @example
 * ```ts
 * import { LockLostError } from "./errors.ts";
 *
 * console.log(new LockLostError("jobs/nightly", "its lease expired").message);
 * ```
 */
export class LockLostError extends KeyError {
  /** Always `"LockLostError"`. */
  override name: string = "LockLostError";
  /** Always `"LOCK_LOST"`. */
  override readonly code: string = "LOCK_LOST";
  /**
   * Creates the error for the lock on `key`.
   *
   * @param key The lock's key.
   * @param reason Why the lock is lost.
   * @param options The underlying error in `cause`.
   */
  constructor(key: string, reason: string, options?: ErrorOptions) {
    super(key, `Lock on ${quoteKey(key)} lost: ${reason}`, options);
  }
}

/**
 * The configuration given to a backend has the wrong shape.
 *
 * @example
 * ```ts
 * import { InvalidConfigurationError } from "./errors.ts";
 *
 * console.log(new InvalidConfigurationError("connectTimeout must be a number").name);
 * ```
 */
export class InvalidConfigurationError extends StoreError {
  /** Always `"InvalidConfigurationError"`. */
  override name: string = "InvalidConfigurationError";
  /** Always `"INVALID_CONFIGURATION"`. */
  override readonly code: string = "INVALID_CONFIGURATION";
}

/**
 * No backend is registered under that name or URL scheme.
 *
 * @example
 * ```ts
 * import { UnknownBackendError } from "./errors.ts";
 *
 * console.log(new UnknownBackendError("Unknown backend \"nope\"").name);
 * ```
 */
export class UnknownBackendError extends StoreError {
  /** Always `"UnknownBackendError"`. */
  override name: string = "UnknownBackendError";
  /** Always `"UNKNOWN_BACKEND"`. */
  override readonly code: string = "UNKNOWN_BACKEND";
}

/**
 * The store was closed before or during the call.
 *
 * @example
 * ```ts
 * import { StoreClosedError } from "./errors.ts";
 *
 * console.log(new StoreClosedError("memory").message);
 * ```
 */
export class StoreClosedError extends StoreError {
  /** Always `"StoreClosedError"`. */
  override name: string = "StoreClosedError";
  /** Always `"STORE_CLOSED"`. */
  override readonly code: string = "STORE_CLOSED";
  /**
   * Creates the error for a store of `backend`.
   *
   * @param backend The backend's name.
   * @param options What the call that was cut off failed with, in `cause`.
   */
  constructor(backend: string, options?: ErrorOptions) {
    super(`The ${backend} store is closed`, options);
  }
}

/**
 * The backend cannot do what was asked. No built-in backend throws it: every
 * backend implements the whole contract.
 *
 * @example
 * ```ts
 * import { CallNotSupportedError } from "./errors.ts";
 *
 * console.log(new CallNotSupportedError("not supported").name);
 * ```
 */
export class CallNotSupportedError extends StoreError {
  /** Always `"CallNotSupportedError"`. */
  override name: string = "CallNotSupportedError";
  /** Always `"CALL_NOT_SUPPORTED"`. */
  override readonly code: string = "CALL_NOT_SUPPORTED";
}

/**
 * A bulk call (`putMany`, `deleteMany`) failed part-way. Bulk calls are not
 * atomic: `done` lists the positions of the entries (or keys) known to be
 * written, and the rest may or may not have been; `cause` is the first
 * failure.
 *
 * @example
 * ```ts
 * import { BulkWriteError } from "./errors.ts";
 *
 * const error = new BulkWriteError("putMany", [0, 1], 3, new Error("gone"));
 * console.log(error.done); // [0, 1]
 * ```
 */
export class BulkWriteError extends StoreError {
  /** Always `"BulkWriteError"`. */
  override name: string = "BulkWriteError";
  /** Always `"BULK_WRITE_FAILED"`. */
  override readonly code: string = "BULK_WRITE_FAILED";
  /** The positions, in the call's list, of what is known to be written. */
  readonly done: readonly number[];

  /**
   * Creates the error.
   *
   * @param op The call: `"putMany"` or `"deleteMany"`.
   * @param done The positions known to be written, ascending.
   * @param total How many entries the call had.
   * @param cause The first failure.
   */
  constructor(
    op: string,
    done: readonly number[],
    total: number,
    cause: unknown,
  ) {
    const message = cause instanceof Error ? cause.message : String(cause);
    super(
      `${op} failed after ${done.length} of ${total} were known written: ${message}`,
      { cause },
    );
    this.done = Object.freeze([...done]);
  }
}
